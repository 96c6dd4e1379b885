//! When a `Release` may be used: its `Date` not in the future and its `Valid-Until` not past,
//! measured against a [`Clock`] with an allowance for clock skew ([`SKEW`]), as apt refuses a
//! Release that "is not valid yet" or "is expired". Without these checks a correctly signed but
//! old repository state can be replayed (freezing builds on vulnerable versions), and a Release
//! dated in the future becomes every artifact's timestamp.
//!
//! Pure: the caller says what time it is. The dates follow the repository format
//! (<https://wiki.debian.org/DebianRepository/Format#Date.2C_Valid-Until>): RFC 2822 with
//! Debian's `UTC` zone.

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

/// How far (in seconds) a Release's `Date` may be ahead of the clock, and its `Valid-Until`
/// behind it: 10 minutes, for build machines whose clocks drift. apt's own allowance for a
/// future `Date` is 10 seconds (`Acquire::Max-FutureTime`) and none for `Valid-Until`.
pub const SKEW: i64 = 600;

/// The time a Release is checked against: this machine's clock, or a time given on purpose to
/// resolve against a known snapshot (`--apt-snapshot-at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Seconds since the epoch.
    pub at: i64,
    /// Whether `at` was given instead of read from the clock.
    pub snapshot: bool,
}

impl Clock {
    /// This machine's clock, now.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // validity is about the real time, not an artifact's
    pub fn now() -> Clock {
        Clock {
            at: OffsetDateTime::now_utc().unix_timestamp(),
            snapshot: false,
        }
    }

    /// The fixed time `text` (RFC 3339, `2025-05-20T00:00:00Z`), for replaying a known
    /// snapshot.
    pub fn snapshot(text: &str) -> Result<Clock, String> {
        let t = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
            format!("`{text}` is not an RFC 3339 time such as `2025-05-20T00:00:00Z`: {e}")
        })?;
        Ok(Clock {
            at: t.unix_timestamp(),
            snapshot: true,
        })
    }
}

/// Parses a Release date (`Sat, 10 May 2025 09:28:38 UTC`; RFC 2822 knows `UT` and `GMT` but
/// not `UTC`, which apt writes and reads) into seconds since the epoch.
pub fn parse_date(value: &str) -> Option<i64> {
    let value = value.trim();
    let value = match value.strip_suffix(" UTC") {
        Some(rest) => format!("{rest} +0000"),
        None => value.to_owned(),
    };
    OffsetDateTime::parse(&value, &Rfc2822)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// A Release refused for its dates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// `Valid-Until` is past (beyond the allowance).
    #[error(
        "the Release expired: Valid-Until {} is {} before the time checked, {}{}",
        rfc3339(*valid_until),
        span(at.saturating_sub(*valid_until)),
        rfc3339(*at),
        allowance()
    )]
    Expired {
        /// `Valid-Until`, seconds since the epoch.
        valid_until: i64,
        /// The time checked against.
        at: i64,
    },
    /// `Date` is in the future (beyond the allowance).
    #[error(
        "the Release is not valid yet: its Date {} is {} after the time checked, {}{}",
        rfc3339(*date),
        span(date.saturating_sub(*at)),
        rfc3339(*at),
        allowance()
    )]
    NotYet {
        /// `Date`, seconds since the epoch.
        date: i64,
        /// The time checked against.
        at: i64,
    },
}

/// Checks a Release's `date` and `valid_until` (either may be absent: apt accepts a Release
/// without them) against `clock`, allowing [`SKEW`] either way.
pub fn check(date: Option<i64>, valid_until: Option<i64>, clock: Clock) -> Result<(), Stale> {
    let at = clock.at;
    if let Some(date) = date.filter(|d| *d > at.saturating_add(SKEW)) {
        return Err(Stale::NotYet { date, at });
    }
    if let Some(valid_until) = valid_until.filter(|v| v.saturating_add(SKEW) < at) {
        return Err(Stale::Expired { valid_until, at });
    }
    Ok(())
}

/// `seconds` since the epoch as RFC 3339 (UTC) for a message ([`crate::oci::layout::shown`]).
pub fn rfc3339(seconds: i64) -> String {
    crate::oci::layout::shown(seconds)
}

