//! `orgsync-bench-cloud`: measures orgsync's cloud directory reads against the fewest requests
//! the read needs and against Directory Connector's request pattern, in the same run, against
//! the same emulator with a fixed per-request latency. Run it through `bench/cloud.sh`, which
//! builds release binaries first.
//!
//! For each directory (`--directory entra,google,okta,onelogin`): N users and N/50 groups of 50 members
//! (every tenth group nests the next) in its emulator, pages as large as the vendor allows.
//! Measured with GNU `time -v` (medians of `--runs`):
//! - `orgsync test --json` (a full read): wall, peak RSS, requests and bytes Graph served;
//! - an unchanged `orgsync sync` after a first one (a delta poll): wall and requests, for the CLI
//!   (a process that opens the state each time) and for `orgsyncd` (a run through its API);
//! - the reference pattern, in this process: sequential pages of the vendor's default 100 for
//!   users and groups, then one member listing per group, one after another (Okta: its
//!   default pages and a 500 ms pause between groups, measured once: it takes minutes).
//!
//! Okta's emulator also enforces a rate limit per endpoint (`--okta-rate-limit`, 600 a minute by
//! default), OneLogin's one budget for the whole account (`--onelogin-rate-limit` a minute,
//! OneLogin's hourly window scaled down so the bench ends): the table adds the 429s received and
//! the least time that limit allows.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use testkit::cli::{Installation, binary};
use testkit::emulator::Recorded;
use testkit::google::{GoogleOptions, GoogleServer, Member as GMember, User as GUser};
use testkit::graph::{GraphOptions, GraphServer, Kind, User, id};
use testkit::measure::{Usage, machine, median, median_f64, timed};
use testkit::okta::{OktaOptions, OktaServer, User as OUser};
use testkit::onelogin::{OneLoginOptions, OneLoginServer, User as OlUser};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::tls::TestCa;

/// Benchmarks orgsync's cloud directory reads on generated tenants.
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
    /// orgsync's concurrency of member listings (`entra.concurrency`, `google.concurrency`);
    /// default each source's own
    #[arg(long)]
    concurrency: Option<usize>,
    /// The directories to measure, comma-separated: entra, google, okta, onelogin
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "entra,google,okta,onelogin"
    )]
    directory: Vec<String>,
    /// Okta's rate limit: requests per minute per endpoint
    #[arg(long, default_value_t = 600)]
    okta_rate_limit: u64,
    /// OneLogin's rate limit: requests per minute for the whole account
    #[arg(long, default_value_t = 600)]
    onelogin_rate_limit: u64,
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
    let mut report = format!("{}\n\n", machine());
    if args.directory.iter().any(|d| d == "entra") {
        report += &runtime.block_on(entra(&args));
        report.push('\n');
    }
    if args.directory.iter().any(|d| d == "google") {
        report += &runtime.block_on(google(&args));
        report.push('\n');
    }
    if args.directory.iter().any(|d| d == "okta") {
        report += &runtime.block_on(okta(&args));
        report.push('\n');
    }
    if args.directory.iter().any(|d| d == "onelogin") {
        report += &runtime.block_on(onelogin(&args));
    }
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

/// The JSON answer of a request that must succeed.
async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("a successful answer")
        .json()
        .await
        .expect("a JSON answer")
}

