//! `orgsync-test-onelogin`: the OneLogin API emulator of [`testkit::onelogin`] as a standalone
//! process, for scripts and manual tries.
//!
//! Seeds a sample account (ann, bob, cy suspended; roles Engineering and Sales), prints
//! `orgsync-test-onelogin listening on http://127.0.0.1:PORT` on stdout once it accepts
//! connections, logs each request on stderr, and runs until SIGINT or SIGTERM. The API
//! credential is `--client-id` / `--client-secret` (defaults: the emulator's).
//!
//! It listens on 127.0.0.1 only; there is no option to change that.
//!
//! Exit codes: 0 after a signal, 1 when it cannot start, 2 for bad arguments (clap).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use testkit::onelogin::{OneLoginOptions, OneLoginServer, User};

/// Emulates the OneLogin API on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TCP port on 127.0.0.1; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The most items on one page.
    #[arg(long, default_value_t = 2)]
    page_size: usize,
    /// The API credential's client id.
    #[arg(long)]
    client_id: Option<String>,
    /// The API credential's client secret.
    #[arg(long)]
    client_secret: Option<String>,
    /// Requests per hour for the account.
    #[arg(long, default_value_t = 5000)]
    rate_limit: u64,
}

fn main() -> ExitCode {
    testkit::standalone::main("orgsync-test-onelogin", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let defaults = OneLoginOptions::default();
    let server = OneLoginServer::start(OneLoginOptions {
        port: args.port,
        page_size: args.page_size.max(1),
        client_id: args.client_id.unwrap_or(defaults.client_id.clone()),
        client_secret: args.client_secret.unwrap_or(defaults.client_secret.clone()),
        rate_limit: args.rate_limit,
        ..defaults
    })
    .await;
    for (id, name) in [(1001, "ann"), (1002, "bob"), (1003, "cy")] {
        server.upsert_user(User::active(id, &format!("{name}@example.com")));
    }
    server.change_user(1003, |u| u.status = 2);
    server.upsert_role(2001, "Engineering");
    server.upsert_role(2002, "Sales");
    server.assign_role(2001, 1001);
    server.assign_role(2001, 1002);
    server.assign_role(2002, 1003);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "orgsync-test-onelogin listening on {}",
        server.base_url()
    )
    .and_then(|()| out.flush())
    .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);
    testkit::standalone::wait_for_signal().await
}
