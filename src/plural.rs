//! Counted nouns in messages for people: `1 host`, `3 hosts`, `1 entry`, `2 entries`.
//!
//! One helper so that no message says `1 hosts`. English only; nouns are the program's own,
//! never user input.

use std::fmt::Display;

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
