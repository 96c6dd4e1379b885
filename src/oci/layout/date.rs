//! Creation times: seconds since 1970-01-01 UTC written as RFC 3339 by the `time` crate, without
//! a clock or a time zone database.

use anyhow::{anyhow, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
    let t = i64::try_from(epoch)
        .ok()
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
