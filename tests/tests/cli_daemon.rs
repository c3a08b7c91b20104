//! The `orgsync` CLI while `orgsyncd` runs: the same commands go through the daemon's API (which
//! owns the state), with the same output, and `orgsync daemon ...` talks to it.

use testkit::cli::Installation;
use testkit::daemon::{self, Daemon};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};

fn directory() -> Slapd {
    let slapd = Slapd::start(SlapdOptions::default());
    let l = slapd.ldif();
    let mut ldif = l.base();
    for uid in ["ann", "ben", "cat"] {
        ldif += &l.person(uid, uid, Some(&format!("{uid}@example.org")));
    }
    ldif += &l.group_of_names("staff", &[&l.person_dn("ann"), &l.person_dn("ben")]);
    slapd.add_ldif(&ldif);
    slapd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_go_through_a_running_daemon_with_the_same_output() {
    let slapd = directory();
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_slapd(&slapd);
    inst.set("server.url", &server.base_url());
    daemon::prepare_quiet_daemon(&inst);

    // Without a daemon: `daemon status` says so and exits 3; other commands work directly.
    let out = inst.run(&["daemon", "status"]).expect_code(3);
    assert!(
        out.stderr.contains("orgsyncd is not running"),
        "{}",
        out.stderr
    );
    let direct_test = inst.run(&["test", "--json"]).ok().json();

    let daemon = Daemon::start(&inst);
    // The daemon holds the state; every command below would fail with "in use" if it went
    // around the daemon.
    inst.run(&["login", &server.client_id(), &server.client_secret()])
        .ok();
    let via_daemon = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(via_daemon, direct_test, "the same report either way");
    let human = inst.run(&["sync"]).ok().stdout;
    assert!(human.starts_with("Synced: read 3 user(s)"), "{human}");
    assert_eq!(server.managed_emails().len(), 3);
    assert_eq!(
        inst.run(&["sync", "--json"]).ok().json()["outcome"],
        "unchanged"
    );
    assert!(inst.last_sync("groups").is_some());
    let status = inst.run(&["status", "--json"]).ok().json();
    assert_eq!(status["syncedMembers"], 3);
    assert!(
        inst.run(&["status"])
            .ok()
            .stdout
            .contains("Daemon:           running at")
    );

    // Config changes go through the daemon, which validates them and applies them at once.
    let out = inst
        .run(&["config", "set", "ldap.user_filter", "uid=ann"])
        .expect_code(2);
    assert!(out.stderr.contains("ldap.user_filter"), "{}", out.stderr);
    inst.set("ldap.user_filter", "(|(uid=ann)(uid=ben))");
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["diff"]["remove"][0]["email"], "cat@example.org");
    inst.run(&["config", "unset", "ldap.user_filter"]).ok();

    inst.run(&["clear-cache"]).ok();
    assert!(inst.last_sync("users").is_none());

    // `orgsync daemon ...`
    let status = inst.run(&["daemon", "status"]).ok().stdout;
    assert!(status.contains(daemon.url()), "{status}");
    assert!(status.contains("api-token"), "{status}");
    inst.run(&["daemon", "stop-polling"]).ok();
    assert_eq!(
        inst.run(&["daemon", "status", "--json"]).ok().json()["polling"],
        false
    );
    inst.run(&["daemon", "start-polling"]).ok();
    let history = inst.run(&["daemon", "history", "--json"]).ok().json();
    let kinds: Vec<(&str, &str)> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("test", "tested"),
            ("sync", "unchanged"),
            ("sync", "synced"),
            ("test", "tested")
        ],
        "newest first"
    );
    let text = inst.run(&["daemon", "history"]).ok().stdout;
    assert!(text.contains("3 invited"), "{text}");

    // Logout through the daemon.
    inst.run(&["logout"]).ok();
    assert_eq!(
        inst.run(&["status", "--json"]).ok().json()["loggedIn"],
        false
    );
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(out.stderr.contains("not logged in"), "{}", out.stderr);
}
