use super::*;
use chrono::Utc;
use orgsync_proto::api::{DiffSummary, RunTrigger};
use orgsync_proto::report::InstallationStatus;

fn wall() -> DateTime<Utc> {
    crate::time::parse("2026-11-25T14:00:00Z", &Utc).expect("valid time")
}

fn status(polling: bool) -> DaemonStatus {
    DaemonStatus {
        version: "0.1.0".into(),
        api_version: 1,
        pid: 42,
        polling,
        schedule: "every 5 minutes".into(),
        next_run_at: polling.then(|| "2026-11-25T14:05:00Z".to_string()),
        current_run: None,
        last_run: None,
        consecutive_failures: 0,
        directory_type: "ldap".into(),
        installation: InstallationStatus {
            logged_in: true,
            synced_members: 4,
            synced_groups: 3,
            ..InstallationStatus::default()
        },
        config_rejected: None,
    }
}

fn run(id: u64, kind: RunKind) -> RunInfo {
    RunInfo {
        id,
        kind,
        trigger: RunTrigger::Manual,
        started_at: "2026-11-25T13:59:00Z".into(),
        users_read: 0,
        groups_read: 0,
    }
}

fn record(id: u64, kind: RunKind, outcome: RunOutcome) -> RunRecord {
    RunRecord {
        id,
        kind,
        trigger: RunTrigger::Manual,
        started_at: "2026-11-25T13:59:00Z".into(),
        duration_ms: 900,
        outcome,
        users_read: 5,
        groups_read: 3,
        requests_sent: 1,
        summary: DiffSummary {
            invited: 4,
            ..DiffSummary::default()
        },
        error: (outcome == RunOutcome::Failed).then(|| "cannot connect to ldap".to_string()),
    }
}

fn connected(polling: bool, history: &[RunRecord]) -> Model {
    let mut model = Model::new();
    let mut status = status(polling);
    status.last_run = history.first().cloned();
    model.connected(status, history);
    model
}

fn view(model: &Model) -> View {
    model.view(Instant::now(), &wall())
}

#[test]
fn before_and_without_a_daemon_the_icon_says_unreachable_and_actions_are_off() {
    let mut model = Model::new();
    assert_eq!(model.state(), TrayState::Unreachable);
    assert_eq!(view(&model).status[0], "orgsync: looking for the daemon…");
    model.disconnected("orgsyncd is not running (data directory /x)");
    let v = view(&model);
    assert_eq!(v.state, TrayState::Unreachable);
    assert_eq!(v.status[0], "orgsync: daemon not running");
    assert_eq!(v.status[1], "orgsyncd is not running (data directory /x)");
    for id in [
        MenuId::TestNow,
        MenuId::SyncNow,
        MenuId::TogglePolling,
        MenuId::ClearCache,
        MenuId::ShowLastReport,
    ] {
        assert!(!v.item(id).enabled, "{id:?} enabled without a daemon");
        assert_eq!(model.click(id, Instant::now()), None);
    }
    // The config file can still be opened, and the tray quit.
    assert!(v.item(MenuId::OpenConfig).enabled);
    assert_eq!(
        model.click(MenuId::OpenConfig, Instant::now()),
        Some(Action::OpenConfig)
    );
    assert_eq!(
        model.click(MenuId::Quit, Instant::now()),
        Some(Action::Quit)
    );
}

#[test]
fn idle_with_polling_is_ok_and_shows_last_next_and_counts() {
    let model = connected(true, &[record(3, RunKind::Sync, RunOutcome::Synced)]);
    let v = view(&model);
    assert_eq!(v.state, TrayState::Ok);
    assert_eq!(
        v.status,
        [
            "orgsync: up to date".to_string(),
            "Last sync: 13:59, 4 invited".to_string(),
            "Next sync: 14:05 (every 5 minutes)".to_string(),
            "Synced: 4 member(s), 3 group(s)".to_string(),
        ]
    );
    assert_eq!(v.item(MenuId::TogglePolling).label, "Stop Sync");
    assert!(v.items.iter().all(|item| item.enabled), "{v:?}");
    assert_eq!(
        v.tooltip,
        "orgsync: up to date · Last sync: 13:59, 4 invited"
    );
}