/// The access token a token request answers with.
async fn bearer_of(request: reqwest::RequestBuilder) -> String {
    let token = json_of(request).await;
    token["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
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
    let bearer = bearer_of(
        http.post(format!("{base}/{}/oauth2/v2.0/token", options.tenant_id))
            .form(&[
                ("client_id", options.client_id.as_str()),
                ("client_secret", options.client_secret.as_str()),
                ("grant_type", "client_credentials"),
                ("scope", &format!("{base}/.default")),
            ]),
    )
    .await;
    let all = |first: String| {
        let http = http.clone();
        let bearer = bearer.clone();
        async move {
            let mut items = Vec::new();
            let mut url = Some(first);
            let mut made = 0;
            while let Some(next) = url {
                made += 1;
                let page = json_of(http.get(&next).bearer_auth(&bearer)).await;
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

/// An installation whose directory `point` sets, logged in to a fresh organization server
/// (kept alive by the caller), with large imports on and `<table>.concurrency` set.
async fn installation(
    point: impl FnOnce(&Installation),
    table: &str,
    concurrency: usize,
) -> (OrgServer, Installation) {
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    point(&inst);
    inst.set("sync.large_import", "true");
    inst.login_to(&org);
    inst.set(&format!("{table}.concurrency"), &concurrency.to_string());
    (org, inst)
}

/// The least time `requests` take under a limit of `limit` a `window` (in seconds): the full
/// windows waited out, then the last window's share at `concurrency` with `latency` each.
fn rate_floor(
    requests: usize,
    limit: u64,
    window: f64,
    latency: Duration,
    concurrency: usize,
) -> f64 {
    (requests.saturating_sub(1) as u64 / limit) as f64 * window
        + latency.as_secs_f64()
            * ((requests as u64 % limit).max(1) as f64 / concurrency as f64).ceil()
}

/// What orgsync did against one emulator.
struct Measured {
    test: Usage,
    /// Requests and bytes of the median `test`.
    test_traffic: (usize, usize),
    /// 429s answered during all the `test` runs.
    throttled: usize,
    poll: Usage,
    poll_requests: usize,
    daemon_poll: f64,
    daemon_requests: usize,
}

/// The request log of an emulator.
trait Log {
    fn requests(&self) -> Vec<Recorded>;
    fn clear_requests(&self);
    /// Starts every rate-limit window afresh, so each measured read starts alike.
    fn fresh_windows(&self) {}
}

impl Log for OktaServer {
    fn requests(&self) -> Vec<Recorded> {
        OktaServer::requests(self)
    }
    fn clear_requests(&self) {
        OktaServer::clear_requests(self);
    }
    fn fresh_windows(&self) {
        self.set_rate_limit(self.options().rate_limit);
    }
}

impl Log for OneLoginServer {
    fn requests(&self) -> Vec<Recorded> {
        OneLoginServer::requests(self)
    }
    fn clear_requests(&self) {
        OneLoginServer::clear_requests(self);
    }
    fn fresh_windows(&self) {
        self.fresh_window();
    }
}

impl Log for GraphServer {
    fn requests(&self) -> Vec<Recorded> {
        GraphServer::requests(self)
    }
    fn clear_requests(&self) {
        GraphServer::clear_requests(self);
    }
}

impl Log for GoogleServer {
    fn requests(&self) -> Vec<Recorded> {
        GoogleServer::requests(self)
    }
    fn clear_requests(&self) {
        GoogleServer::clear_requests(self);
    }
}

/// `orgsync test`, then an unchanged `orgsync sync` after a first one (by the CLI and through
/// the daemon), `runs` times each.
async fn measure(inst: &Installation, log: &dyn Log, runs: usize, incremental: bool) -> Measured {
    let (mut tests, mut test_traffic) = (Vec::new(), Vec::new());
    let mut throttled = 0;
    let (mut polls, mut poll_requests) = (Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("run {}", run + 1);
        log.clear_requests();
        log.fresh_windows();
        tests.push(orgsync_timed(inst, &["test", "--json"]));
        let requests = log.requests();
        test_traffic.push((requests.len(), requests.iter().map(|r| r.bytes).sum()));
        throttled += requests.iter().filter(|r| r.status == 429).count();

        inst.run(&["clear-cache"]).ok();
        log.fresh_windows();
        orgsync_timed(inst, &["sync"]);
        log.clear_requests();
        log.fresh_windows();
        polls.push(orgsync_timed(inst, &["sync"]));
        poll_requests.push(log.requests().len());
    }
    let mut daemon = daemon(inst).await;
    let client = discover(inst).await;
    log.fresh_windows();
    client.sync(false).await.expect("a sync through the daemon");
    let (mut daemon_polls, mut daemon_requests) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        log.clear_requests();
        log.fresh_windows();
        let started = Instant::now();
        let done = client.sync(false).await.expect("a poll through the daemon");
        daemon_polls.push(started.elapsed().as_secs_f64());
        assert_eq!(done.report.outcome, orgsync_proto::SyncOutcome::Unchanged);
        if incremental {
            assert_eq!(done.report.read.mode, orgsync_proto::ReadMode::Incremental);
        }
        daemon_requests.push(log.requests().len());
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    test_traffic.sort();
    Measured {
        test: median(tests),
        test_traffic: test_traffic[test_traffic.len() / 2],
        throttled,
        poll: median(polls),
        poll_requests: poll_requests.iter().copied().max().unwrap_or_default(),
        daemon_poll: median_f64(daemon_polls),
        daemon_requests: daemon_requests.iter().copied().max().unwrap_or_default(),
    }
}

/// The table of one directory: orgsync's figures beside the floor and the reference pattern.
struct Table<'a> {
    heading: String,
    measured: &'a Measured,
    fewest: usize,
    floor_wall: f64,
    concurrency: usize,
    reference: f64,
    reference_requests: usize,
    /// How Directory Connector reads: "sequential, pages of 100".
    reference_name: &'a str,
    poll_name: &'a str,
}

impl Table<'_> {
    fn render(&self) -> String {
        let m = self.measured;
        let (requests, bytes) = m.test_traffic;
        let mut out = format!("{}\n\n", self.heading);
        let _ = writeln!(
            out,
            "| read | wall | requests | bytes | peak RSS |\n|---|---:|---:|---:|---:|"
        );
        let _ = writeln!(
            out,
            "| `orgsync test` (full read) | {:.2} s | {requests} | {:.1} MiB | {:.0} MiB |",
            m.test.wall,
            bytes as f64 / 1024.0 / 1024.0,
            m.test.rss_mib
        );
        let _ = writeln!(
            out,
            "| the fewest requests (floor at concurrency {}) | {:.2} s | {} | | |",
            self.concurrency, self.floor_wall, self.fewest
        );
        let _ = writeln!(
            out,
            "| Directory Connector's pattern ({}) | {:.2} s | {} | | |",
            self.reference_name, self.reference, self.reference_requests
        );
        let _ = writeln!(
            out,
            "| unchanged {} (`orgsync sync`) | {:.0} ms | {} | | {:.0} MiB |",
            self.poll_name,
            m.poll.wall * 1000.0,
            m.poll_requests,
            m.poll.rss_mib
        );
        let _ = writeln!(
            out,
            "| unchanged {} (`orgsyncd`, a run through its API) | {:.0} ms | {} | | |",
            self.poll_name,
            m.daemon_poll * 1000.0,
            m.daemon_requests
        );
        let _ = writeln!(
            out,
            "\nFull read: {}; {:.2}× the fewest requests; {:.2}× the floor's wall time.",
            match self.reference / m.test.wall {
                faster if faster >= 1.0 => {
                    format!("{faster:.1}× faster than Directory Connector's pattern")
                }
                slower => format!(
                    "{:.1}× slower than Directory Connector's pattern",
                    1.0 / slower
                ),
            },
            requests as f64 / self.fewest as f64,
            m.test.wall / self.floor_wall
        );
        out
    }
}

async fn entra(args: &Args) -> String {
    let n = args.users;
    let groups = n.div_ceil(GROUP_SIZE);
    let latency = Duration::from_millis(args.latency_ms);
    eprintln!("Entra ID: seeding {n} users and {groups} groups");
    let graph = tenant(n, latency).await;
    let concurrency = args.concurrency.unwrap_or(16);
    let (_org, inst) = installation(|i| i.use_entra(&graph), "entra", concurrency).await;
    let measured = measure(&inst, &graph, args.runs, true).await;
    let mut references = Vec::new();
    let mut reference_requests = 0;
    for _ in 0..args.runs {
        let (wall, made) = reference_pattern(&graph).await;
        references.push(wall);
        reference_requests = made;
    }
    Table {
        heading: format!(
            "Entra ID: {n} users, {groups} groups of {GROUP_SIZE} (every tenth nests the next), Graph emulator with {} ms per request, pages of up to {MAX_PAGE}; orgsync's concurrency {concurrency}; medians of {} runs.",
            args.latency_ms, args.runs
        ),
        measured: &measured,
        // A token, the users' and the groups' pages of 999, one member listing per group.
        fewest: 1 + n.div_ceil(MAX_PAGE) + groups.div_ceil(MAX_PAGE) + groups,
        // Users read beside groups and their members.
        floor_wall: latency.as_secs_f64()
            * (1.0
                + (n.div_ceil(MAX_PAGE) as f64)
                    .max((groups.div_ceil(MAX_PAGE) + groups.div_ceil(concurrency)) as f64)),
        concurrency,
        reference: median_f64(references),
        reference_requests,
        reference_name: "sequential, pages of 100",
        poll_name: "delta poll",
    }
    .render()
}

async fn google(args: &Args) -> String {
    let n = args.users;
    let groups = n.div_ceil(GROUP_SIZE);
    let latency = Duration::from_millis(args.latency_ms);
    eprintln!("Google Workspace: seeding {n} users and {groups} groups");
    let keys = tempfile::tempdir().expect("a temp dir");
    let account = TestCa::create(keys.path()).issue_client("service-account");
    let google = GoogleServer::start(GoogleOptions {
        page_size: 500,
        ..GoogleOptions::with_key(account.cert, account.key)
    })
    .await;
    google.upsert_user(GUser::active("999999999999", "admin@example.com"));
    google.make_admin("admin@example.com");
    let user = |i: usize| GUser::active(&format!("1{i:011}"), &format!("u{i:07}@example.com"));
    for i in 0..n {
        google.upsert_user(user(i));
    }
    for g in 0..groups {
        let id = format!("0g{g:05}");
        google.upsert_group(&id, &format!("g{g:05}@example.com"), &format!("g{g:05}"));
        for i in (g * GROUP_SIZE)..((g + 1) * GROUP_SIZE).min(n) {
            google.add_member(&id, GMember::user(&user(i)));
        }
        if g % 10 == 0 && g + 1 < groups {
            google.add_member(
                &id,
                GMember {
                    id: format!("0g{:05}", g + 1),
                    email: Some(format!("g{:05}@example.com", g + 1)),
                    role: "MEMBER".into(),
                    kind: "GROUP".into(),
                    status: "ACTIVE".into(),
                },
            );
        }
    }
    google.set_latency(latency);
    let concurrency = args.concurrency.unwrap_or(16);
    let (_org, inst) = installation(
        |i| i.use_google(&google, "admin@example.com"),
        "google",
        concurrency,
    )
    .await;
    let measured = measure(&inst, &google, args.runs, false).await;
    let mut references = Vec::new();
    let mut reference_requests = 0;
    for _ in 0..args.runs {
        let (wall, made) = google_reference_pattern(&google).await;
        references.push(wall);
        reference_requests = made;
    }
    let users = n + 1;
    Table {
        heading: format!(
            "Google Workspace: {users} users, {groups} groups of {GROUP_SIZE} (every tenth nests the next), Admin SDK emulator with {} ms per request, pages of up to 500 users and 200 groups or members; orgsync's concurrency {concurrency}; every read is full (no delta API); medians of {} runs.",
            args.latency_ms, args.runs
        ),
        measured: &measured,
        // A token, the users' pages of 500, one page of deleted users, the groups' pages of
        // 200, one member listing per group.
        fewest: 1 + users.div_ceil(500) + 1 + groups.div_ceil(200) + groups,
        floor_wall: latency.as_secs_f64()
            * (1.0
                + ((users.div_ceil(500) + 1) as f64)
                    .max((groups.div_ceil(200) + groups.div_ceil(concurrency)) as f64)),
        concurrency,
        reference: median_f64(references),
        reference_requests,
        reference_name: "sequential, pages of 100",
        poll_name: "poll (a full read)",
    }
    .render()
}

/// Directory Connector's request pattern for Google (`directory-connector.md` §3.3): a token,
/// users and groups in the API's default pages (no `maxResults`), then each group's members,
/// every request after the previous one.
async fn google_reference_pattern(google: &GoogleServer) -> (f64, usize) {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        scope: String,
        aud: String,
        iat: i64,
        exp: i64,
    }
    let base = google.base_url();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        &std::fs::read(&google.options().private_key).expect("the key"),
    )
    .expect("an RSA key");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: &google.options().client_email,
        sub: "admin@example.com",
        scope: testkit::google::SCOPES.join(" "),
        aud: format!("{base}/token"),
        iat: now,
        exp: now + 3600,
    };
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("an assertion");
    let bearer = bearer_of(http.post(format!("{base}/token")).form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
    ]))
    .await;
    let mut requests = 1;
    let all = |first: String, key: &'static str| {
        let http = http.clone();
        let bearer = bearer.clone();
        async move {
            let mut items = Vec::new();
            let mut page_token: Option<String> = None;
            let mut made = 0;
            loop {
                made += 1;
                let url = match &page_token {
                    Some(t) => format!("{first}&pageToken={t}"),
                    None => first.clone(),
                };
                let page = json_of(http.get(&url).bearer_auth(&bearer)).await;
                items.extend(page[key].as_array().cloned().unwrap_or_default());
                match page["nextPageToken"].as_str() {
                    Some(next) => page_token = Some(next.to_string()),
                    None => return (items, made),
                }
            }
        }
    };
    let api = format!("{base}/admin/directory/v1");
    let (_, made) = all(format!("{api}/users?customer=my_customer"), "users").await;
    requests += made;
    let (_, made) = all(
        format!("{api}/users?customer=my_customer&showDeleted=true"),
        "users",
    )
    .await;
    requests += made;
    let (groups, made) = all(format!("{api}/groups?customer=my_customer"), "groups").await;
    requests += made;
    for group in &groups {
        let id = group["id"].as_str().expect("a group id");
        let (_, made) = all(
            format!("{api}/groups/{id}/members?roles=OWNER,MANAGER,MEMBER"),
            "members",
        )
        .await;
        requests += made;
    }
    (started.elapsed().as_secs_f64(), requests)
}

