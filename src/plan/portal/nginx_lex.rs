//! nginx's configuration syntax: the tokens nginx reads a file as, and the directives and
//! blocks they form. Pure; nothing here knows what a directive means (`config` decides that).
//!
//! Written from nginx's lexical rules, so that this module and nginx split any text into the
//! same structure (docs/portal-config.md):
//! - tokens are separated by space, tab, CR and LF; `;`, `{` and `}` are tokens of their own;
//! - a token starting with `"` or `'` runs to the matching unescaped quote, may span lines, and
//!   must be followed by white space, `;`, `{` or `)`;
//! - inside any token a `\` takes the next character literally (it never ends the token);
//! - an unquoted token ends at white space, `;` or `{` — not at `}`, `#` or a quote, which are
//!   ordinary characters there — except that `{` right after `$` belongs to the token (`${var}`);
//! - `#` at the start of a token starts a comment to the end of the line;
//! - a word's value resolves `\"`, `\'`, `\\`, `\t`, `\r` and `\n`; any other `\x` stays as is.

use std::fmt;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directive name or argument: quotes removed, escapes resolved as nginx resolves them.
    Word(String),
    /// `;`, the end of a simple directive.
    Semicolon,
    /// `{`, the start of a block.
    Open,
    /// `}`, the end of a block.
    Close,
}

/// One token and the lines (from 1) it starts and ends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Line it starts on, from 1.
    pub line: usize,
    /// Line it ends on: a word with a raw line break in it (quoted, or after `\`) spans lines.
    pub last_line: usize,
}

/// Text nginx would refuse to read, or would read with a different structure than it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Line, from 1.
    pub line: usize,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// One directive: a name, its arguments, and its block when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Name (the first word).
    pub name: String,
    /// Arguments (the other words).
    pub args: Vec<String>,
    /// The directives inside its `{ ... }`, when it ends with a block rather than `;`.
    pub block: Option<Vec<Directive>>,
    /// Line of its name, from 1.
    pub line: usize,
}

fn error(line: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        line,
        message: message.into(),
    }
}

/// The white space that separates tokens: nginx knows no other.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits `text` into tokens.
pub fn tokenize(text: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = line;
        let structural = match c {
            '\n' => {
                line += 1;
                i += 1;
                continue;
            }
            c if is_space(c) => {
                i += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ';' => Some(Kind::Semicolon),
            '{' => Some(Kind::Open),
            '}' => Some(Kind::Close),
            _ => None,
        };
        if let Some(kind) = structural {
            tokens.push(Token {
                kind,
                line: start,
                last_line: start,
            });
            i += 1;
            continue;
        }
        let mut cursor = Cursor {
            chars: &chars,
            i,
            line,
        };
        let raw = if c == '"' || c == '\'' {
            cursor.quoted(c)?
        } else {
            cursor.bare()
        };
        (i, line) = (cursor.i, cursor.line);
        tokens.push(Token {
            kind: Kind::Word(unescape(&raw)),
            line: start,
            last_line: line,
        });
    }
    Ok(tokens)
}

/// A position in the text being split into tokens, and its line.
struct Cursor<'a> {
    chars: &'a [char],
    i: usize,
    line: usize,
}

impl Cursor<'_> {
    /// Takes the next character into `raw`, counting lines.
    fn take(&mut self, raw: &mut String, ch: char) {
        raw.push(ch);
        if ch == '\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    /// A string quoted with `quote` (the cursor is on it): its raw text, escapes kept; it must
    /// end before the text does and be followed by white space, `;`, `{` or `)`.
    fn quoted(&mut self, quote: char) -> Result<String, SyntaxError> {
        let start = self.line;
        let unterminated = || error(start, format!("unterminated `{quote}` string"));
        let mut raw = String::new();
        self.i += 1;
        loop {
            let &ch = self.chars.get(self.i).ok_or_else(unterminated)?;
            if ch == quote {
                self.i += 1;
                break;
            }
            self.take(&mut raw, ch);
            if ch == '\\' {
                let &next = self.chars.get(self.i).ok_or_else(unterminated)?;
                self.take(&mut raw, next);
            }
        }
        if let Some(&next) = self.chars.get(self.i) {
            if !(is_space(next) || matches!(next, ';' | '{' | ')')) {
                return Err(error(
                    self.line,
                    format!("unexpected `{next}` right after a quoted string"),
                ));
            }
        }
        Ok(raw)
    }

    /// A bare word: up to white space, `;` or `{`.
    fn bare(&mut self) -> String {
        let mut raw = String::new();
        while let Some(&ch) = self.chars.get(self.i) {
            if is_space(ch) || ch == ';' || ch == '{' {
                break;
            }
            self.take(&mut raw, ch);
            // `\` keeps the next character in the word; so does `$` a `{`
            let joined = match self.chars.get(self.i) {
                Some(&next) if ch == '\\' || (ch == '$' && next == '{') => Some(next),
                _ => None,
            };
            if let Some(next) = joined {
                self.take(&mut raw, next);
            }
        }
        raw
    }
}

