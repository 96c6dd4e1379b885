//! What Grafana does to a dashboard before its panels ask the datasource, done here by hand
//! (Grafana cannot run on the test machine): which panel targets are `PromQL` for the
//! `VictoriaMetrics` datasource, the template variables in their order with their sources, the
//! value Grafana selects on first load, and the interpolation of variables into a query the way
//! Grafana's Prometheus datasource formats them.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// Grafana's built-in variables, with the values the test gives them (a 10 s scrape interval,
/// a 10 minute time range).
pub const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "20s"),
    ("__interval_ms", "20000"),
    ("__range", "10m"),
    ("__range_s", "600"),
    ("__range_ms", "600000"),
];

/// Datasource plugin types that take `PromQL`/`MetricsQL`.
pub const PROM_TYPES: &[&str] = &["prometheus", "victoriametrics-metrics-datasource"];

/// One `PromQL` target of a panel.
#[derive(Debug)]
pub struct Target {
    /// The panel's title (`panel <id>` when it has none).
    pub panel: String,
    /// The query as written in the dashboard.
    pub expr: String,
    /// Drawn from an instant query.
    pub instant: bool,
    /// Drawn from a range query (Grafana's default when neither is set).
    pub range: bool,
}

/// A panel target that is not `PromQL` (SQL, `LogsQL`, static data): not queried here.
#[derive(Debug)]
pub struct Other {
    /// The panel's title.
    pub panel: String,
    /// Its datasource, as written.
    pub datasource: String,
}

/// One template variable.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its name (`ins`).
    pub name: String,
    /// `query`, `custom`, `constant`, `textbox`, `interval`, `datasource`, `adhoc`.
    pub kind: String,
    /// Its query or definition text.
    pub query: String,
    /// Grafana's `/regex/` on the values, when set.
    pub regex: Option<String>,
    /// Grafana's `sort` (0 none, 1/2 alphabetical, 3/4 numerical, 5/6 case-insensitive).
    pub sort: u64,
    /// Several values can be selected.
    pub multi: bool,
    /// `All` is an option (and the one selected first).
    pub include_all: bool,
    /// What `All` stands for, when set (`.*`).
    pub all_value: Option<String>,
}

/// Where a variable's options come from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// `label_values(label)` or `label_values(selector, label)`.
    LabelValues {
        /// The series selector, when given.
        selector: Option<String>,
        /// The label.
        label: String,
    },
    /// `query_result(expr)`: each result as `name{labels} value timestamp`.
    QueryResult(String),
    /// `label_names()` or `metrics(regex)`: every label name or metric name.
    Names {
        /// `__name__` for metrics, else label names.
        metrics: bool,
    },
    /// Values written in the dashboard (custom, constant, textbox, interval).
    Fixed(Vec<String>),
    /// A datasource variable of this plugin type.
    Datasource(String),
    /// Ad hoc filters: no value to substitute.
    Adhoc,
}

/// The values a variable stands for once chosen.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The variable (flags decide the formatting).
    pub var: Variable,
    /// The selected values (every option when `All` is selected).
    pub values: Vec<String>,
    /// `All` is selected.
    pub all: bool,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => text(o.get("query")),
        _ => String::new(),
    }
}

/// The dashboard's template variables, in order.
pub fn variables(dash: &Value) -> Vec<Variable> {
    let list = dash["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|v| Variable {
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            kind: v["type"].as_str().unwrap_or("query").to_owned(),
            query: Some(text(v.get("query")))
                .filter(|q| !q.is_empty())
                .unwrap_or_else(|| text(v.get("definition"))),
            regex: v["regex"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            sort: v["sort"].as_u64().unwrap_or(0),
            multi: v["multi"].as_bool().unwrap_or(false),
            include_all: v["includeAll"].as_bool().unwrap_or(false),
            all_value: v["allValue"]
                .as_str()
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
        })
        .collect()
}

/// The argument text of `name(...)` when `q` is that call.
fn call<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.trim()
        .strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::trim)
}

/// The index of the last comma outside braces and quotes.
fn last_top_comma(s: &str) -> Option<usize> {
    let (mut depth, mut quote, mut at) = (0i32, None, None);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '{' | '(' | '[') => depth += 1,
            (None, '}' | ')' | ']') => depth -= 1,
            (None, ',') if depth == 0 => at = Some(i),
            _ => {} // inside a quote, or any other character
        }
    }
    at
}

