//! `orgsync-test-google`: the Google token endpoint and Admin SDK Directory API emulator of
//! [`testkit::google`] as a standalone process, for scripts and manual tries.
//!
//! The service account's key pair is given as PEM files (`--certificate`, `--private-key`, e.g.
//! made with `openssl req -x509 -newkey rsa:2048 -nodes`); `--write-key FILE` writes the JSON key
//! file orgsync reads (mode 0600, `token_uri` pointing here). Seeds a sample account (an admin
//! `admin@example.com`, a few users and groups), prints `orgsync-test-google listening on
//! http://127.0.0.1:PORT` on stdout once it accepts connections, logs each request on stderr,
//! and runs until SIGINT or SIGTERM.
//!
//! It listens on 127.0.0.1 only; there is no option to change that.
//!
//! Exit codes: 0 after a signal, 1 when it cannot start, 2 for bad arguments (clap).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use testkit::google::{GoogleOptions, GoogleServer, Member, User};

/// Emulates Google's token endpoint and the Admin SDK Directory API on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TCP port on 127.0.0.1; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The most items on one page.
    #[arg(long, default_value_t = 3)]
    page_size: usize,
    /// The service account's certificate (PEM).
    #[arg(long)]
    certificate: PathBuf,
    /// The service account's private key (PEM, PKCS#8).
    #[arg(long)]
    private_key: PathBuf,
    /// Write the service account's JSON key file here (mode 0600).
    #[arg(long, value_name = "FILE")]
    write_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    testkit::standalone::main("orgsync-test-google", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    for path in [&args.certificate, &args.private_key] {
        if !path.is_file() {
            return Err(format!("{} is not a readable file", path.display()));
        }
    }
    let server = GoogleServer::start(GoogleOptions {
        port: args.port,
        page_size: args.page_size.max(1),
        ..GoogleOptions::with_key(args.certificate, args.private_key)
    })
    .await;
    let admin = User::active("100000000001", "admin@example.com");
    server.upsert_user(admin);
    server.make_admin("admin@example.com");
    let people: Vec<User> = ["ann", "bob", "cy"]
        .iter()
        .enumerate()
        .map(|(i, name)| User::active(&format!("10000000001{i}"), &format!("{name}@example.com")))
        .collect();
    server.upsert_group("0engineering", "engineering@example.com", "Engineering");
    for person in &people {
        server.upsert_user(person.clone());
        server.add_member("0engineering", Member::user(person));
    }
    if let Some(path) = &args.write_key {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| file.write_all(server.key_file_json().as_bytes()))
            .map_err(|e| format!("cannot write the key file {}: {e}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "orgsync-test-google listening on {}",
        server.base_url()
    )
    .and_then(|()| out.flush())
    .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);
    testkit::standalone::wait_for_signal().await
}
