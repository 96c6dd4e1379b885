//! The built-in dashboards (fast tier): the README lists exactly them; every link between them,
//! on the home dashboard and on the portal resolves; every query names only variables the
//! dashboard defines and only the `ds-prometheus` datasource; the grid has no overlap; the JSON
//! is the same on every call; Grafana's home is the `pigsty` dashboard.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use infragen::content::dashboards::{boards, builtin, model};

/// The README's dashboard table, as the built-in set gives it.
fn readme_table() -> String {
    let mut s = String::from("| uid | title | folder | what it shows |\n|---|---|---|---|\n");
    for b in boards() {
        let folder = if b.folder.is_empty() {
            "(top)"
        } else {
            b.folder
        };
        writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            b.uid, b.title, folder, b.description
        )
        .unwrap();
    }
    s
}

#[test]
fn readme_lists_every_builtin_dashboard() {
    let doc = include_str!("../README.md");
    let begin = "<!-- dashboards:begin -->\n";
    let start = doc.find(begin).expect("begin marker") + begin.len();
    let end = doc.find("<!-- dashboards:end -->").expect("end marker");
    let want = readme_table();
    assert_eq!(&doc[start..end], want, "paste this into README.md:\n{want}");
}

fn uids() -> BTreeSet<String> {
    builtin()
        .iter()
        .map(|d| d.json["uid"].as_str().expect("uid").to_owned())
        .collect()
}

/// Every `/ui/d/<uid>` in `text`.
fn linked(text: &str) -> Vec<String> {
    text.split("/ui/d/")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn uids_are_unique_and_paths_follow_folder_and_uid() {
    let set = builtin();
    assert_eq!(uids().len(), set.len(), "duplicate uid");
    for d in &set {
        let uid = d.json["uid"].as_str().unwrap();
        assert!(
            d.path == format!("{uid}.json") || d.path.ends_with(&format!("/{uid}.json")),
            "{}",
            d.path
        );
        assert_eq!(d.json["schemaVersion"], model::SCHEMA_VERSION);
    }
    for uid in [
        "pigsty",
        "infra-overview",
        "node-overview",
        "node-instance",
        "pgsql-cluster",
        "pgsql-instance",
        "etcd-overview",
        "minio-overview",
        "redis-overview",
        "nginx-instance",
        "vmetrics-instance",
        "vlogs-instance",
        "vtraces-instance",
        "vmalert-instance",
        "alertmanager-instance",
        "blackbox-instance",
        "dnsmasq-instance",
        "chrony-instance",
        "grafana-instance",
    ] {
        assert!(uids().contains(uid), "no built-in dashboard `{uid}`");
    }
}

#[test]
fn every_link_resolves_and_home_links_to_every_other_dashboard() {
    let uids = uids();
    let mut links = 0;
    for d in builtin() {
        let text = d.json.to_string();
        for uid in linked(&text) {
            assert!(
                uids.contains(&uid),
                "{}: link to unknown `/ui/d/{uid}`",
                d.path
            );
            links += 1;
        }
    }
    assert!(links > 40, "only {links} links");
    let home = builtin()
        .into_iter()
        .find(|d| d.json["uid"] == "pigsty")
        .unwrap();
    let from_home: BTreeSet<String> = linked(&home.json.to_string()).into_iter().collect();
    let others: BTreeSet<String> = uids.iter().filter(|u| *u != "pigsty").cloned().collect();
    assert_eq!(from_home, others);
}

#[test]
fn data_links_carry_variables_the_target_defines() {
    let boards = boards();
    let mut checked = 0;
    for b in &boards {
        let all = b
            .links
            .iter()
            .chain(b.panels().flat_map(|p| p.links.iter()));
        for l in all {
            let target = boards.iter().find(|t| t.uid == l.uid).expect("resolves");
            for (name, _) in &l.vars {
                assert!(
                    target.vars.iter().any(|v| v.name == *name),
                    "{} links to {} with `var-{name}`, which it does not define",
                    b.uid,
                    l.uid
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn queries_use_only_defined_variables_and_the_metrics_datasource() {
    for b in boards() {
        let defined: Vec<&str> = b.vars.iter().map(|v| v.name).collect();
        let mut exprs: Vec<String> = b
            .panels()
            .flat_map(|p| p.targets.iter().map(|t| t.expr.clone()))
            .collect();
        for (i, v) in b.vars.iter().enumerate() {
            // A variable's selector may use only the variables before it.
            for used in vars_in(&v.selector) {
                assert!(
                    defined[..i].contains(&used.as_str()),
                    "{}: `{}` uses `${used}`",
                    b.uid,
                    v.name
                );
            }
        }
        exprs.retain(|e| !e.is_empty());
        assert!(!exprs.is_empty(), "{} has no query", b.uid);
        for e in &exprs {
            for used in vars_in(e) {
                assert!(
                    defined.contains(&used.as_str()),
                    "{}: `{e}` uses undefined `${used}`",
                    b.uid
                );
            }
        }
    }
    for d in builtin() {
        for p in d.json["panels"].as_array().unwrap() {
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], model::DATASOURCE, "{}", d.path);
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], model::DATASOURCE, "{}", d.path);
            }
        }
    }
}

/// `$name` uses in an expression, Grafana's own `$__…` left out.
fn vars_in(expr: &str) -> Vec<String> {
    expr.split('$')
        .skip(1)
        .map(|rest| {
            rest.trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.starts_with("__") && !n.is_empty() && !n.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

#[test]
fn panels_tile_the_grid_without_overlap_and_ids_are_unique() {
    for d in builtin() {
        let mut ids = BTreeSet::new();
        let mut cells = BTreeSet::new();
        for p in d.json["panels"].as_array().unwrap() {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{}: duplicate id",
                d.path
            );
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24, "{}: {g}", d.path);
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{}: panel {} overlaps at {cx},{cy}",
                        d.path,
                        p["title"]
                    );
                }
            }
        }
    }
}

