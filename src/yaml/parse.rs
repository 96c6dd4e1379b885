//! Builds a [`Value`] and its [`Spans`] from the events of `saphyr-parser`, one event at a time.
//!
//! The builder holds an explicit stack, not the call stack, and checks the limits as the
//! events come: a collection that opens past the nesting limit or an alias that would repeat
//! more values than the budget allows stops the parse at that event, so hostile text costs
//! no more than the part of it read so far. Owns scalar resolution (YAML 1.1 booleans, the
//! core schema's nulls and numbers), the duplicate-key refusal, anchors, aliases and merge
//! keys (`<<`).

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::{kind, Error, Limits, Mapping, Number, Pos, Spans, Tagged, Value};

/// A collection being built.
enum Frame {
    Seq {
        items: Vec<Value>,
        spans: Vec<Spans>,
        at: Pos,
        anchor: usize,
        start: usize,
    },
    Map {
        map: Mapping,
        /// Each entry's key position and value positions, in the order of `map` until the
        /// merge keys are applied.
        spans: Vec<(Pos, Spans)>,
        /// A key read, waiting for its value: the key, its span, whether it is `<<`.
        pending: Option<(Value, Pos, bool)>,
        /// Values of `<<` keys, merged when the mapping ends.
        merges: Vec<(Value, Spans, Pos)>,
        at: Pos,
        anchor: usize,
        start: usize,
    },
}

/// A finished node: its value, its positions, and the scalar style when it is a plain scalar
/// (`<<` is a merge key only when plain).
struct Node {
    value: Value,
    spans: Spans,
    plain: bool,
}

/// An anchored node, kept for its aliases with the number of values it holds.
struct Anchored {
    value: Value,
    spans: Spans,
    count: usize,
}

/// Parses one YAML document into a value and its positions.
pub fn parse(text: &str, limits: Limits) -> Result<(Value, Spans), Error> {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        count: 0,
        aliased: 0,
        limits,
        root: None,
        documents: 0,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let at = Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            };
            // The scanner reads a line ahead of the events (a flow collection may turn out
            // to be a key) and stops itself at 255 flow levels: on one long line of brackets
            // that comes before the event past our limit. The text there is nested deeper.
            if e.info() == "recursion limit exceeded" {
                Error::Depth { at }
            } else {
                Error::Syntax {
                    at,
                    message: e.info().to_owned(),
                }
            }
        })?;
        b.event(event, span)?;
    }
    Ok(b.root
        .unwrap_or((Value::Null, Spans::leaf(Pos { line: 1, column: 1 }))))
}

struct Builder {
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, Anchored>,
    /// Values built so far, aliases counting every value they repeat.
    count: usize,
    /// Values repeated through aliases so far.
    aliased: usize,
    limits: Limits,
    root: Option<(Value, Spans)>,
    documents: usize,
}

