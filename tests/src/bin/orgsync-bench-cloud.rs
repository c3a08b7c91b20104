//! `orgsync-bench-cloud`: measures orgsync's cloud directory reads against the fewest requests
//! the read needs and against Directory Connector's request pattern, in the same run, against
//! the same emulator with a fixed per-request latency. Run it through `bench/cloud.sh`, which
//! builds release binaries first.
//!
//! Entra ID: N users and N/50 groups of 50 members (every tenth group nests the next) in the
//! Graph emulator, pages of up to 999. Measured with GNU `time -v` (medians of `--runs`):
//! - `orgsync test --json` (a full read): wall, peak RSS, requests and bytes Graph served;
//! - an unchanged `orgsync sync` after a first one (a delta poll): wall and requests, for the CLI
//!   (a process that opens the state each time) and for `orgsyncd` (a run through its API);
//! - the reference pattern, in this process: sequential pages of Graph's default 100 for users
//!   and groups, then one member listing per group, one after another.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use testkit::cli::{Installation, binary};
use testkit::graph::{GraphOptions, GraphServer, Kind, User, id};
use testkit::measure::{Usage, machine, median, median_f64, timed};
use testkit::orgserver::{OrgServer, OrgServerOptions};

/// Benchmarks orgsync's Entra ID reads on a generated tenant.
#[derive(Parser, Debug)]
struct Args {
    /// Users in the tenant
    #[arg(long, default_value_t = 50_000)]
    users: usize,
    /// Per-request latency of the emulator, in milliseconds
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Repetitions per measurement (the median is reported)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Write the markdown report here too
    #[arg(long)]
    out: Option<PathBuf>,
}

const GROUP_SIZE: usize = 50;
/// Graph's largest page.
const MAX_PAGE: usize = 999;

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(entra(&args));
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).expect("write the report");
    }
}

fn user_id(i: usize) -> String {
    id(&format!("user-{i}"))
}

fn group_id(g: usize) -> String {
    id(&format!("group-{g}"))
}

async fn tenant(n: usize, latency: Duration) -> GraphServer {
    let graph = GraphServer::start(GraphOptions {
        page_size: MAX_PAGE,
        empty_first_page: false,
        ..GraphOptions::default()
    })
    .await;
    for i in 0..n {
        graph.upsert_user(User::member(
            &user_id(i),
            &format!("u{i:07}"),
            "example.org",
        ));
    }
    let groups = n.div_ceil(GROUP_SIZE);
    for g in 0..groups {
        graph.upsert_group(&group_id(g), &format!("g{g:05}"));
    }
    for g in 0..groups {
        for i in (g * GROUP_SIZE)..((g + 1) * GROUP_SIZE).min(n) {
            graph.add_member(&group_id(g), &user_id(i), Kind::User);
        }
        if g % 10 == 0 && g + 1 < groups {
            graph.add_member(&group_id(g), &group_id(g + 1), Kind::Group);
        }
    }
    graph.set_latency(latency);
    graph
}

fn orgsync_timed(inst: &Installation, args: &[&str]) -> Usage {
    let mut command = inst.command("/usr/bin/time");
    command.arg("-v").arg(binary("orgsync")).args(args);
    timed(command)
}

/// What Graph served since the log was cleared: requests and bytes.
fn traffic(graph: &GraphServer) -> (usize, usize) {
    let requests = graph.requests();
    (requests.len(), requests.iter().map(|r| r.bytes).sum())
}

