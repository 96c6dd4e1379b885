//! One walk over a dashboard model: its `PromQL` queries (panel targets and template-variable
//! queries, Grafana variables substituted), the datasources it names, and its dashboard links
//! (dashboard links, panel links, data links, text panels: every string).

use std::collections::BTreeMap;

use serde_json::Value;

use super::promql;
use crate::content::Dashboard;

/// One dashboard query, variables substituted, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `dashboards/<path>`.
    pub file: String,
    /// `panel "<title>"` or `variable "<name>"`.
    pub item: String,
    /// The PromQL/MetricsQL text, Grafana variables replaced by sample values.
    pub expr: String,
}

/// What a walk found.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub(super) queries: Vec<Query>,
    /// (item, datasource) for every datasource reference not provisioned.
    pub(super) unknown_datasources: Vec<(String, String)>,
    /// (item, uid) of every dashboard link.
    pub(super) links: Vec<(String, String)>,
}

/// Datasource types whose queries are PromQL/MetricsQL.
const PROMQL: &[&str] = &["prometheus", "victoriametrics-metrics-datasource"];

/// Datasource references that are Grafana's own, never provisioned.
const GRAFANA_OWN: &[&str] = &["grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"];

struct Walk<'a> {
    file: String,
    datasources: &'a BTreeMap<String, String>,
    /// Template variables' sample values.
    vars: BTreeMap<String, String>,
    /// Datasource variables: name → plugin type.
    ds_vars: BTreeMap<String, String>,
    seen: Seen,
}

/// Every `PromQL` query of `dashboards`, in dashboard order.
pub fn queries(dashboards: &[Dashboard], datasources: &BTreeMap<String, String>) -> Vec<Query> {
    dashboards
        .iter()
        .flat_map(|d| dashboard(d, datasources).queries)
        .collect()
}

/// Walks dashboard `d`.
pub(super) fn dashboard(d: &Dashboard, datasources: &BTreeMap<String, String>) -> Seen {
    let mut w = Walk {
        file: format!("dashboards/{}", d.path),
        datasources,
        vars: BTreeMap::new(),
        ds_vars: BTreeMap::new(),
        seen: Seen::default(),
    };
    let list = d.json["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for v in &list {
        w.variable_value(v);
    }
    for v in &list {
        let name = v["name"].as_str().unwrap_or_default();
        let item = format!("variable \"{name}\"");
        w.node(v, &item, None);
        if v["type"] == "query" && w.is_promql(v.get("datasource")) {
            let q = match &v["query"] {
                Value::String(s) => s.clone(),
                other => other["query"].as_str().unwrap_or_default().to_owned(),
            };
            if let Some(expr) = promql::variable_query(&promql::substitute(&q, &w.vars)) {
                w.seen.queries.push(Query {
                    file: w.file.clone(),
                    item,
                    expr,
                });
            }
        }
    }
    for (k, v) in d.json.as_object().into_iter().flatten() {
        if k != "templating" {
            w.node(v, "dashboard", None);
        }
    }
    w.seen
}

