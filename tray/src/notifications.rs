//! Desktop notifications: which runs deserve one, with what text, and showing them.
//!
//! The decisions are pure ([`Decider`], [`tested`], [`action_failed`], [`cache_cleared`]) so they
//! are tested without a session bus. The rules, chosen to inform without nagging:
//!
//! - a sync that changed something: success, with the counts;
//! - an unchanged sync, a skipped tick: quiet (the icon says all is well);
//! - a failed sync: the reason; a refused sync (removal guard): the reason and what to do;
//! - a scheduled run failing again with the same reason: quiet, since polling retries every few
//!   minutes and one notification per problem is enough (manual runs always notify);
//! - a test run: only the tray's own Test Now notifies, from the full report it gets back; a test
//!   started from the CLI is the CLI user's business;
//! - a menu action the daemon refused (e.g. a run already in progress): the reason.
//!
//! Showing one ([`show`]) never fails the caller: no session bus or no notification server (a
//! headless box, a minimal desktop) is logged and otherwise ignored.

use std::time::Duration;

use orgsync_proto::api::{RunKind, RunOutcome, RunRecord, RunTrigger, TestDone};

use crate::model::Action;

/// How long showing one notification may take before it is given up (a wedged bus must not
/// hold back the tray).
const SHOW_TIMEOUT: Duration = Duration::from_secs(5);

/// The application name notifications are filed under.
pub const APP_NAME: &str = "orgsync";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    Low,
    Normal,
    /// Stays until dismissed on most desktops: failures and refusals.
    Critical,
}

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    pub urgency: Urgency,
}

impl Note {
    fn new(summary: &str, body: impl Into<String>, urgency: Urgency) -> Note {
        Note {
            summary: summary.to_string(),
            body: body.into(),
            urgency,
        }
    }
}

/// Decides for finished runs, remembering the last problem so a repeating one notifies once.
#[derive(Clone, Debug, Default)]
pub struct Decider {
    /// The error (or refusal) of the last failed or refused sync, cleared by a good one.
    last_problem: Option<String>,
}

impl Decider {
    pub fn new() -> Decider {
        Decider::default()
    }

    /// The notification for a run that just ended, if it deserves one.
    pub fn finished(&mut self, record: &RunRecord) -> Option<Note> {
        if record.kind == RunKind::Test {
            return None;
        }
        match record.outcome {
            RunOutcome::Skipped | RunOutcome::Tested | RunOutcome::Running => None,
            RunOutcome::Unchanged => {
                self.last_problem = None;
                None
            }
            RunOutcome::Synced => {
                self.last_problem = None;
                let changes = changes(record);
                if changes.is_empty() {
                    // After a cleared cache the whole directory is sent again without changing
                    // anyone: worth a word only when someone asked for it.
                    return (record.trigger == RunTrigger::Manual).then(|| {
                        Note::new(
                            "orgsync: sync done",
                            format!(
                                "The directory was sent again; no member or group changed. {}",
                                read(record)
                            ),
                            Urgency::Low,
                        )
                    });
                }
                Some(Note::new(
                    "orgsync: sync done",
                    format!("{}. {}", capitalise(&changes.join(", ")), read(record)),
                    Urgency::Normal,
                ))
            }
            RunOutcome::Refused | RunOutcome::Failed | RunOutcome::Interrupted => {
                let reason = record
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason given".to_string());
                let repeated = self.last_problem.as_deref() == Some(reason.as_str());
                self.last_problem = Some(reason.clone());
                if repeated && record.trigger != RunTrigger::Manual {
                    return None;
                }
                Some(match record.outcome {
                    RunOutcome::Refused => Note::new(
                        "orgsync: sync refused",
                        refusal_body(&reason),
                        Urgency::Critical,
                    ),
                    // The daemon stopped mid-run; it retries by itself, so no alarm.
                    RunOutcome::Interrupted => Note::new(
                        "orgsync: sync interrupted",
                        format!(
                            "{reason}\nNothing was recorded; the next sync sends everything again."
                        ),
                        Urgency::Normal,
                    ),
                    _ => Note::new(
                        "orgsync: sync failed",
                        format!(
                            "{reason}\nNothing was recorded; the next sync tries everything again."
                        ),
                        Urgency::Critical,
                    ),
                })
            }
        }
    }
}

