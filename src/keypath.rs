//! Key paths name a value inside the profile, the way a user would point at it.
//!
//! `all.children.infra.hosts."10.10.10.11".infra_seq`: keys are joined with `.`, and a key
//! that itself contains `.` or white space is quoted so the path stays unambiguous.

/// Appends `key` to `base`, quoting it when it would be ambiguous.
pub fn join(base: &str, key: &str) -> String {
    let key = segment(key);
    if base.is_empty() {
        key.into_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// `key` as a path spells it: as it is, or quoted when it would be ambiguous.
pub fn segment(key: &str) -> std::borrow::Cow<'_, str> {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        std::borrow::Cow::Borrowed(key)
    } else {
        std::borrow::Cow::Owned(format!("{key:?}"))
    }
}

/// Appends a list index to `base`: `base[3]`.
pub fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_keys_with_dots() {
        assert_eq!(join("all.hosts", "10.0.0.1"), r#"all.hosts."10.0.0.1""#);
        assert_eq!(join("all", "vars"), "all.vars");
        assert_eq!(join("", "all"), "all");
        assert_eq!(index("all.vars.dns_records", 2), "all.vars.dns_records[2]");
    }
}
