//! "Show Last Report": the last run from the daemon's history as plain text, for a text viewer.
//!
//! The history keeps a summary per run (counts, up to 20 emails each way, the error), not the
//! full report, so the text says where the full diff is (`orgsync test`).

use chrono::TimeZone;
use orgsync_proto::api::{RunKind, RunOutcome, RunRecord, RunTrigger};

use crate::time;

/// How many earlier runs are listed under the last one.
const EARLIER: usize = 10;

/// Renders `runs` (newest first, as `GET /v1/history` answers) in time zone `tz`. The first run
/// that is not a skipped tick is "the last run"; skipped ticks only appear in the list below it.
pub fn render<Tz: TimeZone>(runs: &[RunRecord], tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = String::new();
    let Some(last) = runs.iter().find(|r| r.outcome != RunOutcome::Skipped) else {
        out.push_str("orgsync: no run yet.\n\nUse Test Now or Sync Now in the tray menu, or `orgsync test`.\n");
        return out;
    };
    let title = format!(
        "orgsync: last run ({} {}, {})",
        kind(last.kind),
        last.id,
        time::long(&last.started_at, tz)
    );
    out.push_str(&title);
    out.push('\n');
    out.push_str(&"=".repeat(title.chars().count()));
    out.push_str("\n\n");

    let line = |out: &mut String, label: &str, value: &str| {
        out.push_str(&format!("{label:<14}{value}\n"));
    };
    line(
        &mut out,
        "Kind:",
        &format!("{} ({})", kind(last.kind), trigger(last.trigger)),
    );
    line(&mut out, "Started:", &time::long(&last.started_at, tz));
    line(&mut out, "Took:", &time::duration_ms(last.duration_ms));
    line(&mut out, "Outcome:", outcome(last));
    if !matches!(last.outcome, RunOutcome::Failed | RunOutcome::Interrupted) {
        line(
            &mut out,
            "Directory:",
            &format!(
                "{} user(s), {} group(s) read",
                last.users_read, last.groups_read
            ),
        );
    }
    if last.kind == RunKind::Sync && last.outcome == RunOutcome::Synced {
        line(
            &mut out,
            "Sent:",
            &format!(
                "{} import request(s), accepted by the organization",
                last.requests_sent
            ),
        );
    }
    if let Some(error) = &last.error {
        let label = match last.outcome {
            RunOutcome::Failed | RunOutcome::Interrupted => "Error:",
            _ => "Refusal:",
        };
        line(&mut out, label, error);
    }

    if matches!(
        last.outcome,
        RunOutcome::Synced | RunOutcome::Tested | RunOutcome::Refused
    ) {
        let s = &last.summary;
        let would = if last.kind == RunKind::Test || last.outcome == RunOutcome::Refused {
            "would be "
        } else {
            ""
        };
        out.push_str("\nChanges\n-------\n");
        out.push_str(&format!("Invited {would}({}):\n", s.invited));
        list(&mut out, &s.invited_sample, s.invited);
        out.push_str(&format!("Removed {would}({}):\n", s.removed));
        list(&mut out, &s.removed_sample, s.removed);
        out.push_str(&format!(
            "Groups: {} created, {} updated\n",
            s.groups_created, s.groups_updated
        ));
    }

    out.push_str("\nWhat next\n---------\n");
    out.push_str(match last.outcome {
        RunOutcome::Interrupted => {
            "Nothing to fix: the next sync (scheduled, or Sync Now) sends everything again.\n"
        }
        RunOutcome::Failed => {
            "Fix what the error names, then use Test Now. `orgsync daemon status` shows the same.\n"
        }
        RunOutcome::Refused => {
            "Check the removals with `orgsync test`. If they are intended, run `orgsync sync --allow-removals`.\n"
        }
        RunOutcome::Tested => {
            "Nothing was changed. Use Sync Now to apply it, or `orgsync test --list` for every user and group.\n"
        }
        _ => "`orgsync test` shows what the next sync would change.\n",
    });

    let earlier: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.id != last.id)
        .take(EARLIER)
        .collect();
    if !earlier.is_empty() {
        out.push_str("\nEarlier runs\n------------\n");
        for r in earlier {
            out.push_str(&format!(
                "{:>6}  {}  {:<4} {:<8} {}\n",
                r.id,
                time::long(&r.started_at, tz),
                kind(r.kind),
                trigger(r.trigger),
                crate::model::outcome_text(r)
            ));
        }
    }
    out
}

