//! Monitoring content (docs/content.md), fast tier: `infra_dashboards` and `infra_rules` read
//! from hand-written directories the tests make (never Pigsty's files), landing in the grafana
//! and vmalert trees with uid and group replacement; bad input refused naming the file (and
//! line); the static content checks as warnings, and `build --strict` failing on them with
//! nothing written; our own built-in content passing the checks with zero problems.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use infragen::content;

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

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// `infragen render` of `profile` into `dir/out`: exit code, stdout and stderr.
fn render(profile: &Path, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = common::infragen()
        .arg("render")
        .arg("--profile")
        .arg(profile)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A group of the built-in rule files (they exist on every branch).
const BUILTIN_GROUP: &str = "infra-alert";

#[test]
fn imported_dashboards_and_rules_land_in_the_trees_replacing_by_uid_and_group() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let builtin = content::dashboards::builtin();
    // Replace the first built-in dashboard by uid, when this branch has one.
    let replaced = builtin
        .first()
        .map(|d| d.json["uid"].as_str().unwrap().to_owned());
    if replaced.is_none() {
        common::tier::loud("NOTE content: no built-in dashboard yet; uid replacement is proven by the unit test `an_imported_dashboard_replaces_the_built_in_one_of_its_uid_or_path` only");
    }
    let uid = replaced.clone().unwrap_or_else(|| "mine".into());
    write(
        &dir.join("dash/mine/replacement.json"),
        &format!(r#"{{"uid": "{uid}", "title": "Mine", "panels": []}}"#),
    );
    write(
        &dir.join("dash/top.json"),
        r#"{"uid": "top", "title": "Top", "panels": [], "links": [{"url": "/d/top"}]}"#,
    );
    write(&dir.join("dash/README.md"), "not a dashboard: ignored\n");
    write(
        &dir.join("rules/infra.yml"),
        &format!("groups:\n  - name: {BUILTIN_GROUP}\n    rules:\n      - alert: Mine\n        expr: up == 0\n  - name: mine\n    rules:\n      - record: mine:up\n        expr: sum(up)\n"),
    );
    let p = profile(dir, "infra_dashboards: dash\ninfra_rules: rules");
    let (code, stdout, stderr) = render(&p, dir, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let grafana = dir.join("out/10.10.10.10/grafana/etc/dashboards");
    let vmalert = dir.join("out/10.10.10.10/vmalert/etc/vmalert/rules");
    let mine = fs::read_to_string(grafana.join("mine/replacement.json")).unwrap();
    assert!(mine.contains("\"title\": \"Mine\""), "{mine}");
    assert!(grafana.join("top.json").is_file());
    assert!(!grafana.join("README.md").exists());
    if let (Some(uid), Some(d)) = (&replaced, builtin.first()) {
        assert!(!grafana.join(&d.path).exists(), "built-in `{uid}` replaced");
    }
    // The imported file, unchanged, under its prefixed name.
    let imported = fs::read_to_string(vmalert.join("import-infra.yml")).unwrap();
    assert_eq!(
        imported,
        fs::read_to_string(dir.join("rules/infra.yml")).unwrap()
    );
    // The built-in infra.yml lost the group the import replaces, and kept the others.
    let ours = fs::read_to_string(vmalert.join("infra.yml")).unwrap();
    assert!(
        !ours.contains(&format!("name: {BUILTIN_GROUP}\n")),
        "{ours}"
    );
    assert!(ours.contains("name: infra-rules\n"), "{ours}");
    assert!(
        vmalert.join("node.yml").is_file(),
        "untouched built-in files stay"
    );
    assert!(
        stdout.contains("content checks: ") || stderr.contains("content checks: "),
        "{stdout}\n{stderr}"
    );
}

/// One bad directory: which parameter, how the test fills it, what the error must say.
type Case<'a> = (&'a str, &'a dyn Fn(&Path), &'a str);

#[test]
fn bad_content_directories_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: &[Case] = &[
        (
            "dashboards",
            &|d| write(&d.join("a/x.json"), "{\n  \"uid\": \"x\",,\n}"),
            "a/x.json:2:14: not JSON: key must be a string",
        ),
        (
            "dashboards",
            &|d| write(&d.join("x.json"), "{\"title\": \"x\"}"),
            "x.json: no `uid`: every dashboard needs a stable one",
        ),
        (
            "dashboards",
            &|d| {
                write(&d.join("a.json"), "{\"uid\": \"same\"}");
                write(&d.join("b/c.json"), "{\"uid\": \"same\"}");
            },
            "b/c.json: uid `same` is also the uid of",
        ),
        (
            "dashboards",
            &|d| {
                write(&d.join("real.json"), "{\"uid\": \"r\"}");
                std::os::unix::fs::symlink(d.join("real.json"), d.join("link.json")).unwrap();
            },
            "link.json: a symlink (only regular files are read)",
        ),
        (
            "rules",
            &|d| write(&d.join("r.yml"), "groups:\n  - name: a\n    rules: [\n"),
            "r.yml:4:1: not YAML",
        ),
        (
            "rules",
            &|d| write(&d.join("r.yaml"), "rules: []\n"),
            "r.yaml: not a vmalert rule file: no `groups` list",
        ),
        (
            "rules",
            &|d| write(&d.join("sub/r.yml"), "groups: []\n"),
            "sub: a directory (rule files are read from the directory itself, not below it)",
        ),
        (
            "rules",
            &|d| {
                write(&d.join("a.yml"), "groups:\n  - name: g\n");
                write(&d.join("b.yml"), "groups:\n  - name: g\n");
            },
            "b.yml: group `g` is also a group of",
        ),
        (
            "rules",
            &|d| write(&d.join("r\n.yml"), "groups: []\n"),
            "r\\n.yml\": a file name with a control character",
        ),
    ];
    for (i, (kind, make, want)) in cases.iter().enumerate() {
        let case = dir.join(format!("case{i}"));
        let content = case.join("content");
        fs::create_dir_all(&content).unwrap();
        make(&content);
        let param = if *kind == "dashboards" {
            "infra_dashboards"
        } else {
            "infra_rules"
        };
        let p = profile(&case, &format!("{param}: content"));
        let (code, stdout, stderr) = render(&p, &case, &[]);
        assert_eq!(code, 2, "case {i}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("`all.vars.{param}`")),
            "case {i}: {stderr}"
        );
        assert!(
            stderr.contains(want),
            "case {i}: want `{want}` in:\n{stderr}"
        );
        assert!(!case.join("out").exists(), "case {i}: nothing written");
    }
    // A directory that is not there is named too.
    let p = profile(dir, "infra_rules: missing");
    let (code, _, stderr) = render(&p, dir, &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("missing") && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn content_problems_are_warnings_and_errors_with_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        &dir.join("dash/x/bad.json"),
        r#"{"uid": "bad", "panels": [{"title": "Lag", "gridPos": {},
            "targets": [{"expr": "max(pg:ins:nowhere)"}], "links": [{"url": "/ui/d/gone?var-ins=a"}]},
            {"title": "Other", "gridPos": {}, "datasource": {"uid": "ds-nowhere"}}]}"#,
    );
    let p = profile(dir, "infra_dashboards: dash");
    let (code, stdout, stderr) = render(&p, dir, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let want = [
        "warning: content: dashboards/x/bad.json: panel \"Lag\": recorded series `pg:ins:nowhere` is produced by no recording rule",
        "warning: content: dashboards/x/bad.json: panel \"Other\": datasource `ds-nowhere` is not provisioned",
        "warning: content: dashboards/x/bad.json: panel \"Lag\": link to dashboard `gone`: no provisioned dashboard has that uid",
    ];
    for w in want {
        assert!(stderr.contains(w), "want {w} in:\n{stderr}");
    }
    assert!(stdout.contains("3 problems; rule files and queries not run through `vmalert -dryRun` (run with --validate)"), "{stdout}");
    // `--strict` (build): the same problems are an error and nothing is written.
    let out = dir.join("strict-out");
    let o = common::infragen()
        .args(["build", "--strict", "--profile"])
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--pki")
        .arg(dir.join("pki"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: 3 problems in the monitoring content (--strict); nothing was written to"
        ),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn our_own_content_passes_the_checks_with_zero_problems() {
    for name in ["single-node", "three-node"] {
        let inv = infragen::profile::load(name, &[]).unwrap();
        let plan = infragen::plan::resolve(&inv).unwrap();
        let tree = infragen::render::plan(&plan).unwrap();
        let report = content::check::run(&plan, &tree);
        assert_eq!(report.findings, [], "{name}: {}", report.text());
        assert_eq!(
            report.rule_files,
            content::rules::builtin().len(),
            "{name}: every rule file checked"
        );
        assert_eq!(
            report.dashboards,
            content::dashboards::builtin().len(),
            "{name}: every dashboard checked"
        );
        // Every recorded series our rules and dashboards use is one they record, so the
        // checks have something to check: our alerts use recorded series.
        let used: usize = content::rules::builtin()
            .iter()
            .flat_map(|f| content::check::rules_of(&f.text))
            .filter(|r| r.record.is_none())
            .map(|r| content::check::promql::recorded_series(&r.expr).len())
            .sum();
        assert!(used > 0, "{name}: the built-in alerts use recorded series");
    }
}

#[test]
fn every_infra_host_serves_the_same_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("rules")).unwrap();
    let text = fs::read_to_string(common::root().join("profiles/three-node.yml")).unwrap();
    let text = text.replacen(
        "10.10.10.11: { infra_seq: 2, repo_enabled: false }",
        "10.10.10.11: { infra_seq: 2, repo_enabled: false, infra_rules: rules }",
        1,
    );
    assert!(
        text.contains("infra_rules: rules"),
        "the profile's line moved"
    );
    let p = dir.join("pigsty.yml");
    fs::write(&p, text).unwrap();
    let (code, stdout, stderr) = render(&p, dir, &[]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("infra_rules (host `10.10.10.11`): differs from host `10.10.10.10`'s: every infra host serves the same monitoring content"),
        "{stderr}"
    );
}
