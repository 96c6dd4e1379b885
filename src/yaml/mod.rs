//! YAML for infragen: reading with positions, and writing.
//!
//! Reading builds our own [`Value`] from the events of `saphyr-parser` (`parse`), with the
//! position of every key and value kept in a tree of the same shape ([`Spans`]) and turned into
//! a lookup by key path ([`Positions`]), so that any problem found later can say
//! `file:line:column`. The dialect is Ansible's (docs/yaml.md): YAML 1.1
//! booleans, duplicate keys refused, anchors, aliases and merge keys; nesting and alias
//! expansion are bounded while parsing ([`Limits`]). Writing (`emit`) produces block YAML the
//! way `serde_yaml` (libyaml) wrote it, byte for byte, for what infragen renders.
//! Owns neither the profile's structure (`profile`) nor what values mean (`plan`).

mod emit;
mod parse;
mod value;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use value::{Key, Mapping, Number, Tagged, Value};

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where each node of a [`Value`] was written: a tree of the same shape. A value repeated by
/// an alias or a merge key points at its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spans {
    /// A scalar.
    Leaf(Pos),
    /// A list and its items.
    Seq(Pos, Vec<Spans>),
    /// A mapping, and each entry's key position and value.
    Map(Pos, Vec<(Pos, Spans)>),
}

impl Spans {
    fn leaf(at: Pos) -> Self {
        Self::Leaf(at)
    }

    /// Where the node starts.
    pub fn at(&self) -> Pos {
        match self {
            Self::Leaf(at) | Self::Seq(at, _) | Self::Map(at, _) => *at,
        }
    }
}

/// Limits checked while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of collections.
    pub depth: usize,
    /// Most values, an alias counting every value it repeats each time.
    pub values: usize,
    /// Most values repeated through aliases, counted again each time: far fewer than
    /// `values`, so that a small text repeating one list many times is refused while it is
    /// still cheap.
    pub aliased: usize,
}

impl Limits {
    /// No practical limit, for trusted text (our own recipes and defaults).
    pub const NONE: Self = Self {
        depth: usize::MAX,
        values: usize::MAX,
        aliased: usize::MAX,
    };
}

/// Why a text is not a YAML document we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not YAML: the parser's message.
    Syntax {
        /// Where.
        at: Pos,
        /// The parser's message.
        message: String,
    },
    /// One mapping sets a key twice.
    Duplicate {
        /// The key path of the key.
        path: String,
        /// Where the key is first written.
        first: Pos,
        /// Where it is written again.
        second: Pos,
    },
    /// A merge key (`<<`) whose value is not a mapping nor a list of mappings.
    Merge {
        /// Where the value of `<<` starts.
        at: Pos,
        /// What it is instead.
        found: &'static str,
    },
    /// A collection opened past [`Limits::depth`].
    Depth {
        /// The collection.
        at: Pos,
    },
    /// Past [`Limits::values`].
    Values {
        /// The value (or alias) that went past the budget.
        at: Pos,
    },
    /// Past [`Limits::aliased`].
    Aliased {
        /// The alias that went past the budget.
        at: Pos,
    },
}

impl Error {
    /// Where the error is.
    pub fn at(&self) -> Pos {
        match self {
            Self::Syntax { at, .. }
            | Self::Merge { at, .. }
            | Self::Depth { at }
            | Self::Values { at }
            | Self::Aliased { at } => *at,
            Self::Duplicate { second, .. } => *second,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { message, .. } => f.write_str(message),
            Self::Duplicate { path, first, .. } => write!(
                f,
                "{path}: duplicate key; it is first set at line {}, column {}",
                first.line, first.column
            ),
            Self::Merge { found, .. } => write!(
                f,
                "a merge key `<<` takes a mapping or a list of mappings, found {found}"
            ),
            Self::Depth { .. } => f.write_str("nesting too deep"),
            Self::Values { .. } => f.write_str("too many values"),
            Self::Aliased { .. } => f.write_str("too many values repeated through aliases"),
        }
    }
}

impl std::error::Error for Error {}

/// Parses one YAML document into a value and the positions of its nodes.
pub fn parse(text: &str, limits: Limits) -> Result<(Value, Spans), Error> {
    parse::parse(text, limits)
}

/// Parses trusted YAML (our own recipes, defaults and rendered files) into a value.
pub fn from_str(text: &str) -> Result<Value, Error> {
    parse::parse(text, Limits::NONE).map(|(v, _)| v)
}

/// Parses trusted YAML into `T` through serde; errors name the key path (`ports[0]: …`) and,
/// for YAML errors, the line and column.
pub fn from_str_as<T: DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    let value = from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", e.at()))?;
    from_value(&value)
}

/// Converts a value into `T` through serde; errors name the key path (`ports[0]: …`).
pub fn from_value<T: DeserializeOwned>(value: &Value) -> anyhow::Result<T> {
    let json = serde_json::to_value(value)?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })
}

/// Writes `value` as a block YAML document, the way `serde_yaml` did.
pub fn to_string(value: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(emit::document(&serde_json::to_value(value)?))
}

