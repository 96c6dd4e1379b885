//! What the content checks need of PromQL/MetricsQL text, without a full parser (the real
//! parser is vmalert's, run with `--validate`): Grafana variables substituted by sample values,
//! the series selector inside Grafana's `label_values(…)`, and the recorded series a query names.

use std::collections::{BTreeMap, BTreeSet};

/// Grafana's own variables, with the sample values a query is checked with.
const BUILTIN: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "1m"),
    ("__interval_ms", "60000"),
    ("__range", "1h"),
    ("__range_s", "3600"),
    ("__range_ms", "3600000"),
    ("__auto", "1m"),
    ("__from", "0"),
    ("__to", "0"),
    ("__dashboard", "dashboard"),
    ("__org", "1"),
    ("__user", "user"),
];

/// The value a variable not otherwise known is replaced with: a word, valid inside a label
/// matcher's string and as a label name.
pub const SAMPLE: &str = "sample";

/// `text` with every Grafana variable (`$name`, `${name}`, `${name:format}`, `[[name]]`)
/// replaced by its value in `vars`, Grafana's own by [`BUILTIN`], any other by [`SAMPLE`].
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let value = |name: &str| -> String {
        let name = name.split(':').next().unwrap_or(name);
        if let Some(v) = vars.get(name) {
            return v.clone();
        }
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| SAMPLE.to_owned(), |(_, v)| (*v).to_owned())
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(inner) = tail.strip_prefix("${") {
            if let Some(end) = inner.find('}') {
                out.push_str(&value(&inner[..end]));
                rest = &inner[end + 1..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix("[[") {
            if let Some(end) = inner.find("]]") {
                if is_name(&inner[..end]) {
                    out.push_str(&value(&inner[..end]));
                    rest = &inner[end + 2..];
                    continue;
                }
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            if end > 0 {
                out.push_str(&value(&inner[..end]));
                rest = &inner[end..];
                continue;
            }
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// A variable's name with an optional `:format`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The `PromQL` inside a Prometheus template-variable query: the selector of
/// `label_values(selector, label)`, the expression of `query_result(expr)`; `None` for queries
/// with none (`label_values(label)`, `label_names()`, `metrics(regex)`).
pub fn variable_query(query: &str) -> Option<String> {
    let q = query.trim();
    let call = |name: &str| {
        q.strip_prefix(name)
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.trim_end().strip_suffix(')'))
    };
    if let Some(args) = call("label_values") {
        let comma = top_level_last_comma(args)?;
        return Some(args[..comma].trim().to_owned());
    }
    if let Some(expr) = call("query_result") {
        return Some(expr.trim().to_owned());
    }
    if q.is_empty()
        || ["label_names", "metrics"]
            .iter()
            .any(|n| q.starts_with(n) && call(n).is_some())
    {
        return None;
    }
    Some(q.to_owned())
}

/// The byte offset of the last comma of `args` not inside brackets or quotes.
fn top_level_last_comma(args: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote = None;
    let mut last = None;
    for (i, c) in args.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '{' | '[') => depth += 1,
            (None, ')' | '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => last = Some(i),
            _ => {}
        }
    }
    last
}

/// The recorded series (metric names with a `:`) `expr` names, outside strings, label
/// matchers and range brackets.
pub fn recorded_series(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' && q != b'`' { 2 } else { 1 };
                }
                i += 1;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                while i < b.len() && b[i] != close {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        let q = b[i];
                        i += 1;
                        while i < b.len() && b[i] != q {
                            i += if b[i] == b'\\' { 2 } else { 1 };
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                if word.contains(':') && word.trim_matches(':') == word {
                    out.insert(word.to_owned());
                }
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_take_sample_values_in_every_form() {
        let vars = BTreeMap::from([("ins".to_owned(), "pg-test-1".to_owned())]);
        assert_eq!(
            substitute(
                r#"rate(x{ins="$ins",cls=~"${cls:regex}",job="[[job]]"}[$__rate_interval]) > $n"#,
                &vars
            ),
            r#"rate(x{ins="pg-test-1",cls=~"sample",job="sample"}[1m]) > sample"#
        );
        assert_eq!(substitute("x[5m:1m] $ 1", &vars), "x[5m:1m] $ 1");
        assert_eq!(substitute("a[[b c]]", &vars), "a[[b c]]");
    }

    #[test]
    fn variable_queries_yield_their_promql() {
        assert_eq!(
            variable_query(r#"label_values(pg_up{cls="a,b"}, ins)"#).as_deref(),
            Some(r#"pg_up{cls="a,b"}"#)
        );
        assert_eq!(variable_query("label_values(ins)"), None);
        assert_eq!(variable_query("label_names()"), None);
        assert_eq!(
            variable_query("query_result(topk(5, up))").as_deref(),
            Some("topk(5, up)")
        );
        assert_eq!(variable_query("up").as_deref(), Some("up"));
    }

    #[test]
    fn recorded_series_are_names_with_a_colon_outside_strings_and_brackets() {
        let got = recorded_series(
            r#"sum by (ins) (node:ins:cpu_usage{job="a:b"}[5m:1m]) / pg:cls:x offset 1m + "q:r" + 1e3"#,
        );
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["node:ins:cpu_usage", "pg:cls:x"]
        );
        assert!(recorded_series(r#"up{__name__="a:b"}"#).is_empty());
    }
}
