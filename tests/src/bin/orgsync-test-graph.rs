//! `orgsync-test-graph`: the Microsoft Entra ID / Graph emulator of [`testkit::graph`] as a
//! standalone process, for scripts and manual tries.
//!
//! Seeds the tenant from `--seed FILE` (JSON `{users: [User], groups: [{id, name, members:
//! [{id, kind}]}]}`) or with a small sample company, prints `orgsync-test-graph listening on
//! http://127.0.0.1:PORT` and the tenant and client ids on stdout once it accepts connections,
//! logs each request on stderr, and runs until SIGINT or SIGTERM. The client secret is the one
//! given with `--client-secret` (default the emulator's), never printed. Test controls are
//! under `/_test/`.
//!
//! It listens on 127.0.0.1 only; there is no option to change that.
//!
//! Exit codes: 0 after a signal, 1 when it cannot start, 2 for bad arguments (clap).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use testkit::graph::{GraphOptions, GraphServer, Kind, User, id};

/// Emulates Microsoft Entra ID's token endpoint and Microsoft Graph v1.0 on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TCP port on 127.0.0.1; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The most items on one page.
    #[arg(long, default_value_t = 3)]
    page_size: usize,
    /// The app's client secret.
    #[arg(long)]
    client_secret: Option<String>,
    /// A certificate (PEM) registered for the app.
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// A pause before each answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime_secs: u64,
    /// Users and groups to start with (JSON); default a sample company.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Seed {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    groups: Vec<SeedGroup>,
}

#[derive(Deserialize)]
struct SeedGroup {
    id: String,
    name: String,
    #[serde(default)]
    members: Vec<SeedMember>,
}

#[derive(Deserialize)]
struct SeedMember {
    id: String,
    kind: Kind,
}

fn main() -> ExitCode {
    testkit::standalone::main("orgsync-test-graph", run(Args::parse()))
}

fn sample() -> Seed {
    let domain = "contoso.example";
    let users = ["ann", "bob", "cy", "dee"]
        .map(|name| User::member(&id(name), name, domain))
        .to_vec();
    let member = |name: &str| SeedMember {
        id: id(name),
        kind: Kind::User,
    };
    Seed {
        users,
        groups: vec![
            SeedGroup {
                id: id("engineering"),
                name: "Engineering".into(),
                members: vec![member("ann"), member("bob")],
            },
            SeedGroup {
                id: id("sales"),
                name: "Sales".into(),
                members: vec![member("cy")],
            },
        ],
    }
}

async fn run(args: Args) -> Result<(), String> {
    let seed = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a seed: {e}", path.display()))?
        }
        None => sample(),
    };
    let defaults = GraphOptions::default();
    let server = GraphServer::start(GraphOptions {
        port: args.port,
        page_size: args.page_size.max(1),
        client_secret: args.client_secret.unwrap_or(defaults.client_secret.clone()),
        certificate: args.certificate,
        latency: Duration::from_millis(args.latency_ms),
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        ..defaults
    })
    .await;
    for user in seed.users {
        server.upsert_user(user);
    }
    for group in &seed.groups {
        server.upsert_group(&group.id, &group.name);
    }
    for group in seed.groups {
        for member in group.members {
            server.add_member(&group.id, &member.id, member.kind);
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "orgsync-test-graph listening on {}", server.base_url())
        .and_then(|()| writeln!(out, "tenant {}", server.options().tenant_id))
        .and_then(|()| writeln!(out, "client {}", server.options().client_id))
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);
    testkit::standalone::wait_for_signal().await
}
