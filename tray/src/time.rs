//! Short, local, human times for the menu and the report.
//!
//! The daemon speaks RFC 3339 in UTC; a menu line has room for "14:05" or "Mon 14:05", not for a
//! full timestamp. Everything here is generic over the time zone so tests can pin it to UTC.

use chrono::{DateTime, Datelike, TimeZone};

/// Parses an RFC 3339 time from the daemon into `tz`. `None` for text that is not one (a newer
/// daemon could send something else; the menu then shows the raw text).
pub fn parse<Tz: TimeZone>(text: &str, tz: &Tz) -> Option<DateTime<Tz>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(tz))
}

/// `14:05` today, `yesterday 14:05`, `Mon 14:05` within a week either side, else `2026-11-25 14:05`.
pub fn short<Tz: TimeZone>(text: &str, now: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let Some(at) = parse(text, &now.timezone()) else {
        return text.to_string();
    };
    let days = at.date_naive().num_days_from_ce() - now.date_naive().num_days_from_ce();
    let clock = at.format("%H:%M");
    match days {
        0 => clock.to_string(),
        -1 => format!("yesterday {clock}"),
        1 => format!("tomorrow {clock}"),
        -6..=6 => format!("{} {clock}", at.format("%a")),
        _ => at.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// A full local time for the report: `2026-11-25 14:05:09 +01:00`.
pub fn long<Tz: TimeZone>(text: &str, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match parse(text, tz) {
        Some(at) => at.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => text.to_string(),
    }
}

/// `850 ms`, `4.2 s`, `3 min 5 s`.
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn now() -> DateTime<Utc> {
        parse("2026-11-25T14:00:00Z", &Utc).expect("valid")
    }

    #[test]
    fn short_times_say_the_day_only_when_it_is_not_today() {
        assert_eq!(short("2026-11-25T09:05:00Z", &now()), "09:05");
        assert_eq!(short("2026-11-24T23:59:00Z", &now()), "yesterday 23:59");
        assert_eq!(short("2026-11-26T00:01:00Z", &now()), "tomorrow 00:01");
        assert_eq!(short("2026-11-21T08:00:00Z", &now()), "Sat 08:00");
        assert_eq!(short("2026-10-01T08:00:00Z", &now()), "2026-10-01 08:00");
    }

    #[test]
    fn other_offsets_are_converted() {
        assert_eq!(short("2026-11-25T15:30:00+01:00", &now()), "14:30");
    }

    #[test]
    fn text_that_is_not_a_time_is_shown_as_is() {
        assert_eq!(short("soon", &now()), "soon");
        assert_eq!(long("soon", &Utc), "soon");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(4_240), "4.2 s");
        assert_eq!(duration_ms(185_000), "3 min 5 s");
    }
}
