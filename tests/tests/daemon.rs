//! End to end through the real `orgsyncd`: a private slapd, the emulated organization server,
//! and the daemon's control API on loopback. Assertions are on what an admin, the CLI or the tray
//! would see: HTTP statuses and error codes, the status and history, the events, the files in the
//! data directory, the exit code, and the organization's resulting members and groups.
//!
//! Runs are made slow enough to interrupt by having the organization server answer the import
//! with `429 Retry-After: N` once; orgsync then waits N seconds before it retries.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use orgsync_proto::api::{
    DaemonStatus, ErrorBody, ErrorCode, Event, RunKind, RunOutcome, RunRecord, RunTrigger,
    SyncDone, paths,
};
use orgsync_proto::client::{Client, ClientError};
use orgsync_proto::{SyncOutcome, SyncReport};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::cli::Installation;
use testkit::daemon::{self, Daemon, Stopped};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ---------------------------------------------------------------------------------------------
// Fixtures

const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// alice, bob, carol, dave with mail; engineering = {alice, bob}, sales = {carol, dave}.
fn seed(slapd: &Slapd) {
    testkit::fixture::seed_people(slapd, &PEOPLE);
    let l = slapd.ldif();
    slapd.add_ldif(&l.group_of_names("sales", &[&l.person_dn("carol"), &l.person_dn("dave")]));
}

fn directory() -> (Slapd, Installation) {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..SlapdOptions::default()
    });
    seed(&slapd);
    let inst = Installation::new();
    daemon::prepare_quiet_daemon(&inst);
    inst.use_slapd(&slapd);
    (slapd, inst)
}

async fn org() -> OrgServer {
    OrgServer::start(OrgServerOptions::default()).await
}

/// A seeded slapd, an organization server and an installation using both and logged in, with
/// the daemon's port left to the kernel. Polling stays at the default 5 minutes, so nothing runs
/// unless the test asks.
async fn setup() -> (Slapd, OrgServer, Installation) {
    let (slapd, inst) = directory();
    let server = org().await;
    login(&inst, &server);
    (slapd, server, inst)
}

fn login(inst: &Installation, server: &OrgServer) {
    inst.login_to(server);
}

fn email(uid: &str) -> String {
    format!("{uid}@example.org")
}

fn emails_of(uids: &[&str]) -> BTreeSet<String> {
    uids.iter().map(|uid| email(uid)).collect()
}

/// How many imports the organization server answered with `status`.
fn imports_answered(server: &OrgServer, status: u16) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/organization/import") && r.status == status)
        .count()
}

/// Makes the next import wait `seconds` (a 429 with `Retry-After`, then the retry succeeds).
fn slow_next_import(server: &OrgServer, seconds: u64) {
    server.fail_next("/organization/import", 429, Some(seconds), 1);
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls `probe` every 100 ms until it returns `Ok`, for at most `timeout`; panics with the last
/// `Err` and the daemon's log otherwise.
async fn eventually<T, F>(
    what: &str,
    timeout: Duration,
    daemon: &Daemon,
    mut probe: impl FnMut() -> F,
) -> T
where
    F: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => panic!(
                "{what}: not within {timeout:?}; last seen: {last}\n{}",
                daemon.log_tail(30)
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the daemon's status satisfies `ok`.
async fn status_until(
    daemon: &Daemon,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&DaemonStatus) -> bool,
) -> DaemonStatus {
    let client = daemon.client();
    eventually(what, timeout, daemon, || async {
        let status = client.status().await.map_err(|e| e.to_string())?;
        if ok(&status) {
            Ok(status)
        } else {
            Err(format!("{status:#?}"))
        }
    })
    .await
}

/// Waits until the finished runs of the history (newest first) satisfy `ok`.
async fn history_until(
    daemon: &Daemon,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&[RunRecord]) -> bool,
) -> Vec<RunRecord> {
    let client = daemon.client();
    eventually(what, timeout, daemon, || async {
        // The finished runs: the history also shows the one in progress, as `running`.
        let mut runs = client.history(100).await.map_err(|e| e.to_string())?.runs;
        runs.retain(|r| r.outcome != RunOutcome::Running);
        if ok(&runs) {
            Ok(runs)
        } else {
            Err(format!("{runs:#?}"))
        }
    })
    .await
}

/// Waits until the organization satisfies `ok` (the daemon works on its own meanwhile).
async fn org_until(
    daemon: &Daemon,
    server: &OrgServer,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&OrgServer) -> bool,
) {
    eventually(what, timeout, daemon, || async {
        if ok(server) {
            Ok(())
        } else {
            Err(format!("members {:?}", server.managed_emails()))
        }
    })
    .await
}

/// The finished record of run `id`, once it is in the history.
async fn finished_run(daemon: &Daemon, id: u64, timeout: Duration) -> RunRecord {
    let finished = |r: &RunRecord| r.id == id && r.outcome != RunOutcome::Running;
    let runs = history_until(daemon, &format!("run {id} finishes"), timeout, |runs| {
        runs.iter().any(finished)
    })
    .await;
    runs.into_iter().find(finished).expect("found above")
}

/// SIGTERM without blocking the test's runtime (the org server runs on it).
fn terminate(daemon: &mut Daemon, grace: Duration) -> Stopped {
    tokio::task::block_in_place(|| daemon.terminate(grace))
}

