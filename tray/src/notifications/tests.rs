use super::*;
use orgsync_proto::api::DiffSummary;
use orgsync_proto::report::{
    Diff, MemberChange, Refusal, SkipReason, SkippedEntry, TestReport, UserEntry,
};

fn record(kind: RunKind, trigger: RunTrigger, outcome: RunOutcome) -> RunRecord {
    RunRecord {
        id: 1,
        kind,
        trigger,
        started_at: "2026-11-25T14:00:00Z".into(),
        duration_ms: 10,
        outcome,
        users_read: 5,
        groups_read: 3,
        requests_sent: 1,
        summary: DiffSummary::default(),
        error: None,
    }
}

fn synced(invited: usize, removed: usize, created: usize, updated: usize) -> RunRecord {
    let mut r = record(RunKind::Sync, RunTrigger::Schedule, RunOutcome::Synced);
    r.summary = DiffSummary {
        invited,
        removed,
        groups_created: created,
        groups_updated: updated,
        ..DiffSummary::default()
    };
    r
}

fn failed(trigger: RunTrigger, error: &str) -> RunRecord {
    let mut r = record(RunKind::Sync, trigger, RunOutcome::Failed);
    r.error = Some(error.into());
    r
}

#[test]
fn a_sync_that_changed_something_says_what() {
    let note = Decider::new()
        .finished(&synced(4, 1, 2, 0))
        .expect("a notification");
    assert_eq!(note.summary, "orgsync: sync done");
    assert_eq!(
        note.body,
        "4 invited, 1 removed, 2 group(s) created. 5 user(s) and 3 group(s) read from the directory."
    );
    assert_eq!(note.urgency, Urgency::Normal);
}

#[test]
fn unchanged_syncs_skipped_ticks_and_other_tests_are_quiet() {
    let mut decider = Decider::new();
    for r in [
        record(RunKind::Sync, RunTrigger::Schedule, RunOutcome::Unchanged),
        record(RunKind::Sync, RunTrigger::Manual, RunOutcome::Unchanged),
        record(RunKind::Sync, RunTrigger::Schedule, RunOutcome::Skipped),
        record(RunKind::Test, RunTrigger::Manual, RunOutcome::Tested),
        record(RunKind::Test, RunTrigger::Manual, RunOutcome::Failed),
        // A resend after a cleared cache, by the schedule.
        synced(0, 0, 0, 0),
    ] {
        assert_eq!(decider.finished(&r), None, "{r:?}");
    }
    // The same resend asked for by hand gets a quiet word.
    let mut manual = synced(0, 0, 0, 0);
    manual.trigger = RunTrigger::Manual;
    let note = decider.finished(&manual).expect("a notification");
    assert_eq!(note.urgency, Urgency::Low);
    assert!(
        note.body.starts_with("The directory was sent again"),
        "{}",
        note.body
    );
}

#[test]
fn a_failure_gives_the_reason_once_per_problem_for_the_schedule() {
    let mut decider = Decider::new();
    let first = decider
        .finished(&failed(
            RunTrigger::Schedule,
            "cannot connect to ldap://dc1:636",
        ))
        .expect("the first failure notifies");
    assert_eq!(first.summary, "orgsync: sync failed");
    assert!(
        first.body.starts_with("cannot connect to ldap://dc1:636\n"),
        "{}",
        first.body
    );
    assert_eq!(first.urgency, Urgency::Critical);
    // The schedule retrying into the same wall: quiet.
    assert_eq!(
        decider.finished(&failed(
            RunTrigger::Schedule,
            "cannot connect to ldap://dc1:636"
        )),
        None
    );
    // Someone clicking Sync Now wants the answer even if it is the same.
    assert!(
        decider
            .finished(&failed(
                RunTrigger::Manual,
                "cannot connect to ldap://dc1:636"
            ))
            .is_some()
    );
    // A different problem notifies.
    assert!(
        decider
            .finished(&failed(RunTrigger::Schedule, "invalid client secret"))
            .is_some()
    );
    // After a good run, the old problem notifies again.
    assert_eq!(
        decider.finished(&record(
            RunKind::Sync,
            RunTrigger::Schedule,
            RunOutcome::Unchanged
        )),
        None
    );
    assert!(
        decider
            .finished(&failed(RunTrigger::Schedule, "invalid client secret"))
            .is_some()
    );
}