async fn okta(args: &Args) -> String {
    let n = args.users;
    let groups = n.div_ceil(GROUP_SIZE);
    let latency = Duration::from_millis(args.latency_ms);
    let limit = args.okta_rate_limit;
    eprintln!("Okta: seeding {n} users and {groups} groups");
    let okta = OktaServer::start(OktaOptions {
        page_size: 200,
        rate_limit: Some(limit),
        ..OktaOptions::default()
    })
    .await;
    let user_id = |i: usize| format!("00u{i:07}bench");
    for i in 0..n {
        okta.upsert_user(OUser::active(&user_id(i), &format!("u{i:07}@example.org")));
    }
    for g in 0..groups {
        let id = format!("00g{g:05}bench");
        okta.upsert_group(&id, &format!("g{g:05}"));
        for i in (g * GROUP_SIZE)..((g + 1) * GROUP_SIZE).min(n) {
            okta.add_member(&id, &user_id(i));
        }
    }
    // Untouched for a day, as most of a directory is between two polls.
    okta.age(Duration::from_secs(24 * 3600));
    okta.set_latency(latency);
    let concurrency = args.concurrency.unwrap_or(8);
    let (_org, inst) = installation(|i| i.use_okta(&okta), "okta", concurrency).await;
    let measured = measure(&inst, &okta, args.runs, true).await;
    okta.fresh_windows();
    let (reference, reference_requests, reference_throttled) = okta_reference_pattern(&okta).await;
    let window = 60.0;
    // The busiest endpoint is the member listings, one per group: the limit lets `limit` of
    // them through a window, so all of them take at least this long.
    let rate_floor = rate_floor(groups, limit, window, latency, concurrency);
    let user_pages = n.div_ceil(200);
    let table = Table {
        heading: format!(
            "Okta: {n} users, {groups} groups of {GROUP_SIZE}, emulator with {} ms per request and a rate limit of {limit} requests a minute per endpoint, pages of up to 200; orgsync's concurrency {concurrency}; medians of {} runs (Directory Connector's pattern once: it takes minutes).",
            args.latency_ms, args.runs
        ),
        measured: &measured,
        // The users' pages of 200, one page of deprovisioned users, the groups' pages of 200,
        // one member listing per group.
        fewest: user_pages + 1 + groups.div_ceil(200) + groups,
        floor_wall: rate_floor,
        concurrency,
        reference,
        reference_requests,
        reference_name: "sequential, default pages, 500 ms between groups",
        poll_name: "incremental poll",
    }
    .render();
    table
        + &rate_line(
            &measured,
            args.runs,
            reference_throttled,
            "and it stops at the first",
            &format!("the limit allows the member listings in {rate_floor:.1} s"),
            rate_floor,
        )
}

