//! The built-in vmalert rules (fast tier): every one of Pigsty's core alerts under its name,
//! severity, `for` and threshold (the facts in `tests/fixtures/pigsty-core-alerts.tsv`, checked
//! against Pigsty's own files when `../shared` is beside the repository); every recorded series
//! a rule reads is recorded; labels and annotations; the README's alert list.
//! `tests/alerts_integration.rs` runs vmalert and VictoriaMetrics on the same files.

mod common;
#[path = "alerts/rules.rs"]
mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rules::Rule;

/// One row of the facts file.
#[derive(Debug, Clone, PartialEq)]
struct Fact {
    name: String,
    file: String,
    severity: String,
    for_: Option<String>,
    thresholds: Vec<f64>,
}

fn facts() -> Vec<Fact> {
    let text = include_str!("fixtures/pigsty-core-alerts.tsv");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("name\tfile\tseverity\tfor\tthreshold"),
        "header"
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 5, "five columns: {l:?}");
            Fact {
                name: c[0].into(),
                file: c[1].into(),
                severity: c[2].into(),
                for_: (c[3] != "-").then(|| c[3].to_owned()),
                thresholds: rules::thresholds(c[4]),
            }
        })
        .collect()
}

fn alerts(rules: &[Rule]) -> BTreeMap<String, &Rule> {
    let mut out = BTreeMap::new();
    for r in rules {
        if let Some(a) = &r.alert {
            assert!(
                out.insert(a.clone(), r).is_none(),
                "alert `{a}` is defined twice"
            );
        }
    }
    out
}

#[test]
fn the_facts_are_pigstys_fifty_core_alerts() {
    let facts = facts();
    assert_eq!(facts.len(), 50, "Pigsty v4.5.0 has 50 core alerts");
    let names: BTreeSet<&str> = facts.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), facts.len(), "names are unique");
}