#[test]
fn no_sync_yet_and_not_logged_in_are_said() {
    let mut model = Model::new();
    let mut s = status(true);
    s.installation.logged_in = false;
    model.connected(s, &[]);
    let v = view(&model);
    assert_eq!(
        v.state,
        TrayState::Failed,
        "nothing can sync without a login"
    );
    assert_eq!(v.status[0], "orgsync: not logged in");
    assert_eq!(v.status[1], "Last sync: never");
    assert_eq!(v.status[3], "Not logged in: run `orgsync login`");
    assert!(!v.item(MenuId::ShowLastReport).enabled);

    let mut model = Model::new();
    model.connected(status(true), &[]);
    let v = view(&model);
    assert_eq!(v.state, TrayState::Ok);
    assert_eq!(v.status[0], "orgsync: not synced yet");
}

#[test]
fn polling_stopped_flips_the_toggle_and_the_icon() {
    let mut model = connected(true, &[]);
    assert_eq!(
        model.click(MenuId::TogglePolling, Instant::now()),
        Some(Action::StopPolling)
    );
    let effect = model.apply_event(&Event::PollingChanged { polling: false });
    assert!(effect.refresh_status);
    let v = view(&model);
    assert_eq!(v.state, TrayState::PollingStopped);
    assert_eq!(v.status[0], "orgsync: polling stopped");
    assert_eq!(v.status[2], "Next sync: none, polling is stopped");
    assert_eq!(v.item(MenuId::TogglePolling).label, "Start Sync");
    assert_eq!(
        model.click(MenuId::TogglePolling, Instant::now()),
        Some(Action::StartPolling)
    );
    model.set_polling(true);
    assert_eq!(view(&model).item(MenuId::TogglePolling).label, "Stop Sync");
}

#[test]
fn a_run_shows_syncing_then_its_result() {
    let mut model = connected(true, &[record(1, RunKind::Sync, RunOutcome::Unchanged)]);
    model.apply_event(&Event::RunStarted {
        run: run(2, RunKind::Sync),
    });
    let v = view(&model);
    assert_eq!(v.state, TrayState::Syncing);
    assert_eq!(v.status[0], "orgsync: syncing… (reading the directory)");
    assert_eq!(v.status[2], "Next sync: 14:05 (every 5 minutes)");
    // No second run while one is going.
    assert!(!v.item(MenuId::SyncNow).enabled);
    assert!(!v.item(MenuId::TestNow).enabled);
    assert_eq!(model.click(MenuId::SyncNow, Instant::now()), None);

    let mut progress = run(2, RunKind::Sync);
    progress.users_read = 120;
    progress.groups_read = 7;
    model.apply_event(&Event::RunProgress { run: progress });
    assert_eq!(
        view(&model).status[0],
        "orgsync: syncing… (120 users, 7 groups read)"
    );

    let done = record(2, RunKind::Sync, RunOutcome::Synced);
    let effect = model.apply_event(&Event::RunFinished {
        record: done.clone(),
    });
    assert_eq!(effect.finished, Some(done));
    assert!(effect.refresh_status);
    let v = view(&model);
    assert_eq!(v.state, TrayState::Ok);
    assert_eq!(v.status[1], "Last sync: 13:59, 4 invited");
    assert!(v.item(MenuId::SyncNow).enabled);
}

#[test]
fn a_test_run_says_testing_and_does_not_count_as_last_sync() {
    let mut model = connected(true, &[record(1, RunKind::Sync, RunOutcome::Unchanged)]);
    model.apply_event(&Event::RunStarted {
        run: run(2, RunKind::Test),
    });
    assert_eq!(
        view(&model).status[0],
        "orgsync: testing… (reading the directory)"
    );
    model.apply_event(&Event::RunFinished {
        record: record(2, RunKind::Test, RunOutcome::Tested),
    });
    let v = view(&model);
    assert_eq!(v.state, TrayState::Ok);
    assert_eq!(v.status[1], "Last sync: 13:59, no changes");
    assert_eq!(model.last_run().map(|r| r.id), Some(2));
}

