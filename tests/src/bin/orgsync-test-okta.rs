//! `orgsync-test-okta`: the Okta Management API and org token endpoint emulator of
//! [`testkit::okta`] as a standalone process, for scripts and manual tries.
//!
//! Seeds a sample org (ann, bob, cy suspended, dee deprovisioned; groups Engineering and
//! Sales), prints `orgsync-test-okta listening on http://127.0.0.1:PORT` on stdout once it
//! accepts connections, logs each request on stderr, and runs until SIGINT or SIGTERM. Sign in
//! with the API token (`--api-token`, default the emulator's) or, with `--app-public-key`, as
//! the API service app `--client-id` holding the matching private key.
//!
//! It listens on 127.0.0.1 only; there is no option to change that.
//!
//! Exit codes: 0 after a signal, 1 when it cannot start, 2 for bad arguments (clap).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use testkit::okta::{OktaOptions, OktaServer, User};

/// Emulates the Okta Management API and its token endpoint on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TCP port on 127.0.0.1; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The most items on one page.
    #[arg(long, default_value_t = 3)]
    page_size: usize,
    /// The API token accepted as `SSWS <token>`.
    #[arg(long)]
    api_token: Option<String>,
    /// The service app's public key (PEM: a public key or certificate).
    #[arg(long, value_name = "FILE")]
    app_public_key: Option<PathBuf>,
    /// The service app's key id (`kid`).
    #[arg(long, default_value = "orgsync-key-1")]
    key_id: String,
    /// The service app's client id.
    #[arg(long)]
    client_id: Option<String>,
    /// The service app requires DPoP.
    #[arg(long)]
    require_dpop: bool,
    /// Requests per minute per endpoint (no limit without it).
    #[arg(long)]
    rate_limit: Option<u64>,
}

fn main() -> ExitCode {
    testkit::standalone::main("orgsync-test-okta", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let defaults = OktaOptions::default();
    let app_key = match &args.app_public_key {
        Some(path) => Some((
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            args.key_id.clone(),
        )),
        None => None,
    };
    let server = OktaServer::start(OktaOptions {
        port: args.port,
        page_size: args.page_size.max(1),
        api_token: args.api_token.unwrap_or(defaults.api_token.clone()),
        client_id: args.client_id.unwrap_or(defaults.client_id.clone()),
        app_key,
        require_dpop: args.require_dpop,
        rate_limit: args.rate_limit,
        rate_window: Duration::from_secs(60),
        ..defaults
    })
    .await;
    for (i, name) in ["ann", "bob", "cy", "dee"].iter().enumerate() {
        server.upsert_user(User::active(
            &format!("00u{i}sample"),
            &format!("{name}@example.com"),
        ));
    }
    server.set_status("00u2sample", "SUSPENDED");
    server.set_status("00u3sample", "DEPROVISIONED");
    server.upsert_group("00g0engineering", "Engineering");
    server.upsert_group("00g1sales", "Sales");
    server.add_member("00g0engineering", "00u0sample");
    server.add_member("00g0engineering", "00u1sample");
    server.add_member("00g1sales", "00u2sample");
    let mut out = std::io::stdout().lock();
    writeln!(out, "orgsync-test-okta listening on {}", server.base_url())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);
    testkit::standalone::wait_for_signal().await
}
