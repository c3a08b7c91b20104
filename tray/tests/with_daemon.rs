//! The tray's controller (model, actions, notification decisions, event following) against the
//! real `orgsyncd`, a private slapd and the emulated organization server, without a display.
//!
//! Each test drives the controller the way the GUI does, with [`Command::Click`]s, and checks two
//! things: what the daemon and the organization did (through the daemon's API and the server's
//! test controls), and what the tray showed and notified (every [`View`] and [`Note`] is
//! recorded).
//!
//! Needs the workspace's binaries (`cargo build --workspace --bins`), slapd and ldap-utils
//! (`scripts/setup.sh`).

// Test helpers fail the test by panicking, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orgsync_proto::api::{RunKind, RunOutcome};
use orgsync_tray::actions;
use orgsync_tray::controller::{Command, Controller, Timing, Update};
use orgsync_tray::model::{MenuId, TrayState, View};
use orgsync_tray::notifications::Note;
use testkit::cli::Installation;
use testkit::daemon::Daemon;
use testkit::orgserver::OrgServer;
use testkit::slapd::Slapd;
use tokio::sync::mpsc;

/// Longest wait for anything the tray should show; generous for a busy 2-core CI box, while a
/// healthy run takes well under a second.
const WAIT: Duration = Duration::from_secs(20);

const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// See [`testkit::fixture::company`]: nothing runs unless the test asks.
async fn setup(people: &[&str]) -> (Slapd, OrgServer, Installation) {
    testkit::fixture::company(people).await
}