fn list(out: &mut String, sample: &[String], total: usize) {
    for email in sample {
        out.push_str(&format!("  - {email}\n"));
    }
    if total > sample.len() {
        out.push_str(&format!("  … and {} more\n", total - sample.len()));
    }
}

fn kind(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Test => "test",
        RunKind::Sync => "sync",
    }
}

fn trigger(trigger: RunTrigger) -> &'static str {
    match trigger {
        RunTrigger::Manual => "manual",
        RunTrigger::Schedule => "schedule",
        RunTrigger::DirectoryChange => "directory change",
    }
}

fn outcome(record: &RunRecord) -> &'static str {
    match record.outcome {
        RunOutcome::Tested => "tested (a dry run; nothing was changed)",
        RunOutcome::Synced => "synced",
        RunOutcome::Unchanged => "unchanged (the directory matched the last sync; nothing sent)",
        RunOutcome::Refused => "refused by the removal guard (nothing sent)",
        RunOutcome::Failed => "failed (nothing recorded; the next sync sends everything again)",
        RunOutcome::Interrupted => {
            "interrupted: orgsyncd stopped during the run (nothing recorded; the next sync sends everything again)"
        }
        RunOutcome::Skipped => "skipped (another run was in progress)",
        RunOutcome::Running => "running",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use orgsync_proto::api::DiffSummary;

    fn record(id: u64, kind: RunKind, outcome: RunOutcome) -> RunRecord {
        RunRecord {
            id,
            kind,
            trigger: RunTrigger::Manual,
            started_at: format!("2026-11-25T14:{:02}:00Z", id),
            duration_ms: 1234,
            outcome,
            users_read: 5,
            groups_read: 4,
            requests_sent: 1,
            summary: DiffSummary::default(),
            error: None,
        }
    }

    #[test]
    fn no_history_says_how_to_start() {
        let text = render(&[], &Utc);
        assert!(text.contains("no run yet"), "{text}");
    }

    #[test]
    fn a_sync_lists_who_was_invited_and_the_earlier_runs() {
        let mut sync = record(7, RunKind::Sync, RunOutcome::Synced);
        sync.summary = DiffSummary {
            invited: 22,
            removed: 1,
            groups_created: 2,
            groups_updated: 1,
            invited_sample: (0..20).map(|i| format!("u{i}@example.org")).collect(),
            removed_sample: vec!["gone@example.org".into()],
        };
        let skipped = record(8, RunKind::Sync, RunOutcome::Skipped);
        let older = record(6, RunKind::Test, RunOutcome::Tested);
        let text = render(&[skipped, sync, older], &Utc);
        assert!(
            text.starts_with("orgsync: last run (sync 7, 2026-11-25 14:07:00 +00:00)"),
            "{text}"
        );
        assert!(text.contains("Outcome:      synced\n"), "{text}");
        assert!(
            text.contains("Invited (22):\n  - u0@example.org\n"),
            "{text}"
        );
        assert!(text.contains("  … and 2 more\n"), "{text}");
        assert!(
            text.contains("Removed (1):\n  - gone@example.org\n"),
            "{text}"
        );
        assert!(text.contains("Groups: 2 created, 1 updated"), "{text}");
        assert!(text.contains("Took:         1.2 s"), "{text}");
        // The skipped tick and the older test are listed below.
        assert!(
            text.contains("     8  2026-11-25 14:08:00 +00:00  sync manual   skipped"),
            "{text}"
        );
        assert!(text.contains("     6  "), "{text}");
    }

    #[test]
    fn a_failure_shows_the_error_and_what_to_do() {
        let mut failed = record(3, RunKind::Sync, RunOutcome::Failed);
        failed.error = Some("cannot connect to ldap://127.0.0.1:1: connection refused".into());
        let text = render(&[failed], &Utc);
        assert!(
            text.contains("Error:        cannot connect to ldap://127.0.0.1:1"),
            "{text}"
        );
        assert!(text.contains("Fix what the error names"), "{text}");
        assert!(!text.contains("Changes"), "{text}");
    }

    #[test]
    fn a_refusal_says_how_to_confirm() {
        let mut refused = record(4, RunKind::Sync, RunOutcome::Refused);
        refused.error = Some("this sync would remove 9 of 10 synced member(s)".into());
        refused.summary.removed = 9;
        let text = render(&[refused], &Utc);
        assert!(
            text.contains("Refusal:      this sync would remove 9"),
            "{text}"
        );
        assert!(text.contains("Removed would be (9):"), "{text}");
        assert!(text.contains("orgsync sync --allow-removals"), "{text}");
    }
}