/// `Client::sync` (with `wait`), which must succeed.
async fn sync_now(daemon: &Daemon) -> SyncDone {
    daemon
        .client()
        .sync(false)
        .await
        .unwrap_or_else(|e| panic!("sync through the API failed: {e}\n{}", daemon.log_tail(30)))
}

fn api_error(result: Result<impl std::fmt::Debug, ClientError>) -> (u16, ErrorBody) {
    match result {
        Err(ClientError::Api { status, body }) => (status, body),
        other => panic!("expected an API error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP, for headers and status codes the typed client hides

struct Http {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Http {
    fn new(daemon: &Daemon) -> Http {
        Http {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            url: daemon.url().to_string(),
            token: daemon.token().to_string(),
        }
    }

    /// Sends a request with `token` (None: no Authorization header) and extra headers; returns
    /// the status and the body (JSON if it parses, else a JSON string).
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.send(Method::GET, path, Some(&self.token), headers, None)
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::PUT, path, Some(&self.token), &[], Some(body))
            .await
    }
}

/// Asserts an error answer: the status and the stable `code` of its `ErrorBody`.
#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(
        answer.0, status,
        "expected HTTP {status} {code}, got {answer:?}"
    );
    assert_eq!(answer.1["code"], code, "{answer:?}");
    assert!(
        answer.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error says why: {answer:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events, read off the wire

struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Subscribes to `/v1/events`; events from the moment this returns are delivered.
    async fn open(daemon: &Daemon) -> Events {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .get(format!("{}{}", daemon.url(), paths::EVENTS))
            .bearer_auth(daemon.token())
            .send()
            .await
            .expect("GET /v1/events");
        assert_eq!(response.status().as_u16(), 200, "GET /v1/events");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "the event stream is SSE, got {content_type:?}"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or None if the stream ends or nothing
    /// comes within `timeout`. Checks that the SSE event name is the event's `type`.
    async fn next(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.trim_start().to_string());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let event: Event = serde_json::from_str(&data.join("\n"))
                    .unwrap_or_else(|e| panic!("not an Event ({e}): {block:?}"));
                assert_eq!(
                    name.as_deref(),
                    Some(event.name()),
                    "the SSE event name is the event type: {block:?}"
                );
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                _ => return None,
            }
        }
    }

    /// Events until `last` matches one (inclusive); panics after `timeout` with what came.
    async fn until(&mut self, timeout: Duration, last: impl Fn(&Event) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(event) => {
                    let done = last(&event);
                    seen.push(event);
                    if done {
                        return seen;
                    }
                }
                None => panic!("the awaited event did not come within {timeout:?}; got {seen:#?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy in front of slapd that can play "the directory is down" (connections refused)

struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (up, mut up_rx) = watch::channel(true);
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                match &listener {
                    Some(l) => {
                        tokio::select! {
                            accepted = l.accept() => {
                                if let Ok((mut client, _)) = accepted {
                                    tokio::spawn(async move {
                                        if let Ok(mut server) = TcpStream::connect(target).await {
                                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                                        }
                                    });
                                }
                            }
                            changed = up_rx.changed() => {
                                if changed.is_err() {
                                    return;
                                }
                                if !*up_rx.borrow_and_update() {
                                    listener = None; // closed: connections are refused
                                }
                            }
                        }
                    }
                    None => {
                        if up_rx.changed().await.is_err() {
                            return;
                        }
                        if *up_rx.borrow_and_update() {
                            listener = Some(
                                TcpListener::bind(("127.0.0.1", port))
                                    .await
                                    .expect("rebind the proxy's port"),
                            );
                        }
                    }
                }
            }
        });
        Proxy { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Authentication and local-only headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requires_the_token_and_refuses_foreign_hosts_and_origins() {
    let inst = Installation::new();
    daemon::prepare_quiet_daemon(&inst);
    let daemon = Daemon::start(&inst);

    // What the daemon announces, and the token file a local client reads.
    let info = daemon.info().clone();
    assert_eq!(info.pid, daemon.pid());
    assert_ne!(info.port, 0, "daemon.port = 0 picks a free port");
    assert_eq!(info.url, format!("http://127.0.0.1:{}", info.port));
    let token_file = inst.data_dir().join("api-token");
    let token = std::fs::read_to_string(&token_file).expect("api-token");
    assert!(
        token.trim().len() == 64 && token.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "the token is 256 bits in hex: {token:?}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "api-token must be private to the user");

    let http = Http::new(&daemon);
    let port = daemon.port();

    // No token, a wrong one, a malformed header: 401 with the stable code; the token file is
    // named so the user knows where to find it.
    let none = http.send(Method::GET, paths::STATUS, None, &[], None).await;
    assert_error(&none, 401, "unauthorized");
    assert!(
        none.1["message"]
            .as_str()
            .unwrap()
            .contains(&token_file.display().to_string()),
        "the 401 names the token file: {none:?}"
    );
    let wrong = "0".repeat(64);
    assert_error(
        &http
            .send(Method::GET, paths::STATUS, Some(&wrong), &[], None)
            .await,
        401,
        "unauthorized",
    );
    let truncated = &daemon.token()[..63];
    assert_error(
        &http
            .send(Method::GET, paths::STATUS, Some(truncated), &[], None)
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &http
            .send(
                Method::GET,
                paths::STATUS,
                None,
                &[("authorization", &format!("Basic {}", daemon.token()))],
                None,
            )
            .await,
        401,
        "unauthorized",
    );
    // Every endpoint is guarded, also actions and unknown paths.
    assert_error(
        &http
            .send(Method::POST, paths::SYNC, None, &[], Some(json!({})))
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &http
            .send(Method::POST, paths::POLLING_STOP, Some(&wrong), &[], None)
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &http.send(Method::GET, "/v1/nope", None, &[], None).await,
        401,
        "unauthorized",
    );

    // The right token.
    let (status, body) = http.get(paths::STATUS, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pid"], daemon.pid());
    assert_eq!(body["polling"], true, "a new installation polls");
    assert_eq!(body["version"], info.version.as_str());

    // Other error answers keep the same shape.
    assert_error(
        &http
            .send(
                Method::POST,
                paths::SYNC,
                Some(daemon.token()),
                &[("content-type", "application/json")],
                Some(json!("{")),
            )
            .await,
        400,
        "bad_request",
    );
    assert_error(&http.get("/v1/nope", &[]).await, 404, "not_found");

    // 127.0.0.1 also answers on ::1 (when the machine has IPv6 loopback), so `localhost`
    // works whichever way it resolves.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = Http {
            url: format!("http://[::1]:{port}"),
            ..Http::new(&daemon)
        };
        let answer = v6.get(paths::STATUS, &[]).await;
        assert_eq!(
            answer.0, 200,
            "GET http://[::1]:{port}/v1/status: {answer:?}"
        );
    }

    // A web page reaching the port through DNS rebinding sends its own Host; a cross-site
    // request sends its Origin. Both are refused even with the right token.
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("192.168.1.10:{port}"),
    ] {
        assert_error(
            &http.get(paths::STATUS, &[("host", &host)]).await,
            403,
            "forbidden",
        );
    }
    for origin in [
        "http://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        "null".to_string(),
        format!("http://127.0.0.1.evil.example:{port}"),
    ] {
        assert_error(
            &http.get(paths::STATUS, &[("origin", &origin)]).await,
            403,
            "forbidden",
        );
    }
    // A foreign origin may not even trigger an action.
    let csrf = http
        .send(
            Method::POST,
            paths::POLLING_STOP,
            Some(daemon.token()),
            &[("origin", "http://evil.example")],
            None,
        )
        .await;
    assert_error(&csrf, 403, "forbidden");
    assert!(
        daemon.client().status().await.unwrap().polling,
        "the refused request changed nothing"
    );

    // Local names and origins are fine.
    for (name, value) in [
        ("host", format!("localhost:{port}")),
        ("host", format!("127.0.0.1:{port}")),
        ("origin", format!("http://127.0.0.1:{port}")),
        ("origin", format!("http://localhost:{port}")),
    ] {
        let answer = http.get(paths::STATUS, &[(name, &value)]).await;
        assert_eq!(answer.0, 200, "{name}: {value} is local: {answer:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Refused starts

#[test]
fn a_non_loopback_address_is_refused_with_exit_code_2() {
    for address in ["0.0.0.0", "::", "192.168.1.10"] {
        let inst = Installation::new();
        // `orgsync config set` refuses these, so write the file by hand as an admin might.
        std::fs::write(
            inst.config_file(),
            format!("[daemon]\naddress = \"{address}\"\nport = 0\n"),
        )
        .unwrap();
        let run = Daemon::run_to_exit(&inst, Duration::from_secs(20));
        assert_eq!(
            run.code, 2,
            "{address}: exit code 2 for a bad configuration\n{run:?}"
        );
        assert!(
            run.stderr.contains("daemon.address") && run.stderr.contains("loopback"),
            "{address}: says which key is wrong and why\n{}",
            run.stderr
        );
        assert!(
            daemon::read_info(&inst.data_dir()).is_none(),
            "{address}: a refused daemon must not announce itself"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_for_the_same_installation_is_refused() {
    let inst = Installation::new();
    daemon::prepare_quiet_daemon(&inst);
    let daemon = Daemon::start(&inst);

    let second = Daemon::run_to_exit(&inst, Duration::from_secs(20));
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second.stderr.contains("in use"),
        "says the state is in use: {}",
        second.stderr
    );
    // The first one keeps running and keeps its announcement.
    let status = daemon
        .client()
        .status()
        .await
        .expect("the first daemon answers");
    assert_eq!(status.pid, daemon.pid());
    assert_eq!(
        daemon::read_info(&inst.data_dir()).map(|i| i.pid),
        Some(daemon.pid()),
        "daemon.json still names the first daemon"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Polling on/off survives a restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_start_polling_persist_across_restarts() {
    // No directory: every scheduled run fails at once, which is enough to see whether the
    // daemon polls. A run every second.
    let inst = Installation::new();
    daemon::prepare_quiet_daemon(&inst);
    inst.set("sync.schedule", "* * * * * *");
    let mut daemon = Daemon::start(&inst);
    let client = daemon.client();
    let token = daemon.token().to_string();

    let mut events = Events::open(&daemon).await;
    assert!(!client.stop_polling().await.unwrap().polling);
    let seen = events
        .until(Duration::from_secs(5), |e| {
            matches!(e, Event::PollingChanged { .. })
        })
        .await;
    assert_eq!(seen.last(), Some(&Event::PollingChanged { polling: false }));
    let stopped = status_until(
        &daemon,
        "no run in progress",
        Duration::from_secs(10),
        |s| s.current_run.is_none(),
    )
    .await;
    assert!(!stopped.polling);
    assert_eq!(stopped.next_run_at, None, "no next run while stopped");
    let runs_before = client.history(100).await.unwrap().runs.len();
    drop(events);
    let stop = terminate(&mut daemon, Duration::from_secs(35));
    assert_eq!(stop.code, Some(0), "{}", daemon.log_tail(20));
    assert!(
        daemon::read_info(&inst.data_dir()).is_none(),
        "a clean stop removes daemon.json"
    );

    // Restarted: still stopped, and it really does not poll.
    let mut daemon = Daemon::start(&inst);
    assert_eq!(daemon.token(), token, "the token survives restarts");
    let status = daemon.client().status().await.unwrap();
    assert!(!status.polling, "polling stays off after a restart");
    assert_eq!(status.next_run_at, None);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs = daemon.client().history(100).await.unwrap().runs;
    assert_eq!(
        runs.len(),
        runs_before,
        "no scheduled run while polling is off: {runs:#?}"
    );

    assert!(daemon.client().start_polling().await.unwrap().polling);
    // Ctrl-C stops it as cleanly as SIGTERM.
    daemon.send_signal("INT");
    let stop = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(35)))
        .expect("orgsyncd stops on SIGINT");
    assert_eq!(stop.code, Some(0), "{}", daemon.log_tail(20));
    assert!(
        daemon::read_info(&inst.data_dir()).is_none(),
        "a clean stop removes daemon.json"
    );

    // Restarted: polling again, and scheduled runs happen.
    let daemon = Daemon::start(&inst);
    let status = daemon.client().status().await.unwrap();
    assert!(status.polling, "polling stays on after a restart");
    assert!(status.next_run_at.is_some(), "{status:#?}");
    let runs = history_until(
        &daemon,
        "a scheduled run after polling was started",
        Duration::from_secs(10),
        |runs| runs.len() > runs_before,
    )
    .await;
    assert_eq!(runs[0].trigger, RunTrigger::Schedule, "{runs:#?}");
}

// ---------------------------------------------------------------------------------------------
// 4. The schedule syncs on its own

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_schedule_syncs_the_organization_without_being_asked() {
    let (slapd, server, inst) = setup().await;
    inst.set("sync.schedule", "*/2 * * * * *");
    let daemon = Daemon::start(&inst);

    let status = daemon.client().status().await.unwrap();
    assert!(status.polling);
    assert_eq!(status.schedule, "cron */2 * * * * * (UTC)");
    assert!(status.next_run_at.is_some(), "{status:#?}");

    // Nobody calls sync: the schedule does.
    org_until(
        &daemon,
        &server,
        "the directory's people appear in the organization",
        Duration::from_secs(15),
        |s| s.managed_emails() == emails_of(&PEOPLE),
    )
    .await;
    assert_eq!(
        server.group_emails("engineering"),
        emails_of(&["alice", "bob"])
    );
    assert_eq!(server.group_emails("sales"), emails_of(&["carol", "dave"]));

    // Later ticks find nothing new and send nothing.
    let runs = history_until(
        &daemon,
        "two more scheduled runs",
        Duration::from_secs(15),
        |runs| runs.len() >= 3,
    )
    .await;
    for run in &runs {
        assert_eq!(run.trigger, RunTrigger::Schedule, "{run:#?}");
        assert_eq!(run.kind, RunKind::Sync, "{run:#?}");
    }
    let synced: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.outcome == RunOutcome::Synced)
        .collect();
    assert_eq!(synced.len(), 1, "one run sent the changes: {runs:#?}");
    assert_eq!(synced[0].summary.invited, 4);
    assert_eq!(synced[0].users_read, 4);
    assert!(
        runs.iter()
            .all(|r| matches!(r.outcome, RunOutcome::Synced | RunOutcome::Unchanged)),
        "{runs:#?}"
    );
    assert_eq!(
        server.import_count(),
        1,
        "an unchanged directory sends nothing"
    );

    // A new hire shows up on the next tick.
    slapd.add_ldif(
        &slapd
            .ldif()
            .person("frank", "Frank", Some("frank@example.org")),
    );
    org_until(
        &daemon,
        &server,
        "frank is invited by the schedule",
        Duration::from_secs(15),
        |s| s.managed_emails().contains("frank@example.org"),
    )
    .await;
    let runs = history_until(
        &daemon,
        "frank's run is recorded",
        Duration::from_secs(5),
        |runs| {
            runs.iter()
                .any(|r| r.summary.invited_sample == ["frank@example.org"])
        },
    )
    .await;
    let frank = runs
        .iter()
        .find(|r| r.summary.invited_sample == ["frank@example.org"])
        .unwrap();
    assert_eq!(frank.trigger, RunTrigger::Schedule);
    assert_eq!(frank.outcome, RunOutcome::Synced);

    let status = daemon.client().status().await.unwrap();
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(
        status.last_run.as_ref().map(|r| r.trigger),
        Some(RunTrigger::Schedule)
    );
    assert!(status.installation.last_user_sync.is_some(), "{status:#?}");
}

// ---------------------------------------------------------------------------------------------
// 5. One run at a time

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_during_a_run_gets_409_with_the_running_id_and_ticks_are_skipped() {
    let (_slapd, server, inst) = setup().await;
    inst.set("sync.schedule", "* * * * * *");
    let daemon = Daemon::start(&inst);
    let client = daemon.client();
    // Quiet while the run starts, so the manual run gets the slot.
    client.stop_polling().await.unwrap();
    status_until(
        &daemon,
        "no run in progress",
        Duration::from_secs(10),
        |s| s.current_run.is_none(),
    )
    .await;

    slow_next_import(&server, 3);
    let started = client.start_sync(false).await.expect("start a sync");
    let id = started.run_id;

    // Sync Now again without `wait` (the tray's button): 409 with the running id.
    let (status, body) = api_error(client.start_sync(false).await);
    assert_eq!(
        (status, body.code),
        (409, ErrorCode::RunInProgress),
        "{body:?}"
    );
    assert_eq!(body.run_id, Some(id), "{body:?}");
    // A waited-for sync and a dry run (what `orgsync sync` and `orgsync test` send) wait for
    // the run in progress, then run.
    let queued_sync = tokio::spawn({
        let client = client.clone();
        async move { client.sync(false).await }
    });
    let queued_test = tokio::spawn({
        let client = client.clone();
        async move { client.test().await }
    });

    let status = client.status().await.unwrap();
    let current = status
        .current_run
        .expect("the status shows the run in progress");
    assert_eq!(current.id, id);
    assert_eq!(current.trigger, RunTrigger::Manual);

    // A scheduled tick during the run is skipped and recorded as such.
    client.start_polling().await.unwrap();
    let runs = history_until(
        &daemon,
        "a skipped scheduled run",
        Duration::from_secs(10),
        |runs| runs.iter().any(|r| r.outcome == RunOutcome::Skipped),
    )
    .await;
    let skipped = runs
        .iter()
        .find(|r| r.outcome == RunOutcome::Skipped)
        .unwrap();
    assert_eq!(skipped.trigger, RunTrigger::Schedule);
    assert!(
        skipped
            .error
            .as_deref()
            .is_some_and(|e| e.contains(&format!("run {id} "))),
        "the skip names the run in progress: {skipped:#?}"
    );
    client.stop_polling().await.unwrap();

    // The run itself completes normally, and the queued ones run after it.
    let record = finished_run(&daemon, id, Duration::from_secs(20)).await;
    assert_eq!(record.outcome, RunOutcome::Synced, "{record:#?}");
    assert_eq!(record.trigger, RunTrigger::Manual);
    assert_eq!(server.managed_emails(), emails_of(&PEOPLE));
    let queued_sync = queued_sync.await.unwrap().expect("the queued sync ran");
    assert!(queued_sync.run_id > id, "{queued_sync:?}");
    assert_eq!(queued_sync.report.outcome, SyncOutcome::Unchanged);
    let queued_test = queued_test.await.unwrap().expect("the queued test ran");
    assert!(queued_test.run_id > id);
    assert_eq!(server.import_count(), 1);

    // And the slot is free again.
    status_until(
        &daemon,
        "no run in progress",
        Duration::from_secs(10),
        |s| s.current_run.is_none(),
    )
    .await;
    let done = sync_now(&daemon).await;
    assert_eq!(done.report.outcome, SyncOutcome::Unchanged);
    assert!(done.run_id > id);
}

// ---------------------------------------------------------------------------------------------
// 6. Events

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deliver_run_started_then_finished_for_an_api_sync() {
    let (_slapd, server, inst) = setup().await;
    let daemon = Daemon::start(&inst);
    let mut events = Events::open(&daemon).await;

    let id = daemon.client().start_sync(false).await.unwrap().run_id;
    let seen = events
        .until(Duration::from_secs(20), |e| match e {
            Event::RunFinished { record } | Event::RunFailed { record } => record.id == id,
            _ => false,
        })
        .await;
    let of_run: Vec<&Event> = seen
        .iter()
        .filter(|e| match e {
            Event::RunStarted { run } | Event::RunProgress { run } => run.id == id,
            Event::RunFinished { record } | Event::RunFailed { record } => record.id == id,
            _ => false,
        })
        .collect();
    match of_run.first() {
        Some(Event::RunStarted { run }) => {
            assert_eq!(run.kind, RunKind::Sync);
            assert_eq!(run.trigger, RunTrigger::Manual);
        }
        other => panic!("the first event of run {id} is runStarted, got {other:?}\n{seen:#?}"),
    }
    match of_run.last() {
        Some(Event::RunFinished { record }) => {
            assert_eq!(record.outcome, RunOutcome::Synced, "{record:#?}");
            assert_eq!(record.summary.invited, 4);
        }
        other => panic!("the last event of run {id} is runFinished, got {other:?}\n{seen:#?}"),
    }
    assert!(
        of_run[1..of_run.len() - 1]
            .iter()
            .all(|e| matches!(e, Event::RunProgress { .. })),
        "only progress between start and finish: {seen:#?}"
    );
    assert_eq!(server.managed_emails(), emails_of(&PEOPLE));

    // A failed run ends with runFailed, in order too.
    server.fail_next("/organization/import", 400, None, 1);
    // Forget the last request, so the next sync sends it again (and meets the 400).
    daemon
        .client()
        .clear_cache()
        .await
        .expect("clear the cache");
    let id = daemon.client().start_sync(false).await.unwrap().run_id;
    let seen = events
        .until(Duration::from_secs(20), |e| match e {
            Event::RunFinished { record } | Event::RunFailed { record } => record.id == id,
            _ => false,
        })
        .await;
    let names: Vec<&str> = seen
        .iter()
        .filter(|e| match e {
            Event::RunStarted { run } => run.id == id,
            Event::RunFinished { record } | Event::RunFailed { record } => record.id == id,
            _ => false,
        })
        .map(Event::name)
        .collect();
    assert_eq!(names, ["runStarted", "runFailed"], "{seen:#?}");
}

// ---------------------------------------------------------------------------------------------
// 7. Config updates

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_updates_are_validated_and_applied_without_a_restart() {
    let (_slapd, _server, inst) = setup().await;
    let daemon = Daemon::start(&inst);
    let client = daemon.client();
    let http = Http::new(&daemon);
    let file_before = std::fs::read_to_string(inst.config_file()).unwrap();
    let view_before = client.config().await.unwrap();
    let mut events = Events::open(&daemon).await;

    // Bad values are refused with the key named, and nothing changes: not the file, not the
    // effective config, not the other (valid) keys of the same update.
    for (update, key) in [
        (
            json!({"set": {"sync.interval_minutes": "0"}}),
            "sync.interval_minutes",
        ),
        (
            json!({"set": {"ldap.port": "1389", "sync.schedule": "every tuesday"}}),
            "sync.schedule",
        ),
        (json!({"set": {"ldap.port": "not a port"}}), "ldap.port"),
        (
            json!({"set": {"daemon.address": "0.0.0.0"}}),
            "daemon.address",
        ),
        (
            json!({"set": {"ldap.no_such_key": "x"}}),
            "ldap.no_such_key",
        ),
        (
            json!({"set": {"ldap.bind_password": "hunter2"}}),
            "ldap.bind_password",
        ),
    ] {
        let answer = http.put(paths::CONFIG, update.clone()).await;
        assert_error(&answer, 422, "invalid_config");
        assert!(
            answer.1["message"].as_str().unwrap().contains(key),
            "the refusal names {key}: {answer:?}"
        );
        assert_eq!(
            std::fs::read_to_string(inst.config_file()).unwrap(),
            file_before,
            "a refused update leaves the file alone: {update}"
        );
        assert_eq!(
            client.config().await.unwrap(),
            view_before,
            "a refused update leaves the effective config alone: {update}"
        );
    }
    assert!(
        !std::fs::read_to_string(inst.config_file())
            .unwrap()
            .contains("hunter2"),
        "a secret never lands in the file"
    );
    assert_eq!(
        events.next(Duration::from_millis(300)).await,
        None,
        "refused updates announce no change"
    );

    // A good update: the file, the view and the next run use it, and subscribers hear of it.
    let view = client
        .update_config(&orgsync_proto::api::ConfigUpdate {
            set: [("ldap.user_filter".to_string(), "(uid=alice)".to_string())].into(),
            unset: Vec::new(),
        })
        .await
        .expect("a valid update");
    assert_eq!(
        view.values["ldap"]["user_filter"], "(uid=alice)",
        "{view:#?}"
    );
    assert!(
        std::fs::read_to_string(inst.config_file())
            .unwrap()
            .contains("user_filter = \"(uid=alice)\""),
        "the file holds the new value"
    );
    events
        .until(Duration::from_secs(5), |e| {
            matches!(e, Event::ConfigChanged)
        })
        .await;
    let test = client.test().await.expect("a dry run");
    let enabled: Vec<&str> = test
        .report
        .users
        .enabled
        .iter()
        .map(|u| u.email.as_str())
        .collect();
    assert_eq!(
        enabled,
        ["alice@example.org"],
        "the next run uses the new filter"
    );

    // The schedule follows at once too.
    client
        .update_config(&orgsync_proto::api::ConfigUpdate {
            set: [("sync.schedule".to_string(), "0 30 3 * * *".to_string())].into(),
            unset: vec!["ldap.user_filter".to_string()],
        })
        .await
        .expect("a valid update");
    let status = status_until(&daemon, "the new schedule", Duration::from_secs(5), |s| {
        s.next_run_at
            .as_deref()
            .is_some_and(|at| at.contains("T03:30:00"))
    })
    .await;
    assert_eq!(status.schedule, "cron 0 30 3 * * * (UTC)");
    let test = client.test().await.expect("a dry run");
    assert_eq!(
        test.report.users.enabled.len(),
        4,
        "the filter is gone again"
    );
}

/// An admin edits the file by hand (README: "so does a hand edit of the file") and shortens the
/// schedule from the default 5 minutes to every second. Nothing else talks to the daemon: the new
/// schedule must take effect by itself, not only after the next 5-minute tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_schedule_takes_effect_without_an_api_call() {
    let (_slapd, server, inst) = setup().await;
    let daemon = Daemon::start(&inst);
    let text = std::fs::read_to_string(inst.config_file()).unwrap();
    assert!(!text.contains("schedule"), "{text}");
    // Give the file a visibly newer modification time than the one the daemon read.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let edited = match text.contains("[sync]\n") {
        true => text.replacen("[sync]\n", "[sync]\nschedule = \"* * * * * *\"\n", 1),
        false => text + "\n[sync]\nschedule = \"* * * * * *\"\n",
    };
    std::fs::write(inst.config_file(), edited).unwrap();
    org_until(
        &daemon,
        &server,
        "the hand-edited schedule syncs the organization (no API call was made)",
        Duration::from_secs(10),
        |s| s.managed_emails() == emails_of(&PEOPLE),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. SIGTERM during a run

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_lets_it_finish_and_exits_0() {
    let (_slapd, server, inst) = setup().await;
    let mut daemon = Daemon::start(&inst);
    let client = daemon.client();

    slow_next_import(&server, 3);
    let id = client.start_sync(false).await.unwrap().run_id;
    eventually(
        "the import is waiting for its retry",
        Duration::from_secs(15),
        &daemon,
        || async {
            (imports_answered(&server, 429) == 1)
                .then_some(())
                .ok_or_else(|| format!("{:?}", server.requests()))
        },
    )
    .await;

    // A follower of the events (the tray) is connected while the daemon stops.
    let mut events = Events::open(&daemon).await;
    let signalled = Instant::now();
    daemon.send_signal("TERM");
    // While it drains, it takes no new runs.
    let refused = eventually(
        "new runs are refused while stopping",
        Duration::from_secs(10),
        &daemon,
        || async {
            match client.start_sync(false).await {
                Err(ClientError::Api { status, body }) if body.code == ErrorCode::ShuttingDown => {
                    Ok((status, body))
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(refused.0, 503, "{refused:?}");

    let stop = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(40)))
        .unwrap_or_else(|| panic!("orgsyncd did not stop within 40 s\n{}", daemon.log_tail(30)));
    let took = signalled.elapsed();
    assert_eq!(
        stop.code,
        Some(0),
        "orgsyncd exits 0 on SIGTERM ({stop:?})\n{}",
        daemon.log_tail(30)
    );
    assert!(
        took < Duration::from_secs(30),
        "it stopped within the 30 s grace period, after the run: {took:?}"
    );
    assert!(
        daemon::read_info(&inst.data_dir()).is_none(),
        "a clean stop removes daemon.json"
    );
    let mut rest = Vec::new();
    while let Some(event) = events.next(Duration::from_secs(5)).await {
        rest.push(event);
    }
    assert!(
        !rest.iter().any(|e| matches!(e, Event::RunStarted { .. })),
        "no run starts while stopping: {rest:#?}"
    );
    assert!(
        rest.iter()
            .any(|e| matches!(e, Event::RunFinished { record } if record.id == id)),
        "followers see the end of the run before the stream closes: {rest:#?}"
    );
    // The run finished: the organization got the import, and the state says so.
    assert_eq!(server.import_count(), 1, "the run in progress completed");
    assert_eq!(server.managed_emails(), emails_of(&PEOPLE));

    let daemon = Daemon::start(&inst);
    let record = finished_run(&daemon, id, Duration::from_secs(5)).await;
    assert_eq!(record.outcome, RunOutcome::Synced, "{record:#?}");
    let done = sync_now(&daemon).await;
    assert_eq!(
        done.report.outcome,
        SyncOutcome::Unchanged,
        "the state recorded the run that finished during the stop"
    );
    assert_eq!(server.import_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// 9. kill -9 during a run

/// Deletes carol (leaving sales) and adds frank to sales.
fn change_directory(slapd: &Slapd) {
    let l = slapd.ldif();
    slapd.add_ldif(&l.person("frank", "FRANK", Some("frank@example.org")));
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\ndn: {}\nchangetype: delete\n\n",
        l.group_dn("sales"),
        l.person_dn("frank"),
        l.person_dn("carol"),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_run_then_restart_ends_with_the_right_organization() {
    let (slapd, server, inst) = setup().await;
    let mut daemon = Daemon::start(&inst);
    let first = sync_now(&daemon).await;
    assert_eq!(first.report.outcome, SyncOutcome::Synced);
    assert_eq!(server.managed_emails(), emails_of(&PEOPLE));

    change_directory(&slapd);
    slow_next_import(&server, 10);
    daemon.client().start_sync(false).await.unwrap();
    eventually(
        "the import is waiting for its retry",
        Duration::from_secs(15),
        &daemon,
        || async {
            (imports_answered(&server, 429) == 1)
                .then_some(())
                .ok_or_else(|| format!("{:?}", server.requests()))
        },
    )
    .await;
    let killed = daemon.kill();
    assert_eq!(killed.signal, Some(9), "{killed:?}");
    assert_eq!(
        server.managed_emails(),
        emails_of(&PEOPLE),
        "the killed run sent nothing"
    );

    // The announcement is stale now; clients must not take it for a running daemon.
    assert!(daemon::read_info(&inst.data_dir()).is_some());
    assert!(
        Client::discover(&inst.data_dir()).await.unwrap().is_none(),
        "a stale daemon.json is not a running daemon"
    );

    let daemon = Daemon::start(&inst);
    let done = sync_now(&daemon).await;
    assert_eq!(
        done.report.outcome,
        SyncOutcome::Synced,
        "the interrupted changes are sent again: {:#?}",
        done.report
    );
    let SyncReport { diff, .. } = &done.report;
    assert_eq!(
        diff.invite
            .iter()
            .map(|m| m.email.as_str())
            .collect::<Vec<_>>(),
        ["frank@example.org"]
    );
    assert_eq!(
        diff.remove
            .iter()
            .map(|m| m.email.as_str())
            .collect::<Vec<_>>(),
        ["carol@example.org"]
    );
    assert_eq!(
        server.managed_emails(),
        emails_of(&["alice", "bob", "dave", "frank"]),
        "the organization matches the directory"
    );
    assert_eq!(server.group_emails("sales"), emails_of(&["dave", "frank"]));
    assert_eq!(
        server.group_emails("engineering"),
        emails_of(&["alice", "bob"])
    );
    let again = sync_now(&daemon).await;
    assert_eq!(again.report.outcome, SyncOutcome::Unchanged);
}

/// A run interrupted by a crash had an id (announced in `runStarted` and in the 202 answer);
/// after the restart that id must not be handed to another run, or a client following runs by
/// id (the tray, a script polling the history) mixes the two up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ids_are_not_reused_after_a_crash() {
    let (_slapd, server, inst) = setup().await;
    let mut daemon = Daemon::start(&inst);
    slow_next_import(&server, 10);
    let interrupted = daemon.client().start_sync(false).await.unwrap().run_id;
    eventually(
        "the import is waiting for its retry",
        Duration::from_secs(15),
        &daemon,
        || async {
            (imports_answered(&server, 429) == 1)
                .then_some(())
                .ok_or_else(|| format!("{:?}", server.requests()))
        },
    )
    .await;
    daemon.kill();

    let daemon = Daemon::start(&inst);
    let done = sync_now(&daemon).await;
    assert_ne!(
        done.run_id,
        interrupted,
        "run {interrupted} was announced before the crash; the next run got the same id. \
         History after restart: {:#?}",
        daemon.client().history(10).await.unwrap().runs
    );
}

// ---------------------------------------------------------------------------------------------
// 10. A failing directory does not stop polling

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_directory_is_reported_and_polling_recovers() {
    let (slapd, server, inst) = setup().await;
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], slapd.port()))).await;
    inst.set("ldap.port", &proxy.port.to_string());
    inst.set("sync.schedule", "* * * * * *");
    let daemon = Daemon::start(&inst);

    org_until(
        &daemon,
        &server,
        "the first scheduled sync",
        Duration::from_secs(15),
        |s| s.managed_emails() == emails_of(&PEOPLE),
    )
    .await;

    // The directory goes away: runs fail, the status says why, polling goes on.
    proxy.set_up(false);
    let status = status_until(
        &daemon,
        "two scheduled runs failed in a row",
        Duration::from_secs(20),
        |s| s.consecutive_failures >= 2,
    )
    .await;
    assert!(status.polling, "a failing directory does not stop polling");
    assert!(status.next_run_at.is_some(), "{status:#?}");
    let last = status.last_run.as_ref().expect("a last run");
    assert_eq!(last.outcome, RunOutcome::Failed, "{last:#?}");
    assert_eq!(last.trigger, RunTrigger::Schedule);
    let error = last.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("cannot connect") && error.contains(&proxy.port.to_string()),
        "the status says why: {error:?}"
    );
    assert_eq!(
        server.managed_emails(),
        emails_of(&PEOPLE),
        "a failed read removes nobody"
    );

    // Back: the next tick syncs what changed meanwhile and the failure count resets.
    slapd.add_ldif(
        &slapd
            .ldif()
            .person("frank", "Frank", Some("frank@example.org")),
    );
    proxy.set_up(true);
    org_until(
        &daemon,
        &server,
        "frank is invited once the directory is back",
        Duration::from_secs(30),
        |s| s.managed_emails().contains("frank@example.org"),
    )
    .await;
    let status = status_until(&daemon, "the failures reset", Duration::from_secs(5), |s| {
        s.consecutive_failures == 0
    })
    .await;
    assert!(status.polling);
}

// ---------------------------------------------------------------------------------------------
// 11. The API describes itself

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_the_endpoints() {
    let inst = Installation::new();
    daemon::prepare_quiet_daemon(&inst);
    let daemon = Daemon::start(&inst);
    let http = Http::new(&daemon);

    assert_error(
        &http
            .send(Method::GET, paths::OPENAPI, None, &[], None)
            .await,
        401,
        "unauthorized",
    );
    let (status, doc) = http.get(paths::OPENAPI, &[]).await;
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], daemon.info().version.as_str());
    let listed: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        paths::STATUS,
        paths::TEST,
        paths::SYNC,
        paths::POLLING_START,
        paths::POLLING_STOP,
        paths::CLEAR_CACHE,
        paths::HISTORY,
        paths::EVENTS,
        paths::CONFIG,
        paths::LOGIN,
        paths::LOGOUT,
        paths::OPENAPI,
    ] {
        assert!(
            listed.contains(path),
            "{path} is documented; listed: {listed:?}"
        );
    }
    assert!(
        doc["paths"][paths::CONFIG]["put"].is_object(),
        "PUT /v1/config"
    );
    assert!(
        doc["components"]["schemas"]["ErrorBody"].is_object(),
        "the error body is described"
    );
}