fn pos(span: Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Error> {
        let at = pos(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Error::Syntax {
                        at,
                        message: "more than one document; a profile is one document".into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.tick(at)?;
                let plain = style == ScalarStyle::Plain;
                let value = scalar(&text, plain, tag.as_deref());
                self.finish(anchor, self.count - 1, value, Spans::leaf(at), plain)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    spans: Vec::new(),
                    at,
                    anchor,
                    start: self.count - 1,
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Map {
                    map: Mapping::new(),
                    spans: Vec::new(),
                    pending: None,
                    merges: Vec::new(),
                    at,
                    anchor,
                    start: self.count - 1,
                });
            }
            Event::SequenceEnd => self.close_sequence()?,
            Event::MappingEnd => self.close_mapping()?,
            Event::Alias(id) => self.alias(id, at)?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// The end of a sequence: its node, finished.
    fn close_sequence(&mut self) -> Result<(), Error> {
        let Some(Frame::Seq {
            mut items,
            mut spans,
            at,
            anchor,
            start,
            ..
        }) = self.stack.pop()
        else {
            unreachable!("the parser pairs sequence events")
        };
        // A document's collections are built item by item: give back what doubling left empty.
        items.shrink_to_fit();
        spans.shrink_to_fit();
        let spans = Spans::Seq(at, spans);
        self.finish(anchor, start, Value::Sequence(items), spans, false)?;
        Ok(())
    }

    /// The end of a mapping: its merge keys applied (`<<`), its node finished.
    fn close_mapping(&mut self) -> Result<(), Error> {
        let Some(Frame::Map {
            mut map,
            mut spans,
            merges,
            at,
            anchor,
            start,
            ..
        }) = self.stack.pop()
        else {
            unreachable!("the parser pairs mapping events")
        };
        for (value, from, at) in merges {
            merge(&mut map, &mut spans, value, from, at)?;
        }
        map.shrink_to_fit();
        spans.shrink_to_fit();
        let spans = Spans::Map(at, spans);
        self.finish(anchor, start, Value::Mapping(map), spans, false)?;
        Ok(())
    }

    /// An alias at `at`: the anchored value again, counted against the budget.
    fn alias(&mut self, id: usize, at: Pos) -> Result<(), Error> {
        let Some(a) = self.anchors.get(&id) else {
            return Err(Error::Syntax {
                at,
                message: "alias to an unknown anchor".into(),
            });
        };
        if self.aliased + a.count > self.limits.aliased {
            return Err(Error::Aliased { at });
        }
        if self.count + a.count > self.limits.values {
            return Err(Error::Values { at });
        }
        self.aliased += a.count;
        self.count += a.count;
        let (value, spans) = (a.value.clone(), a.spans.clone());
        self.push(Node {
            value,
            spans,
            plain: false,
        })?;
        Ok(())
    }

    /// Counts one value against the budget.
    fn tick(&mut self, at: Pos) -> Result<(), Error> {
        self.count += 1;
        if self.count > self.limits.values {
            return Err(Error::Values { at });
        }
        Ok(())
    }

    /// A collection opens at `at`: one more value, one level deeper.
    fn open(&mut self, at: Pos) -> Result<(), Error> {
        if self.stack.len() + 1 > self.limits.depth {
            return Err(Error::Depth { at });
        }
        self.tick(at)
    }

    /// The key path of the collection on top of the stack, for a message: each collection
    /// below it is at the index or key being read. Built only when needed, so that reading a
    /// large document builds no path.
    fn top_path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack[..self.stack.len().saturating_sub(1)] {
            path = match frame {
                Frame::Seq { items, .. } => crate::keypath::index(&path, items.len()),
                Frame::Map { pending, .. } => match pending {
                    Some((k, _, _)) => crate::keypath::join(&path, &super::key_text(k)),
                    None => path,
                },
            };
        }
        path
    }

    /// A node is complete: remember it under its anchor, then hand it to its parent.
    fn finish(
        &mut self,
        anchor: usize,
        start: usize,
        value: Value,
        spans: Spans,
        plain: bool,
    ) -> Result<(), Error> {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    value: value.clone(),
                    spans: spans.clone(),
                    count: self.count - start,
                },
            );
        }
        self.push(Node {
            value,
            spans,
            plain,
        })
    }

    fn push(&mut self, node: Node) -> Result<(), Error> {
        let Some(top) = self.stack.last_mut() else {
            self.root = Some((node.value, node.spans));
            return Ok(());
        };
        match top {
            Frame::Seq { items, spans, .. } => {
                items.push(node.value);
                spans.push(node.spans);
            }
            Frame::Map {
                map,
                spans,
                pending,
                merges,
                ..
            } => match pending.take() {
                None => {
                    let at = node.spans.at();
                    let merge = node.plain && node.value.as_str() == Some("<<");
                    *pending = Some((node.value, at, merge));
                }
                Some((_, at, true)) => merges.push((node.value, node.spans, at)),
                Some((key, at, false)) => {
                    // Until the mapping ends, `spans` follows `map` entry for entry.
                    if let Some(i) = map.position(&key) {
                        let first = spans[i].0;
                        let path = crate::keypath::join(&self.top_path(), &super::key_text(&key));
                        return Err(Error::Duplicate {
                            path,
                            first,
                            second: at,
                        });
                    }
                    map.insert(key, node.value);
                    spans.push((at, node.spans));
                }
            },
        }
        Ok(())
    }
}