#[test]
fn a_failed_or_refused_last_run_is_failed_until_a_good_one() {
    let mut model = connected(true, &[]);
    model.apply_event(&Event::RunFailed {
        record: record(5, RunKind::Sync, RunOutcome::Failed),
    });
    let v = view(&model);
    assert_eq!(v.state, TrayState::Failed);
    assert_eq!(v.status[0], "orgsync: last sync failed");
    assert_eq!(
        v.status[1],
        "Last sync: 13:59, failed: cannot connect to ldap"
    );

    model.apply_event(&Event::RunFinished {
        record: record(6, RunKind::Sync, RunOutcome::Refused),
    });
    assert_eq!(view(&model).status[0], "orgsync: last sync refused");

    // A failed test is a failure too: the directory is unreachable.
    model.apply_event(&Event::RunFailed {
        record: record(7, RunKind::Test, RunOutcome::Failed),
    });
    assert_eq!(view(&model).status[0], "orgsync: last test failed");

    // Failure beats polling stopped.
    model.set_polling(false);
    assert_eq!(model.state(), TrayState::Failed);

    model.apply_event(&Event::RunFinished {
        record: record(8, RunKind::Sync, RunOutcome::Unchanged),
    });
    assert_eq!(model.state(), TrayState::PollingStopped);
}

#[test]
fn a_skipped_tick_changes_nothing_shown() {
    let mut model = connected(true, &[record(1, RunKind::Sync, RunOutcome::Failed)]);
    let before = view(&model);
    let effect = model.apply_event(&Event::RunSkipped {
        record: record(2, RunKind::Sync, RunOutcome::Skipped),
    });
    assert!(
        effect.finished.is_some(),
        "the decider sees it and stays quiet"
    );
    assert_eq!(view(&model), before);
}

#[test]
fn runs_before_connecting_are_not_news_but_a_missed_event_is() {
    let history = [
        record(9, RunKind::Sync, RunOutcome::Skipped),
        record(8, RunKind::Sync, RunOutcome::Synced),
        record(7, RunKind::Test, RunOutcome::Tested),
    ];
    let mut model = connected(true, &history);
    // The skipped tick is newest; the last sync is still run 8.
    assert_eq!(model.last_sync().map(|r| r.id), Some(8));
    assert_eq!(model.last_run().map(|r| r.id), Some(8));
    // A refresh repeating what was known is not news.
    let mut s = status(true);
    s.last_run = Some(history[0].clone());
    assert_eq!(model.apply_status(s.clone()), None);
    // An event for an old run (delivered late) is not news either.
    let effect = model.apply_event(&Event::RunFinished {
        record: history[1].clone(),
    });
    assert_eq!(effect.finished, None);
    // A run the stream did not deliver shows up once through the status.
    let missed = record(10, RunKind::Sync, RunOutcome::Failed);
    s.last_run = Some(missed.clone());
    assert_eq!(model.apply_status(s.clone()), Some(missed));
    assert_eq!(model.apply_status(s), None);
    assert_eq!(model.state(), TrayState::Failed);
}

#[test]
fn clear_cache_needs_a_second_click_within_the_window() {
    let mut model = connected(true, &[]);
    let t0 = Instant::now();
    assert_eq!(model.click(MenuId::ClearCache, t0), None);
    assert!(model.confirming_clear(t0));
    assert_eq!(
        model.view(t0, &wall()).item(MenuId::ClearCache).label,
        "Click again to clear the sync cache"
    );
    assert_eq!(model.confirm_deadline(), Some(t0 + CONFIRM_WINDOW));
    assert_eq!(
        model.click(MenuId::ClearCache, t0 + Duration::from_secs(2)),
        Some(Action::ClearCache)
    );
    assert_eq!(
        model.view(t0, &wall()).item(MenuId::ClearCache).label,
        "Clear Sync Cache"
    );

    // Too late: the second click only asks again.
    assert_eq!(model.click(MenuId::ClearCache, t0), None);
    let late = t0 + CONFIRM_WINDOW + Duration::from_millis(1);
    assert!(model.expire(late));
    assert!(!model.expire(late));
    assert_eq!(
        model.view(late, &wall()).item(MenuId::ClearCache).label,
        "Clear Sync Cache"
    );
    assert_eq!(model.click(MenuId::ClearCache, late), None);

    // Another click in between cancels the confirmation.
    assert_eq!(
        model.click(MenuId::OpenConfig, late),
        Some(Action::OpenConfig)
    );
    assert_eq!(model.click(MenuId::ClearCache, late), None);
}

