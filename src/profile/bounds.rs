//! Limits a profile must stay within: its size, its nesting, how many values it holds and how
//! many of those it repeats through YAML aliases.
//!
//! They keep hostile text cheap to refuse and large text affordable. The size is checked
//! before parsing; nesting, values and alias expansion are checked by the parser as it reads
//! (`yaml::Limits`), so text nested past the limit or repeating one list through many aliases
//! is refused at the event that goes past it, after reading no more than that. The largest real
//! inventories we know (Pigsty's own, in the test fixtures) are 12 KB, nest at most 9 levels
//! deep and hold a few hundred values; the limits leave room for a generated inventory of
//! 100,000 hosts (about 50 MB and 4.4 million values, `tests/big_profile.rs`), and bound the
//! memory a profile can take (docs/yaml.md). Owns the limits and their messages.

use std::fmt;

use crate::yaml;

/// Largest profile, in bytes (64 MiB): room for a 100,000-host inventory of about 50 MB.
pub const MAX_BYTES: usize = 64 << 20;

/// Deepest nesting of block and flow collections.
pub const MAX_DEPTH: usize = 64;

/// Most values a profile may hold, counting every value an alias repeats each time it is used:
/// the 100,000-host inventory holds 4.4 million.
pub const MAX_VALUES: usize = 8_000_000;

/// Most values a profile may repeat through aliases, each time counted again. Real inventories
/// repeat a few mappings of defaults; a small text that repeats one list many times (a "billion
/// laughs") is refused here while it is still cheap, long before [`MAX_VALUES`].
pub const MAX_ALIASED: usize = 200_000;

/// The limits the parser checks.
pub const LIMITS: yaml::Limits = yaml::Limits {
    depth: MAX_DEPTH,
    values: MAX_VALUES,
    aliased: MAX_ALIASED,
};

/// Which limit a profile went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// Larger than [`MAX_BYTES`]; the size in bytes, when known (a pipe's is not).
    Size(Option<u64>),
    /// Nested deeper than [`MAX_DEPTH`], first at this 1-based line and column.
    Depth {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// More than [`MAX_VALUES`] values; the value that went past the limit, when known.
    Values(Option<(usize, usize)>),
    /// More than [`MAX_ALIASED`] values repeated through aliases; the alias that went past it.
    Aliased(Option<(usize, usize)>),
}

impl Exceeded {
    /// The 1-based line and column the message points at, if any.
    pub fn at(&self) -> Option<(usize, usize)> {
        match *self {
            Self::Size(_) => None,
            Self::Depth { line, column } => Some((line, column)),
            Self::Values(at) | Self::Aliased(at) => at,
        }
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Size(Some(bytes)) => write!(
                f,
                "profile is {bytes} bytes; the limit is {} MiB",
                MAX_BYTES >> 20
            ),
            Self::Size(None) => write!(
                f,
                "profile is larger than the limit of {} MiB",
                MAX_BYTES >> 20
            ),
            Self::Depth { .. } => write!(f, "nesting deeper than {MAX_DEPTH} levels"),
            Self::Values(_) => write!(
                f,
                "profile holds more than {MAX_VALUES} values (an alias counts every value it repeats)"
            ),
            Self::Aliased(_) => write!(
                f,
                "profile repeats more than {MAX_ALIASED} values through aliases (each use of an alias counts every value it repeats)"
            ),
        }
    }
}