/// A word's value: the escapes nginx resolves; any other backslash stays.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            let resolved = match it.peek() {
                Some(&q @ ('"' | '\'' | '\\')) => Some(q),
                Some('t') => Some('\t'),
                Some('r') => Some('\r'),
                Some('n') => Some('\n'),
                _ => None,
            };
            if let Some(r) = resolved {
                out.push(r);
                it.next();
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// A directive being read: its name and arguments so far, and the line it started on.
struct Pending {
    words: Vec<String>,
    line: usize,
}

/// A block being read: the directive that opened it (none at the top) and what it holds so far.
struct Level {
    head: Option<Pending>,
    body: Vec<Directive>,
}

/// Reads `text` as a sequence of directives, as nginx reads a file: every directive ends with
/// `;` or a block, every `{` has its `}`, and nothing is left over.
pub fn parse(text: &str) -> Result<Vec<Directive>, SyntaxError> {
    parse_tokens(tokenize(text)?)
}

/// [`parse`], from tokens already read.
pub fn parse_tokens(tokens: Vec<Token>) -> Result<Vec<Directive>, SyntaxError> {
    let mut levels = vec![Level {
        head: None,
        body: Vec::new(),
    }];
    let mut pending: Option<Pending> = None;
    for t in tokens {
        match t.kind {
            Kind::Word(w) => match &mut pending {
                Some(p) => p.words.push(w),
                None => {
                    pending = Some(Pending {
                        words: vec![w],
                        line: t.line,
                    });
                }
            },
            Kind::Semicolon => {
                let p = pending
                    .take()
                    .ok_or_else(|| error(t.line, "unexpected `;`"))?;
                let level = levels.last_mut().expect("the top level stays");
                level.body.push(directive(p, None));
            }
            Kind::Open => {
                let p = pending
                    .take()
                    .ok_or_else(|| error(t.line, "unexpected `{`"))?;
                levels.push(Level {
                    head: Some(p),
                    body: Vec::new(),
                });
            }
            Kind::Close => {
                if let Some(p) = pending {
                    return Err(error(
                        t.line,
                        format!("unexpected `}}`: directive `{}` has no `;`", p.words[0]),
                    ));
                }
                if levels.len() == 1 {
                    return Err(error(
                        t.line,
                        "unexpected `}`: it closes a block this text did not open",
                    ));
                }
                let done = levels.pop().expect("more than one level");
                let head = done.head.expect("an inner level has a head");
                let level = levels.last_mut().expect("the top level stays");
                level.body.push(directive(head, Some(done.body)));
            }
        }
    }
    if let Some(p) = pending {
        return Err(error(
            p.line,
            format!("directive `{}` does not end with `;`", p.words[0]),
        ));
    }
    let mut top = levels.pop().expect("the top level stays");
    if let Some(head) = top.head.take() {
        return Err(error(
            head.line,
            format!("the `{{` of `{}` is never closed", head.words[0]),
        ));
    }
    Ok(top.body)
}

fn directive(p: Pending, block: Option<Vec<Directive>>) -> Directive {
    let mut words = p.words.into_iter();
    Directive {
        name: words.next().expect("a directive has a name"),
        args: words.collect(),
        block,
        line: p.line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens written compactly: words as is, structure as `;`, `{`, `}`.
    fn show(text: &str) -> Result<Vec<String>, String> {
        tokenize(text)
            .map(|ts| {
                ts.into_iter()
                    .map(|t| match t.kind {
                        Kind::Word(w) => format!("[{w}]"),
                        Kind::Semicolon => ";".to_owned(),
                        Kind::Open => "{".to_owned(),
                        Kind::Close => "}".to_owned(),
                    })
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tokens() {
        let cases: &[(&str, &[&str])] = &[
            ("a b;", &["[a]", "[b]", ";"]),
            ("a\tb\r\nc;", &["[a]", "[b]", "[c]", ";"]),
            (
                "location /x { return 200; }",
                &["[location]", "[/x]", "{", "[return]", "[200]", ";", "}"],
            ),
            // quotes hide structure
            (
                r#"add_header X "{"; }"#,
                &["[add_header]", "[X]", "[{]", ";", "}"],
            ),
            ("add_header X '}';", &["[add_header]", "[X]", "[}]", ";"]),
            (r#"a "b\"c";"#, &["[a]", r#"[b"c]"#, ";"]),
            (r"a 'b\'c';", &["[a]", "[b'c]", ";"]),
            (r#"a "b\\" c;"#, &["[a]", r"[b\]", "[c]", ";"]),
            (r#"a "\t\n\x";"#, &["[a]", "[\t\n\\x]", ";"]),
            ("a \"x\ny\";", &["[a]", "[x\ny]", ";"]),
            // a quoted directive name is still that name
            (r#""server" {"#, &["[server]", "{"]),
            // comments run to the end of the line, only at the start of a token
            ("a; # } {\nb;", &["[a]", ";", "[b]", ";"]),
            ("a#b;", &["[a#b]", ";"]),
            ("#", &[]),
            // `}` and quotes inside an unquoted word are ordinary characters
            ("a b};", &["[a]", "[b}]", ";"]),
            (r#"a b"c;"#, &["[a]", r#"[b"c]"#, ";"]),
            // a backslash keeps the next character, white space and `;` included
            (r"a b\;c;", &["[a]", "[b\\;c]", ";"]),
            (r"a b\ c;", &["[a]", r"[b\ c]", ";"]),
            (r"a \{;", &["[a]", r"[\{]", ";"]),
            // variables: `${` does not open a block, `$x{` does
            (
                "return 200 ${host}x;",
                &["[return]", "[200]", "[${host}x]", ";"],
            ),
            ("a $${b};", &["[a]", "[$${b}]", ";"]),
            ("a $x{", &["[a]", "[$x]", "{"]),
            (r"a \${", &["[a]", r"[\$]", "{"]),
            // `)` may follow a quoted string (`if ($a = "b")`)
            (
                r#"if ($a = "b") {"#,
                &["[if]", "[($a]", "[=]", "[b]", "[)]", "{"],
            ),
            ("", &[]),
        ];
        for (text, want) in cases {
            let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(show(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn token_errors() {
        let cases: &[(&str, &str)] = &[
            (r#"a "b;"#, "line 1: unterminated `\"` string"),
            ("a\n'b;\n", "line 2: unterminated `'` string"),
            (r#"a "b\"#, "line 1: unterminated `\"` string"),
            (
                r#"a "b"c;"#,
                "line 1: unexpected `c` right after a quoted string",
            ),
            (
                r#"a "b"};"#,
                "line 1: unexpected `}` right after a quoted string",
            ),
            (
                r##"a "b"#c;"##,
                "line 1: unexpected `#` right after a quoted string",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(show(text), Err((*want).to_owned()), "{text:?}");
        }
    }

    #[test]
    fn lines() {
        let ts = tokenize("a;\n\"x\ny\" b\\\nc;\n# }\nd;").unwrap();
        let lines: Vec<(usize, usize)> = ts.iter().map(|t| (t.line, t.last_line)).collect();
        assert_eq!(
            lines,
            [(1, 1), (1, 1), (2, 3), (3, 4), (4, 4), (6, 6), (6, 6)]
        );
    }

    #[test]
    fn directives() {
        let d = parse("a 1;\nlocation /x {\n  b \"2 3\";\n  location = /y { }\n}\n").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].name.as_str(), d[0].line), ("a", 1));
        assert_eq!(d[0].args, ["1"]);
        assert!(d[0].block.is_none());
        let inner = d[1].block.as_ref().unwrap();
        assert_eq!(d[1].args, ["/x"]);
        assert_eq!(inner[0].args, ["2 3"]);
        assert_eq!((inner[1].name.as_str(), inner[1].line), ("location", 4));
        assert_eq!(inner[1].block.as_deref(), Some(&[][..]));
        assert_eq!(parse("  # nothing\n"), Ok(Vec::new()));
    }

    #[test]
    fn structure_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "a;\n}",
                "line 2: unexpected `}`: it closes a block this text did not open",
            ),
            (
                r#"add_header X "{"; }"#,
                "line 1: unexpected `}`: it closes a block this text did not open",
            ),
            (
                "location / {\n a;\n",
                "line 1: the `{` of `location` is never closed",
            ),
            ("a b", "line 1: directive `a` does not end with `;`"),
            ("a;\nb # ;", "line 2: directive `b` does not end with `;`"),
            (
                "l { a }",
                "line 1: unexpected `}`: directive `a` has no `;`",
            ),
            (";", "line 1: unexpected `;`"),
            ("{ }", "line 1: unexpected `{`"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse(text).map_err(|e| e.to_string()),
                Err((*want).to_owned()),
                "{text:?}"
            );
        }
    }
}
