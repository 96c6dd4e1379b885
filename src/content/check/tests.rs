use serde_json::json;

use super::*;

fn datasources() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ds-prometheus".to_owned(), "prometheus".to_owned()),
        (
            "ds-vlogs".to_owned(),
            "victoriametrics-logs-datasource".to_owned(),
        ),
    ])
}

fn rules() -> Vec<RuleFile> {
    vec![RuleFile {
        name: "node.yml".into(),
        text: "groups:\n  - name: node-rules\n    rules:\n      - record: node:ins:cpu\n        expr: sum by (ins) (rate(node_cpu_seconds_total[1m]))\n  - name: node-alert\n    rules:\n      - alert: NodeBusy\n        expr: node:ins:cpu > 0.9 or node:ins:gone > 1\n".into(),
    }]
}

#[allow(clippy::needless_pass_by_value)] // the tests build the panels for this call
fn dashboard(uid: &str, panels: serde_json::Value) -> Dashboard {
    Dashboard {
        path: format!("infra/{uid}.json"),
        json: json!({"uid": uid, "title": uid, "panels": panels, "templating": {"list": [
            {"name": "ins", "type": "query", "datasource": {"type": "prometheus", "uid": "ds-prometheus"},
             "query": {"query": "label_values(node:ins:cpu{job=\"node\"}, ins)"}},
        ]}})
        .into(),
    }
}

fn lines(r: &Report) -> Vec<String> {
    r.findings.iter().map(ToString::to_string).collect()
}

#[test]
fn good_content_has_no_problem() {
    let d = dashboard(
        "a",
        json!([{"title": "CPU", "gridPos": {}, "datasource": {"uid": "ds-prometheus"},
        "targets": [{"expr": "node:ins:cpu{ins=\"$ins\"}"}],
        "links": [{"url": "/ui/d/a?var-ins=${ins}"}]}]),
    );
    let r = check(&[d], &rules()[..1], &datasources(), &[]);
    // The rule file's own alert names a series nobody records: that one, and only it.
    assert_eq!(
        lines(&r),
        ["rules/node.yml: group \"node-alert\" alert \"NodeBusy\": recorded series `node:ins:gone` is produced by no recording rule"]
    );
    assert_eq!((r.dashboards, r.rule_files, r.queries), (1, 1, 2));
}

#[test]
fn a_dashboard_using_a_series_no_rule_records_is_named_with_its_panel() {
    let d = dashboard(
        "a",
        json!([{"title": "Mem", "gridPos": {},
        "targets": [{"expr": "avg(node:ins:mem_usage{ins=~\"$ins\"})"}]}]),
    );
    let r = check(&[d], &[], &datasources(), &[]);
    assert_eq!(
        lines(&r),
        [
            "dashboards/infra/a.json: panel \"Mem\": recorded series `node:ins:mem_usage` is produced by no recording rule",
            "dashboards/infra/a.json: variable \"ins\": recorded series `node:ins:cpu` is produced by no recording rule",
        ]
    );
}

#[test]
fn an_unknown_datasource_is_named_and_logs_queries_are_not_promql() {
    let d = dashboard(
        "a",
        json!([
            {"title": "Static", "gridPos": {}, "datasource": {"type": "marcusolsson-static-datasource", "uid": "ds-static"},
             "targets": [{"expr": "x:y"}]},
            {"title": "Logs", "gridPos": {}, "datasource": {"uid": "ds-vlogs"}, "targets": [{"expr": "a:b | stats count()"}]},
            {"title": "Var", "gridPos": {}, "datasource": "$ds", "targets": [{"expr": "up"}]},
        ]),
    );
    let r = check(&[d], &rules(), &datasources(), &[]);
    assert_eq!(
        lines(&r),
        [
            "dashboards/infra/a.json: panel \"Static\": datasource `ds-static` is not provisioned",
            "rules/node.yml: group \"node-alert\" alert \"NodeBusy\": recorded series `node:ins:gone` is produced by no recording rule",
        ]
    );
}

#[test]
fn dead_links_in_dashboards_and_on_the_home_page_are_named() {
    let a = dashboard(
        "a",
        json!([{"title": "T", "gridPos": {}, "type": "text",
        "options": {"content": "<a href=\"/d/b?var-ins=x\">b</a> <a href=\"/ui/d/gone\">x</a> https://e.com/d/ext /ui/d/${uid}"}}]),
    );
    let b = Dashboard {
        path: "b.json".into(),
        json: json!({"uid": "b", "links": [{"url": "/d/lost"}]}).into(),
    };
    let pages = [(
        "10.10.10.10/nginx/etc/nginx/html/index.html".to_owned(),
        "<a href=\"/ui/d/a\">a</a><a href=\"/ui/d/node-instance?var-ip=1\">n</a>".to_owned(),
    )];
    let r = check(&[a, b], &rules(), &datasources(), &pages);
    let got = lines(&r);
    assert_eq!(
        got.iter().filter(|l| l.contains("link")).collect::<Vec<_>>(),
        [
            "dashboards/b.json: dashboard: link to dashboard `lost`: no provisioned dashboard has that uid",
            "dashboards/infra/a.json: panel \"T\": link to dashboard `gone`: no provisioned dashboard has that uid",
            "portal/10.10.10.10/index.html: home page: link to dashboard `node-instance`: no provisioned dashboard has that uid",
        ]
    );
}

#[test]
fn the_report_says_whether_vmalert_ran() {
    let mut r = Report::default();
    assert!(r.text().ends_with("0 problems; rule files and queries not run through `vmalert -dryRun` (run with --validate)\n"), "{}", r.text());
    r.vmalert = Some(Ok(()));
    r.add([Finding {
        file: "f".into(),
        item: "i".into(),
        message: "m".into(),
    }]);
    r.add([Finding {
        file: "f".into(),
        item: "i".into(),
        message: "m".into(),
    }]);
    assert_eq!(r.text(), "f: i: m\ncontent checks: 0 dashboards, 0 rule files, 0 queries: 1 problem; rule files and queries run through `vmalert -dryRun`\n");
}
