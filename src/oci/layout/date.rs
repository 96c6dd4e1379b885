//! Creation times: seconds since 1970-01-01 UTC written as RFC 3339 by the `time` crate, without
//! a clock or a time zone database. The one date module: every time infragen writes into an
//! artifact (image configs, annotations, SBOMs, tar mtimes) is one of these, so its bounds live
//! here — 0 (1970-01-01T00:00:00Z) to [`LAST_EPOCH`] (9999-12-31T23:59:59Z), the years RFC 3339
//! writes with its four digits — and the time sources (`$SOURCE_DATE_EPOCH`, the lock's
//! `source_date_epoch`) are checked against them when they are read ([`parse_epoch`],
//! [`check_epoch`]), before anything is built.

use anyhow::{anyhow, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The last instant RFC 3339 can write, 9999-12-31T23:59:59Z, in seconds since 1970.
pub const LAST_EPOCH: u64 = 253_402_300_799;

/// Checks that `epoch` (seconds since 1970) is one RFC 3339 can write: at most [`LAST_EPOCH`].
/// The error says why, for the caller to put after the name of where the value came from.
pub fn check_epoch(epoch: u64) -> Result<u64, String> {
    if epoch > LAST_EPOCH {
        return Err(format!(
            "{epoch} is after 9999-12-31T23:59:59Z ({LAST_EPOCH}), the last instant RFC 3339 can write"
        ));
    }
    Ok(epoch)
}

/// Parses a time source written as `SOURCE_DATE_EPOCH` is (reproducible-builds.org: decimal
/// digits only, seconds since 1970-01-01T00:00:00Z, no sign, space or fraction) and bounds it
/// with [`check_epoch`].
pub fn parse_epoch(text: &str) -> Result<u64, String> {
    let shown = || {
        let mut s: String = text
            .chars()
            .take(40)
            .collect::<String>()
            .escape_debug()
            .to_string();
        if text.chars().nth(40).is_some() {
            s.push('…');
        }
        s
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a number of seconds since 1970-01-01T00:00:00Z (decimal digits only)",
            shown()
        ));
    }
    match text.parse::<u64>() {
        Ok(epoch) => check_epoch(epoch),
        // All digits, so only too large for 64 bits: far past the last instant.
        Err(_) => Err(format!(
            "{} is after 9999-12-31T23:59:59Z ({LAST_EPOCH}), the last instant RFC 3339 can write",
            shown()
        )),
    }
}

/// `seconds` since 1970-01-01 UTC as RFC 3339 for a message (a time read from outside: a
/// Release's dates, a certificate's validity, a clock): never fails, and an instant RFC 3339
/// cannot write is shown as its number of seconds.
#[must_use]
pub fn shown(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{seconds} seconds after the epoch"))
}

/// `epoch` (seconds since 1970-01-01 UTC) as RFC 3339 in UTC: `1970-01-01T00:00:00Z`. An instant
/// after 9999-12-31T23:59:59Z is refused: RFC 3339 writes years with four digits.
pub fn rfc3339(epoch: u64) -> Result<String> {
    let too_late = || {
        anyhow!(
            "creation time {epoch} (seconds since 1970) is after 9999-12-31T23:59:59Z, the last \
             instant RFC 3339 can write\nhint: check SOURCE_DATE_EPOCH and the lock's \
             `source_date_epoch`"
        )
    };
    let t = check_epoch(epoch)
        .ok()
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .filter(|t| t.year() <= 9999)
        .ok_or_else(too_late)?;
    t.format(&Rfc3339).map_err(|_| too_late())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        for (epoch, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (59, "1970-01-01T00:00:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (4_107_456_000, "2100-02-28T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(epoch).unwrap(), want, "{epoch}");
        }
    }

    #[test]
    fn rfc3339_refuses_instants_past_year_9999() {
        for epoch in [253_402_300_800, u64::from(u32::MAX) * 1000, u64::MAX] {
            let e = rfc3339(epoch).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "creation time {epoch} (seconds since 1970) is after "
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn epochs_parse_strictly_and_stop_at_the_last_rfc3339_instant() {
        let last =
            "is after 9999-12-31T23:59:59Z (253402300799), the last instant RFC 3339 can write";
        let digits = "is not a number of seconds since 1970-01-01T00:00:00Z (decimal digits only)";
        for (text, want) in [
            ("0", Ok(0)),
            ("0000", Ok(0)),
            ("1767225600", Ok(1_767_225_600)),
            ("253402300799", Ok(LAST_EPOCH)),
            ("253402300800", Err(format!("253402300800 {last}"))),
            (
                "18446744073709551615",
                Err(format!("18446744073709551615 {last}")),
            ),
            (
                "18446744073709551616",
                Err(format!("18446744073709551616 {last}")),
            ),
            ("", Err(format!("`` {digits}"))),
            ("-1", Err(format!("`-1` {digits}"))),
            ("+5", Err(format!("`+5` {digits}"))),
            (" 5", Err(format!("` 5` {digits}"))),
            ("5\n", Err(format!("`5\\n` {digits}"))),
            ("1.5", Err(format!("`1.5` {digits}"))),
            ("1e9", Err(format!("`1e9` {digits}"))),
            ("٣", Err(format!("`٣` {digits}"))),
        ] {
            assert_eq!(parse_epoch(text), want, "{text:?}");
        }
        assert_eq!(check_epoch(LAST_EPOCH), Ok(LAST_EPOCH));
        assert_eq!(check_epoch(0), Ok(0));
        assert_eq!(
            check_epoch(u64::MAX),
            Err(format!("18446744073709551615 {last}"))
        );
        // The bound is exactly the last instant the formatter writes.
        assert_eq!(rfc3339(LAST_EPOCH).unwrap(), "9999-12-31T23:59:59Z");
        assert!(rfc3339(LAST_EPOCH + 1).is_err());
    }

    #[test]
    fn rfc3339_walks_every_day() {
        // Day by day from 1970 to 2400 the date advances by exactly one calendar day: the leap
        // rules (4, 100, 400) hold in every year, not only at the instants above.
        let leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let ymd = |days: u64| {
            let s = rfc3339(days * 86_400).unwrap();
            let n: Vec<u64> = s[..10].split('-').map(|p| p.parse().unwrap()).collect();
            assert_eq!(&s[10..], "T00:00:00Z");
            (n[0], n[1], n[2])
        };
        let mut prev = ymd(0);
        for days in 1..157_000 {
            let next = ymd(days);
            let (y, m, d) = prev;
            let month_len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let want = if d < month_len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, want, "day {days}");
            prev = next;
        }
    }
}