/// The line under a rate-limited table: the 429s orgsync and the reference met (`stops`: what
/// the reference does at the first), and the share of the rate the limit allows that orgsync
/// used (`allows`: what the floor `rate_floor` is made of).
fn rate_line(
    measured: &Measured,
    runs: usize,
    reference_throttled: usize,
    stops: &str,
    allows: &str,
    rate_floor: f64,
) -> String {
    format!(
        "\nRate limit: orgsync received {} 429s in {runs} full reads (Directory Connector's pattern {reference_throttled}, {stops}); {allows} at the least, so orgsync used {:.0} % of the allowed rate.\n",
        measured.throttled,
        100.0 * rate_floor / measured.test.wall
    )
}

/// Directory Connector's request pattern for Okta (`directory-connector.md` §3.4): users and
/// deprovisioned users (no `limit`) side by side, groups, then each group's users with 500 ms
/// between groups, every page after the previous one. Returns the wall time, the requests and
/// the 429s it met (it gives up at the first, so it counts them and carries on here).
async fn okta_reference_pattern(okta: &OktaServer) -> (f64, usize, usize) {
    let base = okta.base_url();
    let token = format!("SSWS {}", okta.options().api_token);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let started = Instant::now();
    let all = |first: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            let mut items = Vec::new();
            let (mut made, mut throttled) = (0, 0);
            let mut url = Some(first);
            while let Some(next) = url {
                made += 1;
                let answer = http
                    .get(&next)
                    .header("Authorization", &token)
                    .header("Accept", "application/json")
                    .send()
                    .await
                    .expect("an answer");
                if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    throttled += 1;
                    url = Some(next);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                url = answer
                    .headers()
                    .get_all("link")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|v| v.contains("rel=\"next\""))
                    .and_then(|v| v.split(['<', '>']).nth(1))
                    .map(str::to_string);
                let page: Vec<serde_json::Value> = answer.json().await.expect("a JSON array");
                if page.is_empty() {
                    break;
                }
                items.extend(page);
            }
            (items, made, throttled)
        }
    };
    let ((_, a, ta), (_, b, tb)) = tokio::join!(
        all(format!("{base}/api/v1/users?filter=")),
        all(format!(
            "{base}/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22"
        ))
    );
    let (groups, c, tc) = all(format!("{base}/api/v1/groups?filter=")).await;
    let (mut requests, mut throttled) = (a + b + c, ta + tb + tc);
    for group in &groups {
        let id = group["id"].as_str().expect("a group id");
        let (_, made, t) = all(format!("{base}/api/v1/groups/{id}/users")).await;
        requests += made;
        throttled += t;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (started.elapsed().as_secs_f64(), requests, throttled)
}

