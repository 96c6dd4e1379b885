//! The Grafana side of `tests/booted_content.rs`, without Grafana, a host or a tool (fast tier):
//! template variables read from a dashboard, their options filtered, sorted and chosen as
//! Grafana does on a first load, their interpolation into `PromQL` as Grafana's Prometheus
//! datasource formats it, and which panel targets are `PromQL` at all. The booted test's verdict
//! on every dashboard query rests on these.

#[path = "booted_content/grafana.rs"]
#[allow(dead_code)]
mod grafana;

use grafana::{
    choose, dashboard_links, filter, first_named, interpolate, sort, source, targets, variables,
    Source, Variable,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn var(v: &Value) -> Variable {
    variables(&json!({"templating": {"list": [v]}})).remove(0)
}

#[test]
fn label_values_split_at_the_last_top_level_comma() {
    let v = var(
        &json!({"name": "ip", "type": "query", "query": {"query": "label_values(node:ins{id=\"$id\", a=\"x,y\"}, ip)"}}),
    );
    assert_eq!(
        source(&v).unwrap(),
        Source::LabelValues {
            selector: Some("node:ins{id=\"$id\", a=\"x,y\"}".into()),
            label: "ip".into()
        }
    );
    let v = var(&json!({"name": "job", "type": "query", "definition": "label_values(job)"}));
    assert_eq!(
        source(&v).unwrap(),
        Source::LabelValues {
            selector: None,
            label: "job".into()
        }
    );
    let v = var(&json!({"name": "x", "type": "query", "query": "up"}));
    assert!(source(&v).unwrap_err().contains("variable `x`"));
}

#[test]
fn values_are_filtered_sorted_chosen_and_formatted_as_grafana_does() {
    let v = var(&json!({"name": "ip", "type": "query", "regex": "/([0-9.]+):\\d+/", "sort": 1}));
    let o = sort(
        &v,
        filter(
            &v,
            vec!["10.0.0.2:9100".into(), "x".into(), "10.0.0.1:9100".into()],
        )
        .unwrap(),
    );
    assert_eq!(o, ["10.0.0.1", "10.0.0.2"]);
    let single = choose(&v, o.clone());
    let mut scope = BTreeMap::from([("ip".to_owned(), single)]);
    assert_eq!(
        interpolate("up{ip=\"$ip\"}[$__rate_interval]", &scope),
        "up{ip=\"10.0.0.1\"}[1m]"
    );
    let all = var(&json!({"name": "ip", "type": "query", "multi": true, "includeAll": true}));
    scope.insert("ip".into(), choose(&all, o));
    assert_eq!(
        interpolate("up{ip=~\"${ip}\"} $unknown", &scope),
        "up{ip=~\"(10\\\\.0\\\\.0\\\\.1|10\\\\.0\\\\.0\\\\.2)\"} $unknown"
    );
    assert_eq!(interpolate("[[ip:pipe]]", &scope), "10.0.0.1|10.0.0.2");
    let with_all =
        var(&json!({"name": "ip", "type": "query", "includeAll": true, "allValue": ".*"}));
    scope.insert("ip".into(), choose(&with_all, vec!["a".into()]));
    assert_eq!(interpolate("up{ip=~\"$ip\"}", &scope), "up{ip=~\".*\"}");
}

#[test]
fn only_promql_targets_are_queried() {
    let d = json!({
        "templating": {"list": [{"name": "ds", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            {"title": "a", "datasource": {"type": "prometheus", "uid": "ds-prometheus"}, "targets": [{"expr": "up", "instant": true}, {"expr": "x", "hide": true}]},
            {"title": "row", "type": "row", "panels": [{"title": "b", "datasource": "$ds", "targets": [{"expr": "up"}]}]},
            {"title": "c", "datasource": {"type": "postgres", "uid": "ds-meta"}, "targets": [{"rawSql": "select 1"}]},
            {"title": "d", "datasource": {"type": "datasource", "uid": "-- Mixed --"}, "targets": [{"expr": "up", "datasource": {"type": "victoriametrics-logs-datasource", "uid": "ds-vlogs"}}, {"expr": "up"}]},
        ]
    });
    let (prom, other) = targets(&d);
    let mut got: Vec<(String, bool, bool)> = prom
        .into_iter()
        .map(|t| (t.panel, t.instant, t.range))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("a".into(), true, false),
            ("b".into(), false, true),
            ("d".into(), false, true)
        ]
    );
    let mut other: Vec<String> = other.into_iter().map(|o| o.panel).collect();
    other.sort();
    assert_eq!(other, ["c", "d"]);
}

#[test]
fn an_empty_answer_is_excused_only_by_a_name_of_what_is_absent() {
    let absent = ["pg", "pgsql", "vector", "grafana"];
    assert_eq!(
        first_named("pg_up{ip=\"$ip\"}", &absent).as_deref(),
        Some("pg")
    );
    assert_eq!(
        first_named("up{job=\"pgsql\"}", &absent).as_deref(),
        Some("pgsql")
    );
    assert_eq!(
        first_named("up{cls=~\"grafana|x\"}", &absent).as_deref(),
        Some("grafana")
    );
    // function names, label names, variables and negative matchers name nothing
    assert_eq!(first_named("vector(1)", &absent), None);
    assert_eq!(first_named("up{pg=\"x\", $pg}", &absent), None);
    assert_eq!(
        first_named("node_load1{job!=\"pgsql\", device!~\"pg.*\"}", &absent),
        None
    );
}

#[test]
fn dashboard_links_are_read_from_both_quotes() {
    let html = "<a href=\"/ui/d/node-instance?var-ip=1\">x</a> <a href='http://h/ui/d/pigsty'>y</a> <a href=\"/ui/\">z</a>";
    let links: Vec<String> = dashboard_links(html).into_iter().collect();
    assert_eq!(links, ["node-instance", "pigsty"]);
}
