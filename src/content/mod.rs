//! Monitoring content: the Grafana dashboards and vmalert rule files an infra host serves,
//! built in (written by us) and imported from an operator's directories (`import`), merged
//! here, and checked (`check`).

pub mod check;
pub mod dashboards;
pub mod import;
pub mod rules;

use std::collections::BTreeSet;

use crate::plan::{ImportedDashboard, Plan};

/// One dashboard file under Grafana's provisioned dashboard directory (`/etc/dashboards`).
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Path below `/etc/dashboards`, folder first: `infra/infra-overview.json`. The folder is
    /// the Grafana folder (`foldersFromFilesStructure`).
    pub path: String,
    /// The dashboard model; its `uid` is stable and unique in the set. Shared: the built-in
    /// models are made once per process and every host's render reads the same ones.
    pub json: std::sync::Arc<serde_json::Value>,
}

/// One vmalert rule file under `/etc/vmalert/rules`.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// File name: `node.yml`.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// The prefix of an imported rule file's name under `/etc/vmalert/rules`.
pub const IMPORTED_RULES: &str = "import-";

/// The dashboards every Grafana of `plan` provisions: the built-in ones merged with the
/// imported ones ([`merge_dashboards`]). The built-in ones read VictoriaMetrics alone, so they
/// come only when some Grafana of `plan` provisions it (`ds-prometheus`; a profile whose
/// infra hosts run Grafana without VictoriaMetrics gets none of them).
pub fn dashboards(plan: &Plan) -> Vec<Dashboard> {
    let metrics = plan
        .hosts
        .iter()
        .filter_map(|h| h.grafana.as_ref())
        .any(|g| {
            g.datasources
                .iter()
                .any(|d| d.uid.as_deref() == Some(dashboards::model::DATASOURCE))
        });
    let builtin = if metrics {
        dashboards::builtin()
    } else {
        Vec::new()
    };
    merge_dashboards(builtin, &plan.imported.dashboards)
}

/// `builtin` less the dashboards an imported one replaces (same `uid`, or same path), then the
/// `imported` ones; by path.
pub fn merge_dashboards(builtin: Vec<Dashboard>, imported: &[ImportedDashboard]) -> Vec<Dashboard> {
    let uids: BTreeSet<&str> = imported
        .iter()
        .filter_map(|d| d.json["uid"].as_str())
        .collect();
    let paths: BTreeSet<&str> = imported.iter().map(|d| d.path.as_str()).collect();
    let mut out: Vec<Dashboard> = builtin
        .into_iter()
        .filter(|d| {
            !paths.contains(d.path.as_str())
                && !d.json["uid"].as_str().is_some_and(|u| uids.contains(u))
        })
        .collect();
    out.extend(imported.iter().map(|d| Dashboard {
        path: d.path.clone(),
        json: std::sync::Arc::new(d.json.clone()),
    }));
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The static rule files every vmalert of `plan` loads (beside the rendered `agent.yml`): the
/// built-in files (the core ones, and `kafka.yml` and `mysql.yml` when the inventory has those
/// modules), each less the groups an imported file replaces (same group `name`; a file
/// left with none is dropped, one that lost some is written again without them), then every
/// imported file unchanged as `import-<name>.yml`.
pub fn rules(plan: &Plan) -> Vec<RuleFile> {
    let builtin = rules::for_targets(&plan.targets);
    let imported = &plan.imported.rules;
    if imported.is_empty() {
        return builtin;
    }
    let replaced: BTreeSet<&str> = imported
        .iter()
        .flat_map(|f| f.groups.iter().map(String::as_str))
        .collect();
    let mut out: Vec<RuleFile> = builtin
        .into_iter()
        .filter_map(|f| without_groups(f, &replaced))
        .collect();
    out.extend(imported.iter().map(|f| RuleFile {
        name: imported_name(&f.name),
        text: f.text.clone(),
    }));
    out
}

/// `import-<stem>.yml`: vmalert loads `/etc/vmalert/rules/*.yml`, and the prefix keeps an
/// imported `node.yml` apart from the built-in one.
pub fn imported_name(name: &str) -> String {
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name);
    format!("{IMPORTED_RULES}{stem}.yml")
}

/// Built-in file `f` without the groups named in `replaced`: unchanged when it has none of
/// them, `None` when it has nothing else.
fn without_groups(f: RuleFile, replaced: &BTreeSet<&str>) -> Option<RuleFile> {
    let mut doc: serde_json::Value =
        crate::yaml::from_str_as(&f.text).expect("built-in rule files are valid YAML");
    let groups = doc["groups"]
        .as_array_mut()
        .expect("built-in rule files have groups");
    let before = groups.len();
    groups.retain(|g| !g["name"].as_str().is_some_and(|n| replaced.contains(n)));
    if groups.len() == before {
        return Some(f);
    }
    if groups.is_empty() {
        return None;
    }
    let text = crate::yaml::to_string(&doc).expect("JSON values serialise");
    Some(RuleFile {
        text: format!(
            "# infragen: the built-in {} less the groups `infra_rules` replaces\n{text}",
            f.name
        ),
        name: f.name,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_imported_dashboard_replaces_the_built_in_one_of_its_uid_or_path() {
        let d = |path: &str, uid: &str| Dashboard {
            path: path.into(),
            json: json!({"uid": uid}).into(),
        };
        let builtin = vec![
            d("infra/a.json", "a"),
            d("infra/b.json", "b"),
            d("node/c.json", "c"),
        ];
        let imported = [
            ImportedDashboard {
                path: "mine/a2.json".into(),
                json: json!({"uid": "a", "title": "mine"}),
            },
            ImportedDashboard {
                path: "node/c.json".into(),
                json: json!({"uid": "c2"}),
            },
        ];
        let got: Vec<(String, String)> = merge_dashboards(builtin, &imported)
            .into_iter()
            .map(|d| (d.path, d.json["uid"].as_str().unwrap().to_owned()))
            .collect();
        let want = [
            ("infra/b.json", "b"),
            ("mine/a2.json", "a"),
            ("node/c.json", "c2"),
        ];
        assert_eq!(got, want.map(|(p, u)| (p.to_owned(), u.to_owned())));
    }

    #[test]
    fn imported_rule_files_keep_their_text_under_a_prefixed_name() {
        assert_eq!(imported_name("node.yml"), "import-node.yml");
        assert_eq!(imported_name("x.yaml"), "import-x.yml");
    }

    #[test]
    fn a_built_in_file_loses_only_the_groups_an_imported_one_replaces() {
        let f = RuleFile {
            name: "n.yml".into(),
            text: "# ours\ngroups:\n  - name: a\n    rules: []\n  - name: b\n    rules: []\n"
                .into(),
        };
        assert_eq!(
            without_groups(f.clone(), &BTreeSet::from(["z"]))
                .unwrap()
                .text,
            f.text
        );
        assert!(without_groups(f.clone(), &BTreeSet::from(["a", "b"])).is_none());
        let kept = without_groups(f, &BTreeSet::from(["a"])).unwrap();
        assert_eq!(kept.text, "# infragen: the built-in n.yml less the groups `infra_rules` replaces\ngroups:\n- name: b\n  rules: []\n");
    }
}