#[test]
fn output_is_deterministic() {
    let a: Vec<String> = builtin()
        .iter()
        .map(|d| format!("{}\n{}", d.path, d.json))
        .collect();
    let b: Vec<String> = builtin()
        .iter()
        .map(|d| format!("{}\n{}", d.path, d.json))
        .collect();
    assert_eq!(a, b);
}

#[test]
fn grafana_home_is_the_pigsty_dashboard() {
    let ini = include_str!("../images/grafana/grafana.ini.hbs");
    assert!(ini.contains("\ndefault_home_dashboard_path = /etc/dashboards/pigsty.json\n"));
    assert!(builtin().iter().any(|d| d.path == "pigsty.json"));
}

#[test]
fn the_portal_links_to_the_provisioned_dashboards_only() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("profiles/single-node.yml")).unwrap();
    let inventory = infragen::profile::parse("single-node.yml", &text).unwrap();
    let plan = infragen::plan::resolve(&inventory).unwrap();
    let tree = infragen::render::plan(&plan).unwrap();
    let mut provisioned = BTreeSet::new();
    let mut portal = None;
    for (path, entry) in tree.iter() {
        if let Some(rest) = path.split("/grafana/etc/dashboards/").nth(1) {
            let json: serde_json::Value = serde_json::from_slice(&entry.data).unwrap();
            assert_eq!(
                json["uid"]
                    .as_str()
                    .map(|u| rest.ends_with(&format!("{u}.json"))),
                Some(true),
                "{path}"
            );
            provisioned.insert(json["uid"].as_str().unwrap().to_owned());
        }
        if path.ends_with("/nginx/etc/nginx/html/index.html") {
            portal = Some(String::from_utf8(entry.data.clone()).unwrap());
        }
    }
    assert_eq!(provisioned, uids(), "Grafana provisions the built-in set");
    let portal = portal.expect("a portal page");
    let links = linked(&portal);
    assert_eq!(
        links,
        infragen::content::dashboards::PORTAL
            .iter()
            .map(|u| (*u).to_owned())
            .collect::<Vec<_>>()
    );
    for uid in &links {
        assert!(provisioned.contains(uid), "portal links to `/ui/d/{uid}`");
    }
}