#[test]
fn losing_the_daemon_forgets_its_state() {
    let mut model = connected(false, &[record(1, RunKind::Sync, RunOutcome::Synced)]);
    model.click(MenuId::ClearCache, Instant::now());
    model.disconnected("orgsyncd stopped");
    assert_eq!(model.state(), TrayState::Unreachable);
    assert_eq!(model.confirm_deadline(), None);
    assert_eq!(model.last_run(), None);
    // Events cannot arrive without a connection, but if one did it must not be news.
    let effect = model.apply_event(&Event::RunFinished {
        record: record(2, RunKind::Sync, RunOutcome::Synced),
    });
    assert_eq!(effect.finished, None);
    // A status brings it back.
    assert_eq!(model.apply_status(status(true)), None);
    assert_eq!(model.state(), TrayState::Ok);
}

#[test]
fn backoff_and_config_problems_are_shown() {
    let mut model = Model::new();
    let mut s = status(true);
    s.consecutive_failures = 3;
    s.installation.config_problem = Some(
        "invalid configuration:\n  - ldap.host: is not set; run `orgsync config set ldap.host ldap.example.com`\n  - ldap.bind_dn: is not set".into(),
    );
    model.connected(s, &[]);
    let v = view(&model);
    assert_eq!(v.state, TrayState::Failed);
    assert_eq!(v.status[0], "orgsync: configuration problem");
    assert_eq!(
        v.status[2],
        "Next sync: 14:05 (backing off after 3 failure(s))"
    );
    assert!(
        v.status[3].starts_with("Config: ldap.host: is not set; run `orgsync config set"),
        "{}",
        v.status[3]
    );
    assert!(v.status[3].ends_with('…'), "{}", v.status[3]);
    assert!(v.status[3].chars().count() <= MENU_TEXT_MAX);
}

#[test]
fn menu_ids_round_trip() {
    for id in MenuId::ALL {
        assert_eq!(MenuId::parse(id.as_str()), Some(id));
    }
    assert_eq!(MenuId::parse("status-0"), None);
}

#[test]
fn a_run_cut_short_by_a_daemon_stop_is_shown_as_interrupted() {
    let mut interrupted = record(4, RunKind::Sync, RunOutcome::Interrupted);
    interrupted.error = Some("orgsyncd stopped during this run".into());
    let model = connected(true, &[interrupted]);
    let v = view(&model);
    assert_eq!(v.state, TrayState::Failed);
    assert_eq!(v.status[0], "orgsync: last run interrupted");
    assert_eq!(
        v.status[1],
        "Last sync: 13:59, interrupted (orgsyncd stopped during it)"
    );
}

#[test]
fn the_placeholder_of_a_run_that_is_ending_is_neither_news_nor_the_last_run() {
    let mut model = connected(true, &[record(1, RunKind::Sync, RunOutcome::Synced)]);
    // The daemon answers a status in the moment between ending run 2 and recording it: its
    // history still holds the `interrupted` placeholder.
    let mut placeholder = record(2, RunKind::Sync, RunOutcome::Interrupted);
    placeholder.error = Some("orgsyncd stopped during this run".into());
    let mut s = status(true);
    s.last_run = Some(placeholder);
    assert_eq!(model.apply_status(s), None);
    assert_eq!(model.last_run().map(|r| r.id), Some(1));
    // The event with the real outcome is the news.
    let failed = record(2, RunKind::Sync, RunOutcome::Failed);
    let effect = model.apply_event(&Event::RunFailed {
        record: failed.clone(),
    });
    assert_eq!(effect.finished, Some(failed));
    assert_eq!(view(&model).status[0], "orgsync: last sync failed");
}

#[test]
fn a_final_record_replaces_a_placeholder_learnt_when_connecting() {
    let mut placeholder = record(5, RunKind::Sync, RunOutcome::Interrupted);
    placeholder.error = Some("orgsyncd stopped during this run".into());
    let mut model = connected(true, &[placeholder]);
    assert_eq!(view(&model).status[0], "orgsync: last run interrupted");
    // Its event was missed, but the next status has the final record: not news, but shown.
    let mut s = status(true);
    s.last_run = Some(record(5, RunKind::Sync, RunOutcome::Unchanged));
    assert_eq!(model.apply_status(s), None);
    assert_eq!(model.state(), TrayState::Ok);
    assert_eq!(view(&model).status[1], "Last sync: 13:59, no changes");
}
