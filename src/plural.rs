//! Counted nouns in messages for people: `1 host`, `3 hosts`, `1 entry`, `2 entries`; and byte
//! counts (`812 B`, `4.2 KiB`, `9.9 MiB`).
//!
//! One helper each, so that no message says `1 hosts` and every size is written one way.
//! English only; nouns are the program's own, never user input.

use std::fmt::Display;

/// A byte count for people: `812 B`, `4.2 KiB`, `9.9 MiB`.
pub fn bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a rounded display value
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{:.1} KiB", f / 1024.0)
    } else if n < 1 << 30 {
        format!("{:.1} MiB", f / f64::from(1u32 << 20))
    } else {
        format!("{:.1} GiB", f / f64::from(1u32 << 30))
    }
}

/// `n` and `noun`, the noun plural unless `n` is 1 (`count(1, "host")` is `1 host`).
pub fn count(n: impl Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" {
        format!("{n} {noun}")
    } else {
        format!("{n} {}", plural(noun))
    }
}

/// The plural of `noun`: `-ies` after a consonant and `y`, `-es` after a sibilant, else `-s`.
pub fn plural(noun: &str) -> String {
    if let Some(stem) = noun.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| noun.ends_with(s))
    {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4300), "4.2 KiB");
        assert_eq!(bytes(12_900_000), "12.3 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn counts() {
        let cases = [
            (count(0, "host"), "0 hosts"),
            (count(1, "host"), "1 host"),
            (count(2_u64, "host"), "2 hosts"),
            (count(1, "entry"), "1 entry"),
            (count(3, "entry"), "3 entries"),
            (count(2, "key"), "2 keys"),
            (count(2, "match"), "2 matches"),
            (count(2, "diff_id"), "2 diff_ids"),
            (count(11, "blob"), "11 blobs"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
