//! The YAML value tree: what a document holds once parsed, without positions (those are in
//! [`super::Spans`], a tree of the same shape). Owns the types and their accessors; not parsing
//! nor emitting.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{SerializeMap as _, SerializeSeq as _};
use serde::{Serialize, Serializer};

/// One YAML value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `~`, `null`, or nothing.
    #[default]
    Null,
    /// `true`, `false` and YAML 1.1's `yes`, `no`, `on`, `off` (three casings each).
    Bool(bool),
    /// An integer or a float.
    Number(Number),
    /// Any other scalar, or a quoted one.
    String(String),
    /// A list.
    Sequence(Vec<Value>),
    /// A mapping, in the order it was written.
    Mapping(Mapping),
    /// A value with a custom tag (`!tag value`).
    Tagged(Box<Tagged>),
}

/// A value with its custom tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    /// The tag as written, `!` included.
    pub tag: String,
    /// The tagged value.
    pub value: Value,
}

/// A YAML number: an unsigned or negative integer, or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A non-negative integer.
    PosInt(u64),
    /// A negative integer.
    NegInt(i64),
    /// Anything else numeric, `.inf` and `.nan` included.
    Float(f64),
}

impl Number {
    /// The number as `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::PosInt(n) => Some(n),
            _ => None,
        }
    }

    /// The number as `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::PosInt(n) => i64::try_from(n).ok(),
            Self::NegInt(n) => Some(n),
            Self::Float(_) => None,
        }
    }

    /// The number as `f64`.
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> f64 {
        match *self {
            Self::PosInt(n) => n as f64,
            Self::NegInt(n) => n as f64,
            Self::Float(f) => f,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PosInt(n) => write!(f, "{n}"),
            Self::NegInt(n) => write!(f, "{n}"),
            Self::Float(x) if x.is_nan() => f.write_str(".nan"),
            Self::Float(x) if x.is_infinite() => {
                f.write_str(if x > 0.0 { ".inf" } else { "-.inf" })
            }
            Self::Float(x) => {
                let s = x.to_string();
                if s.contains(['.', 'e']) {
                    f.write_str(&s)
                } else {
                    write!(f, "{s}.0")
                }
            }
        }
    }
}

/// A mapping in insertion order, with unique keys (the parser refuses duplicates). A mapping
/// of more than [`INDEXED`] entries (a group's hosts, `all.children`) keeps an index, so that
/// building or looking into one of many thousand entries stays fast; a smaller one, nearly every
/// mapping of a profile, is searched in order and costs no allocation per key.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    entries: Vec<(Value, Value)>,
    /// Each key's identity ([`Key::id`]) → its entry, once there are more than [`INDEXED`].
    /// Boxed: 8 bytes in every mapping (and so in every [`Value`]) instead of 24, for an index
    /// that few mappings have.
    #[allow(clippy::box_collection)]
    index: Option<Box<BTreeMap<String, usize>>>,
}

/// Entries past which a [`Mapping`] keeps an index.
pub const INDEXED: usize = 16;