/// Directory Connector's request pattern (`directory-connector.md` §3.2): a token, then users
/// in Graph's default pages of 100, groups likewise, then each group's members, one request
/// after another. Returns the wall time and the requests made.
async fn reference_pattern(graph: &GraphServer) -> (f64, usize) {
    let base = graph.base_url();
    let options = graph.options();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let started = Instant::now();
    let mut requests = 1;
    let token: serde_json::Value = http
        .post(format!("{base}/{}/oauth2/v2.0/token", options.tenant_id))
        .form(&[
            ("client_id", options.client_id.as_str()),
            ("client_secret", options.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{base}/.default")),
        ])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("a token")
        .json()
        .await
        .expect("token JSON");
    let bearer = token["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    let all = |first: String| {
        let http = http.clone();
        let bearer = bearer.clone();
        async move {
            let mut items = Vec::new();
            let mut url = Some(first);
            let mut made = 0;
            while let Some(next) = url {
                made += 1;
                let page: serde_json::Value = http
                    .get(&next)
                    .bearer_auth(&bearer)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .expect("a page")
                    .json()
                    .await
                    .expect("page JSON");
                items.extend(page["value"].as_array().cloned().unwrap_or_default());
                url = page["@odata.nextLink"].as_str().map(str::to_string);
            }
            (items, made)
        }
    };
    let (_, made) = all(format!(
        "{base}/v1.0/users?$select=id,mail,userPrincipalName,displayName,accountEnabled"
    ))
    .await;
    requests += made;
    let (groups, made) = all(format!("{base}/v1.0/groups")).await;
    requests += made;
    for group in &groups {
        let group = group["id"].as_str().expect("a group id");
        let (_, made) = all(format!("{base}/v1.0/groups/{group}/members")).await;
        requests += made;
    }
    (started.elapsed().as_secs_f64(), requests)
}

/// `orgsyncd` for `inst`, on a free port, not polling by itself.
async fn daemon(inst: &Installation) -> std::process::Child {
    inst.set("daemon.port", "0");
    inst.set("daemon.catch_up", "false");
    inst.set("sync.interval_minutes", "600");
    inst.command(binary("orgsyncd"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start orgsyncd")
}

async fn discover(inst: &Installation) -> orgsync_proto::client::Client {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(client)) = orgsync_proto::client::Client::discover(&inst.data_dir()).await {
            return client;
        }
        assert!(Instant::now() < deadline, "orgsyncd did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn entra(args: &Args) -> String {
    let n = args.users;
    let groups = n.div_ceil(GROUP_SIZE);
    let latency = Duration::from_millis(args.latency_ms);
    eprintln!("seeding {n} users and {groups} groups");
    let graph = tenant(n, latency).await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_entra(&graph);
    inst.set("sync.large_import", "true");
    inst.login_to(&org);
    let concurrency: usize = 16;

    // The fewest requests a full read needs: a token, the users' and the groups' pages of 999,
    // and one member listing per group (each under 999 members).
    let fewest = 1 + n.div_ceil(MAX_PAGE) + groups.div_ceil(MAX_PAGE) + groups;
    // The least wall time at that concurrency, users read beside groups and members.
    let floor_wall = latency.as_secs_f64()
        * (1.0
            + (n.div_ceil(MAX_PAGE) as f64)
                .max((groups.div_ceil(MAX_PAGE) + groups.div_ceil(concurrency)) as f64));

    let (mut tests, mut test_traffic) = (Vec::new(), Vec::new());
    let (mut polls, mut poll_requests) = (Vec::new(), Vec::new());
    let mut references = Vec::new();
    let mut reference_requests = 0;
    let (mut daemon_polls, mut daemon_requests) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        eprintln!("run {}", run + 1);
        graph.clear_requests();
        tests.push(orgsync_timed(&inst, &["test", "--json"]));
        test_traffic.push(traffic(&graph));

        inst.run(&["clear-cache"]).ok();
        orgsync_timed(&inst, &["sync"]);
        graph.clear_requests();
        polls.push(orgsync_timed(&inst, &["sync"]));
        poll_requests.push(graph.requests().len());
        assert!(
            graph.requests().iter().all(|r| !r.path.ends_with("/users")),
            "the unchanged poll read in full"
        );

        let (wall, made) = reference_pattern(&graph).await;
        references.push(wall);
        reference_requests = made;
    }
    {
        let mut daemon = daemon(&inst).await;
        let client = discover(&inst).await;
        client.sync(false).await.expect("a sync through the daemon");
        for _ in 0..args.runs {
            graph.clear_requests();
            let started = Instant::now();
            let done = client.sync(false).await.expect("a poll through the daemon");
            daemon_polls.push(started.elapsed().as_secs_f64());
            assert_eq!(done.report.read.mode, orgsync_proto::ReadMode::Incremental);
            daemon_requests.push(graph.requests().len());
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    let test = median(tests);
    let poll = median(polls);
    let reference = median_f64(references);
    let (requests, bytes) = test_traffic[test_traffic.len() / 2];
    let poll_requests = poll_requests.iter().copied().max().unwrap_or_default();
    let daemon_poll = median_f64(daemon_polls);
    let daemon_requests = daemon_requests.iter().copied().max().unwrap_or_default();

    let mut report = String::new();
    let _ = writeln!(report, "{}\n", machine());
    let _ = writeln!(
        report,
        "Entra ID: {n} users, {groups} groups of {GROUP_SIZE} (every tenth nests the next), Graph emulator with {} ms per request, pages of up to {MAX_PAGE}; orgsync's default concurrency {concurrency}; medians of {} runs.\n",
        args.latency_ms, args.runs
    );
    let _ = writeln!(
        report,
        "| read | wall | requests | bytes | peak RSS |\n|---|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        report,
        "| `orgsync test` (full read) | {:.2} s | {requests} | {:.1} MiB | {:.0} MiB |",
        test.wall,
        bytes as f64 / 1024.0 / 1024.0,
        test.rss_mib
    );
    let _ = writeln!(
        report,
        "| the fewest requests (floor at concurrency {concurrency}) | {floor_wall:.2} s | {fewest} | | |"
    );
    let _ = writeln!(
        report,
        "| Directory Connector's pattern (sequential, pages of 100) | {reference:.2} s | {reference_requests} | | |"
    );
    let _ = writeln!(
        report,
        "| unchanged delta poll (`orgsync sync`) | {:.0} ms | {poll_requests} | | {:.0} MiB |",
        poll.wall * 1000.0,
        poll.rss_mib
    );
    let _ = writeln!(
        report,
        "| unchanged delta poll (`orgsyncd`, a run through its API) | {:.0} ms | {daemon_requests} | | |",
        daemon_poll * 1000.0
    );
    let _ = writeln!(
        report,
        "\nFull read: {:.1}× faster than Directory Connector's pattern; {:.2}× the fewest requests; {:.2}× the floor's wall time.",
        reference / test.wall,
        requests as f64 / fewest as f64,
        test.wall / floor_wall
    );
    report
}
