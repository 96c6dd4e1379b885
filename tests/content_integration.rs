//! Monitoring content through the real program (docs/content.md), integration tier: `render
//! --validate` runs every rule file and every dashboard query through `vmalert -dryRun`, and a
//! bad rule or query is reported at its rule group or its dashboard panel; Pigsty's own content
//! (`../shared/fixtures/pigsty-content/`, test input only) builds, and its content-check report
//! equals the committed `tests/golden/pigsty-content-report.txt` (`INFRAGEN_BLESS=1` rewrites it);
//! our own content on `single-node` and `three-node` passes with zero problems.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

const FILE: &str = "tests/content_integration.rs";

fn gate() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    common::tier::require(FILE, &[("vmalert", "vmalert")]);
}

/// The built-in single-node profile with `vars` added to `all.vars`, written into `dir`.
fn profile(dir: &Path, vars: &str) -> PathBuf {
    let text = fs::read_to_string(common::root().join("profiles/single-node.yml")).unwrap();
    let at = text.find("\n  vars:\n").expect("all.vars") + "\n  vars:\n".len();
    let mut out = text[..at].to_owned();
    for line in vars.lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&text[at..]);
    let p = dir.join("pigsty.yml");
    fs::write(&p, out).unwrap();
    p
}

/// `render --validate` of `profile`: exit code and the content-check report (each finding,
/// then the summary line), as the command printed them.
fn report(profile: &Path, dir: &Path) -> (i32, String, String) {
    let o = common::infragen()
        .arg("render")
        .arg("--profile")
        .arg(profile)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--validate")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    let mut lines: Vec<&str> = all
        .lines()
        .filter_map(|l| l.strip_prefix("warning: content: "))
        .collect();
    lines.extend(all.lines().filter(|l| l.starts_with("content checks: ")));
    (
        o.status.code().unwrap_or(-1),
        lines.iter().map(|l| format!("{l}\n")).collect(),
        all,
    )
}

#[test]
fn a_query_vmalert_rejects_is_named_by_its_panel_and_a_rule_file_fails_validation() {
    gate();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.join("dash/x");
    fs::create_dir_all(&d).unwrap();
    fs::write(
        d.join("q.json"),
        r#"{"uid": "q", "templating": {"list": [{"name": "ins", "type": "query", "query": "label_values(up{job=\"x\"}, ins)"}]},
            "panels": [{"title": "Good", "gridPos": {}, "targets": [{"expr": "rate(up{ins=\"$ins\"}[$__rate_interval])"}]},
                       {"title": "Broken", "gridPos": {}, "targets": [{"expr": "sum(rate(up[5m])"}]}]}"#,
    )
    .unwrap();
    let p = profile(dir, "infra_dashboards: dash");
    let (code, text, all) = report(&p, dir);
    assert_eq!(code, 0, "a bad query is a warning without --strict:\n{all}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("dashboards/x/q.json: panel \"Broken\": rejected by vmalert: bad prometheus expr: \"sum(rate(up[5m])\""),
        "{text}"
    );
    // The built-in dashboards and rule files are counted too: one problem among them all.
    assert!(
        lines[1].starts_with("content checks: ")
            && lines[1]
                .ends_with(": 1 problem; rule files and queries run through `vmalert -dryRun`"),
        "{text}"
    );
    // A rule file vmalert rejects would stop vmalert: validation fails, naming file and group.
    let rules = dir.join("rules");
    fs::create_dir_all(&rules).unwrap();
    fs::write(
        rules.join("mine.yml"),
        "groups:\n  - name: fine\n    rules:\n      - record: fine:up\n        expr: sum(up)\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: up ==\n",
    )
    .unwrap();
    fs::remove_dir_all(dir.join("dash")).unwrap();
    let p = profile(dir, "infra_rules: rules");
    let (code, _, all) = report(&p, dir);
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("invalid group \"broken\" in file \"/etc/vmalert/rules/import-mine.yml\""),
        "{all}"
    );
    assert!(
        all.contains("validation failed; nothing was written to"),
        "{all}"
    );
}

#[test]
fn pigsty_content_builds_and_its_report_is_the_golden_one() {
    gate();
    let shared = common::root().join("../shared/fixtures/pigsty-content");
    if !shared.is_dir() {
        common::tier::loud(&format!(
            "SKIPPED {FILE} pigsty_content_builds_and_its_report_is_the_golden_one: {} is absent",
            shared.display()
        ));
        return;
    }
    let shared = shared.canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let p = profile(
        dir,
        &format!(
            "infra_dashboards: {}\ninfra_rules: {}",
            shared.join("grafana").display(),
            shared.join("rules").display()
        ),
    );
    let (code, text, all) = report(&p, dir);
    assert_eq!(code, 0, "{all}");
    // Every dashboard landed in the grafana tree under its own path.
    let grafana = dir.join("out/10.10.10.10/grafana/etc/dashboards");
    for f in walkdir::WalkDir::new(shared.join("grafana")) {
        let f = f.unwrap();
        if f.file_type().is_file() {
            let rel = f.path().strip_prefix(shared.join("grafana")).unwrap();
            assert!(
                grafana.join(rel).is_file(),
                "{} in the grafana tree",
                rel.display()
            );
        }
    }
    let golden = common::root().join("tests/golden/pigsty-content-report.txt");
    if std::env::var_os("INFRAGEN_BLESS").is_some() {
        fs::create_dir_all(golden.parent().unwrap()).unwrap();
        fs::write(&golden, &text).unwrap();
    }
    let want = fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        want == text,
        "the content-check report of Pigsty's content changed (INFRAGEN_BLESS=1 rewrites {}):\n{}",
        golden.display(),
        text
    );
}

#[test]
fn our_own_content_passes_vmalert_with_zero_problems() {
    gate();
    for name in ["single-node", "three-node"] {
        let tmp = tempfile::tempdir().unwrap();
        let (code, text, all) = report(Path::new(name), tmp.path());
        assert_eq!(code, 0, "{name}: {all}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: no problem, only the summary:\n{text}"
        );
        assert!(
            lines[0]
                .ends_with(": 0 problems; rule files and queries run through `vmalert -dryRun`"),
            "{name}: {text}"
        );
    }
}