/// A duration for people: `3d 4h`, `2h 5min`, `7min 3s`, `12s`.
fn span(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}min {sec}s"),
        (0, _, _) => format!("{h}h {m}min"),
        _ => format!("{d}d {h}h"),
    }
}

fn allowance() -> String {
    format!(" (clock skew allowed: {} minutes)", SKEW / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_746_869_318; // Sat, 10 May 2025 09:28:38 UTC

    fn at(t: i64) -> Clock {
        Clock {
            at: t,
            snapshot: false,
        }
    }

    #[test]
    fn parses_release_dates() {
        for (date, want) in [
            ("Thu, 01 Jan 1970 00:00:00 UTC", Some(0)),
            ("Wed, 31 Dec 1969 23:59:59 UTC", Some(-1)),
            ("Sat, 10 May 2025 09:28:38 UTC", Some(1_746_869_318)),
            ("Sat, 10 May 2025 11:28:38 +0200", Some(1_746_869_318)),
            ("Sat, 10 May 2025 09:28:38 GMT", Some(1_746_869_318)),
            ("Sat, 1 Jun 2024 00:00:00 UTC", Some(1_717_200_000)),
            ("Thu, 29 Feb 2024 23:59:59 UTC", Some(1_709_251_199)),
            ("Fri, 31 Dec 9999 23:59:59 UTC", Some(253_402_300_799)),
            // Not a leap year; no such day; not a date.
            ("Thu, 29 Feb 2023 00:00:00 UTC", None),
            ("Sat, 32 May 2025 09:28:38 UTC", None),
            ("nonsense", None),
        ] {
            assert_eq!(parse_date(date), want, "{date}");
        }
    }

    #[test]
    fn dates_within_the_allowance_pass() {
        for (date, until) in [
            (None, None),
            (Some(NOW - 86_400), Some(NOW + 86_400)),
            (Some(NOW + SKEW), None),
            (None, Some(NOW - SKEW)),
            (Some(0), Some(i64::MAX)),
        ] {
            assert_eq!(check(date, until, at(NOW)), Ok(()), "{date:?} {until:?}");
        }
    }

    #[test]
    fn a_future_date_and_a_past_valid_until_are_refused_with_the_times() {
        let e = check(Some(NOW + SKEW + 1), None, at(NOW)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Release is not valid yet: its Date 2025-05-10T09:38:39Z is 10min 1s after the \
             time checked, 2025-05-10T09:28:38Z (clock skew allowed: 10 minutes)"
        );
        let e = check(Some(NOW - 86_400), Some(NOW - SKEW - 1), at(NOW)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Release expired: Valid-Until 2025-05-10T09:18:37Z is 10min 1s before the time \
             checked, 2025-05-10T09:28:38Z (clock skew allowed: 10 minutes)"
        );
        let far = parse_date("Fri, 01 Jan 2100 00:00:00 UTC").unwrap();
        let e = check(Some(far), None, at(NOW)).unwrap_err();
        assert!(
            e.to_string()
                .contains("2100-01-01T00:00:00Z is 27263d 14h after"),
            "{e}"
        );
        // A future date is named before an expiry: it is the one that would move timestamps.
        assert!(matches!(
            check(Some(far), Some(0), at(NOW)),
            Err(Stale::NotYet { .. })
        ));
    }

    #[test]
    fn a_snapshot_time_replaces_the_clock() {
        let old = parse_date("Tue, 20 May 2025 00:00:00 UTC").unwrap();
        let clock = Clock::snapshot("2025-05-21T00:00:00Z").unwrap();
        assert!(clock.snapshot);
        assert_eq!(clock.at, old + 86_400);
        assert_eq!(check(Some(old), Some(old + 7 * 86_400), clock), Ok(()));
        let later = Clock::snapshot("2025-06-21T00:00:00+02:00").unwrap();
        assert!(check(Some(old), Some(old + 7 * 86_400), later).is_err());
        let e = Clock::snapshot("20 May 2025").unwrap_err();
        assert!(
            e.starts_with("`20 May 2025` is not an RFC 3339 time"),
            "{e}"
        );
    }

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(12), "12s");
        assert_eq!(span(423), "7min 3s");
        assert_eq!(span(7500), "2h 5min");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn out_of_range_times_are_still_printed() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(i64::MAX),
            format!("{} seconds after the epoch", i64::MAX)
        );
    }
}
