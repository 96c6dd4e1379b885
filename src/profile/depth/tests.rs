//! The scan against hand-written traps and against random documents libyaml reads back.

use super::*;
use std::fmt::Write as _;

fn depth(text: &str) -> usize {
    check(text, usize::MAX).unwrap()
}

#[test]
fn counts_block_and_flow_levels() {
    let cases: &[(&str, usize)] = &[
        ("", 0),
        ("a", 0),
        ("a: 1", 1),
        ("a:\n  b:\n    c: 1\n", 3),
        ("a: { b: [1, [2]] }", 4),
        ("- - - x", 3),
        ("- a: 1\n  b: [x]\n", 3),
        // An indentless sequence opens no indentation level in libyaml.
        ("a:\n- 1\n- 2\n", 1),
        ("[a]: b", 1),
        ("a: b [c {d", 1),
        ("a: b\n  [c {d\n", 1),
        ("a: 'it''s [' \nb: \"\\\" [\"", 1),
        ("a: # [[\n  b", 1),
        ("a: b#[[\n", 1),
        ("a: |\n  [[[\n  {{\nb: [x]", 2),
        ("a: >2-\n   [[[\n  {{\nb: 1", 1),
        ("- |\n x [\n- [y]", 2),
        ("a: !t [x]", 2),
        ("a: !<tag:x,[y]> [z]", 2),
        ("a: &x [*x]", 2),
        ("---\na: [1]\n...\n---\n[[2]]", 2),
        ("%YAML 1.1 [[\n--- [x]", 1),
    ];
    for (text, want) in cases {
        assert_eq!(depth(text), *want, "{text:?}");
    }
}

/// Text libyaml reads as structure is counted even where a naive scan would see a quote,
/// a comment or a block scalar.
#[test]
fn brackets_cannot_hide() {
    let deep = "[".repeat(100);
    let hidden = [
        // A plain scalar with a quote inside does not open a quoted scalar.
        format!("a: x 'y\nb: {deep}"),
        format!("a: x\n  \"y\nb: {deep}"),
        // A block scalar ends at the first line indented no deeper than its parent.
        format!("- a: |\n  b: {deep}"),
        format!("a: |\nb: {deep}"),
        // `#` inside a plain scalar is not a comment.
        format!("a: [b#c, {deep}"),
        // Line breaks libyaml knows beyond `\n`.
        format!("a: 1 # x\u{2028}b: {deep}"),
        format!("a: 1 # x\rb: {deep}"),
        // A byte order mark at a line start is skipped.
        format!("\u{feff}{deep}"),
        // A tag shorthand ends before a bracket.
        format!("a: !x{deep}"),
    ];
    for text in hidden {
        let err = check(&text, 64);
        assert!(err.is_err(), "{text:?} passed with depth {err:?}");
    }
}

#[test]
fn names_the_first_token_past_the_limit() {
    let text = format!("all:\n  vars:\n    x: {}", "[".repeat(10));
    assert_eq!(
        check(&text, 5),
        Err(TooDeep {
            line: 3,
            column: 10
        })
    );
    let block: String = (0..10)
        .map(|i| format!("{}a{i}:\n", " ".repeat(i)))
        .collect();
    assert_eq!(check(&block, 8), Err(TooDeep { line: 9, column: 9 }));
}

/// Random documents built from the lexical traps above (quotes, `#`, brackets inside
/// scalars and comments, block scalars, anchors, tags, indentless sequences): libyaml must
/// read each as the generator meant (same nesting of values) and the scan must count exactly
/// the levels the generator opened.
#[test]
fn random_documents_are_counted_exactly() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for round in 0..2000 {
        // `*s` in the documents names this scalar.
        let mut text = String::from("s: &s v\n");
        let (value_depth, scan_depth) = g.block_map(&mut text, 0, 4);
        let parsed: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
        assert_eq!(nesting(&parsed), value_depth, "round {round}:\n{text}");
        assert_eq!(depth(&text), scan_depth, "round {round}:\n{text}");
    }
}

fn nesting(v: &serde_yaml::Value) -> usize {
    use serde_yaml::Value as V;
    match v {
        V::Sequence(s) => 1 + s.iter().map(nesting).max().unwrap_or(0),
        V::Mapping(m) => 1 + m.values().map(nesting).max().unwrap_or(0),
        V::Tagged(t) => nesting(&t.value),
        _ => 0,
    }
}