/// The name of a value's type, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A mapping key as text, the way key paths spell it (YAML allows numbers and booleans as keys).
pub fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => to_string(other).unwrap_or_default().trim().to_owned(),
    }
}

/// Where a key path's key and value were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// The key, for a mapping entry.
    pub key: Option<Pos>,
    /// The value.
    pub value: Pos,
}

/// The position of every node by key path (`all.vars.nginx_port`, `x[2]`; the root is `""`).
///
/// Compact, for profiles of millions of values: one 24-byte entry per node, its key path
/// represented by a 64-bit FNV-1a hash (computed incrementally while walking, so that no path
/// is built) in a sorted list. Paths that share a hash (for five million nodes, about one
/// chance in a million that any two do) are left out together, so that a lookup falls back to
/// their parent: a place is never wrong, at worst less precise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(Vec<(u64, Packed)>);

/// A [`Loc`] in 16 bytes: line and column of the key (line 0: no key) and of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed([u32; 4]);

impl Packed {
    fn new(key: Option<Pos>, value: Pos) -> Self {
        let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        let (kl, kc) = key.map_or((0, 0), |k| (n(k.line), n(k.column)));
        Self([kl, kc, n(value.line), n(value.column)])
    }

    fn loc(self) -> Loc {
        let pos = |line: u32, column: u32| Pos {
            line: line as usize,
            column: column as usize,
        };
        let [kl, kc, vl, vc] = self.0;
        Loc {
            key: (kl != 0).then(|| pos(kl, kc)),
            value: pos(vl, vc),
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
}

/// The hash of a path extended by the list index `[i]`, without building its text.
fn fnv_index(hash: u64, i: usize) -> u64 {
    let mut digits = [0u8; 20];
    let mut n = i;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(n % 10).expect("a digit");
        n /= 10;
        if n == 0 {
            break;
        }
    }
    fnv(fnv(fnv(hash, b"["), &digits[at..]), b"]")
}

impl Positions {
    /// Walks `value` and its `spans` (the same shape) and records every key path.
    pub fn new(value: &Value, spans: &Spans) -> Self {
        let mut out = vec![(FNV_OFFSET, Packed::new(None, spans.at()))];
        walk(value, spans, FNV_OFFSET, true, &mut out);
        out.sort_unstable_by_key(|(h, _)| *h);
        // Drop every entry whose hash another entry shares.
        let mut kept = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            let mut j = i + 1;
            while j < out.len() && out[j].0 == out[i].0 {
                j += 1;
            }
            if j == i + 1 {
                kept.push(out[i]);
            }
            i = j;
        }
        kept.shrink_to_fit();
        Self(kept)
    }

    fn get(&self, path: &str) -> Option<Loc> {
        let hash = fnv(FNV_OFFSET, path.as_bytes());
        let i = self.0.binary_search_by_key(&hash, |(h, _)| *h).ok()?;
        Some(self.0[i].1.loc())
    }

    /// The position of `path`: of its key when `on_key` (and it has one), else of its value.
    /// A path that is not in the document (a missing key) falls back to its nearest ancestor
    /// that is; `None` when the document has no such root (no positions at all).
    pub fn locate(&self, path: &str, on_key: bool) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(loc) = self.get(p) {
                let exact = p.len() == path.len();
                return Some(match loc.key {
                    Some(k) if on_key && exact => k,
                    _ => loc.value,
                });
            }
            p = parent(p)?;
        }
    }
}

/// The key path one level up: `a.b[2]` → `a.b`, `a."x.y"` → `a`, `a` → the root (empty).
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        if let Some(i) = path.rfind('[') {
            return Some(&path[..i]);
        }
    }
    // The last `.` outside a quoted key.
    let mut quoted = false;
    let mut escaped = false;
    let mut last = None;
    for (i, c) in path.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '.' if !quoted => last = Some(i),
            _ => {}
        }
    }
    Some(last.map_or("", |i| &path[..i]))
}

/// Records the children of a node whose path hashes to `hash` (`root`: the empty path).
fn walk(value: &Value, spans: &Spans, hash: u64, root: bool, out: &mut Vec<(u64, Packed)>) {
    match (value, spans) {
        (Value::Sequence(items), Spans::Seq(_, s)) => {
            for (i, (v, s)) in items.iter().zip(s).enumerate() {
                let h = fnv_index(hash, i);
                out.push((h, Packed::new(None, s.at())));
                walk(v, s, h, false, out);
            }
        }
        (Value::Mapping(m), Spans::Map(_, s)) => {
            for ((k, v), (kat, s)) in m.iter().zip(s) {
                let h = if root { hash } else { fnv(hash, b".") };
                let h = match k {
                    Value::String(text) => fnv(h, crate::keypath::segment(text).as_bytes()),
                    other => fnv(h, crate::keypath::segment(&key_text(other)).as_bytes()),
                };
                out.push((h, Packed::new(Some(*kat), s.at())));
                walk(v, s, h, false, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
