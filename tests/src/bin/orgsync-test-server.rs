//! `orgsync-test-server`: the emulated organization server of [`testkit::orgserver`] as a
//! standalone process, for the README demo and shell scripts.
//!
//! Prints `orgsync-test-server listening on http://127.0.0.1:PORT` and then the client id on
//! stdout once it accepts connections, logs each request on stderr, and runs until SIGINT or
//! SIGTERM. The client secret is never printed: it is the one given with `--client-secret`, or
//! a random one written only to the `--write-credentials` file (mode 0600).
//!
//! It listens on 127.0.0.1 only; there is no option to change that.
//!
//! Exit codes: 0 after a signal, 1 when it cannot start, 2 for bad arguments (clap).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use testkit::orgserver::{Flavour, OrgServer, OrgServerOptions};

/// Emulates a Bitwarden-compatible organization server (API-key login and organization import)
/// on 127.0.0.1, with test controls under /_test/.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TCP port on 127.0.0.1; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Which server to emulate: bitwarden-cloud, bitwarden-self-hosted or vaultwarden.
    #[arg(long, default_value = "bitwarden-self-hosted", value_parser = parse_flavour)]
    flavour: Flavour,

    /// The organization id (a UUID); default random.
    #[arg(long)]
    org_id: Option<String>,

    /// The API key's client secret; default random (see --write-credentials).
    #[arg(long)]
    client_secret: Option<String>,

    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime_secs: u64,

    /// Emulate an organization that may not use groups.
    #[arg(long)]
    no_groups: bool,

    /// Write {base_url, client_id, client_secret, org_id, flavour} as JSON to this file (mode
    /// 0600), so that a script can log in.
    #[arg(long, value_name = "FILE")]
    write_credentials: Option<PathBuf>,
}

fn parse_flavour(s: &str) -> Result<Flavour, String> {
    s.parse()
}

fn main() -> ExitCode {
    testkit::standalone::main("orgsync-test-server", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let opts = OrgServerOptions {
        flavour: args.flavour,
        port: args.port,
        token_lifetime: std::time::Duration::from_secs(args.token_lifetime_secs),
        org_id: args.org_id,
        client_secret: args.client_secret,
        uses_groups: !args.no_groups,
    };
    let server = OrgServer::try_start(opts)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    if let Some(path) = &args.write_credentials {
        write_credentials(path, &server)
            .map_err(|e| format!("cannot write the credentials file {}: {e}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "orgsync-test-server listening on {}",
            server.base_url()
        )
        .and_then(|()| writeln!(out, "{}", server.client_id()))
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    testkit::standalone::wait_for_signal().await?;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}

/// Writes the login details for scripts, readable by the owner only. The file is created with
/// mode 0600 and re-restricted if it already existed.
fn write_credentials(path: &Path, server: &OrgServer) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let json = serde_json::json!({
        "base_url": server.base_url(),
        "client_id": server.client_id(),
        "client_secret": server.client_secret(),
        "org_id": server.org_id(),
        "flavour": server.flavour(),
    });
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{json:#}")?;
    file.sync_all()
}
