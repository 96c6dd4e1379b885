//! Domain checks for values headed into config files.
//!
//! Validators check syntax, not intent (docs/reliability.md): `nginx -t` happily accepts an
//! injected server block. So every string from a profile is checked against the narrowest
//! domain type that fits before it reaches a template. Each check returns the message of a
//! problem; the caller adds the key path.

/// No control characters at all (newline included): one value, one line.
pub fn no_control(s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("control character {c:?} is not allowed")),
        None => Ok(()),
    }
}

/// A DNS name (`i.pigsty`, `m-1.example.com`), optionally a leading `*.` wildcard.
pub fn domain(s: &str) -> Result<(), String> {
    let name = s.strip_prefix("*.").unwrap_or(s);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{s}` is not a valid domain name"))
    }
}

/// An absolute path of safe characters, without `..`.
pub fn abs_path(s: &str) -> Result<(), String> {
    let ok = s.starts_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
        && !s.split('/').any(|part| part == "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a safe absolute path (letters, digits and `/._-+@` only, no `..`)"
        ))
    }
}

/// A file or label name: letters, digits, `._-`, not starting with `.`.
pub fn name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid name (letters, digits and `._-` only)"
        ))
    }
}

/// One command-line flag word: starts with `-`, no quotes, `$`, `%`, `\` or `;`.
pub fn flag(s: &str) -> Result<(), String> {
    if !s.starts_with('-') {
        return Err(format!("`{s}` is not a flag (flags start with `-`)"));
    }
    match s.chars().find(|c| "\"'`$%\\;".contains(*c)) {
        Some(c) => Err(format!("`{c}` is not allowed in flag `{s}`")),
        None => Ok(()),
    }
}

/// A quoted nginx string (realm): printable, no `"`, `\`, `$`.
pub fn nginx_quoted(s: &str) -> Result<(), String> {
    match s.chars().find(|c| "\"\\$".contains(*c)) {
        Some(c) => Err(format!("`{c}` is not allowed in a quoted nginx string")),
        None => Ok(()),
    }
}

/// A hostname label usable in a DNS hosts file and as a file name.
pub fn hostname(s: &str) -> Result<(), String> {
    domain(s).and_then(|()| {
        if s.starts_with("*.") {
            Err(format!("`{s}` may not be a wildcard"))
        } else {
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        type Check = fn(&str) -> Result<(), String>;
        let cases: &[(Check, &str, bool)] = &[
            (domain, "i.pigsty", true),
            (domain, "*.example.com", true),
            (domain, "a;b", false),
            (domain, "a b", false),
            (domain, "-a.b", false),
            (domain, "", false),
            (abs_path, "/www/pigsty", true),
            (abs_path, "www", false),
            (abs_path, "/www/../etc", false),
            (abs_path, "/www;", false),
            (flag, "-retentionPeriod=15d", true),
            (flag, "retention", false),
            (flag, "-a=$HOME", false),
            (nginx_quoted, "Pigsty Home Auth", true),
            (nginx_quoted, "a\"b", false),
            (no_control, "a\nb", false),
            (name, "pg-meta", true),
            (name, "../x", false),
        ];
        for (f, input, ok) in cases {
            assert_eq!(f(input).is_ok(), *ok, "{input:?}");
        }
    }
}
