//! Block YAML written the way `serde_yaml` 0.9 wrote it through libyaml's emitter, so that
//! rendered files stay byte for byte what they were: two-space indentation, lists in a
//! mapping not indented, `[]` and `{}` for empty collections, strings plain when libyaml's
//! scalar analysis allows it and they would not read back as another type, else single-quoted,
//! else double-quoted; strings with line breaks as literal blocks; long lines never folded
//! (`serde_yaml` set no line width). Strings that YAML 1.1
//! reads as booleans (`yes`, `off`) are quoted too, so that a YAML 1.1 reader (Go's `yaml.v2`
//! in Prometheus-style programs) reads them back as strings.

use serde_json::Value;

/// The document: the node, then a line break.
pub fn document(v: &Value) -> String {
    let mut e = Emitter { out: String::new() };
    e.node(v, 0, false);
    e.out.push('\n');
    e.out
}

struct Emitter {
    out: String,
}

/// How a string may be written, from libyaml's `yaml_emitter_analyze_scalar`.
#[allow(clippy::struct_excessive_bools)]
struct Analysis {
    multiline: bool,
    plain: bool,
    single: bool,
    block: bool,
}

impl Emitter {
    fn put(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn put_char(&mut self, c: char) {
        self.out.push(c);
    }

    /// A line break, then `indent` spaces.
    fn indent(&mut self, indent: usize) {
        self.put_char('\n');
        self.put(&" ".repeat(indent));
    }

    /// A node whose first character goes at the current column; `indent` is the column of the
    /// key or `- ` it belongs to. `key` when it is a mapping key (a simple key).
    fn node(&mut self, v: &Value, indent: usize, key: bool) {
        match v {
            Value::Null => self.put("null"),
            Value::Bool(b) => self.put(if *b { "true" } else { "false" }),
            Value::Number(n) => self.put(&number(n)),
            Value::String(s) => self.string(s, indent, key),
            Value::Array(items) if items.is_empty() => self.put("[]"),
            Value::Object(m) if m.is_empty() => self.put("{}"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.indent(indent);
                    }
                    self.put("- ");
                    self.node(item, indent + 2, false);
                }
            }
            Value::Object(m) => {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        self.indent(indent);
                    }
                    self.string(k, indent, true);
                    match v {
                        Value::Array(items) if !items.is_empty() => {
                            // A list in a mapping is not indented.
                            self.put(":");
                            self.indent(indent);
                            self.node(v, indent, false);
                        }
                        Value::Object(m) if !m.is_empty() => {
                            self.put(":");
                            self.indent(indent + 2);
                            self.node(v, indent + 2, false);
                        }
                        _ => {
                            self.put(": ");
                            self.node(v, indent + 2, false);
                        }
                    }
                }
            }
        }
    }

    fn string(&mut self, s: &str, indent: usize, key: bool) {
        let a = analyze(s);
        // serde_yaml: a string with a line break is a literal block; one that would read back
        // as another type is single-quoted; otherwise libyaml picks.
        let literal = s.contains('\n');
        let mut style = if literal {
            Style::Literal
        } else if reads_as_other_type(s) {
            Style::Single
        } else {
            Style::Plain
        };
        if key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.plain || (s.is_empty() && key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || key) {
            style = Style::Double;
        }
        match style {
            Style::Plain => self.put(s),
            Style::Single => self.single(s),
            Style::Double => self.double(s),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn single(&mut self, s: &str) {
        self.put_char('\'');
        for c in s.chars() {
            if c == '\'' {
                self.put_char('\'');
            }
            self.put_char(c);
        }
        self.put_char('\'');
    }

    fn double(&mut self, s: &str) {
        self.put_char('"');
        for c in s.chars() {
            if !printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put(&escape(c));
            } else {
                self.put_char(c);
            }
        }
        self.put_char('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.put_char('|');
        if s.starts_with([' ', '\n']) {
            self.put("2");
        }
        let chomp = if !s.ends_with('\n') {
            "-"
        } else if s == "\n" || s.ends_with("\n\n") {
            "+"
        } else {
            ""
        };
        self.put(chomp);
        let mut at_break = true;
        self.put_char('\n');
        for c in s.chars() {
            if c == '\n' {
                self.put_char('\n');
                at_break = true;
            } else {
                if at_break {
                    self.put(&" ".repeat(indent));
                }
                self.put_char(c);
                at_break = false;
            }
        }
        // The document's closing line break is the block's last one.
        if self.out.ends_with('\n') {
            self.out.pop();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn number(n: &serde_json::Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        if f.is_nan() {
            return ".nan".into();
        }
        if f.is_infinite() {
            return if f > 0.0 { ".inf" } else { "-.inf" }.into();
        }
    }
    n.to_string()
}

/// Whether a plain `s` would read back as null, a boolean or a number (and so must be
/// quoted); a decimal with a leading zero is quoted too, as `serde_yaml` did.
fn reads_as_other_type(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let leading_zero =
        digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
    !matches!(super::parse::resolve(s), super::Value::String(_)) || leading_zero
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `IS_PRINTABLE`.
fn printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

/// libyaml's escapes in double-quoted scalars.
fn escape(c: char) -> String {
    match c {
        '\0' => "\\0".into(),
        '\u{7}' => "\\a".into(),
        '\u{8}' => "\\b".into(),
        '\t' => "\\t".into(),
        '\n' => "\\n".into(),
        '\u{b}' => "\\v".into(),
        '\u{c}' => "\\f".into(),
        '\r' => "\\r".into(),
        '\u{1b}' => "\\e".into(),
        '"' => "\\\"".into(),
        '\\' => "\\\\".into(),
        '\u{85}' => "\\N".into(),
        '\u{a0}' => "\\_".into(),
        '\u{2028}' => "\\L".into(),
        '\u{2029}' => "\\P".into(),
        c if u32::from(c) <= 0xff => format!("\\x{:02X}", u32::from(c)),
        c if u32::from(c) <= 0xffff => format!("\\u{:04X}", u32::from(c)),
        c => format!("\\U{:08X}", u32::from(c)),
    }
}

/// libyaml's `yaml_emitter_analyze_scalar` (unicode output allowed, as `serde_yaml` sets it).
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let blankz = |i: usize| {
        chars
            .get(i)
            .is_none_or(|&c| c == ' ' || c == '\t' || is_break(c))
    };
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        block_ind |= block_indicator(c, i == 0, preceded_by_ws, blankz(i + 1));
        if !printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = c == ' ' || c == '\t' || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.plain = false;
        a.single = false;
    }
    if space_break || special {
        a.plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.plain = false;
    }
    a
}

/// Whether `c` (the scalar's first character when `first`) is an indicator that a plain scalar
/// cannot hold in block context. (libyaml also tracks flow-context indicators; block YAML is
/// all we write.)
fn block_indicator(c: char, first: bool, preceded_by_ws: bool, followed_by_ws: bool) -> bool {
    if first {
        "#,[]{}&*!|>'\"%@`".contains(c) || (matches!(c, '?' | ':' | '-') && followed_by_ws)
    } else {
        (c == ':' && followed_by_ws) || (c == '#' && preceded_by_ws)
    }
}
