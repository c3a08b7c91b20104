//! When the daemon polls: every N minutes, or on a cron expression, with backoff after failures.
//!
//! The next run time is computed here and the daemon sleeps until then with a single timer, so an
//! idle daemon does not wake up between polls. (tokio-cron-scheduler was not used for this reason:
//! its scheduler wakes every 500 ms; orgsync uses croner, the cron parser it is built on.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::config::SyncConfig;

/// Longest pause after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub enum Schedule {
    Every(Duration),
    Cron { expression: String, cron: Box<Cron> },
}

impl Schedule {
    /// The schedule a sync configuration asks for: `schedule` if set, else `interval_minutes`.
    pub fn from_config(sync: &SyncConfig) -> Result<Schedule, String> {
        match sync
            .schedule
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(expression) => Schedule::cron(expression),
            None => Ok(Schedule::Every(Duration::from_secs(
                60 * u64::from(sync.interval_minutes.max(1)),
            ))),
        }
    }

    /// Parses a cron expression (5 or 6 fields, or an alias like `@hourly`).
    pub fn cron(expression: &str) -> Result<Schedule, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| {
                format!(
                    "{expression:?} is not a cron expression ({e}); write it like `0 */15 * * * *` or `@hourly`"
                )
            })?;
        Ok(Schedule::Cron {
            expression: expression.to_string(),
            cron: Box::new(cron),
        })
    }

    /// For status: `every 5 minutes`, `cron 0 */15 * * * *`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(every) if every.as_secs() % 60 == 0 => {
                let minutes = every.as_secs() / 60;
                if minutes == 1 {
                    "every minute".into()
                } else {
                    format!("every {minutes} minutes")
                }
            }
            Schedule::Every(every) => format!("every {} seconds", every.as_secs()),
            Schedule::Cron { expression, .. } => format!("cron {expression} (UTC)"),
        }
    }

    /// The next run after `after`, given how many scheduled runs failed in a row. After
    /// failures the wait doubles (from one period, capped at an hour) so a broken directory is
    /// not hammered, and the first success returns to the normal schedule.
    pub fn next_after(&self, after: DateTime<Utc>, failures: u32) -> DateTime<Utc> {
        let regular = match self {
            Schedule::Every(every) => {
                after + chrono::Duration::from_std(*every).unwrap_or_default()
            }
            Schedule::Cron { cron, .. } => cron
                .find_next_occurrence(&after, false)
                .unwrap_or(after + chrono::Duration::hours(1)),
        };
        if failures == 0 {
            return regular;
        }
        let period = (regular - after)
            .to_std()
            .unwrap_or(Duration::from_secs(60));
        let backoff = period
            .saturating_mul(1 << failures.min(16))
            .min(MAX_BACKOFF)
            .max(period);
        after + chrono::Duration::from_std(backoff).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn interval_schedules_add_the_period_and_back_off_after_failures() {
        let schedule = Schedule::Every(Duration::from_secs(300));
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(schedule.next_after(now, 0), at("2026-01-01T00:05:00Z"));
        assert_eq!(schedule.next_after(now, 1), at("2026-01-01T00:10:00Z"));
        assert_eq!(schedule.next_after(now, 2), at("2026-01-01T00:20:00Z"));
        assert_eq!(schedule.next_after(now, 10), at("2026-01-01T01:00:00Z"));
        assert_eq!(schedule.describe(), "every 5 minutes");
    }

    #[test]
    fn cron_schedules_find_the_next_match() {
        let schedule = Schedule::cron("0 */15 * * * *").unwrap();
        assert_eq!(
            schedule.next_after(at("2026-01-01T00:07:30Z"), 0),
            at("2026-01-01T00:15:00Z")
        );
        let five_fields = Schedule::cron("30 2 * * *").unwrap();
        assert_eq!(
            five_fields.next_after(at("2026-01-01T00:00:00Z"), 0),
            at("2026-01-01T02:30:00Z")
        );
        assert!(
            Schedule::cron("every tuesday")
                .unwrap_err()
                .contains("cron expression")
        );
    }
}