impl Walk<'_> {
    /// Records variable `v`'s sample value (and its plugin type, for a datasource variable).
    fn variable_value(&mut self, v: &Value) {
        let Some(name) = v["name"].as_str() else {
            return;
        };
        let first = |s: &str| s.split(',').next().unwrap_or_default().trim().to_owned();
        let current = match &v["current"]["value"] {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
        .filter(|s| !s.is_empty() && !s.starts_with('$'));
        let value = match v["type"].as_str().unwrap_or_default() {
            "datasource" => {
                self.ds_vars.insert(
                    name.to_owned(),
                    v["query"].as_str().unwrap_or_default().to_owned(),
                );
                return;
            }
            "interval" | "custom" => {
                current.unwrap_or_else(|| first(v["query"].as_str().unwrap_or_default()))
            }
            "constant" | "textbox" => v["query"]
                .as_str()
                .map_or_else(|| current.unwrap_or_default(), str::to_owned),
            _ => current.unwrap_or_else(|| promql::SAMPLE.to_owned()),
        };
        self.vars.insert(
            name.to_owned(),
            if value.is_empty() {
                promql::SAMPLE.to_owned()
            } else {
                value
            },
        );
    }

    /// Whether a target under datasource reference `ds` (none: the default) is `PromQL`.
    fn is_promql(&self, ds: Option<&Value>) -> bool {
        let kind = |r: &str| -> Option<String> {
            let var = r
                .trim_start_matches('$')
                .trim_start_matches('{')
                .trim_end_matches('}');
            if r.starts_with('$') {
                self.ds_vars.get(var).cloned()
            } else {
                self.datasources.get(r).cloned()
            }
        };
        match ds {
            None | Some(Value::Null) => true,
            Some(Value::String(r)) => kind(r).is_some_and(|k| PROMQL.contains(&k.as_str())),
            // A uid that is a datasource variable says more than the `type` beside it (Pigsty's
            // per-database panels say `prometheus` beside a PostgreSQL variable).
            Some(o) => match (o["type"].as_str(), o["uid"].as_str()) {
                (_, Some(u)) if u.starts_with('$') && kind(u).is_some() => {
                    kind(u).is_some_and(|k| PROMQL.contains(&k.as_str()))
                }
                (Some(t), _) if !t.starts_with('$') && t != "datasource" => PROMQL.contains(&t),
                (_, Some(u)) => kind(u).is_some_and(|k| PROMQL.contains(&k.as_str())),
                _ => true,
            },
        }
    }

    /// Checks datasource reference `ds` of `item`.
    fn datasource(&mut self, ds: &Value, item: &str) {
        let r = match ds {
            Value::String(s) => s.as_str(),
            o => o["uid"].as_str().unwrap_or_default(),
        };
        if r.is_empty()
            || r.starts_with('$')
            || GRAFANA_OWN.contains(&r)
            || self.datasources.contains_key(r)
        {
            return;
        }
        self.seen
            .unknown_datasources
            .push((item.to_owned(), r.to_owned()));
    }

    /// Walks `v`, inside `item`, under datasource reference `ds`.
    fn node(&mut self, v: &Value, item: &str, ds: Option<&Value>) {
        match v {
            Value::String(s) => {
                for uid in links_in(s) {
                    self.seen.links.push((item.to_owned(), uid));
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.node(x, item, ds)),
            Value::Object(o) => {
                let panel = o.contains_key("gridPos")
                    || (o.contains_key("targets") && o.contains_key("title"));
                let item = match (o.get("title").and_then(Value::as_str), &o.get("id")) {
                    (Some(t), _) if panel && !t.is_empty() => format!("panel \"{t}\""),
                    (_, Some(id)) if panel => format!("panel id {id}"),
                    _ => item.to_owned(),
                };
                let own = o.get("datasource").filter(|d| !d.is_null());
                if let Some(d) = own {
                    self.datasource(d, &item);
                }
                let ds = own.or(ds);
                if let Some(Value::String(expr)) = o.get("expr") {
                    if !expr.trim().is_empty()
                        && self.is_promql(ds)
                        && o.get("hide") != Some(&Value::Bool(true))
                    {
                        let expr = promql::substitute(expr, &self.vars);
                        self.seen.queries.push(Query {
                            file: self.file.clone(),
                            item: item.clone(),
                            expr,
                        });
                    }
                }
                for (k, x) in o {
                    if k != "expr" && k != "datasource" {
                        self.node(x, &item, ds);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The uids of the dashboard links in `s`: `/ui/d/<uid>`, and Grafana's own `/d/<uid>` at the
/// start of a path (Grafana serves it below its `/ui/` root); a uid that is a variable is left
/// out.
pub(super) fn links_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find("/d/") {
        let at = from + i;
        from = at + 3;
        let before = &s[..at];
        let rooted = before.ends_with("/ui")
            || before.chars().next_back().is_none_or(|c| {
                !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | ':'))
            });
        if !rooted {
            continue;
        }
        let uid: String = s[from..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        if !uid.is_empty() && !s[from + uid.len()..].starts_with(['$', '{']) {
            out.push(uid);
        }
    }
    out
}
