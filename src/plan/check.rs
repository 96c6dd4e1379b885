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

/// Where a component's own flags may point: the directories its image and its bundle give it
/// (`own` is the component's name, as in `/etc/<own>/`). A checker sees only these (docs/usage.md),
/// and the component at run time sees nothing of the build machine.
pub fn flag_roots(own: &str) -> [String; 4] {
    [
        format!("/etc/{own}/"),
        "/etc/pki/".to_owned(),
        "/infra/".to_owned(),
        format!("/run/credentials/infra-{own}.service/"),
    ]
}

/// A flag word of component `own` that names a file names one of its own
/// ([`flag_roots`]): each comma-separated item of its value that looks like a path (absolute,
/// `./`, `../`, `~`, a `file:` URL) must lie under one of them, without `..`. Flags whose value
/// is a URL path rather than a file (`-http.pathPrefix=/vm`, `--web.route-prefix=/`) are left
/// alone.
pub fn flag_paths(word: &str, own: &str) -> Result<(), String> {
    let Some((name, value)) = word.split_once('=') else {
        return Ok(());
    };
    if name.to_ascii_lowercase().ends_with("prefix") {
        return Ok(());
    }
    let roots = flag_roots(own);
    for item in value.split(',') {
        let file_url = item
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("file:"));
        let path = if file_url {
            item[5..].trim_start_matches("//")
        } else {
            item
        };
        let path_like = file_url
            || ["/", "./", "../", "~"].iter().any(|p| item.starts_with(p))
            || item == "."
            || item == "..";
        if !path_like {
            continue;
        }
        let inside = !path.split('/').any(|part| part == "..")
            && roots.iter().any(|r| path.starts_with(r.as_str()));
        if !inside {
            let list: Vec<String> = roots.iter().map(|r| format!("`{r}`")).collect();
            return Err(format!(
                "flag `{word}` names `{item}`, outside what {own} is given ({}): a checker could \
                 not see it and the component would not have it",
                list.join(", ")
            ));
        }
    }
    Ok(())
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
            (
                |w| flag_paths(w, "vmalert"),
                "-rule=/etc/vmalert/rules/*.yml",
                true,
            ),
            (|w| flag_paths(w, "vmalert"), "-rule=/tmp/secret.yml", false),
            (
                |w| flag_paths(w, "vmalert"),
                "-rule=/etc/vmalert/a.yml,/root/b",
                false,
            ),
            (
                |w| flag_paths(w, "vmalert"),
                "-rule=/etc/vmalert/../../root/x",
                false,
            ),
            (
                |w| flag_paths(w, "vmalert"),
                "-rule.templates=./t.tpl",
                false,
            ),
            (|w| flag_paths(w, "vmalert"), "-rule=~/x", false),
            (
                |w| flag_paths(w, "vmalert"),
                "-rule=/etc/blackbox/b.yml",
                false,
            ),
            (
                |w| flag_paths(w, "vmetrics"),
                "-httpAuth.password=file:///root/pw",
                false,
            ),
            (|w| flag_paths(w, "vmetrics"), "-tls=file:/etc/pki/x", true),
            (
                |w| flag_paths(w, "vmetrics"),
                "-storageDataPath=/infra/metrics",
                true,
            ),
            (|w| flag_paths(w, "vmetrics"), "-retentionPeriod=15d", true),
            (
                |w| flag_paths(w, "vmetrics"),
                "-datasource.url=http://1.2.3.4/a",
                true,
            ),
            (|w| flag_paths(w, "vmetrics"), "-http.pathPrefix=/vm", true),
            (
                |w| flag_paths(w, "alertmanager"),
                "--web.route-prefix=/",
                true,
            ),
            (
                |w| flag_paths(w, "alertmanager"),
                "--web.config.file=/root/web.yml",
                false,
            ),
            (|w| flag_paths(w, "alertmanager"), "--data.retention", true),
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