/// Checks the limit that is known before parsing: the size. The others are checked while
/// parsing (`LIMITS`).
pub fn check(text: &str) -> Result<(), Exceeded> {
    if text.len() > MAX_BYTES {
        return Err(Exceeded::Size(Some(text.len() as u64)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn aliased(text: &str, max: usize) -> Result<(), yaml::Error> {
        yaml::parse(
            text,
            yaml::Limits {
                aliased: max,
                ..LIMITS
            },
        )
        .map(|_| ())
    }

    #[test]
    fn aliases_count_every_value_they_repeat() {
        let ten = |item: &str| [item; 10].join(", ");
        // One wide list repeated by as many aliases: 6 KB, 4 million values.
        let wide = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 2000].join(","),
            vec!["*a"; 2000].join(",")
        );
        // The location is the alias that would go past the budget: the 100th (2,001 values
        // each), in column 302.
        let start = Instant::now();
        let err = aliased(&wide, MAX_ALIASED).unwrap_err();
        assert_eq!(
            err,
            yaml::Error::Aliased {
                at: yaml::Pos {
                    line: 2,
                    column: 302
                }
            }
        );
        assert!(start.elapsed() < Duration::from_secs(1));

        // The list and its ten items, again through the alias: 11 repeated.
        let small = format!("a: &a [{}]\nb: *a\n", ten("x"));
        assert_eq!(aliased(&small, 11), Ok(()));
        assert!(aliased(&small, 10).is_err());
        // Every value counts against the whole budget too: the mapping, two keys, the list
        // and its items, then the list and its items again: 25.
        let limits = |values| yaml::Limits { values, ..LIMITS };
        assert!(yaml::parse(&small, limits(25)).is_ok());
        assert_eq!(
            yaml::parse(&small, limits(24)).unwrap_err(),
            yaml::Error::Values {
                at: yaml::Pos { line: 2, column: 4 }
            }
        );
    }

    #[test]
    fn size_is_checked_first() {
        let big = "#".repeat(MAX_BYTES + 1);
        assert_eq!(check(&big), Err(Exceeded::Size(Some(MAX_BYTES as u64 + 1))));
        assert_eq!(
            Exceeded::Size(Some(70_000_000)).to_string(),
            "profile is 70000000 bytes; the limit is 64 MiB"
        );
        assert_eq!(
            Exceeded::Size(None).to_string(),
            "profile is larger than the limit of 64 MiB"
        );
    }

    /// Hostile nesting of every kind is refused at the level past the limit, within a second
    /// (the parser stops there instead of reading the rest).
    #[test]
    fn hostile_nesting_is_refused_at_once() {
        let block: String = (0..20_000)
            .map(|i| format!("{}a:\n", " ".repeat(i % 5000)))
            .collect();
        for (name, text, at) in [
            // In flow context the scanner reads ahead of the events and stops itself at 255 levels.
            ("flow sequences", "[".repeat(4_000_000), (1, 256)),
            ("flow mappings", "{a: ".repeat(1_000_000), (1, 1021)),
            (
                "flow sequences, one a line",
                "[\n".repeat(2_000_000),
                (256, 1),
            ),
            ("block mappings", block, (65, 65)),
            ("block sequences", "- ".repeat(2_000_000), (1, 129)),
        ] {
            let start = Instant::now();
            let err = yaml::parse(&text, LIMITS).unwrap_err();
            let took = start.elapsed();
            assert!(
                matches!(err, yaml::Error::Depth { at: p } if (p.line, p.column) == at),
                "{name}: {err:?}"
            );
            assert!(took < Duration::from_secs(1), "{name}: {took:?}");
        }
    }

    /// Every real inventory we have passes each limit by a wide margin: the built-in profiles
    /// and Pigsty-dialect inventories (ours in tests/fixtures, Pigsty's own in ../shared) are
    /// at most 12 KB, 9 levels deep, 400 values and a few repeated through aliases.
    #[test]
    fn real_inventories_are_far_inside_the_limits() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        // The built-in profiles, our Pigsty-dialect fixtures, and Pigsty's own when `../shared`
        // is present beside the repository.
        let shared = root.join("../shared/fixtures/pigsty");
        let mut dirs = vec![root.join("profiles"), root.join("tests/fixtures/pigsty")];
        if shared.is_dir() {
            dirs.push(shared);
        }
        let mut files: Vec<_> = dirs
            .iter()
            .flat_map(|d| std::fs::read_dir(d).expect("inventory directory"))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        files.sort();
        assert!(files.len() >= 9, "{files:?}");
        let tight = yaml::Limits {
            depth: MAX_DEPTH / 4,
            values: 1000,
            aliased: MAX_ALIASED / 100,
        };
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            assert!(text.len() * 4096 < MAX_BYTES, "{}", file.display());
            if let Err(e) = yaml::parse(&text, tight) {
                panic!("{}: {e:?}", file.display());
            }
        }
    }
}