/// The controller running on the test's runtime, with everything it shows recorded.
struct Tray {
    commands: mpsc::UnboundedSender<Command>,
    views: Arc<Mutex<Vec<View>>>,
    notes: Arc<Mutex<Vec<Note>>>,
    opened: Arc<Mutex<Vec<PathBuf>>>,
    report_file: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Tray {
    fn start(inst: &Installation) -> Tray {
        let scratch = tempfile::tempdir().expect("a temp dir for the report");
        let report_file = scratch.path().join("last-report.txt");
        let views = Arc::new(Mutex::new(Vec::new()));
        let notes = Arc::new(Mutex::new(Vec::new()));
        let opened = Arc::new(Mutex::new(Vec::new()));
        let context = actions::Context {
            report_file: report_file.clone(),
            config_file: inst.config_file(),
            opener: {
                let opened = opened.clone();
                Arc::new(move |path: &Path| {
                    opened.lock().unwrap().push(path.to_path_buf());
                    Ok(())
                })
            },
        };
        let ui = {
            let views = views.clone();
            Box::new(move |update| {
                if let Update::View(view) = update {
                    views.lock().unwrap().push(view);
                }
                true
            })
        };
        let note_sink = {
            let notes = notes.clone();
            Arc::new(move |note: Note| notes.lock().unwrap().push(note))
        };
        let controller = Controller::new(
            inst.data_dir(),
            context,
            ui,
            note_sink,
            Timing {
                retry_min: Duration::from_millis(100),
                retry_max: Duration::from_millis(500),
                refresh_every: Duration::from_secs(2),
            },
        );
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(controller.run(rx));
        Tray {
            commands,
            views,
            notes,
            opened,
            report_file,
            _scratch: scratch,
        }
    }

    fn click(&self, id: MenuId) {
        self.commands
            .send(Command::Click(id))
            .expect("the controller runs");
    }

    fn view(&self) -> Option<View> {
        self.views.lock().unwrap().last().cloned()
    }

    fn views(&self) -> Vec<View> {
        self.views.lock().unwrap().clone()
    }

    fn notes(&self) -> Vec<Note> {
        self.notes.lock().unwrap().clone()
    }

    /// Waits until the latest view satisfies `ok`.
    async fn wait_view(&self, what: &str, ok: impl Fn(&View) -> bool) -> View {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(view) = self.view().filter(|v| ok(v)) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "the tray never showed {what} within {WAIT:?}; last view: {:#?}",
                self.view()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a notification whose summary is `summary`.
    async fn wait_note(&self, summary: &str) -> Note {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(note) = self.notes().into_iter().find(|n| n.summary == summary) {
                return note;
            }
            assert!(
                Instant::now() < deadline,
                "no notification {summary:?} within {WAIT:?}; got {:#?}",
                self.notes()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_opened(&self) -> PathBuf {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(path) = self.opened.lock().unwrap().pop() {
                return path;
            }
            assert!(
                Instant::now() < deadline,
                "nothing was opened within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

fn connected_idle(view: &View) -> bool {
    view.state != TrayState::Unreachable && view.item(MenuId::SyncNow).enabled
}

/// Waits until `check` holds for the daemon's status.
async fn wait_status(
    daemon: &Daemon,
    what: &str,
    check: impl Fn(&orgsync_proto::api::DaemonStatus) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = daemon.client().status().await.expect("status");
        if check(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_invites_everyone_and_the_tray_shows_syncing_then_ok_and_notifies() {
    let (_slapd, server, inst) = setup(&PEOPLE).await;
    let tray = Tray::start(&inst);
    // No daemon yet: the clear state, and no action can be clicked.
    let view = tray
        .wait_view("daemon not running", |v| {
            v.state == TrayState::Unreachable && v.status[0] == "orgsync: daemon not running"
        })
        .await;
    assert!(
        view.status[1].contains("orgsyncd is not running"),
        "{view:#?}"
    );
    assert!(!view.item(MenuId::SyncNow).enabled);

    let daemon = Daemon::start(&inst);
    let view = tray.wait_view("the daemon's state", connected_idle).await;
    assert_eq!(view.state, TrayState::Ok, "{view:#?}");
    assert_eq!(view.status[0], "orgsync: not synced yet");
    assert_eq!(view.status[1], "Last sync: never");
    assert!(view.status[2].starts_with("Next sync: "), "{view:#?}");
    assert_eq!(view.item(MenuId::TogglePolling).label, "Stop Sync");

    let started = Instant::now();
    tray.click(MenuId::SyncNow);
    let done = tray
        .wait_view("the finished sync", |v| v.status[1].contains("4 invited"))
        .await;
    assert_eq!(done.state, TrayState::Ok, "{done:#?}");
    assert_eq!(done.status[0], "orgsync: up to date");
    assert!(started.elapsed() < Duration::from_secs(10));
    let shown: Vec<TrayState> = tray.views().iter().map(|v| v.state).collect();
    let syncing = shown.iter().rposition(|s| *s == TrayState::Syncing);
    let ok = shown.iter().rposition(|s| *s == TrayState::Ok);
    assert!(
        syncing.is_some() && syncing < ok,
        "syncing, then ok: {shown:?}"
    );
    // The organization has everyone.
    let emails = server.managed_emails();
    assert_eq!(
        emails.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "alice@example.org",
            "bob@example.org",
            "carol@example.org",
            "dave@example.org"
        ]
    );
    let note = tray.wait_note("orgsync: sync done").await;
    assert!(
        note.body.starts_with("4 invited, 1 group(s) created."),
        "{note:?}"
    );
    // The counts line catches up with the daemon's status.
    tray.wait_view("the synced counts", |v| {
        v.status[3] == "Synced: 4 member(s), 1 group(s)"
    })
    .await;

    // A second sync changes nothing and is quiet.
    tray.click(MenuId::SyncNow);
    tray.wait_view("the unchanged sync", |v| {
        v.status[1].ends_with("no changes")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tray.notes().len(), 1, "{:#?}", tray.notes());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sync_and_start_sync_switch_polling_and_follow_changes_made_elsewhere() {
    let (_slapd, _server, inst) = setup(&PEOPLE).await;
    let daemon = Daemon::start(&inst);
    let tray = Tray::start(&inst);
    tray.wait_view("the daemon's state", connected_idle).await;

    tray.click(MenuId::TogglePolling);
    wait_status(&daemon, "polling stops", |s| !s.polling).await;
    let view = tray
        .wait_view("polling stopped", |v| v.state == TrayState::PollingStopped)
        .await;
    assert_eq!(view.item(MenuId::TogglePolling).label, "Start Sync");
    assert_eq!(view.status[0], "orgsync: polling stopped");
    assert_eq!(view.status[2], "Next sync: none, polling is stopped");

    tray.click(MenuId::TogglePolling);
    wait_status(&daemon, "polling starts", |s| s.polling).await;
    let view = tray
        .wait_view("polling again", |v| {
            v.item(MenuId::TogglePolling).label == "Stop Sync"
        })
        .await;
    assert_eq!(view.state, TrayState::Ok);

    // Someone else (the CLI) stops polling: the tray follows within a second, from the event.
    inst.run(&["daemon", "stop-polling"]).ok();
    // Timed from the CLI's return, when the daemon has sent the event: the tray shows it within
    // a second (two here, for a loaded CI machine).
    let sent = Instant::now();
    tray.wait_view("polling stopped by the CLI", |v| {
        v.state == TrayState::PollingStopped
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert!(
        tray.notes().is_empty(),
        "polling changes are quiet: {:#?}",
        tray.notes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_sync_cache_asks_for_a_second_click_and_the_next_sync_sends_everything() {
    let (_slapd, server, inst) = setup(&PEOPLE).await;
    let daemon = Daemon::start(&inst);
    let client = daemon.client();
    client.sync(false).await.expect("first sync");
    let imports = server.import_count();
    // Unchanged directory: the next sync sends nothing.
    let again = client.sync(false).await.expect("second sync");
    assert_eq!(format!("{:?}", again.report.outcome), "Unchanged");
    assert_eq!(server.import_count(), imports);

    let tray = Tray::start(&inst);
    tray.wait_view("the daemon's state", connected_idle).await;
    tray.click(MenuId::ClearCache);
    tray.wait_view("the confirmation", |v| {
        v.item(MenuId::ClearCache).label == "Click again to clear the sync cache"
    })
    .await;
    // Nothing cleared yet.
    let status = client.status().await.expect("status");
    assert!(status.installation.last_user_sync.is_some(), "{status:#?}");

    tray.click(MenuId::ClearCache);
    let note = tray.wait_note("orgsync: sync cache cleared").await;
    assert!(note.body.contains("whole directory"), "{note:?}");
    wait_status(&daemon, "the cache is cleared", |s| {
        s.installation.last_user_sync.is_none()
    })
    .await;
    tray.wait_view("the label back", |v| {
        v.item(MenuId::ClearCache).label == "Clear Sync Cache"
    })
    .await;
    // Members stay; the next sync posts the whole directory again.
    assert_eq!(server.managed_emails().len(), 4);
    let after = client.sync(false).await.expect("sync after clearing");
    assert_eq!(format!("{:?}", after.report.outcome), "Synced");
    assert_eq!(server.import_count(), imports + 1);
    assert_eq!(server.managed_emails().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_clear_click_runs_out_and_clears_nothing() {
    let (_slapd, _server, inst) = setup(&PEOPLE).await;
    let daemon = Daemon::start(&inst);
    daemon.client().sync(false).await.expect("sync");
    let tray = Tray::start(&inst);
    tray.wait_view("the daemon's state", connected_idle).await;
    tray.click(MenuId::ClearCache);
    tray.wait_view("the confirmation", |v| {
        v.item(MenuId::ClearCache).label.starts_with("Click again")
    })
    .await;
    // The window runs out (CONFIRM_WINDOW) and the label goes back by itself.
    tray.wait_view("the label back", |v| {
        v.item(MenuId::ClearCache).label == "Clear Sync Cache"
    })
    .await;
    let status = daemon.client().status().await.expect("status");
    assert!(status.installation.last_user_sync.is_some(), "{status:#?}");
    assert!(tray.notes().is_empty(), "{:#?}", tray.notes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_now_records_a_test_run_changes_nothing_and_notifies_the_summary() {
    let (_slapd, server, inst) = setup(&PEOPLE).await;
    let daemon = Daemon::start(&inst);
    let tray = Tray::start(&inst);
    tray.wait_view("the daemon's state", connected_idle).await;

    tray.click(MenuId::TestNow);
    let note = tray.wait_note("orgsync: test done").await;
    assert_eq!(
        note.body,
        "A sync would invite 4, create 1 group(s). Read 4 user(s) (4 enabled, 0 disabled, 0 deleted) and 1 group(s)."
    );
    let history = daemon.client().history(1).await.expect("history");
    let run = &history.runs[0];
    assert_eq!((run.kind, run.outcome), (RunKind::Test, RunOutcome::Tested));
    assert_eq!(run.summary.invited, 4);
    assert_eq!(server.import_count(), 0, "a test sends nothing");
    // A test is not a sync: the last sync line stays "never".
    let view = tray.wait_view("idle again", connected_idle).await;
    assert_eq!(view.status[1], "Last sync: never");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_config_and_show_last_report_open_the_right_files() {
    let (_slapd, _server, inst) = setup(&PEOPLE).await;
    let daemon = Daemon::start(&inst);
    let tray = Tray::start(&inst);
    let view = tray.wait_view("the daemon's state", connected_idle).await;
    assert!(!view.item(MenuId::ShowLastReport).enabled, "no run yet");

    tray.click(MenuId::OpenConfig);
    assert_eq!(tray.wait_opened().await, inst.config_file());

    daemon.client().sync(false).await.expect("sync");
    tray.wait_view("a report to show", |v| {
        v.item(MenuId::ShowLastReport).enabled
    })
    .await;
    tray.click(MenuId::ShowLastReport);
    let opened = tray.wait_opened().await;
    assert_eq!(opened, tray.report_file);
    let text = std::fs::read_to_string(&opened).expect("the report");
    assert!(text.starts_with("orgsync: last run (sync "), "{text}");
    assert!(text.contains("Outcome:      synced\n"), "{text}");
    assert!(
        text.contains("Invited (4):\n  - alice@example.org\n"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&opened)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the report lists people's emails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_shows_and_notifies_the_reason_and_the_tray_follows_daemon_restarts() {
    let (mut slapd, _server, inst) = setup(&PEOPLE).await;
    let mut daemon = Daemon::start(&inst);
    let tray = Tray::start(&inst);
    tray.wait_view("the daemon's state", connected_idle).await;

    slapd.stop();
    tray.click(MenuId::SyncNow);
    let view = tray
        .wait_view("the failure", |v| v.state == TrayState::Failed)
        .await;
    assert_eq!(view.status[0], "orgsync: last sync failed");
    assert!(view.status[1].contains("failed: "), "{view:#?}");
    let note = tray.wait_note("orgsync: sync failed").await;
    assert!(
        note.body.contains("127.0.0.1"),
        "the reason names the server: {note:?}"
    );

    // The daemon stops: the tray says so, then finds the restarted one (on a new port).
    let stopped = daemon.terminate(Duration::from_secs(35));
    assert_eq!(stopped.code, Some(0));
    tray.wait_view("daemon not running", |v| v.state == TrayState::Unreachable)
        .await;
    let restarted = Daemon::start(&inst);
    let view = tray.wait_view("the restarted daemon", connected_idle).await;
    // The failure is remembered in the daemon's history, so it is still shown.
    assert_eq!(view.state, TrayState::Failed, "{view:#?}");
    // And events flow again from the new daemon.
    restarted
        .client()
        .stop_polling()
        .await
        .expect("stop polling");
    tray.wait_view("polling stopped", |v| {
        v.item(MenuId::TogglePolling).label == "Start Sync"
    })
    .await;
    // Killed without a goodbye (kill -9): the stream breaks, the tray notices.
    let mut restarted = restarted;
    restarted.kill();
    tray.wait_view("daemon gone", |v| v.state == TrayState::Unreachable)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sync_notifies_what_to_do() {
    let people = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
    let (slapd, server, inst) = setup(&people).await;
    let daemon = Daemon::start(&inst);
    daemon.client().sync(false).await.expect("first sync");
    assert_eq!(server.managed_emails().len(), 10);
    // Nine of ten leave: more than 5 and more than 10 %.
    let l = slapd.ldif();
    let mut changes = String::new();
    for uid in &people[1..] {
        changes += &format!("dn: {}\nchangetype: delete\n\n", l.person_dn(uid));
    }
    slapd.modify_ldif(&changes);

    let tray = Tray::start(&inst);
    tray.wait_view("the daemon's state", connected_idle).await;
    tray.click(MenuId::SyncNow);
    let note = tray.wait_note("orgsync: sync refused").await;
    assert!(note.body.contains("would remove 9 of 10"), "{note:?}");
    assert!(
        note.body.contains("orgsync sync --allow-removals"),
        "{note:?}"
    );
    let view = tray
        .wait_view("the refusal", |v| v.state == TrayState::Failed)
        .await;
    assert_eq!(view.status[0], "orgsync: last sync refused");
    assert_eq!(server.managed_emails().len(), 10, "nobody was removed");
}