/// Writes YAML and returns (nesting of values, levels the scan counts).
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: u64) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n).unwrap()
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64)]
    }

    /// Anchors and tags go before a collection or scalar without changing its nesting.
    fn props(&mut self, out: &mut String) {
        out.push_str(self.pick(&["", "", "", "&p1 ", "!t ", "&p2 !t "]));
    }

    fn comment(&mut self) -> &'static str {
        self.pick(&["", "", " # [[ {{ '", " #\"[", " # - ["])
    }

    fn block_map(&mut self, out: &mut String, indent: usize, budget: usize) -> (usize, usize) {
        let pad = " ".repeat(indent);
        let (mut v, mut s) = (1, 1);
        for k in 0..=self.below(3) {
            write!(out, "{pad}k{k}:").unwrap();
            let (cv, cs) = self.block_value(out, indent, budget);
            v = v.max(1 + cv);
            s = s.max(1 + cs);
        }
        (v, s)
    }

    /// After `key:`; ends with a line break.
    fn block_value(&mut self, out: &mut String, indent: usize, budget: usize) -> (usize, usize) {
        let choice = if budget == 0 {
            self.below(3)
        } else {
            self.below(8)
        };
        match choice {
            0 => {
                out.push(' ');
                out.push_str(self.pick(&[
                    "v",
                    "x 'y [",
                    "b#c {{",
                    "p ] }",
                    "-x [b",
                    "'it''s [ {'",
                    r#""a \" [ # {""#,
                    "'# ['",
                    "x\"y [",
                ]));
                let c = self.comment();
                out.push_str(c);
                out.push('\n');
                (0, 0)
            }
            1 => {
                out.push_str(self.pick(&[" |", " >-", " |2", " |+ # ["]));
                out.push('\n');
                for _ in 0..=self.below(3) {
                    let line = self.pick(&["[[ {", "'x", "\"y", "# [", "- [a", "", "k: [v"]);
                    writeln!(out, "{}  {line}", " ".repeat(indent)).unwrap();
                }
                (0, 0)
            }
            2 => {
                out.push(' ');
                let d = self.flow(out, indent, budget.min(3));
                let c = self.comment();
                out.push_str(c);
                out.push('\n');
                (d, d)
            }
            3 | 4 => {
                let c = self.comment();
                out.push_str(c);
                out.push('\n');
                self.block_map(out, indent + 2, budget - 1)
            }
            _ => {
                // A block sequence, indented (a level) or indentless (no level in libyaml).
                let indentless = self.below(2) == 0;
                let at = if indentless { indent } else { indent + 2 };
                out.push('\n');
                let (mut v, mut s) = (1, 1);
                for _ in 0..=self.below(2) {
                    write!(out, "{}-", " ".repeat(at)).unwrap();
                    let (cv, cs) = if self.below(2) == 0 {
                        out.push('\n');
                        self.block_map(out, at + 2, budget - 1)
                    } else {
                        let d = self.block_item(out, at, budget);
                        (d, d)
                    };
                    v = v.max(1 + cv);
                    s = s.max(cs + 1);
                }
                (v, if indentless { s - 1 } else { s })
            }
        }
    }

    /// After `-`: a scalar or a flow collection, then a line break.
    fn block_item(&mut self, out: &mut String, indent: usize, budget: usize) -> usize {
        out.push(' ');
        let d = if self.below(2) == 0 {
            out.push_str(self.pick(&["v", "x 'y [", "b#c {{", "'[ '", r#""\"{""#]));
            0
        } else {
            self.flow(out, indent, budget.min(3))
        };
        let c = self.comment();
        out.push_str(c);
        out.push('\n');
        d
    }

    /// A flow node; continuation lines go deeper than the block `indent` around it.
    fn flow(&mut self, out: &mut String, indent: usize, budget: usize) -> usize {
        if self.below(8) == 0 {
            out.push_str("*s");
            return 0;
        }
        self.props(out);
        if budget == 0 || self.below(3) == 0 {
            out.push_str(self.pick(&["v", "b#c", "x'y", "'[ '", r#""]\"{""#]));
            return 0;
        }
        let map = self.below(2) == 0;
        out.push(if map { '{' } else { '[' });
        let mut d = 0;
        for i in 0..=self.below(3) {
            if i > 0 {
                let wrap = format!(" ,\n{}", " ".repeat(indent + 1));
                out.push_str(self.pick(&[", ", ",", &wrap]));
            }
            if map {
                write!(out, "k{i}: ").unwrap();
            }
            d = d.max(self.flow(out, indent, budget - 1));
        }
        out.push(if map { '}' } else { ']' });
        1 + d
    }
}
