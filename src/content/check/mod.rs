//! The content checks no other tool does, over the merged set of dashboards and rule files:
//! every recorded series (a name with `:`) a dashboard or rule uses is produced by a recording
//! rule of the set; every datasource a dashboard names is provisioned; every dashboard link
//! (`/ui/d/<uid>`, or Grafana's `/d/<uid>`, which it serves below `/ui/`) in dashboards and on
//! the portal home page resolves to a provisioned dashboard. They run on every build.
//!
//! What needs the real programs (every rule file and every dashboard query accepted by
//! `vmalert -dryRun`) is `validate::content`'s, with the queries collected here ([`queries`]).

pub mod promql;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::{Dashboard, RuleFile};
use crate::plan::Plan;
use crate::tree::Tree;

pub use walk::{queries, Query};

/// One problem found in the content, located by file and item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// The file as the host holds it, below Grafana's or vmalert's directory:
    /// `dashboards/infra/infra-overview.json`, `rules/node.yml`, or `portal/index.html`.
    pub file: String,
    /// What in it: `panel "CPU"`, `variable "ins"`, `group "node-alert" alert "NodeDown"`.
    pub item: String,
    /// What is wrong, lowercase, names in backticks.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.item, self.message)
    }
}

/// The content checks' report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Dashboards checked.
    pub dashboards: usize,
    /// Rule files checked.
    pub rule_files: usize,
    /// Dashboard queries (panel targets and template-variable queries) found.
    pub queries: usize,
    /// Whether `vmalert -dryRun` checked the rule files and queries: `None` when it did not
    /// run (no `--validate`), else why not when it could not (`Some(Err)`).
    pub vmalert: Option<Result<(), String>>,
    /// The problems, sorted and deduplicated.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The report as text: one line per finding, then a summary line.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let _ = writeln!(s, "{f}");
        }
        let vmalert = match &self.vmalert {
            None => {
                "rule files and queries not run through `vmalert -dryRun` (run with --validate)"
                    .to_owned()
            }
            Some(Ok(())) => "rule files and queries run through `vmalert -dryRun`".to_owned(),
            Some(Err(why)) => {
                format!("rule files and queries not run through `vmalert -dryRun`: {why}")
            }
        };
        let _ = writeln!(
            s,
            "content checks: {}, {}, {}: {}; {vmalert}",
            crate::plural::count(self.dashboards, "dashboard"),
            crate::plural::count(self.rule_files, "rule file"),
            crate::plural::count(self.queries, "query"),
            crate::plural::count(self.findings.len(), "problem"),
        );
        s
    }

    /// Adds findings, keeping the list sorted and free of duplicates.
    pub fn add(&mut self, more: impl IntoIterator<Item = Finding>) {
        let mut all: BTreeSet<Finding> = std::mem::take(&mut self.findings).into_iter().collect();
        all.extend(more);
        self.findings = all.into_iter().collect();
    }
}

/// The datasources the rendered `tree` provisions in any Grafana (uid or name → type), read
/// from the provisioning files themselves
/// (`<host>/grafana/etc/grafana/provisioning/datasources/*.yml`): what Grafana will have, not
/// a second account of what render adds.
pub fn datasources(tree: &Tree) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let files = tree.iter().filter(|(p, _)| {
        p.split_once("/grafana/etc/grafana/provisioning/datasources/")
            .is_some_and(|(host, name)| !host.contains('/') && !name.contains('/'))
    });
    for (path, e) in files {
        let doc: serde_json::Value = crate::yaml::from_str_as(&String::from_utf8_lossy(&e.data))
            .unwrap_or_else(|err| panic!("rendered {path} is not YAML: {err:#}"));
        for d in doc["datasources"].as_array().into_iter().flatten() {
            let kind = d["type"].as_str().unwrap_or_default().to_owned();
            if let Some(name) = d["name"].as_str() {
                out.insert(name.to_owned(), kind.clone());
            }
            if let Some(uid) = d["uid"].as_str() {
                out.insert(uid.to_owned(), kind);
            }
        }
    }
    out
}

/// The portal home pages of `tree` (`<host>/nginx/etc/nginx/html/index.html`), as text.
pub fn home_pages(tree: &Tree) -> Vec<(String, String)> {
    tree.iter()
        .filter(|(p, _)| p.ends_with("/nginx/etc/nginx/html/index.html"))
        .map(|(p, e)| (p.clone(), String::from_utf8_lossy(&e.data).into_owned()))
        .collect()
}

/// Runs the static checks over `plan`'s merged content and the rendered `tree`'s home pages.
pub fn run(plan: &Plan, tree: &Tree) -> Report {
    if plan
        .hosts
        .iter()
        .all(|h| h.grafana.is_none() && h.vmalert.is_none())
    {
        return Report::default();
    }
    check(
        &super::dashboards(plan),
        &super::rules(plan),
        &datasources(tree),
        &home_pages(tree),
    )
}