/// Merges the value of a `<<` key into `map`: a mapping, or a list of mappings of which the
/// first wins; keys the mapping sets itself win over merged ones (YAML 1.1's merge type, as
/// Ansible reads it).
fn merge(
    map: &mut Mapping,
    spans: &mut Vec<(Pos, Spans)>,
    value: Value,
    from: Spans,
    at: Pos,
) -> Result<(), Error> {
    let sources: Vec<(Mapping, Spans)> = match (value, from) {
        (Value::Mapping(m), s) => vec![(m, s)],
        (Value::Sequence(items), Spans::Seq(_, s)) => items
            .into_iter()
            .zip(s)
            .map(|(v, s)| match v {
                Value::Mapping(m) => Ok((m, s)),
                other => Err(other),
            })
            .collect::<Result<_, _>>()
            .map_err(|other| Error::Merge {
                at,
                found: kind(&other),
            })?,
        (other, _) => {
            return Err(Error::Merge {
                at,
                found: kind(&other),
            })
        }
    };
    for (m, s) in sources {
        let Spans::Map(_, entries) = s else {
            continue;
        };
        for ((k, v), e) in m.into_iter().zip(entries) {
            if !map.contains_key(&k) {
                map.insert(k, v);
                spans.push(e);
            }
        }
    }
    Ok(())
}

/// A scalar's value: quoted and block scalars are strings; plain ones are resolved.
fn scalar(text: &str, plain: bool, tag: Option<&Tag>) -> Value {
    match tag {
        Some(t) if t.is_yaml_core_schema() => match t.suffix.as_str() {
            "str" => Value::String(text.to_owned()),
            _ => resolve(text),
        },
        Some(t) => Value::Tagged(Box::new(Tagged {
            tag: t.to_string(),
            value: if plain {
                resolve(text)
            } else {
                Value::String(text.to_owned())
            },
        })),
        None if plain => resolve(text),
        None => Value::String(text.to_owned()),
    }
}

/// Resolves a plain scalar: nulls and numbers as YAML 1.2's core schema has them (what
/// `serde_yaml` did), booleans as YAML 1.1 and Ansible have them.
pub fn resolve(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        _ => {}
    }
    if let Some(b) = boolean(text) {
        return Value::Bool(b);
    }
    if let Some(n) = number(text) {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

/// YAML 1.1's booleans, in the three casings `PyYAML` (and so Ansible) accepts.
pub fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// An integer (decimal, `0x`, `0o`, `0b`, with a sign) or a float (`.inf`, `.nan` included).
/// A decimal with a leading zero (`0755`) stays a string, as in YAML 1.2.
pub fn number(text: &str) -> Option<Number> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.starts_with(['+', '-']) {
        return None;
    }
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(p, r)| body.strip_prefix(p).map(|rest| (rest, r)));
    let leading_zero =
        body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit());
    let magnitude = match radix {
        Some((rest, r)) if !rest.starts_with(['+', '-']) => u64::from_str_radix(rest, r).ok(),
        Some(_) => return None,
        None if leading_zero => return None,
        None if body.bytes().all(|b| b.is_ascii_digit()) => body.parse::<u64>().ok(),
        None => None,
    };
    if let Some(m) = magnitude {
        if !negative {
            return Some(Number::PosInt(m));
        }
        if let Some(n) = 0i64.checked_sub_unsigned(m) {
            return Some(Number::NegInt(n));
        }
    }
    match body {
        ".inf" | ".Inf" | ".INF" => {
            return Some(Number::Float(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }))
        }
        ".nan" | ".NaN" | ".NAN" if text == body => return Some(Number::Float(f64::NAN)),
        _ => {}
    }
    let numeric = body
        .bytes()
        .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
        && body.bytes().any(|b| b.is_ascii_digit());
    if !numeric {
        return None;
    }
    let f: f64 = body.parse().ok().filter(|f: &f64| f.is_finite())?;
    Some(Number::Float(if negative { -f } else { f }))
}
