//! The installation under faults and hand edits, through the real `orgsync` and `orgsyncd`:
//! a damaged or emptied state database, a data directory deleted under the daemon, commands
//! that only look. What an admin would check: the exit code, one clear message saying what to
//! do, and that nothing was silently started afresh.

use std::path::Path;
use std::time::Duration;

use testkit::cli::Installation;
use testkit::daemon::Daemon;
use testkit::fixture;

/// Flips bytes in the first pages after redb's header: the shape of a disk error or a stray
/// write. (Before orgsync checked the file, this one made redb panic: exit 101.)
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read the state database");
    for start in [4096, 16384] {
        for byte in bytes.iter_mut().skip(start).take(64) {
            *byte ^= 0x5a;
        }
    }
    std::fs::write(path, bytes).expect("write the damaged copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_empty_state_database_stops_every_command_with_what_to_do() {
    // A command that only looks creates nothing.
    let fresh = Installation::new();
    let status = fresh.run(&["status", "--json"]).ok().json();
    assert_eq!(status["syncedMembers"], 0);
    assert_eq!(fresh.run(&["last-sync", "users"]).ok().stdout, "");
    let created = fresh.data_dir().join("state.redb");
    assert!(!created.exists(), "status created {}", created.display());

    let (_slapd, server, inst) = fixture::company(&["alice", "bob"]).await;
    let state = inst.data_dir().join("state.redb");

    inst.run(&["sync"]).ok();
    assert_eq!(server.managed_emails().len(), 2);
    let good = std::fs::read(&state).unwrap();

    for (what, spoil) in [
        ("damaged", damage as fn(&Path)),
        ("empty", |path: &Path| std::fs::write(path, b"").unwrap()),
    ] {
        spoil(&state);
        let spoiled = std::fs::read(&state).unwrap();
        for args in [
            &["status"][..],
            &["test"],
            &["sync"],
            &["last-sync", "users"],
        ] {
            let out = inst.run(args).expect_code(2);
            assert!(
                out.stderr.contains("is damaged") && out.stderr.contains(".damaged"),
                "{what}, {args:?}: {}",
                out.stderr
            );
            assert!(
                out.stderr
                    .contains("leave the directory later are never removed"),
                "says what moving it aside costs: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        }
        assert_eq!(
            std::fs::read(&state).unwrap(),
            spoiled,
            "{what}: the file is left as it was for the admin"
        );
        // The daemon refuses to start the same way, and does not look like a crash to systemd.
        let out = Daemon::run_to_exit(&inst, Duration::from_secs(60));
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(out.stderr.contains("is damaged"), "{}", out.stderr);
        assert_eq!(server.import_count(), 1, "nothing was sent");
        std::fs::write(&state, &good).unwrap();
    }
    // Restored from the backup: everything works as before.
    let out = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(out["outcome"], "unchanged", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_data_directory_under_the_daemon_stops_it() {
    let (_slapd, _server, inst) = fixture::company(&["alice"]).await;
    let mut daemon = Daemon::start(&inst);
    std::fs::remove_dir_all(inst.data_dir()).unwrap();
    let stopped = daemon
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("orgsyncd kept running:\n{}", daemon.log_tail(20)));
    assert_eq!(stopped.code, Some(2), "{}", daemon.log_tail(20));
    let log = daemon.log();
    assert!(
        log.contains("was deleted or moved") && log.contains("do not split the installation"),
        "{log}"
    );
}

/// A listener that records every byte it is sent and answers each connection with an empty
/// JSON object, as a careless or hostile program on the daemon's port would.
struct Impostor {
    port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Impostor {
    fn start(port: u16) -> Impostor {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        let port = listener.local_addr().unwrap().port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let log = log.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    stream
                        .set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                        );
                    }
                });
            }
        });
        Impostor { port, received }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_nothing_to_another_program_on_the_daemons_port() {
    let (_slapd, _server, inst) = fixture::company(&["alice"]).await;
    let mut daemon = Daemon::start(&inst);

    // Another installation whose daemon.json names a live orgsyncd (this one's pid) at a port
    // where something else listens.
    let other = Installation::new();
    let impostor = Impostor::start(0);
    std::fs::create_dir_all(other.data_dir()).unwrap();
    std::fs::write(
        other.data_dir().join("daemon.json"),
        serde_json::json!({
            "pid": daemon.pid(),
            "port": impostor.port,
            "url": format!("http://127.0.0.1:{}", impostor.port),
            "version": "0.1.0",
        })
        .to_string(),
    )
    .unwrap();
    let token = "0123456789abcdef-the-api-token-of-that-installation";
    std::fs::write(other.data_dir().join("api-token"), token).unwrap();

    let status = other.run(&["status"]).expect_code(1);
    assert!(
        status.stderr.contains("something other than orgsyncd")
            && status.stderr.contains("nothing was sent to it"),
        "{}",
        status.stderr
    );
    let secret = "the-organization-client-secret";
    let login = other
        .run(&[
            "login",
            "organization.5e7a2c1b-0d3f-4e5a-9b8c-7d6e5f4a3b2c",
            secret,
        ])
        .expect_code(1);
    assert!(
        login.stderr.contains("something other than orgsyncd"),
        "{}",
        login.stderr
    );
    let seen = impostor.received();
    assert!(seen.contains("/v1/hello?nonce="), "{seen}");
    for leaked in [token, secret, "authorization", "Authorization"] {
        assert!(
            !seen.contains(leaked),
            "the impostor received {leaked:?}: {seen}"
        );
    }

    // After a crash the daemon's file stays behind; a program that takes the port is not the
    // daemon, whose process is gone: the CLI works on its own and sends it nothing.
    let port = daemon.port();
    daemon.kill();
    let squatter = Impostor::start(port);
    let out = inst.run(&["status", "--json"]).ok().json();
    assert_eq!(out["syncedMembers"], 0, "{out}");
    assert_eq!(squatter.received(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_daemon_is_an_error_not_a_hang() {
    let (_slapd, _server, inst) = fixture::company(&["alice"]).await;
    let daemon = Daemon::start(&inst);
    daemon.send_signal("STOP");
    for args in [&["status"][..], &["daemon", "status"], &["test"]] {
        let started = std::time::Instant::now();
        let out = inst.run(args).expect_code(1);
        assert!(
            out.stderr.contains(&format!(
                "orgsyncd (pid {}) is running but does not answer",
                daemon.pid()
            )),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    daemon.send_signal("CONT");
    inst.run(&["daemon", "status"]).ok();
}

/// The daemon's documented cap on API connections.
const DAEMON_CONNECTION_CAP: usize = 64;

/// Open descriptors of a process.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_take_the_api_down() {
    let (_slapd, _server, inst) = fixture::company(&["alice"]).await;
    let daemon = Daemon::start(&inst);
    let before = open_files(daemon.pid());

    // 300 connections that start a request and never finish its headers.
    let mut idle = Vec::new();
    for _ in 0..300 {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port())).unwrap();
        let _ = stream.write_all(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        idle.push(stream);
    }
    let held = open_files(daemon.pid());
    assert!(
        held <= before + DAEMON_CONNECTION_CAP + 8,
        "the daemon holds {held} descriptors ({before} before the flood)"
    );
    // The API still answers: at once for the connections the cap left, and once the idle ones
    // time out for everyone (the CLI keeps asking for a few seconds).
    let answered = testkit::ports::wait_until(Duration::from_secs(60), || {
        inst.run(&["daemon", "status"]).code == 0
    });
    assert!(answered, "{}", daemon.log_tail(20));
    // The idle connections were closed by the daemon.
    let closed = idle.iter_mut().all(|stream| {
        use std::io::Read;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 64];
        matches!(stream.read(&mut buf), Ok(0) | Err(_))
    });
    assert!(closed, "idle connections stayed open");
    assert!(
        daemon.log().contains("API connections are open; refused"),
        "{}",
        daemon.log_tail(20)
    );
}

/// The daemon's status, once `ready` holds for it (hand edits arrive through inotify).
#[track_caller]
fn wait_for_daemon_status(
    inst: &Installation,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let seen = testkit::ports::wait_until(Duration::from_secs(30), || {
        last = inst.run(&["daemon", "status", "--json"]).ok().json();
        ready(&last)
    });
    assert!(seen, "{what}: {last}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_that_fails_validation_is_not_adopted_and_the_cli_can_fix_it() {
    let (_slapd, _server, inst) = fixture::company(&["alice"]).await;
    let _daemon = Daemon::start(&inst);
    let file = inst.config_file();
    let original = std::fs::read_to_string(&file).unwrap();
    assert!(original.contains("[daemon]"), "{original}");

    // Parses, but the API must never listen beyond loopback.
    std::fs::write(
        &file,
        original.replace("[daemon]\n", "[daemon]\naddress = \"10.0.0.1\"\n"),
    )
    .unwrap();
    let status = wait_for_daemon_status(&inst, "the bad address is reported", |s| {
        s["configRejected"]
            .as_str()
            .is_some_and(|r| r.contains("daemon.address"))
    });
    assert!(
        status["configRejected"]
            .as_str()
            .unwrap()
            .contains("previous configuration stays in force"),
        "{status}"
    );
    let human = inst.run(&["daemon", "status"]).ok().stdout;
    assert!(human.contains("Config NOT adopted"), "{human}");
    // Runs go on with the configuration in force.
    let sync = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(sync["outcome"], "synced", "{sync}");
    inst.run(&["config", "unset", "daemon.address"]).ok();
    wait_for_daemon_status(&inst, "fixed", |s| s.get("configRejected").is_none());

    // A file that does not parse at all: the CLI still reaches the daemon, and can fix it.
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = match text.contains("[sync]\n") {
        true => text.replace("[sync]\n", "[sync]\ninterval_minutes = \"five\"\n"),
        false => text + "\n[sync]\ninterval_minutes = \"five\"\n",
    };
    std::fs::write(&file, broken).unwrap();
    wait_for_daemon_status(&inst, "the parse error is reported", |s| {
        s["configRejected"]
            .as_str()
            .is_some_and(|r| r.contains("interval_minutes"))
    });
    inst.run(&["daemon", "status"]).ok();
    inst.run(&["config", "set", "sync.interval_minutes", "7"])
        .ok();
    let status = wait_for_daemon_status(&inst, "fixed by config set", |s| {
        s.get("configRejected").is_none()
    });
    assert_eq!(status["schedule"], "every 7 minutes", "{status}");
}

/// The daemon's history, newest first, through the CLI.
fn history(inst: &Installation) -> Vec<serde_json::Value> {
    inst.run(&["daemon", "history", "--json"]).ok().json()["runs"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_waits_for_the_one_in_progress_which_the_history_shows_from_its_start() {
    let (_slapd, server, inst) = fixture::company(&["alice", "bob"]).await;
    let daemon = Daemon::start(&inst);
    // The first import is answered 429 with Retry-After 3: the run takes a few seconds.
    server.fail_next("/organization/import", 429, Some(3), 1);
    let first = daemon.client().start_sync(false).await.unwrap().run_id;
    let runs = history(&inst);
    assert_eq!(runs[0]["id"], first, "{runs:?}");
    assert_eq!(runs[0]["outcome"], "running", "{runs:?}");

    // A second `orgsync sync` (and a `test`) wait for it instead of failing.
    let second = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(second["outcome"], "unchanged", "{second}");
    inst.run(&["test", "--json"]).ok();
    let runs = history(&inst);
    let outcome = |id: u64| {
        runs.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["outcome"].clone())
    };
    assert_eq!(outcome(first), Some("synced".into()), "{runs:?}");
    assert_eq!(server.managed_emails().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_run_starts_soon_after_a_start_or_a_crash_not_a_period_later() {
    let (slapd, server, inst) = fixture::company(&["alice"]).await;
    inst.set("daemon.catch_up", "true");
    inst.set("sync.interval_minutes", "60");

    // Never synced: the first start runs soon, not in an hour.
    let mut daemon = Daemon::start(&inst);
    let synced = testkit::ports::wait_until(Duration::from_secs(60), || {
        history(&inst)
            .iter()
            .any(|r| r["trigger"] == "schedule" && r["outcome"] == "synced")
    });
    assert!(
        synced,
        "no scheduled run soon after the start\n{}",
        daemon.log_tail(20)
    );
    assert_eq!(server.managed_emails().len(), 1);

    // Synced just now: switching polling off and on waits for the schedule.
    inst.run(&["daemon", "stop-polling"]).ok();
    inst.run(&["daemon", "start-polling"]).ok();
    let status = inst.run(&["daemon", "status", "--json"]).ok().json();
    let next = status["nextRunAt"].as_str().unwrap().to_string();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    assert!(
        next.signed_duration_since(chrono::Utc::now()) > chrono::Duration::minutes(50),
        "{status}"
    );

    // A crash in the middle of a run: the next start runs again soon.
    server.fail_next("/organization/import", 429, Some(30), 1);
    let l = slapd.ldif();
    slapd.add_ldif(&l.person("bob", "BOB", Some("bob@example.org")));
    let cut = daemon.client().start_sync(false).await.unwrap().run_id;
    // Killed while it waits out the server's Retry-After.
    let throttled = testkit::ports::wait_until(Duration::from_secs(30), || {
        server.requests().iter().any(|r| r.status == 429)
    });
    assert!(throttled, "{}", daemon.log_tail(20));
    daemon.kill();
    let mut daemon = Daemon::start(&inst);
    let recovered = testkit::ports::wait_until(Duration::from_secs(60), || {
        let runs = history(&inst);
        runs.iter()
            .any(|r| r["id"] == cut && r["outcome"] == "interrupted")
            && runs.iter().any(|r| {
                r["trigger"] == "schedule"
                    && r["outcome"] == "synced"
                    && r["id"].as_u64() > Some(cut)
            })
    });
    assert!(recovered, "{:?}\n{}", history(&inst), daemon.log_tail(20));
    assert!(server.managed_emails().contains("bob@example.org"));
    daemon.terminate(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_failing_is_quoted_when_orgsync_gives_up() {
    let (_slapd, server, inst) = fixture::company(&["alice"]).await;
    server.fail_next("/organization/import", 500, Some(0), 10);
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr.contains("HTTP 500 5 times in a row")
            && out
                .stderr
                .contains("An unhandled server error has occurred"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_rejection_has_the_documented_error_shape() {
    let (_slapd, _server, inst) = fixture::company(&["alice"]).await;
    let daemon = Daemon::start(&inst);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |path: &str| format!("{}{path}", daemon.url());
    let huge = "x".repeat(3 * 1024 * 1024);
    let cases = [
        (http.put(url("/v1/status")), 405, "method_not_allowed"),
        (
            http.post(url("/v1/sync")).body("{not json"),
            400,
            "bad_request",
        ),
        (
            http.post(url("/v1/sync"))
                .body(r#"{"wait": true, "allowRemoval": true}"#),
            400,
            "bad_request",
        ),
        (http.get(url("/v1/history?limit=many")), 400, "bad_request"),
        (
            http.post(url("/v1/login")).body(r#"{"clientId": "x"}"#),
            400,
            "bad_request",
        ),
        (
            http.put(url("/v1/config")).body(huge),
            413,
            "payload_too_large",
        ),
        (http.get(url("/v1/nothing-here")), 404, "not_found"),
    ];
    for (request, status, code) in cases {
        let response = request.bearer_auth(daemon.token()).send().await.unwrap();
        let got = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        assert!(
            !body["message"].as_str().unwrap_or_default().is_empty(),
            "{body}"
        );
    }
    // An unknown field names itself.
    let response = http
        .post(url("/v1/sync"))
        .bearer_auth(daemon.token())
        .body(r#"{"allowRemoval": true}"#)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("allowRemoval"),
        "{body}"
    );

    // Config changes through the API are logged by key.
    inst.run(&["config", "set", "sync.interval_minutes", "9"])
        .ok();
    let logged = testkit::ports::wait_until(Duration::from_secs(10), || {
        daemon
            .log()
            .contains("configuration changed through the API: sync.interval_minutes")
    });
    assert!(logged, "{}", daemon.log_tail(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_checks_values_with_real_parsers_and_names_the_key() {
    let inst = Installation::new();
    let refused = |key: &str, value: &str, says: &str| {
        let out = inst.run(&["config", "set", key, value]).expect_code(2);
        assert!(
            out.stderr.contains(key) && out.stderr.contains(says),
            "{key} = {value}: {}",
            out.stderr
        );
        for rust in ["u16", "u32", "u64", "usize", "a boolean"] {
            assert!(
                !out.stderr.contains(rust),
                "{key} = {value} speaks Rust: {}",
                out.stderr
            );
        }
    };
    let junk = inst.data_dir().with_file_name("not-a-ca.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    for (key, value, says) in [
        ("ldap.port", "70000", "65535"),
        ("ldap.port", "0", "0 is not a port"),
        ("sync.interval_minutes", "five", "whole number"),
        ("ldap.paged_search", "maybe", "true or false"),
        ("ldap.user_filter", "(cn)", "(cn)"),
        ("ldap.disabled_filter", "(&(a=1)", "LDAP filter"),
        (
            "ldap.ca_file",
            junk.to_str().unwrap(),
            "holds no PEM certificate",
        ),
    ] {
        refused(key, value, says);
    }

    // Secrets that would travel in clear are warned about at once (nothing is contacted).
    let out = inst
        .run(&["config", "set", "ldap.host", "ldap.corp.example"])
        .ok();
    assert!(
        out.stderr.contains("travels in clear to ldap.corp.example"),
        "{}",
        out.stderr
    );
    let out = inst
        .run(&["config", "set", "server.url", "http://vault.corp.example"])
        .ok();
    assert!(
        out.stderr.contains("server.url is http://"),
        "{}",
        out.stderr
    );
    let out = inst.run(&["config", "set", "ldap.host", "127.0.0.1"]).ok();
    assert!(
        !out.stderr.contains("ldap.encryption = none"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_file_paths_never_depend_on_the_working_directory() {
    let slapd = testkit::slapd::Slapd::start(testkit::slapd::SlapdOptions::default());
    testkit::fixture::seed_people(&slapd, &["alice"]);
    let inst = Installation::new();
    inst.use_slapd(&slapd);
    inst.set("ldap.encryption", "ldaps");
    inst.set("ldap.port", &slapd.ldaps_port().to_string());

    // `config set` from the CA's own directory stores the path absolute.
    let ca_dir = tempfile::tempdir().unwrap();
    std::fs::copy(slapd.ca_pem(), ca_dir.path().join("ca.pem")).unwrap();
    let out = inst
        .run_in(ca_dir.path(), &["config", "set", "ldap.ca_file", "ca.pem"])
        .ok();
    let absolute = ca_dir.path().join("ca.pem").display().to_string();
    assert!(out.stdout.contains(&absolute), "{}", out.stdout);
    let text = std::fs::read_to_string(inst.config_file()).unwrap();
    assert!(text.contains(&absolute), "{text}");
    inst.run_in(Path::new("/"), &["test", "--json"]).ok();

    // A relative path written by hand is taken from the config file's directory.
    let beside = inst.config_file().with_file_name("directory-ca.pem");
    std::fs::copy(slapd.ca_pem(), &beside).unwrap();
    std::fs::write(
        inst.config_file(),
        text.replace(&absolute, "directory-ca.pem"),
    )
    .unwrap();
    let report = inst.run_in(Path::new("/"), &["test", "--json"]).ok().json();
    assert_eq!(report["users"]["enabled"][0]["email"], "alice@example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_config_files_never_share_a_data_directory_silently() {
    let (_slapd, server, inst) = fixture::company(&["alice"]).await;
    inst.run(&["status"]).ok();
    let owner = std::fs::read_to_string(inst.data_dir().join("config-path")).unwrap();
    assert!(owner.contains("config.toml"), "{owner}");

    // Another config file with the same data directory is refused, for every command.
    let other = inst.config_file().with_file_name("other.toml");
    let other_arg = other.to_str().unwrap();
    for args in [&["status"][..], &["login", "x", "y"], &["sync"]] {
        let mut full = vec!["--config", other_arg];
        full.extend_from_slice(args);
        let out = inst.run(&full).expect_code(2);
        assert!(
            out.stderr.contains("belongs to the config file") && out.stderr.contains("--data-dir"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // With a data directory of its own, it is an installation of its own.
    let own = inst.data_dir().with_file_name("other-data");
    let own_arg = own.to_str().unwrap();
    let status = inst
        .run(&[
            "--config",
            other_arg,
            "--data-dir",
            own_arg,
            "status",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(status["dataDir"], own_arg, "{status}");
    assert_eq!(status["loggedIn"], false, "{status}");

    // A login that replaces another organization's key says so.
    let second = testkit::orgserver::OrgServer::start(Default::default()).await;
    inst.set("server.url", &second.base_url());
    let out = inst
        .run(&["login", &second.client_id(), &second.client_secret()])
        .ok();
    assert!(
        out.stderr.contains(&format!(
            "this replaced the API key of organization {}",
            server.org_id()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn help_names_every_environment_variable_and_config_keys_explains_every_setting() {
    let inst = Installation::new();
    for program in ["orgsync", "orgsyncd"] {
        let output = inst
            .command(testkit::cli::binary(program))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        for var in [
            "ORGSYNC_CONFIG",
            "ORGSYNC_DATA_DIR",
            "ORGSYNC_LOG",
            "ORGSYNC_LDAP_BIND_PASSWORD",
            "ORGSYNC_CLIENT_ID",
            "ORGSYNC_CLIENT_SECRET",
        ] {
            assert!(help.contains(var), "{program} --help lacks {var}:\n{help}");
        }
        assert!(help.contains("--data-dir"), "{help}");
    }
    let keys = inst.run(&["config", "keys"]).ok().stdout;
    assert!(
        keys.contains("ldap.disabled_filter  (not set by default)"),
        "{keys}"
    );
    assert!(keys.contains("(pwdAccountLockedTime=*)"), "{keys}");
    assert!(
        keys.contains("sync.full_read_hours  (default 24)"),
        "{keys}"
    );
    assert!(keys.contains("config set-secret"), "{keys}");
}