/// The removal guard's message already names the limit and the commands; make sure the "what to
/// do" is there even if a future message does not.
fn refusal_body(reason: &str) -> String {
    if reason.contains("orgsync") {
        format!("Nothing was sent. {reason}")
    } else {
        format!(
            "Nothing was sent. {reason}. Check the removals with Test Now; if they are intended, run `orgsync sync --allow-removals`"
        )
    }
}

/// "4 invited", "1 removed", "2 groups created", "1 group updated" (only the non-zero ones).
fn changes(record: &RunRecord) -> Vec<String> {
    let s = &record.summary;
    let mut parts = Vec::new();
    if s.invited > 0 {
        parts.push(format!("{} invited", s.invited));
    }
    if s.removed > 0 {
        parts.push(format!("{} removed", s.removed));
    }
    if s.groups_created > 0 {
        parts.push(format!("{} group(s) created", s.groups_created));
    }
    if s.groups_updated > 0 {
        parts.push(format!("{} group(s) updated", s.groups_updated));
    }
    parts
}

fn read(record: &RunRecord) -> String {
    format!(
        "{} user(s) and {} group(s) read from the directory.",
        record.users_read, record.groups_read
    )
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The summary of the tray's own Test Now, from the full report.
pub fn tested(done: &TestDone) -> Note {
    let report = &done.report;
    let diff = &report.diff;
    let read = format!(
        "Read {} user(s) ({} enabled, {} disabled, {} deleted) and {} group(s).",
        report.users.len(),
        report.users.enabled.len(),
        report.users.disabled.len(),
        report.users.deleted.len(),
        report.groups.len()
    );
    let mut parts = Vec::new();
    if !diff.invite.is_empty() {
        parts.push(format!("invite {}", diff.invite.len()));
    }
    if !diff.remove.is_empty() {
        parts.push(format!("remove {}", diff.remove.len()));
    }
    if !diff.groups_created.is_empty() {
        parts.push(format!("create {} group(s)", diff.groups_created.len()));
    }
    if !diff.groups_updated.is_empty() {
        parts.push(format!("update {} group(s)", diff.groups_updated.len()));
    }
    let mut body = if parts.is_empty() {
        "A sync would change nothing.".to_string()
    } else {
        format!("A sync would {}.", parts.join(", "))
    };
    body.push(' ');
    body.push_str(&read);
    if !report.skipped.is_empty() {
        body.push_str(&format!(
            " {} entr{} skipped (see `orgsync test`).",
            report.skipped.len(),
            if report.skipped.len() == 1 {
                "y"
            } else {
                "ies"
            }
        ));
    }
    match &report.refusal {
        Some(refusal) => Note::new(
            "orgsync: test done, a sync would be refused",
            format!("{body}\n{}", refusal.message),
            Urgency::Critical,
        ),
        None => Note::new("orgsync: test done", body, Urgency::Normal),
    }
}

/// A menu action that did not happen.
pub fn action_failed(action: Action, reason: &str) -> Note {
    Note::new(
        &format!("orgsync: {} failed", action.label()),
        reason.to_string(),
        Urgency::Critical,
    )
}

/// Confirmation of Clear Sync Cache: it changes what the next sync does, so say so.
pub fn cache_cleared() -> Note {
    Note::new(
        "orgsync: sync cache cleared",
        "The next sync sends the whole directory again. Members stay as they are.",
        Urgency::Normal,
    )
}

/// Shows `note` on the desktop. Failures (no session bus, no notification server) are logged and
/// otherwise ignored: notifications are a courtesy, never a reason to stop.
pub async fn show(note: &Note) {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname(APP_NAME)
        .summary(&note.summary)
        .body(&note.body)
        .icon(match note.urgency {
            Urgency::Critical => "dialog-warning",
            Urgency::Normal | Urgency::Low => "dialog-information",
        })
        .urgency(match note.urgency {
            Urgency::Low => notify_rust::Urgency::Low,
            Urgency::Normal => notify_rust::Urgency::Normal,
            Urgency::Critical => notify_rust::Urgency::Critical,
        });
    match tokio::time::timeout(SHOW_TIMEOUT, notification.show_async()).await {
        Ok(Ok(_)) => tracing::debug!(summary = %note.summary, "notification shown"),
        Ok(Err(e)) => tracing::warn!(
            summary = %note.summary,
            "cannot show a desktop notification (is a notification daemon running?): {e}"
        ),
        Err(_) => tracing::warn!(
            summary = %note.summary,
            "the notification server did not answer within {SHOW_TIMEOUT:?}"
        ),
    }
}

#[cfg(test)]
mod tests;
