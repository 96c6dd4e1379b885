//! The deb822 stanza reader shared by the `*.sources`, `Release` and `Packages` parsers
//! (<https://manpages.debian.org/bookworm/dpkg-dev/deb822.5.en.html>).
//!
//! Pure: splits text into stanzas of fields and reads `yes`/`no` and word-list values. It knows
//! nothing of which fields a given file needs; that is up to the caller.

use std::borrow::Cow;

use super::AptError;

/// One `Field: value` of a stanza; a multi-line value keeps its continuation lines, joined by
/// `\n` with their leading whitespace.
pub(super) struct Field<'a> {
    pub(super) name: &'a str,
    pub(super) value: Cow<'a, str>,
    /// Line of the field name.
    pub(super) line: usize,
    /// Line where the value starts (the next one for `SHA256:` and its list).
    pub(super) value_line: usize,
}

/// One paragraph of a deb822 file.
pub(super) struct Stanza<'a> {
    pub(super) line: usize,
    fields: Vec<Field<'a>>,
}

impl<'a> Stanza<'a> {
    /// The field named `name`, case-insensitively as deb822 says.
    pub(super) fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub(super) fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(|f| f.value.as_ref())
    }

    pub(super) fn require(
        &self,
        file: &'static str,
        name: &'static str,
    ) -> Result<&Field<'a>, AptError> {
        self.get(name).ok_or(AptError::Missing {
            file,
            line: self.line,
            field: name,
        })
    }
}

/// The field being read: its value's byte range in the text, and whether a comment line
/// interrupted it (then its value is copied, leaving the comment out).
struct Open {
    start: usize,
    end: usize,
    split: bool,
    value_line: Option<usize>,
}

/// Splits deb822 text into stanzas. Blank lines separate stanzas, lines starting with `#` are
/// comments wherever they are, and lines starting with a space or tab continue the field above.
/// Values borrow from the text unless a comment splits them.
pub(super) fn stanzas<'a>(file: &'static str, text: &'a str) -> Result<Vec<Stanza<'a>>, AptError> {
    let mut out = Vec::new();
    let mut current: Option<Stanza<'a>> = None;
    let mut open: Option<Open> = None;
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        if line.trim().is_empty() {
            close_field(text, current.as_mut(), open.take());
            out.extend(current.take());
        } else if line.starts_with('#') {
            if let Some(o) = open.as_mut() {
                o.split = true;
            }
        } else if line.starts_with([' ', '\t']) {
            let (Some(o), Some(stanza)) = (open.as_mut(), current.as_mut()) else {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: "continuation line outside a field".into(),
                });
            };
            if o.split {
                let field = stanza.fields.last_mut().expect("an open field exists");
                if let Cow::Borrowed(_) = field.value {
                    field.value = Cow::Owned(text[o.start..o.end].trim().to_owned());
                }
                let value = field.value.to_mut();
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(line);
            }
            o.end = end;
            o.value_line.get_or_insert(line_no);
        } else {
            close_field(text, current.as_mut(), open.take());
            let Some((name, value)) = line.split_once(':') else {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: format!("expected `Field: value`, found `{line}`"),
                });
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: format!("invalid field name `{name}`"),
                });
            }
            let stanza = current.get_or_insert_with(|| Stanza {
                line: line_no,
                fields: Vec::new(),
            });
            if stanza.get(name).is_some() {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: format!("field `{name}` appears twice in one stanza"),
                });
            }
            stanza.fields.push(Field {
                name,
                value: Cow::Borrowed(""),
                line: line_no,
                value_line: line_no,
            });
            open = Some(Open {
                start: start + name.len() + 1,
                end,
                split: false,
                value_line: (!value.trim().is_empty()).then_some(line_no),
            });
        }
    }
    close_field(text, current.as_mut(), open.take());
    out.extend(current);
    Ok(out)
}

/// Sets the last field's value from its byte range, unless a comment made it a copy already.
fn close_field<'a>(text: &'a str, stanza: Option<&mut Stanza<'a>>, open: Option<Open>) {
    let (Some(stanza), Some(open)) = (stanza, open) else {
        return;
    };
    let field = stanza.fields.last_mut().expect("an open field exists");
    if let Cow::Borrowed(_) = field.value {
        field.value = Cow::Borrowed(text[open.start..open.end].trim());
    }
    field.value_line = open.value_line.unwrap_or(field.line);
}

pub(super) fn yes_no(file: &'static str, field: &Field<'_>) -> Result<bool, AptError> {
    match field.value.as_ref() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => Err(AptError::Field {
            file,
            line: field.line,
            field: field.name.to_owned(),
            message: format!("expected `yes` or `no`, found `{other}`"),
        }),
    }
}

pub(super) fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}