async fn onelogin(args: &Args) -> String {
    let n = args.users;
    let groups = n.div_ceil(GROUP_SIZE);
    let latency = Duration::from_millis(args.latency_ms);
    let limit = args.onelogin_rate_limit;
    eprintln!("OneLogin: seeding {n} users and {groups} roles");
    let onelogin = OneLoginServer::start(OneLoginOptions {
        page_size: 100,
        rate_limit: limit,
        rate_window: Duration::from_secs(60),
        ..OneLoginOptions::default()
    })
    .await;
    let user_id = |i: usize| 40_000_000 + i as u64;
    for i in 0..n {
        onelogin.upsert_user(OlUser::active(user_id(i), &format!("u{i:07}@example.org")));
    }
    for g in 0..groups {
        let role = 900_000 + g as u64;
        onelogin.upsert_role(role, &format!("r{g:05}"));
        for i in (g * GROUP_SIZE)..((g + 1) * GROUP_SIZE).min(n) {
            onelogin.assign_role(role, user_id(i));
        }
    }
    onelogin.set_latency(latency);
    let concurrency = args.concurrency.unwrap_or(4);
    let (_org, inst) = installation(|i| i.use_onelogin(&onelogin), "onelogin", concurrency).await;
    let measured = measure(&inst, &onelogin, args.runs, false).await;
    onelogin.fresh_window();
    let (reference, reference_requests, reference_throttled) =
        onelogin_reference_pattern(&onelogin).await;
    // The users' pages of 100, the roles' pages of 100, one member listing per role (50
    // members: one page).
    let fewest = n.div_ceil(100) + groups.div_ceil(100) + groups;
    // One budget for every request: `limit` of them a window, the last window's share at the
    // concurrency the member listings run with.
    let window = 60.0;
    let rate_floor = rate_floor(fewest, limit, window, latency, concurrency);
    // Without the limit: the users' pages one after another beside the roles and their members.
    let latency_floor = latency.as_secs_f64()
        * (n.div_ceil(100) as f64)
            .max((groups.div_ceil(100) + groups.div_ceil(concurrency)) as f64);
    let floor_wall = rate_floor.max(latency_floor);
    let table = Table {
        heading: format!(
            "OneLogin: {n} users, {groups} roles of {GROUP_SIZE}, emulator with {} ms per request and one budget of {limit} requests a minute for the account (OneLogin's hourly window scaled down), pages of up to 100 (API v2); orgsync's concurrency {concurrency}; every read is full (no change feed); medians of {} runs (Directory Connector's pattern once).",
            args.latency_ms, args.runs
        ),
        measured: &measured,
        fewest,
        floor_wall,
        concurrency,
        reference,
        reference_requests,
        reference_name: "sequential, API v1 pages of 50",
        poll_name: "poll (a full read)",
    }
    .render();
    table
        + &rate_line(
            &measured,
            args.runs,
            reference_throttled,
            "where it stops and keeps what it read so far",
            &format!("the budget allows the fewest requests in {rate_floor:.1} s"),
            rate_floor,
        )
        + "\nDirectory Connector reads API v1 (users in pages of 50 with their `role_id`, no member listings): fewer requests when there are many roles, but one after another.\n"
}