/// Where `v`'s options come from.
pub fn source(v: &Variable) -> Result<Source, String> {
    let q = v.query.trim();
    let list = |sep: char| {
        q.split(sep)
            .map(|s| s.rsplit(" : ").next().unwrap_or(s).trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Ok(match v.kind.as_str() {
        "custom" | "interval" => Source::Fixed(list(',')),
        "constant" | "textbox" => Source::Fixed(vec![q.to_owned()]),
        "datasource" => Source::Datasource(q.to_owned()),
        "adhoc" => Source::Adhoc,
        "query" => {
            if let Some(args) = call(q, "label_values") {
                match last_top_comma(args) {
                    Some(i) => Source::LabelValues {
                        selector: Some(args[..i].trim().to_owned()),
                        label: args[i + 1..].trim().to_owned(),
                    },
                    None => Source::LabelValues {
                        selector: None,
                        label: args.to_owned(),
                    },
                }
            } else if let Some(args) = call(q, "query_result") {
                Source::QueryResult(args.to_owned())
            } else if call(q, "label_names").is_some() {
                Source::Names { metrics: false }
            } else if call(q, "metrics").is_some() {
                Source::Names { metrics: true }
            } else {
                return Err(format!(
                    "variable `{}`: query `{q}` is not one this test knows",
                    v.name
                ));
            }
        }
        other => {
            return Err(format!(
                "variable `{}`: type `{other}` is not one this test knows",
                v.name
            ))
        }
    })
}

/// Grafana's `/pattern/flags` applied to the options: a value that does not match is dropped; a
/// capture group (`value` or `text` by name, else the first) stands for the value.
pub fn filter(v: &Variable, options: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let Some(raw) = &v.regex else {
        out = options;
        out.dedup();
        return Ok(out);
    };
    let (pattern, flags) = match raw.strip_prefix('/').and_then(|r| r.rsplit_once('/')) {
        Some((p, f)) => (p.to_owned(), f),
        None => (raw.clone(), ""),
    };
    let pattern = if flags.contains('i') {
        format!("(?i){pattern}")
    } else {
        pattern
    };
    let re = Regex::new(&pattern).map_err(|e| {
        format!(
            "variable `{}`: regex `{raw}` is not one this test can run: {e}",
            v.name
        )
    })?;
    for o in options {
        let Some(c) = re.captures(&o) else { continue };
        let m = c
            .name("value")
            .or_else(|| c.name("text"))
            .or_else(|| c.get(1))
            .or_else(|| c.get(0));
        let value = m.map_or(String::new(), |m| m.as_str().to_owned());
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// The options in Grafana's `sort` order.
pub fn sort(v: &Variable, mut options: Vec<String>) -> Vec<String> {
    let num = |s: &String| s.parse::<f64>().unwrap_or(f64::MAX);
    match v.sort {
        1 | 2 => options.sort(),
        3 | 4 => options.sort_by(|a, b| num(a).total_cmp(&num(b))),
        5 | 6 => options.sort_by_key(|s| s.to_lowercase()),
        _ => {}
    }
    if v.sort != 0 && v.sort.is_multiple_of(2) {
        options.reverse();
    }
    options
}

/// What Grafana selects on a first load with nothing stored: `All` when it is an option, else
/// the first option (none: the empty value).
pub fn choose(v: &Variable, options: Vec<String>) -> Chosen {
    if v.include_all {
        return Chosen {
            var: v.clone(),
            values: options,
            all: true,
        };
    }
    let values = options.into_iter().take(1).collect();
    Chosen {
        var: v.clone(),
        values,
        all: false,
    }
}

/// `\`, `'` escaped, as Grafana's Prometheus datasource escapes a single value.
fn regular_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\\\'")
}

/// Regex metacharacters escaped for a `PromQL` string literal, as Grafana does for multi-values.
fn special_regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '\'' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str("\\\\");
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `c` formatted for a query: with `format` (`${var:raw}`) or as Grafana's Prometheus
/// datasource does by default.
pub fn format(c: &Chosen, format: Option<&str>) -> String {
    if c.all && format.is_none() {
        if let Some(all) = &c.var.all_value {
            return all.clone();
        }
    }
    let v = &c.values;
    match format {
        Some("raw" | "csv") => v.join(","),
        Some("pipe") => v.join("|"),
        Some("text") => v.join(" + "),
        Some("json") => serde_json::to_string(v).unwrap_or_default(),
        Some("regex") => {
            let e: Vec<String> = v.iter().map(|s| regex::escape(s)).collect();
            if e.len() == 1 {
                e[0].clone()
            } else {
                format!("({})", e.join("|"))
            }
        }
        _ if !c.var.multi && !c.var.include_all => {
            v.first().map_or(String::new(), |s| regular_escape(s))
        }
        _ => {
            let e: Vec<String> = v.iter().map(|s| special_regex_escape(s)).collect();
            if e.len() == 1 {
                e[0].clone()
            } else {
                format!("({})", e.join("|"))
            }
        }
    }
}

/// The names of the variables `text` refers to (`$x`, `${x}`, `${x:fmt}`, `[[x]]`).
pub fn referenced(text: &str) -> Vec<String> {
    syntax()
        .captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)).or_else(|| c.get(4)))
        .map(|m| m.as_str().to_owned())
        .collect()
}

fn syntax() -> Regex {
    Regex::new(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.[^:^\}]+)?(?::([^\}]+))?\}")
        .expect("regex")
}

