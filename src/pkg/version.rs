//! Debian version numbers: dpkg's ordering and the relations of dependency fields.
//!
//! Owns `[epoch:]upstream[-revision]` comparison exactly as dpkg does it
//! (<https://www.debian.org/doc/debian-policy/ch-controlfields.html#version>): `~` sorts before
//! everything, even the end of the string; letters sort before other characters; digit runs
//! compare numerically. It does not validate version syntax: a malformed version still gets a
//! total, deterministic order.

use std::cmp::Ordering;
use std::fmt;

/// Compares two Debian versions the way `dpkg --compare-versions` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_epoch, a_upstream, a_revision) = split(a);
    let (b_epoch, b_upstream, b_revision) = split(b);
    compare_digits(a_epoch, b_epoch)
        .then_with(|| compare_part(a_upstream, b_upstream))
        .then_with(|| compare_part(a_revision, b_revision))
}

/// A relation of a versioned dependency, as written between the parentheses of `Depends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// `<<`: strictly earlier.
    Lt,
    /// `<=`: earlier or equal.
    Le,
    /// `=`: exactly equal.
    Eq,
    /// `>=`: later or equal.
    Ge,
    /// `>>`: strictly later.
    Gt,
}

impl Relation {
    /// Parses `<<`, `<=`, `=`, `>=`, `>>`, and the obsolete `<` and `>` (which dpkg reads as
    /// `<=` and `>=`).
    pub fn parse(s: &str) -> Option<Relation> {
        Some(match s {
            "<<" => Relation::Lt,
            "<=" | "<" => Relation::Le,
            "=" => Relation::Eq,
            ">=" | ">" => Relation::Ge,
            ">>" => Relation::Gt,
            _ => return None,
        })
    }

    /// The operator as Debian writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Lt => "<<",
            Relation::Le => "<=",
            Relation::Eq => "=",
            Relation::Ge => ">=",
            Relation::Gt => ">>",
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `version` stands in `relation` to `wanted`, e.g. `satisfies("1.2", Ge, "1.0")`.
pub fn satisfies(version: &str, relation: Relation, wanted: &str) -> bool {
    let order = compare(version, wanted);
    match relation {
        Relation::Lt => order == Ordering::Less,
        Relation::Le => order != Ordering::Greater,
        Relation::Eq => order == Ordering::Equal,
        Relation::Ge => order != Ordering::Less,
        Relation::Gt => order == Ordering::Greater,
    }
}

/// Splits into epoch digits, upstream and revision. The epoch is what precedes the first `:`
/// when that is all digits; the revision follows the last `-` (absent compares like `0`).
fn split(v: &str) -> (&str, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => (e, rest),
        _ => ("", v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The weight of one non-digit position in dpkg's `order()`: `~` below the end of the string,
/// the end and digits at 0, letters by code, everything else after all letters.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares two runs of digits numerically, without overflow: leading zeros skipped, then a
/// longer run is larger, then the first differing digit decides.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's `verrevcmp`: alternate non-digit runs (compared by [`weight`]) and digit runs.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        loop {
            let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
            let a_text = ca.is_some_and(|c| !c.is_ascii_digit());
            let b_text = cb.is_some_and(|c| !c.is_ascii_digit());
            if !a_text && !b_text {
                break;
            }
            let order = weight(ca).cmp(&weight(cb));
            if order != Ordering::Equal {
                return order;
            }
            i += 1;
            j += 1;
        }
        let a_end = i + a[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let b_end = j + b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        // Both runs are ASCII digits, so the slices are valid UTF-8.
        let order = compare_digits(
            std::str::from_utf8(&a[i..a_end]).unwrap_or_default(),
            std::str::from_utf8(&b[j..b_end]).unwrap_or_default(),
        );
        if order != Ordering::Equal {
            return order;
        }
        i = a_end;
        j = b_end;
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn compares_like_dpkg() {
        let cases = [
            ("1.22.1-9+deb12u11", "1.22.1-9+deb12u11.1~", Less),
            ("1.22.1-9+deb12u9", "1.22.1-9+deb12u9.1~", Less),
            ("1.22.1-9+deb12u11", "1.22.1-9+deb12u9", Greater),
            ("1:0.63-4~", "1:0.63-4", Less),
            ("1:0.63-4", "1:0.63-4~", Greater),
            ("1:0.63-4+b1", "1:0.63-4~", Greater),
            ("2.90-4~deb12u2", "2.90-4", Less),
            ("2.90-4~deb12u2", "2.90-3", Greater),
            ("2.90-4~deb12u2", "2.90-4~deb12u1", Greater),
            ("2.90-4~deb12u2", "2.90-4~", Greater),
            ("1:1.0", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("2:0.1", "1:9.9", Greater),
            ("10:1", "9:1", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0~a", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.", Less),
            ("1.010", "1.9", Greater),
            ("1.001", "1.1", Equal),
            ("1.2.3", "1.2.3", Equal),
            ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", Greater),
            ("1.1-1", "1.1-1+b1", Less),
            ("1-2-3", "1-2-4", Less),
            ("1-2-3", "1-2", Greater),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
            ("a", "", Greater),
            ("~", "", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn relations_hold() {
        use Relation::{Eq, Ge, Gt, Le, Lt};
        let cases = [
            ("1:0.63-4", Ge, "1:0.63-4~", true),
            ("1:0.63-3", Ge, "1:0.63-4~", false),
            ("1.22.1-9+deb12u11", Lt, "1.22.1-9+deb12u11.1~", true),
            ("1.22.1-9+deb12u11.1", Lt, "1.22.1-9+deb12u11.1~", false),
            ("1.0", Le, "1.0", true),
            ("1.0", Eq, "1.0-0", true),
            ("1.0", Gt, "1.0", false),
            ("1.1", Gt, "1.0", true),
            ("1.0", Lt, "1.0", false),
        ];
        for (v, rel, wanted, want) in cases {
            assert_eq!(satisfies(v, rel, wanted), want, "{v} {rel} {wanted}");
        }
    }

    #[test]
    fn relation_round_trips() {
        for op in ["<<", "<=", "=", ">=", ">>"] {
            assert_eq!(Relation::parse(op).map(Relation::as_str), Some(op));
        }
        assert_eq!(Relation::parse("<"), Some(Relation::Le));
        assert_eq!(Relation::parse(">"), Some(Relation::Ge));
        assert_eq!(Relation::parse("=="), None);
    }
}