/// The static checks over `dashboards`, `rules`, the provisioned `datasources` (uid or name →
/// type) and the portal `pages` (path, HTML).
pub fn check(
    dashboards: &[Dashboard],
    rules: &[RuleFile],
    datasources: &BTreeMap<String, String>,
    pages: &[(String, String)],
) -> Report {
    let uids: BTreeSet<String> = dashboards
        .iter()
        .filter_map(|d| d.json["uid"].as_str().map(str::to_owned))
        .collect();
    let (recorded, mut findings) = rule_series(rules);
    let mut n_queries = 0;
    for d in dashboards {
        let seen = walk::dashboard(d, datasources);
        n_queries += seen.queries.len();
        let file = format!("dashboards/{}", d.path);
        for q in &seen.queries {
            for s in promql::recorded_series(&q.expr) {
                if !recorded.contains(&s) {
                    findings.push(missing_series(&file, &q.item, &s));
                }
            }
        }
        findings.extend(
            seen.unknown_datasources
                .into_iter()
                .map(|(item, ds)| Finding {
                    file: file.clone(),
                    item,
                    message: format!("datasource `{ds}` is not provisioned"),
                }),
        );
        findings.extend(dead_links(&file, &seen.links, &uids));
    }
    for (path, html) in pages {
        let host = path.split('/').next().unwrap_or_default();
        let links = walk::links_in(html)
            .into_iter()
            .map(|l| ("home page".to_owned(), l));
        findings.extend(dead_links(
            &format!("portal/{host}/index.html"),
            &links.collect::<Vec<_>>(),
            &uids,
        ));
    }
    let mut report = Report {
        dashboards: dashboards.len(),
        rule_files: rules.len(),
        queries: n_queries,
        ..Report::default()
    };
    report.add(findings);
    report
}

fn missing_series(file: &str, item: &str, series: &str) -> Finding {
    Finding {
        file: file.to_owned(),
        item: item.to_owned(),
        message: format!("recorded series `{series}` is produced by no recording rule"),
    }
}

/// Links (item, uid) to no dashboard of `uids`.
fn dead_links(file: &str, links: &[(String, String)], uids: &BTreeSet<String>) -> Vec<Finding> {
    links
        .iter()
        .filter(|(_, uid)| !uids.contains(uid))
        .map(|(item, uid)| Finding {
            file: file.to_owned(),
            item: item.clone(),
            message: format!("link to dashboard `{uid}`: no provisioned dashboard has that uid"),
        })
        .collect()
}

/// One rule of a rule file: where it is, what it records (if it does), its expression.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The group's name.
    pub group: String,
    /// `record "x"` or `alert "X"`.
    pub item: String,
    /// The series it records, for a recording rule.
    pub record: Option<String>,
    /// Its expression.
    pub expr: String,
}

/// The rules of a rule file's text (empty when it is not a rule file: vmalert says why).
pub fn rules_of(text: &str) -> Vec<Rule> {
    let Ok(doc) = crate::yaml::from_str_as::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for g in doc["groups"].as_array().into_iter().flatten() {
        let group = g["name"].as_str().unwrap_or_default().to_owned();
        for r in g["rules"].as_array().into_iter().flatten() {
            let record = r["record"].as_str().map(str::to_owned);
            let item = match (&record, r["alert"].as_str()) {
                (Some(x), _) => format!("group \"{group}\" record \"{x}\""),
                (None, Some(a)) => format!("group \"{group}\" alert \"{a}\""),
                (None, None) => format!("group \"{group}\" rule without `record` or `alert`"),
            };
            let expr = match &r["expr"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(Rule {
                group: group.clone(),
                item,
                record,
                expr,
            });
        }
    }
    out
}

/// Every series the rule files record, and the rules that use a recorded series none records.
fn rule_series(rules: &[RuleFile]) -> (BTreeSet<String>, Vec<Finding>) {
    let parsed: Vec<(&RuleFile, Vec<Rule>)> =
        rules.iter().map(|f| (f, rules_of(&f.text))).collect();
    let recorded: BTreeSet<String> = parsed
        .iter()
        .flat_map(|(_, rs)| rs.iter().filter_map(|r| r.record.clone()))
        .collect();
    let mut findings = Vec::new();
    for (f, rs) in &parsed {
        for r in rs {
            for s in promql::recorded_series(&r.expr) {
                if !recorded.contains(&s) {
                    findings.push(missing_series(&format!("rules/{}", f.name), &r.item, &s));
                }
            }
        }
    }
    (recorded, findings)
}

#[cfg(test)]
mod tests;