#[test]
fn every_pigsty_core_alert_is_built_in_with_its_severity_for_and_threshold() {
    let rules = rules::builtin();
    let ours = alerts(&rules);
    let mut problems = Vec::new();
    for f in facts() {
        let Some(r) = ours.get(&f.name) else {
            problems.push(format!("`{}` is missing", f.name));
            continue;
        };
        if r.severity.as_deref() != Some(f.severity.as_str()) {
            problems.push(format!(
                "`{}` severity {:?}, Pigsty's is {}",
                f.name, r.severity, f.severity
            ));
        }
        if r.for_ != f.for_ {
            problems.push(format!(
                "`{}` for {:?}, Pigsty's is {:?}",
                f.name, r.for_, f.for_
            ));
        }
        let compared = rules::compared_numbers(&r.expr);
        for t in &f.thresholds {
            if !rules::has_number(&compared, *t) {
                problems.push(format!(
                    "`{}` does not compare against {t} (it compares against {compared:?})",
                    f.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Pigsty's core alerts read from its files, `thresholds` holding every number each alert
/// compares against.
fn pigstys(dir: &Path) -> Vec<Fact> {
    let mut out = Vec::new();
    for stem in ["etcd", "infra", "minio", "node", "pgsql", "redis"] {
        let path = dir.join(format!("{stem}.yml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for r in rules::parse(&format!("{stem}.yml"), &text) {
            if let Some(name) = r.alert {
                out.push(Fact {
                    name,
                    file: stem.to_owned(),
                    severity: r.severity.unwrap_or_default(),
                    for_: r.for_,
                    thresholds: rules::compared_numbers(&r.expr),
                });
            }
        }
    }
    out
}

/// A fact without its thresholds: name, file, severity, `for`.
fn identity(f: &Fact) -> (&str, &str, &str, Option<&str>) {
    (&f.name, &f.file, &f.severity, f.for_.as_deref())
}

#[test]
fn the_facts_equal_pigstys_rule_files() {
    let dir = common::root().join("../shared/fixtures/pigsty-content/rules");
    if !dir.is_dir() {
        common::tier::loud(
            "SKIPPED (no ../shared) alerts::the_facts_equal_pigstys_rule_files: \
             ../shared/fixtures/pigsty-content/rules is not beside the repository; \
             the committed facts are not compared with Pigsty's files",
        );
        return;
    }
    let theirs = pigstys(&dir);
    let facts = facts();
    assert_eq!(
        theirs.iter().map(identity).collect::<Vec<_>>(),
        facts.iter().map(identity).collect::<Vec<_>>(),
        "tests/fixtures/pigsty-core-alerts.tsv has drifted from Pigsty's files"
    );
    for (t, fact) in theirs.iter().zip(&facts) {
        for n in &fact.thresholds {
            assert!(
                rules::has_number(&t.thresholds, *n),
                "Pigsty's `{}` does not compare against {n} (it compares against {:?})",
                t.name,
                t.thresholds
            );
        }
    }
}

#[test]
fn every_recorded_series_a_rule_reads_is_recorded() {
    let rules = rules::builtin();
    let mut recorded = BTreeSet::new();
    for r in &rules {
        if let Some(name) = &r.record {
            assert!(
                recorded.insert(name.clone()),
                "`{name}` is recorded twice ({})",
                r.file
            );
        }
    }
    let mut missing = Vec::new();
    for r in &rules {
        let what = r.alert.as_ref().or(r.record.as_ref()).expect("named");
        for name in rules::recorded_names(&r.expr) {
            if !recorded.contains(&name) {
                missing.push(format!("{}: `{what}` reads `{name}`", r.file));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "recorded by no rule:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_name_scanner_finds_recorded_names_and_compared_numbers() {
    // the canary of the two checks above: what they read out of an expression
    let expr = r#"node:ins:cpu_usage_1m{ins="a:b"} > 0.70 or label_replace(x:y, "l", "$1", "m", "(.+):z") < bool 1e-2 and rate(up[5m]) != 1"#;
    let names: Vec<String> = rules::recorded_names(expr).into_iter().collect();
    assert_eq!(names, ["node:ins:cpu_usage_1m", "x:y"]);
    assert_eq!(rules::compared_numbers(expr), [0.70, 0.01, 1.0]);
    assert!(rules::has_number(&[0.9], 0.90) && !rules::has_number(&[0.9], 0.91));
}

#[test]
fn every_alert_has_its_labels_and_annotations() {
    let rules = rules::builtin();
    let mut problems = Vec::new();
    for (name, r) in alerts(&rules) {
        let level = match r.severity.as_deref() {
            Some("CRIT") => "0",
            Some("WARN") => "1",
            Some("INFO") => "2",
            other => {
                problems.push(format!("`{name}`: severity {other:?}"));
                continue;
            }
        };
        if r.level.as_deref() != Some(level) {
            problems.push(format!("`{name}`: level {:?}, want {level}", r.level));
        }
        let summary = r.summary.as_deref().unwrap_or_default();
        let head = format!("{} {name}", r.severity.as_deref().unwrap_or_default());
        if !summary.starts_with(&head) {
            problems.push(format!(
                "`{name}`: summary {summary:?} does not start with {head:?}"
            ));
        }
        if r.description.as_deref().is_none_or(|d| d.trim().len() < 20) {
            problems.push(format!("`{name}`: no description"));
        }
        if !r.group.ends_with("-alert") && name != "InfragenWatchdog" {
            problems.push(format!("`{name}`: in group `{}`", r.group));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let watchdog = alerts(&rules)["InfragenWatchdog"].clone();
    assert_eq!(watchdog.expr, "vector(1)", "the watchdog always fires");
}

/// The rows of the README's alert table: (name, severity, for, meaning).
fn readme_alerts() -> Vec<(String, String, String, String)> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- alerts:begin -->\n")
        .expect("begin marker")
        + "<!-- alerts:begin -->\n".len();
    let end = readme.find("<!-- alerts:end -->").expect("end marker");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| alert ") && !l.starts_with("|--"))
        .map(|l| {
            let c: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(c.len(), 4, "README alert row: {l:?}");
            let name = c[0].trim_matches('`');
            (name.into(), c[1].into(), c[2].into(), c[3].into())
        })
        .collect()
}

#[test]
fn the_readme_lists_every_built_in_alert() {
    let rules = rules::builtin();
    let want: Vec<(String, String, String)> = rules
        .iter()
        .filter_map(|r| {
            let name = r.alert.clone()?;
            let for_ = r.for_.clone().unwrap_or_else(|| "-".into());
            Some((name, r.severity.clone().unwrap_or_default(), for_))
        })
        .collect();
    let rows = readme_alerts();
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|(n, s, f, _)| (n.clone(), s.clone(), f.clone()))
        .collect();
    assert_eq!(
        got, want,
        "README.md's alert list (between <!-- alerts:begin --> and <!-- alerts:end -->) \
         must list every built-in alert in file order: name, severity, for"
    );
    for (name, _, _, meaning) in rows {
        assert!(meaning.len() > 10, "README: `{name}` says what it means");
    }
}

#[test]
fn kafka_and_mysql_alerts_keep_pigstys_severity_for_and_thresholds() {
    let dir = common::root().join("../shared/fixtures/pigsty-content/rules");
    if !dir.is_dir() {
        common::tier::loud(
            "SKIPPED (no ../shared) alerts::kafka_and_mysql_alerts_keep_pigstys_severity_for_and_thresholds: \
             ../shared/fixtures/pigsty-content/rules is not beside the repository",
        );
        return;
    }
    let ours = rules::builtin();
    let mut checked = 0;
    for stem in ["kafka", "mysql"] {
        let path = dir.join(format!("{stem}.yml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let theirs = rules::parse(&format!("{stem}.yml"), &text);
        let theirs = alerts(&theirs);
        for r in ours.iter().filter(|r| r.file == format!("{stem}.yml")) {
            let Some(name) = &r.alert else { continue };
            let t = theirs
                .get(name)
                .unwrap_or_else(|| panic!("`{name}` is not one of Pigsty's {stem} alerts"));
            assert_eq!(
                (&r.severity, &r.for_),
                (&t.severity, &t.for_),
                "`{name}`: severity and for"
            );
            let compared = rules::compared_numbers(&r.expr);
            for n in rules::compared_numbers(&t.expr) {
                assert!(
                    rules::has_number(&compared, n),
                    "`{name}` does not compare against Pigsty's {n} ({compared:?})"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 14, "Kafka's 7 alerts and MySQL's 7");
}

/// The `*_up` series our rules read that no exporter publishes: the rendered `agent.yml`
/// records them (by exporter port or job), as it does in the three-node golden tree.
#[test]
fn every_agent_up_series_a_rule_reads_is_recorded_by_agent_yml() {
    let agent =
        include_str!("cases/three-node/expected/10.10.10.10/vmalert/etc/vmalert/rules/agent.yml");
    let recorded: BTreeSet<String> = rules::parse("agent.yml", agent)
        .into_iter()
        .chain(rules::builtin())
        .filter_map(|r| r.record)
        .collect();
    // what the exporters themselves publish
    let published = [
        "pg_up",
        "pgbouncer_up",
        "redis_up",
        "mysql_up",
        "keepalived_up",
    ];
    let mut read = BTreeSet::new();
    for r in rules::builtin() {
        for w in rules::words(&r.expr) {
            if w.ends_with("_up") && !published.contains(&w.as_str()) {
                read.insert(w);
            }
        }
    }
    assert!(
        read.contains("node_up") && read.contains("patroni_up"),
        "{read:?}"
    );
    let missing: Vec<&String> = read.difference(&recorded).collect();
    assert!(missing.is_empty(), "read but recorded nowhere: {missing:?}");
}
