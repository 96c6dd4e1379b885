//! The `control` file of a `.deb`: finding it in the control archive and parsing its one
//! deb822 paragraph into fields (deb822(5)).

use std::collections::BTreeMap;
use std::io::Read;

use super::archive::{drain, open, Budget};
use super::{entry_error, DebError, Member, Problem};

/// Largest `control` file read; real ones are a few KiB.
const CONTROL_MAX: u64 = 1 << 20;

/// Reads the `control` file out of the control archive and parses its fields.
pub(super) fn read_control(
    m: Member,
    budget: &Budget,
) -> Result<BTreeMap<String, String>, DebError> {
    let broken = |source| DebError::Read {
        member: m.name.into(),
        what: "broken archive",
        source,
    };
    let mut archive = open(m, budget)?;
    let mut control = None;
    let mut count = 0;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = entry.path_bytes().into_owned();
        count += 1;
        if count > budget.limits.max_entries {
            return Err(entry_error(
                &raw,
                Problem::TooManyEntries(budget.limits.max_entries),
            ));
        }
        budget
            .admit(entry.size())
            .map_err(|p| entry_error(&raw, p))?;
        if raw != b"./control" && raw != b"control" {
            continue;
        }
        if control.is_some() {
            return Err(entry_error(&raw, Problem::Duplicate));
        }
        if !entry.header().entry_type().is_file() {
            let reason = "`control` is not a regular file".into();
            return Err(DebError::Member {
                member: m.name.into(),
                reason,
            });
        }
        if entry.size() > CONTROL_MAX {
            return Err(entry_error(
                &raw,
                Problem::FileTooLarge {
                    size: entry.size(),
                    max: CONTROL_MAX,
                },
            ));
        }
        let mut text = Vec::new();
        entry
            .read_to_end(&mut text)
            .map_err(|e| entry_error(&raw, Problem::Unreadable(e.to_string())))?;
        control = Some(text);
    }
    drain(m, archive)?;
    let text = control.ok_or_else(|| DebError::Member {
        member: m.name.into(),
        reason: "no `control` file".into(),
    })?;
    let fail = |line, reason| DebError::Control {
        member: m.name.into(),
        line,
        reason,
    };
    let text = String::from_utf8(text).map_err(|_| fail(None, "not UTF-8".into()))?;
    let fields = parse_control(&text).map_err(|(line, reason)| fail(Some(line), reason))?;
    for required in ["Package", "Version", "Architecture"] {
        if !fields.contains_key(required) {
            return Err(fail(None, format!("missing field `{required}`")));
        }
    }
    Ok(fields)
}

/// Parses one deb822 paragraph; continuation lines join their field with `\n`. The error is a
/// 1-based line number and a reason.
fn parse_control(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut ended = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let number = i + 1;
        if line.is_empty() {
            ended = !fields.is_empty();
            continue;
        }
        if ended {
            return Err((number, "a second paragraph".into()));
        }
        if line.starts_with([' ', '\t']) {
            let key = current
                .as_ref()
                .ok_or((number, "continuation line before any field".into()))?;
            let value = fields.get_mut(key).expect("current field is stored");
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or((number, "expected `Field: value`".into()))?;
        let valid = !name.is_empty()
            && !name.starts_with(['#', '-'])
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid {
            return Err((
                number,
                format!("invalid field name `{}`", name.escape_debug()),
            ));
        }
        if fields.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err((number, format!("field `{name}` listed twice")));
        }
        fields.insert(name.to_owned(), value.trim().to_owned());
        current = Some(name.to_owned());
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_fields() {
        let text =
            "Package: dnsmasq-base\nVersion: 2.90-4\nDescription: small\n caching\n .\n server\n\n";
        let fields = parse_control(text).unwrap();
        assert_eq!(fields["Package"], "dnsmasq-base");
        assert_eq!(fields["Description"], "small\n caching\n .\n server");
        let cases = [
            (" lead\n", (1, "continuation line before any field")),
            ("A: 1\nno colon\n", (2, "expected `Field: value`")),
            ("A: 1\na: 2\n", (2, "field `a` listed twice")),
            ("A: 1\n\nB: 2\n", (3, "a second paragraph")),
            ("#A: 1\n", (1, "invalid field name `#A`")),
        ];
        for (text, (line, reason)) in cases {
            assert_eq!(
                parse_control(text),
                Err((line, reason.to_owned())),
                "{text:?}"
            );
        }
    }
}