/// `text` with every known variable replaced (an unknown one is left as written, as Grafana
/// leaves it).
pub fn interpolate(text: &str, scope: &BTreeMap<String, Chosen>) -> String {
    syntax()
        .replace_all(text, |c: &regex::Captures| {
            let name = c
                .get(1)
                .or_else(|| c.get(2))
                .or_else(|| c.get(4))
                .expect("a name")
                .as_str();
            let fmt = c.get(3).or_else(|| c.get(5)).map(|m| m.as_str());
            if let Some((_, value)) = BUILTINS.iter().find(|(n, _)| *n == name) {
                return (*value).to_owned();
            }
            scope
                .get(name)
                .map_or_else(|| c[0].to_owned(), |chosen| format(chosen, fmt))
        })
        .into_owned()
}

/// A datasource reference as written (`null`, a name or uid, `{type, uid}`).
fn datasource_text(ds: &Value) -> String {
    match ds {
        Value::Null => "default".to_owned(),
        Value::String(s) => s.clone(),
        _ => ds.to_string(),
    }
}

/// Whether `ds` (target's or panel's) is a `PromQL` datasource; `None` for Grafana's mixed
/// pseudo-datasource, which leaves the choice to each target.
fn is_prom(ds: &Value, vars: &[Variable]) -> Option<bool> {
    let (kind, uid) = match ds {
        Value::Null => return Some(true),
        Value::String(s) => (None, s.as_str()),
        Value::Object(o) => (
            o.get("type").and_then(Value::as_str),
            o.get("uid").and_then(Value::as_str).unwrap_or(""),
        ),
        _ => return Some(false),
    };
    if uid == "-- Mixed --" {
        return None;
    }
    if let Some(kind) = kind {
        return Some(PROM_TYPES.contains(&kind));
    }
    if let Some(name) = referenced(uid).first() {
        return Some(vars.iter().any(|v| {
            &v.name == name && v.kind == "datasource" && PROM_TYPES.contains(&v.query.as_str())
        }));
    }
    Some(uid == "ds-prometheus" || uid == "default" || uid.is_empty())
}

/// Every target of every panel (rows' panels included), `PromQL` ones and the others apart.
pub fn targets(dash: &Value) -> (Vec<Target>, Vec<Other>) {
    let vars = variables(dash);
    let (mut prom, mut other) = (Vec::new(), Vec::new());
    let mut todo: Vec<&Value> = dash["panels"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    while let Some(p) = todo.pop() {
        todo.extend(p["panels"].as_array().into_iter().flatten());
        let title = p["title"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map_or_else(|| format!("panel {}", p["id"]), str::to_owned);
        for t in p["targets"].as_array().into_iter().flatten() {
            if t["hide"].as_bool() == Some(true) {
                continue;
            }
            let ds = if t["datasource"].is_null() {
                &p["datasource"]
            } else {
                &t["datasource"]
            };
            // Grafana's mixed pseudo-datasource leaves it to the target: none there is the default.
            let prom_ds = is_prom(ds, &vars).unwrap_or(true);
            let expr = t["expr"].as_str().unwrap_or_default();
            if !prom_ds || expr.trim().is_empty() {
                other.push(Other {
                    panel: title.clone(),
                    datasource: datasource_text(ds),
                });
                continue;
            }
            let instant = t["instant"].as_bool() == Some(true);
            let range = t["range"].as_bool() == Some(true) || !instant;
            prom.push(Target {
                panel: title.clone(),
                expr: expr.to_owned(),
                instant,
                range,
            });
        }
    }
    (prom, other)
}

/// The first of `words` that `text` (a query or a variable's definition) names: a metric name's
/// first word (`pg_up`, `etcd:…`) or a word of a positive label matcher's value
/// (`job="pgsql"`); function names (`vector(1)`), label names and `$variables` are not names.
pub fn first_named(text: &str, words: &[&str]) -> Option<String> {
    let strings = Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("regex");
    let bare = strings.replace_all(text, " ");
    let ident =
        Regex::new(r"\$?([A-Za-z_][A-Za-z0-9_:]*)(\s*(?:\(|==|=~|!=|!~|=))?").expect("regex");
    for c in ident.captures_iter(&bare) {
        let after = c.get(2).map_or("", |m| m.as_str().trim());
        // a variable, a function, or a label name before its matcher (`==` compares a metric)
        if c[0].starts_with('$') || ["(", "=", "=~", "!=", "!~"].contains(&after) {
            continue;
        }
        let first = c[1].split(['_', ':']).next().unwrap_or("");
        if words.contains(&first) {
            return Some(first.to_owned());
        }
    }
    let matcher = Regex::new(r#"(?:^|[^!])=~?\s*"([^"]*)""#).expect("regex");
    for c in matcher.captures_iter(text) {
        for w in c[1].split(|ch: char| !ch.is_ascii_alphanumeric()) {
            if words.contains(&w) {
                return Some(w.to_owned());
            }
        }
    }
    None
}

/// The uids of the `/ui/d/<uid>` links of an HTML page.
pub fn dashboard_links(html: &str) -> std::collections::BTreeSet<String> {
    html.split("href=")
        .skip(1)
        .filter_map(|rest| {
            let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let href = &rest[1..=rest[1..].find(q)?];
            let at = href.find("/ui/d/")?;
            Some(href[at + 6..].split(['/', '?', '#']).next()?.to_owned())
        })
        .collect()
}
