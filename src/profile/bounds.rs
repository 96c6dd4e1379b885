//! Limits a profile must stay within before it is parsed: its size, its nesting and how many
//! values it expands to through YAML aliases.
//!
//! They keep hostile text cheap to refuse. libyaml's time grows with the square of the flow
//! nesting (400 KB of `{a: {a: …` take minutes); `serde_yaml` follows every alias anew and
//! bounds only the number of alias jumps, which stops the classic "billion laughs" but not one
//! long list repeated by many aliases (5 KB expand to a million values; 50 KB run for more
//! than a minute); and it reads a few MB/s at best. The limits sit far above any real
//! inventory: the largest we know (Pigsty's own, in the test fixtures) are 12 KB, nest at most
//! 9 levels deep and hold a few hundred values.
//! Owns the limits and their checks; the nesting scan itself is `depth`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

use super::depth;

/// Largest profile, in bytes (1 MiB): `serde_yaml` parses that in under a second.
pub const MAX_BYTES: usize = 1 << 20;

/// Deepest nesting of block and flow collections.
pub const MAX_DEPTH: usize = 64;

/// Most values a profile may hold, counting every value an alias repeats each time it is used.
pub const MAX_VALUES: usize = 200_000;

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
}

impl Exceeded {
    /// The 1-based line and column the message points at, if any.
    pub fn at(&self) -> Option<(usize, usize)> {
        match *self {
            Self::Size(_) => None,
            Self::Depth { line, column } => Some((line, column)),
            Self::Values(at) => at,
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
        }
    }
}

/// Checks every limit on `text`. YAML syntax errors are left to the parser that follows.
pub fn check(text: &str) -> Result<(), Exceeded> {
    if text.len() > MAX_BYTES {
        return Err(Exceeded::Size(Some(text.len() as u64)));
    }
    depth::check(text, MAX_DEPTH).map_err(|d| Exceeded::Depth {
        line: d.line,
        column: d.column,
    })?;
    values(text, MAX_VALUES)
}

/// Walks the document the way `serde_yaml` builds a value, aliases expanded, and stops after
/// `max` values: the walk, unlike building the value, has a budget.
fn values(text: &str, max: usize) -> Result<(), Exceeded> {
    let count = Count {
        seen: &Cell::new(0),
        max,
        over: &Cell::new(false),
    };
    let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
        return Ok(());
    };
    match count.deserialize(document) {
        Err(e) if count.over.get() => Err(Exceeded::Values(
            e.location().map(|l| (l.line(), l.column())),
        )),
        // Anything else is a syntax error, which parsing reports with its location.
        _ => Ok(()),
    }
}

/// A visitor that counts values and fails once there are more than `max`.
#[derive(Clone, Copy)]
struct Count<'c> {
    seen: &'c Cell<usize>,
    max: usize,
    over: &'c Cell<bool>,
}

impl Count<'_> {
    fn tick<E: de::Error>(self) -> Result<(), E> {
        self.seen.set(self.seen.get() + 1);
        if self.seen.get() > self.max {
            self.over.set(true);
            return Err(E::custom("too many values"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged value (`!tag value`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use de::VariantAccess as _;
        self.tick()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_count_every_value_they_repeat() {
        let ten = |item: &str| [item; 10].join(", ");
        // serde_yaml itself stops the classic "billion laughs" (it bounds alias jumps by the
        // number of events), but not one wide list repeated by as many aliases: 6 KB, 4 million
        // values.
        let wide = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 2000].join(","),
            vec!["*a"; 2000].join(",")
        );
        // The location is the value being repeated when the budget ran out.
        let err = values(&wide, MAX_VALUES).unwrap_err();
        assert!(matches!(err, Exceeded::Values(Some((1, _)))), "{err:?}");

        // The mapping, its two keys, the list and its ten items, then the list and its items
        // again through the alias: 25.
        let small = format!("a: &a [{}]\nb: *a\n", ten("x"));
        assert_eq!(values(&small, 25), Ok(()));
        assert!(values(&small, 24).is_err());
        // A tagged value counts itself, its tag and its content.
        assert_eq!(values("a: !t [1]", 6), Ok(()));
        assert!(values("a: !t [1]", 5).is_err());
    }

    #[test]
    fn syntax_errors_are_left_to_the_parser() {
        assert_eq!(values("a: [1, 2", 10), Ok(()));
        assert_eq!(values("", 10), Ok(()));
        assert_eq!(check("a: *nowhere"), Ok(()));
    }

    #[test]
    fn size_is_checked_first() {
        let big = "#".repeat(MAX_BYTES + 1);
        assert_eq!(check(&big), Err(Exceeded::Size(Some(MAX_BYTES as u64 + 1))));
        assert_eq!(
            Exceeded::Size(Some(20_971_520)).to_string(),
            "profile is 20971520 bytes; the limit is 1 MiB"
        );
        assert_eq!(
            Exceeded::Size(None).to_string(),
            "profile is larger than the limit of 1 MiB"
        );
    }

    /// Every real inventory we have passes each limit by a wide margin: the built-in profiles
    /// and Pigsty-dialect inventories (ours in tests/fixtures, Pigsty's own in ../shared) are at most 12 KB, 9 levels deep and 400 values.
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
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            let deepest = depth::check(&text, MAX_DEPTH).expect("within the depth limit");
            let count = Count {
                seen: &Cell::new(0),
                max: MAX_VALUES,
                over: &Cell::new(false),
            };
            count
                .deserialize(serde_yaml::Deserializer::from_str(&text))
                .expect("valid YAML");
            let seen = count.seen.get();
            eprintln!(
                "{}: {} bytes, depth {deepest}, {seen} values",
                file.display(),
                text.len()
            );
            assert!(text.len() * 64 < MAX_BYTES, "{}", file.display());
            assert!(
                deepest * 4 <= MAX_DEPTH,
                "{}: depth {deepest}",
                file.display()
            );
            assert!(seen * 100 < MAX_VALUES, "{}: {seen} values", file.display());
        }
    }
}