/// Directory Connector's request pattern for OneLogin (`directory-connector.md` §3.5): a v2
/// token, then API v1 with `bearer:`: users, then roles, following `pagination.next_link` one
/// page after another (role membership comes from the users' `role_id`). Returns the wall time,
/// the requests and the 429s it met (it keeps what it has at the first; here it waits for the
/// reset and carries on so that the read completes).
async fn onelogin_reference_pattern(onelogin: &OneLoginServer) -> (f64, usize, usize) {
    use base64::Engine as _;
    let base = onelogin.base_url();
    let options = onelogin.options();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let started = Instant::now();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", options.client_id, options.client_secret));
    let token = json_of(
        http.post(format!("{base}/auth/oauth2/v2/token"))
            .header("Authorization", format!("Basic {basic}"))
            .header("Content-Type", "application/json; charset=utf-8")
            .body(r#"{"grant_type":"client_credentials"}"#),
    )
    .await["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let (mut requests, mut throttled) = (1, 0);
    for first in [format!("{base}/api/1/users"), format!("{base}/api/1/roles")] {
        let mut url = Some(first);
        while let Some(next) = url {
            requests += 1;
            let answer = http
                .get(&next)
                .header("Authorization", format!("bearer:{token}"))
                .header("Accept", "application/json")
                .send()
                .await
                .expect("an answer");
            if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                throttled += 1;
                let reset: u64 = answer
                    .headers()
                    .get("x-ratelimit-reset")
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(reset)).await;
                url = Some(next);
                continue;
            }
            let page: serde_json::Value = answer.json().await.expect("a v1 envelope");
            url = page["pagination"]["next_link"].as_str().map(str::to_string);
        }
    }
    (started.elapsed().as_secs_f64(), requests, throttled)
}
