//! Durations as the profile writes them (`10s`, `5m`, `397d`): one grammar and one type, read by
//! the plan and used as is by the PKI and the renderers.
//!
//! The grammar is a positive integer and one unit: `ms`, `s`, `m`, `h`, `d`, `w` (7 days), `y`
//! (365 days), the subset of Prometheus durations every consumer here accepts. A [`Duration`]
//! keeps its unit so it renders back as written (`-evaluationInterval=10s`, the PKI's record of
//! the validity a certificate was issued with). What a consumer cannot use (a sub-second
//! certificate validity, one past its CA's) is refused by the plan through [`Duration::within`],
//! never discovered by a later stage.

use std::fmt;

/// A unit of [`Duration`], with its length in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// `ms`.
    Millis,
    /// `s`.
    Seconds,
    /// `m`.
    Minutes,
    /// `h`.
    Hours,
    /// `d`.
    Days,
    /// `w`: 7 days.
    Weeks,
    /// `y`: 365 days.
    Years,
}

impl Unit {
    const ALL: [Unit; 7] = [
        Unit::Millis,
        Unit::Seconds,
        Unit::Minutes,
        Unit::Hours,
        Unit::Days,
        Unit::Weeks,
        Unit::Years,
    ];

    /// The suffix as written.
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::Days => "d",
            Unit::Weeks => "w",
            Unit::Years => "y",
        }
    }

    fn millis(self) -> u64 {
        match self {
            Unit::Millis => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
            Unit::Days => 86_400_000,
            Unit::Weeks => 7 * 86_400_000,
            Unit::Years => 365 * 86_400_000,
        }
    }
}

/// A positive duration: a count of one [`Unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    count: u64,
    unit: Unit,
}

/// The longest duration accepted at all: 100 years, the CA's validity. Longer values overflow
/// date arithmetic somewhere downstream (X.509 dates end in 9999) and are never meant.
pub const MAX: Duration = Duration {
    count: 36_500,
    unit: Unit::Days,
};

impl Duration {
    /// A duration of `count` `unit`s (`count` may be 0 only here: a neutral value).
    pub const fn new(count: u64, unit: Unit) -> Self {
        Self { count, unit }
    }

    /// Parses `10s`, `500ms`, `397d`. The error is the message for the key path.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a duration (e.g. `10s`, `5m`, `397d`)");
        let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let suffix = &s[digits.len()..];
        let unit = Unit::ALL
            .into_iter()
            .find(|u| u.suffix() == suffix)
            .ok_or_else(bad)?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let count: u64 = digits.parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(bad());
        }
        let d = Self { count, unit };
        if d.millis().is_none_or(|ms| ms > MAX.millis().unwrap_or(0)) {
            return Err(format!("`{s}` is too long (at most `{MAX}`)"));
        }
        Ok(d)
    }

    /// Length in milliseconds, `None` on overflow.
    pub fn millis(self) -> Option<u64> {
        self.count.checked_mul(self.unit.millis())
    }

    /// Length in whole seconds, `None` when not a whole number of seconds.
    pub fn whole_seconds(self) -> Option<i64> {
        let ms = self.millis()?;
        if ms % 1_000 == 0 {
            i64::try_from(ms / 1_000).ok()
        } else {
            None
        }
    }

    /// Checks that this duration lies in `min..=max`; the error is the message for the key path.
    pub fn within(self, min: Duration, max: Duration) -> Result<Self, String> {
        let ms = self.millis().unwrap_or(u64::MAX);
        if ms < min.millis().unwrap_or(0) {
            Err(format!("`{self}` is too short (at least `{min}`)"))
        } else if ms > max.millis().unwrap_or(u64::MAX) {
            Err(format!("`{self}` is too long (at most `{max}`)"))
        } else {
            Ok(self)
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let cases: &[(&str, Option<u64>)] = &[
            ("10s", Some(10_000)),
            ("500ms", Some(500)),
            ("5m", Some(300_000)),
            ("12h", Some(43_200_000)),
            ("397d", Some(397 * 86_400_000)),
            ("2w", Some(14 * 86_400_000)),
            ("1y", Some(365 * 86_400_000)),
            ("36500d", Some(36_500 * 86_400_000)),
            ("10", None),
            ("0s", None),
            ("s", None),
            ("10 s", None),
            ("-5s", None),
            ("+5s", None),
            ("1.5h", None),
            ("1h30m", None),
            ("5S", None),
            ("5sec", None),
            ("", None),
            ("36501d", None),
            ("101y", None),
            ("99999999999999999999y", None),
            ("18446744073709551615ms", None),
        ];
        for (input, ms) in cases {
            let got = Duration::parse(input).ok().and_then(Duration::millis);
            assert_eq!(got, *ms, "{input:?}");
        }
    }

    #[test]
    fn renders_as_written() {
        for s in ["10s", "500ms", "7300d", "1y"] {
            assert_eq!(Duration::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            Duration::parse("soon").unwrap_err(),
            "`soon` is not a duration (e.g. `10s`, `5m`, `397d`)"
        );
        assert_eq!(
            Duration::parse("200y").unwrap_err(),
            "`200y` is too long (at most `36500d`)"
        );
        let d = Duration::parse("500ms").unwrap();
        assert_eq!(
            d.within(Duration::new(1, Unit::Hours), MAX).unwrap_err(),
            "`500ms` is too short (at least `1h`)"
        );
    }

    #[test]
    fn whole_seconds() {
        let s = |t: &str| Duration::parse(t).unwrap().whole_seconds();
        assert_eq!(s("2000ms"), Some(2));
        assert_eq!(s("1500ms"), None);
        assert_eq!(s("397d"), Some(397 * 86_400));
    }
}