#[test]
fn a_refusal_says_what_to_do() {
    let mut r = record(RunKind::Sync, RunTrigger::Schedule, RunOutcome::Refused);
    r.error = Some(
        "this sync would remove 9 of 10 synced member(s), more than safety.max_removals (5) and safety.max_removal_percent (10%): a@x. Check the directory with `orgsync test`; if the removals are intended, run `orgsync sync --allow-removals`".into(),
    );
    let note = Decider::new().finished(&r).expect("a notification");
    assert_eq!(note.summary, "orgsync: sync refused");
    assert!(
        note.body
            .starts_with("Nothing was sent. this sync would remove 9"),
        "{}",
        note.body
    );
    assert!(note.body.contains("--allow-removals"), "{}", note.body);
    assert_eq!(note.urgency, Urgency::Critical);

    // A message without the advice gets it added.
    r.error = Some("too many removals".into());
    let note = Decider::new().finished(&r).expect("a notification");
    assert!(
        note.body.contains("`orgsync sync --allow-removals`"),
        "{}",
        note.body
    );
}

fn user(email: &str) -> UserEntry {
    UserEntry {
        external_id: email.into(),
        email: email.into(),
        reference: format!("uid={email},ou=people"),
    }
}

#[test]
fn test_now_summarises_what_a_sync_would_do() {
    let mut report = TestReport::default();
    report.users.enabled = vec![user("a@x"), user("b@x")];
    report.users.disabled = vec![user("c@x")];
    report.diff = Diff {
        invite: vec![MemberChange {
            email: "a@x".into(),
            external_id: "a".into(),
        }],
        ..Diff::default()
    };
    report.skipped = vec![SkippedEntry {
        kind: Default::default(),
        reference: "uid=erin".into(),
        email: None,
        reason: SkipReason::NoEmail,
    }];
    let done = TestDone { run_id: 3, report };
    let note = tested(&done);
    assert_eq!(note.summary, "orgsync: test done");
    assert_eq!(
        note.body,
        "A sync would invite 1. Read 3 user(s) (2 enabled, 1 disabled, 0 deleted) and 0 group(s). 1 entry skipped (see `orgsync test`)."
    );

    let mut unchanged = done.clone();
    unchanged.report.diff = Diff::default();
    unchanged.report.skipped.clear();
    assert!(
        tested(&unchanged)
            .body
            .starts_with("A sync would change nothing.")
    );

    let mut refused = done;
    refused.report.refusal = Some(Refusal {
        removals: 9,
        synced_members: 10,
        message: "this sync would remove 9 of 10".into(),
        overridable: true,
    });
    let note = tested(&refused);
    assert_eq!(note.summary, "orgsync: test done, a sync would be refused");
    assert!(
        note.body.ends_with("\nthis sync would remove 9 of 10"),
        "{}",
        note.body
    );
    assert_eq!(note.urgency, Urgency::Critical);
}

#[test]
fn action_failures_name_the_action() {
    let note = action_failed(Action::SyncNow, "run 4 is in progress");
    assert_eq!(note.summary, "orgsync: Sync Now failed");
    assert_eq!(note.body, "run 4 is in progress");
    assert_eq!(cache_cleared().summary, "orgsync: sync cache cleared");
}

#[tokio::test]
async fn showing_without_a_session_bus_returns_quietly() {
    // The test environment may or may not have a bus; either way `show` must return, not panic
    // or hang (it is bounded by SHOW_TIMEOUT).
    let started = std::time::Instant::now();
    show(&cache_cleared()).await;
    assert!(started.elapsed() < SHOW_TIMEOUT + Duration::from_secs(1));
}

#[test]
fn an_interrupted_run_is_a_calm_word_not_an_alarm() {
    let mut r = record(RunKind::Sync, RunTrigger::Schedule, RunOutcome::Interrupted);
    r.error = Some("orgsyncd stopped during this run".into());
    let note = Decider::new().finished(&r).expect("a notification");
    assert_eq!(note.summary, "orgsync: sync interrupted");
    assert_eq!(note.urgency, Urgency::Normal);
}
