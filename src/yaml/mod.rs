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

use std::collections::BTreeMap;
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
}

impl Limits {
    /// No practical limit, for trusted text (our own recipes and defaults).
    pub const NONE: Self = Self {
        depth: usize::MAX,
        values: usize::MAX,
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
}

impl Error {
    /// Where the error is.
    pub fn at(&self) -> Pos {
        match self {
            Self::Syntax { at, .. }
            | Self::Merge { at, .. }
            | Self::Depth { at }
            | Self::Values { at } => *at,
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(BTreeMap<String, Loc>);

impl Positions {
    /// Walks `value` and its `spans` (the same shape) and records every key path.
    pub fn new(value: &Value, spans: &Spans) -> Self {
        let mut map = BTreeMap::new();
        map.insert(
            String::new(),
            Loc {
                key: None,
                value: spans.at(),
            },
        );
        walk(value, spans, "", &mut map);
        Self(map)
    }

    /// The position of `path`: of its key when `on_key` (and it has one), else of its value.
    /// A path that is not in the document (a missing key) falls back to its nearest ancestor
    /// that is; `None` when the document has no such root (no positions at all).
    pub fn locate(&self, path: &str, on_key: bool) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(loc) = self.0.get(p) {
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

fn walk(value: &Value, spans: &Spans, path: &str, out: &mut BTreeMap<String, Loc>) {
    match (value, spans) {
        (Value::Sequence(items), Spans::Seq(_, s)) => {
            for (i, (v, s)) in items.iter().zip(s).enumerate() {
                let p = crate::keypath::index(path, i);
                out.insert(
                    p.clone(),
                    Loc {
                        key: None,
                        value: s.at(),
                    },
                );
                walk(v, s, &p, out);
            }
        }
        (Value::Mapping(m), Spans::Map(_, s)) => {
            for ((k, v), (kat, s)) in m.iter().zip(s) {
                let p = crate::keypath::join(path, &key_text(k));
                out.insert(
                    p.clone(),
                    Loc {
                        key: Some(*kat),
                        value: s.at(),
                    },
                );
                walk(v, s, &p, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
