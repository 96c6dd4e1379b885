//! The content checks that need the real program: every rule file of the merged set, and every
//! dashboard query written as a recording rule of a generated file (one group per query, so
//! that vmalert reports each bad one), run through `vmalert -dryRun` once, in a sandbox and
//! confined like the component checkers. Each error vmalert prints names a group and a file;
//! it is mapped back to the rule file and group, or to the dashboard file and panel.

use anyhow::Result;
use serde_json::json;

use super::checkers::{self, Runner};
use super::sandbox::Sandbox;
use super::scratch::Scratch;
use super::Outcome;
use crate::content::check::{self, Finding, Query, Report};
use crate::plan::{Component, Plan};
use crate::tree::Tree;

/// The generated file of dashboard queries, beside the rule files.
const QUERIES: &str = "zz-infragen-dashboard-queries.yml";

/// The group of query `i` in [`QUERIES`].
fn group(i: usize) -> String {
    format!("infragen-query-{i}")
}

/// The rule file holding every query, one group each.
pub(crate) fn query_file(queries: &[Query]) -> String {
    let groups: Vec<_> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({"name": group(i), "rules": [{"record": "infragen_dashboard_query", "expr": q.expr}]}))
        .collect();
    crate::yaml::to_string(&json!({ "groups": groups })).expect("JSON values serialise")
}

/// Runs `vmalert -dryRun` over `plan`'s merged rule files and the queries of its dashboards
/// (those reading a datasource the `rendered` tree provisions) and adds what it rejects to
/// `report` (`report.vmalert` says whether it ran).
pub fn content(plan: &Plan, rendered: &Tree, report: &mut Report) -> Result<()> {
    let Some(h) = plan
        .hosts
        .iter()
        .find(|h| h.vmalert.is_some() || h.grafana.is_some())
    else {
        return Ok(());
    };
    let Some(program) = checkers::which(&["vmalert"]) else {
        report.vmalert = Some(Err("`vmalert` is not installed".into()));
        return Ok(());
    };
    let rules = crate::content::rules(plan);
    let queries = check::queries(
        &crate::content::dashboards(plan),
        &check::datasources(rendered),
    );
    let host = h.ip.to_string();
    let mut tree = Tree::default();
    let dir = format!("{host}/vmalert/etc/vmalert/rules");
    for f in &rules {
        tree.add(format!("{dir}/{}", f.name), 0o644, f.text.clone());
    }
    tree.add(format!("{dir}/{QUERIES}"), 0o644, query_file(&queries));
    let scratch = Scratch::create()?;
    let sb = Sandbox::lay_out(
        &scratch.path().join("content"),
        &tree,
        &host,
        Component::Vmalert,
        h,
    )?;
    let args = vec![
        "-dryRun".to_owned(),
        format!("-rule={}", sb.path("/etc/vmalert/rules/*.yml").display()),
    ];
    let outcome = Runner::new()?.run(&sb, "vmalert -dryRun", &program, &args)?;
    report.vmalert = Some(Ok(()));
    if let Outcome::Rejected(text) = outcome {
        report.add(findings(&text, &queries));
    }
    Ok(())
}

/// vmalert's errors, one finding each: `invalid group "G" in file "F": why`.
pub(crate) fn findings(text: &str, queries: &[Query]) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line
            .split_once("errors(")
            .and_then(|(_, r)| r.split_once("): "))
            .map_or(line, |(_, r)| r);
        let parsed = line.strip_prefix("invalid group \"").and_then(|r| {
            let (g, r) = r.split_once("\" in file \"")?;
            let (f, why) = r.split_once("\": ")?;
            Some((g, f, why))
        });
        let Some((g, f, why)) = parsed else {
            if !line.trim().is_empty() {
                out.push(Finding {
                    file: "rules".into(),
                    item: "vmalert -dryRun".into(),
                    message: line.trim().to_owned(),
                });
            }
            continue;
        };
        let name = f.rsplit('/').next().unwrap_or(f);
        let message = format!("rejected by vmalert: {}", why.replace('\n', " "));
        let q = g
            .strip_prefix("infragen-query-")
            .and_then(|n| n.parse::<usize>().ok());
        match q.and_then(|i| queries.get(i)).filter(|_| name == QUERIES) {
            Some(q) => {
                // The generated rule's name says nothing to the reader: vmalert's words after it.
                let why = why
                    .split_once("\"infragen_dashboard_query\": ")
                    .map_or(why, |(_, r)| r);
                let message = format!("rejected by vmalert: {}", why.replace('\n', " "));
                out.push(Finding {
                    file: q.file.clone(),
                    item: q.item.clone(),
                    message,
                });
            }
            None => out.push(Finding {
                file: format!("rules/{name}"),
                item: format!("group \"{g}\""),
                message,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmalert_errors_map_back_to_the_panel_or_the_rule_group() {
        let queries = [Query {
            file: "dashboards/a.json".into(),
            item: "panel \"CPU\"".into(),
            expr: "sum(".into(),
        }];
        let text = "2026-01-01T00:00:00Z\tfatal\tmain.go:98\tfailed to parse [\"/etc/vmalert/rules/*.yml\"]: errors(2): invalid group \"infragen-query-0\" in file \"/etc/vmalert/rules/zz-infragen-dashboard-queries.yml\": invalid expression for rule \"infragen-query-0\".\"infragen_dashboard_query\": bad\n\
            invalid group \"node-alert\" in file \"/etc/vmalert/rules/import-node.yml\": invalid expression: worse\n";
        let got: Vec<String> = findings(text, &queries)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, [
            "dashboards/a.json: panel \"CPU\": rejected by vmalert: bad",
            "rules/import-node.yml: group \"node-alert\": rejected by vmalert: invalid expression: worse",
        ]);
        assert!(query_file(&queries).contains("- name: infragen-query-0\n"));
    }
}