impl PartialEq for Mapping {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Mapping {
    /// An empty mapping.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The place of `key` in the mapping's order.
    pub fn position<K: Key + ?Sized>(&self, key: &K) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&key.id()).copied(),
            None => self.entries.iter().position(|(k, _)| key.same_as(k)),
        }
    }

    /// The value at `key` (a string key given as `&str`, or any [`Value`]).
    pub fn get<K: Key + ?Sized>(&self, key: &K) -> Option<&Value> {
        let i = self.position(key)?;
        Some(&self.entries[i].1)
    }

    /// The value at `key`, mutable.
    pub fn get_mut<K: Key + ?Sized>(&mut self, key: &K) -> Option<&mut Value> {
        let i = self.position(key)?;
        Some(&mut self.entries[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key<K: Key + ?Sized>(&self, key: &K) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value`: in place when the key is present (the old value is returned),
    /// appended otherwise.
    pub fn insert(&mut self, key: Value, value: Value) -> Option<Value> {
        if let Some(i) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        if let Some(index) = &mut self.index {
            index.insert(key.id(), self.entries.len());
        }
        self.entries.push((key, value));
        if self.index.is_none() && self.entries.len() > INDEXED {
            self.index = Some(Box::new(
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.id(), i))
                    .collect(),
            ));
        }
        None
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove<K: Key + ?Sized>(&mut self, key: &K) -> Option<Value> {
        let i = self.position(key)?;
        if let Some(index) = &mut self.index {
            index.remove(&key.id());
            for j in index.values_mut() {
                if *j > i {
                    *j -= 1;
                }
            }
        }
        Some(self.entries.remove(i).1)
    }

    /// Gives back the room the entries do not use (a document's mappings are built entry by
    /// entry, so a vector's doubling would leave up to half of it empty).
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Entries in order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Value, &mut Value)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for &'a Mapping {
    type Item = (&'a Value, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Value, Value)>,
        fn(&'a (Value, Value)) -> (&'a Value, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl IntoIterator for Mapping {
    type Item = (Value, Value);
    type IntoIter = std::vec::IntoIter<(Value, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(Value, Value)> for Mapping {
    fn from_iter<I: IntoIterator<Item = (Value, Value)>>(iter: I) -> Self {
        let mut m = Self::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// What can look up a mapping entry: a `&str` (matches string keys) or a [`Value`].
pub trait Key {
    /// The key's identity: its type and text, so that `1` and `"1"` are different keys.
    fn id(&self) -> String;

    /// Whether `key` is this key (the same identity), for the common cases without building
    /// the identity.
    fn same_as(&self, key: &Value) -> bool {
        self.id() == key.id()
    }
}

impl Key for str {
    fn id(&self) -> String {
        format!("s{self}")
    }

    fn same_as(&self, key: &Value) -> bool {
        key.as_str() == Some(self)
    }
}

impl Key for String {
    fn id(&self) -> String {
        self.as_str().id()
    }

    fn same_as(&self, key: &Value) -> bool {
        Key::same_as(self.as_str(), key)
    }
}

impl Key for Value {
    fn id(&self) -> String {
        match self {
            Value::String(s) => s.id(),
            Value::Number(n) => format!("n{n}"),
            Value::Bool(b) => format!("b{b}"),
            Value::Null => "~".into(),
            Value::Tagged(t) => format!("t{}{}", t.tag, t.value.id()),
            Value::Sequence(_) | Value::Mapping(_) => {
                format!("c{}", super::to_string(self).unwrap_or_default())
            }
        }
    }

    fn same_as(&self, key: &Value) -> bool {
        match (self, key) {
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Null, Value::Null) => true,
            // Different types are different keys, except a tag, which names its value's type.
            (Value::String(_) | Value::Bool(_) | Value::Null, _)
            | (_, Value::String(_) | Value::Bool(_) | Value::Null) => false,
            _ => self.id() == key.id(),
        }
    }
}

impl<K: Key + ?Sized> Key for &K {
    fn id(&self) -> String {
        (**self).id()
    }

    fn same_as(&self, key: &Value) -> bool {
        (**self).same_as(key)
    }
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as `u64`, if this is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The number as `i64`, if this is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_sequence(&self) -> Option<&Vec<Value>> {
        match self {
            Self::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// The mapping, if this is one.
    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Self::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, mutable, if this is one.
    pub fn as_mapping_mut(&mut self) -> Option<&mut Mapping> {
        match self {
            Self::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The entry `key` of a mapping; `None` for a missing key or a value that is no mapping.
    pub fn get<K: Key + ?Sized>(&self, key: &K) -> Option<&Value> {
        self.as_mapping().and_then(|m| m.get(key))
    }
}

static NULL: Value = Value::Null;

impl std::ops::Index<&str> for Value {
    type Output = Value;

    /// The entry `key`, or null when there is none.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::IndexMut<&str> for Value {
    /// The entry `key`, created (null) when missing; a null value becomes a mapping first.
    fn index_mut(&mut self, key: &str) -> &mut Value {
        if self.is_null() {
            *self = Self::Mapping(Mapping::new());
        }
        let Self::Mapping(m) = self else {
            panic!("cannot index a {} with `{key}`", super::kind(self));
        };
        if !m.contains_key(key) {
            m.insert(Value::from(key), Value::Null);
        }
        m.get_mut(key).expect("just inserted")
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Self::Number(Number::Float(f))
    }
}

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                Self::Number(Number::PosInt(u64::from(n)))
            }
        }
    )*};
}
from_unsigned!(u8, u16, u32, u64);

macro_rules! from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                let n = i64::from(n);
                Self::Number(u64::try_from(n).map_or(Number::NegInt(n), Number::PosInt))
            }
        }
    )*};
}
from_signed!(i8, i16, i32, i64);

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Self::Sequence(v)
    }
}

impl From<Mapping> for Value {
    fn from(m: Mapping) -> Self {
        Self::Mapping(m)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Number(Number::PosInt(n)) => s.serialize_u64(*n),
            Self::Number(Number::NegInt(n)) => s.serialize_i64(*n),
            Self::Number(Number::Float(f)) => s.serialize_f64(*f),
            Self::String(t) => s.serialize_str(t),
            Self::Sequence(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Self::Mapping(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            // A tag has no place in the data model: its value stands for it.
            Self::Tagged(t) => t.value.serialize(s),
        }
    }
}
