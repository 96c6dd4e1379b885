//! Reading vmalert rule files for the alert tests: rules, the metric names an expression reads,
//! and the numbers it compares against. Shared by `tests/alerts.rs` and
//! `tests/alerts_integration.rs`.

use std::collections::BTreeSet;

use serde_json::Value;

/// One rule of a rule file: an alert or a recording rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The file it is in (`node.yml`).
    pub file: String,
    /// The group it is in.
    pub group: String,
    /// The alert's name, or `None` for a recording rule.
    pub alert: Option<String>,
    /// The recorded series' name, or `None` for an alert.
    pub record: Option<String>,
    /// The expression.
    pub expr: String,
    /// `for`, as written; `None` when absent.
    pub for_: Option<String>,
    /// `labels.severity`.
    pub severity: Option<String>,
    /// `labels.level`, as text.
    pub level: Option<String>,
    /// `annotations.summary`.
    pub summary: Option<String>,
    /// `annotations.description`.
    pub description: Option<String>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Every rule of the rule file `file` with text `text`; panics naming the file on bad shape.
pub fn parse(file: &str, text: &str) -> Vec<Rule> {
    let doc: Value = infragen::yaml::from_str_as(text).unwrap_or_else(|e| panic!("{file}: {e:#}"));
    let groups = doc["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: `groups` is not a list"));
    let mut out = Vec::new();
    for g in groups {
        let group = g["name"].as_str().expect("group name").to_owned();
        for r in g["rules"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: group `{group}` has no rules"))
        {
            out.push(Rule {
                file: file.to_owned(),
                group: group.clone(),
                alert: r.get("alert").and_then(scalar),
                record: r.get("record").and_then(scalar),
                expr: r.get("expr").and_then(scalar).unwrap_or_default(),
                for_: r.get("for").and_then(scalar),
                severity: r.pointer("/labels/severity").and_then(scalar),
                level: r.pointer("/labels/level").and_then(scalar),
                summary: r.pointer("/annotations/summary").and_then(scalar),
                description: r.pointer("/annotations/description").and_then(scalar),
            });
        }
    }
    out
}

/// Every rule of the built-in set, in file order.
pub fn builtin() -> Vec<Rule> {
    infragen::content::rules::every()
        .iter()
        .flat_map(|f| parse(&f.name, &f.text))
        .collect()
}

/// `expr` with its quoted strings blanked (label values, regular expressions, templates).
fn unquoted(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut quote = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                out.push(' ');
            }
            None if c == '"' || c == '\'' || c == '`' => {
                quote = Some(c);
                out.push(' ');
            }
            None => out.push(c),
        }
    }
    out
}

/// The recorded-series names `expr` reads: its identifiers that contain a `:`.
pub fn recorded_names(expr: &str) -> BTreeSet<String> {
    words(expr)
        .into_iter()
        .filter(|w| w.contains(':'))
        .collect()
}

/// The identifiers of `expr` outside quotes (metric, function, label names and keywords).
pub fn words(expr: &str) -> BTreeSet<String> {
    let text = unquoted(expr);
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if !word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()) {
                names.insert(word.clone());
            }
            word.clear();
        }
    }
    names
}

/// The numbers `expr` compares against: each literal right of `>`, `<`, `>=`, `<=`, `==` or
/// `!=` (after an optional `bool`).
pub fn compared_numbers(expr: &str) -> Vec<f64> {
    let text = unquoted(expr);
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let op = match (b[i], b.get(i + 1)) {
            (b'>' | b'<' | b'=' | b'!', Some(b'=')) => 2,
            (b'>' | b'<', _) => 1,
            _ => 0,
        };
        if op == 0 {
            i += 1;
            continue;
        }
        let mut rest = text[i + op..].trim_start();
        if let Some(r) = rest.strip_prefix("bool ") {
            rest = r.trim_start();
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
            .unwrap_or(rest.len());
        if let Ok(n) = rest[..end].parse::<f64>() {
            out.push(n);
        }
        i += op;
    }
    out
}

/// The thresholds of a facts row (`1048576,1`) as numbers.
pub fn thresholds(cell: &str) -> Vec<f64> {
    cell.split(',')
        .map(|t| {
            t.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("threshold `{t}` is not a number"))
        })
        .collect()
}

/// Whether `n` is one of `numbers` (exactly as written: `0.90` is `0.9`, `1e-2` is `0.01`).
pub fn has_number(numbers: &[f64], n: f64) -> bool {
    numbers
        .iter()
        .any(|m| (m - n).abs() <= f64::EPSILON * n.abs().max(1.0))
}
