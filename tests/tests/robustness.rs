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
