//! The shared part of `tests/portal_config.rs` (fast) and `tests/portal_config_integration.rs`
//! (`nginx -t`): the corpus of profiles, and the server-block check read with nginx's lexical
//! rules.
#![allow(dead_code)]

use std::path::PathBuf;

use infragen::plan::nginx_lex::{parse, Directive};
use infragen::plan::{self, Plan, PortalKind, SslMode};
use infragen::profile;
use infragen::tree::Tree;

pub fn snippets() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/portal-config.yml")
        .display()
        .to_string()
}

pub fn corpus() -> Vec<String> {
    let mut names: Vec<String> = profile::BUILTIN
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    // our Pigsty-dialect fixtures, and Pigsty's own when ../shared is present
    for f in super::common::inventories() {
        names.push(f.display().to_string());
    }
    names.push(snippets());
    names
}

pub fn plan_of(name: &str) -> Plan {
    let inv = profile::load(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    plan::resolve(&inv).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn text(tree: &Tree, path: &str) -> String {
    let entry = tree.get(path).unwrap_or_else(|| panic!("no {path}"));
    String::from_utf8(entry.data.clone()).expect("utf-8")
}

/// Every `server` block nested anywhere below `ds` (`depth` blocks deep), as error lines.
pub fn nested_servers(ds: &[Directive], depth: usize, file: &str, out: &mut Vec<String>) {
    for d in ds {
        if let Some(inner) = &d.block {
            if d.name == "server" && depth > 0 {
                out.push(format!("{file}:{}: a `server` block {depth} deep", d.line));
            }
            nested_servers(inner, depth + 1, file, out);
        }
    }
}

/// Everything wrong with the server blocks of `tree` against the portal of `plan`.
pub fn server_problems(plan: &Plan, tree: &Tree) -> Vec<String> {
    let mut problems = Vec::new();
    for h in &plan.hosts {
        let Some(n) = &h.nginx else { continue };
        let base = format!("{}/nginx/etc/nginx", h.ip);
        let main = parse(&text(tree, &format!("{base}/nginx.conf"))).expect("nginx.conf parses");
        let top: Vec<&str> = main
            .iter()
            .filter(|d| d.block.is_some())
            .map(|d| d.name.as_str())
            .collect();
        if top != ["events", "http"] {
            problems.push(format!("{base}/nginx.conf: top-level blocks {top:?}"));
        }
        nested_servers(&main, 0, "nginx.conf", &mut problems);
        if main.iter().any(|d| d.name == "server") {
            problems.push(format!("{base}/nginx.conf: a `server` block"));
        }

        let conf_d = format!("{base}/conf.d/");
        let mut found = 0;
        for (path, entry) in tree.iter() {
            let Some(file) = path.strip_prefix(&conf_d) else {
                continue;
            };
            let body = String::from_utf8(entry.data.clone()).expect("utf-8");
            let ds = match parse(&body) {
                Ok(ds) => ds,
                Err(e) => {
                    problems.push(format!("{file}: {e}"));
                    continue;
                }
            };
            nested_servers(&ds, 0, file, &mut problems);
            for d in &ds {
                match (d.name.as_str(), &d.block) {
                    ("server", Some(_)) => found += 1,
                    ("upstream", Some(_)) => {}
                    (name, _) => problems.push(format!("{file}:{}: top-level `{name}`", d.line)),
                }
            }
            let name = file
                .strip_suffix(".conf")
                .expect("conf.d files end in .conf");
            let Some(p) = n.portal.iter().find(|p| p.name == name) else {
                problems.push(format!("{file}: no portal entry `{name}`"));
                continue;
            };
            // the entry's own server block: its names, then its `config` last
            let Some(server) = ds.iter().find(|d| d.name == "server") else {
                continue;
            };
            let inner = server.block.as_deref().unwrap_or_default();
            let mut names = vec![p.domain.clone()];
            names.extend(p.domains.iter().cloned());
            if !inner
                .iter()
                .any(|d| d.name == "server_name" && d.args == names)
            {
                problems.push(format!("{file}: no `server_name {}`", names.join(" ")));
            }
            if let Some(config) = &p.config {
                let ends_with_config = parse(config).is_ok_and(|want| {
                    let tail = &inner[inner.len().saturating_sub(want.len())..];
                    same(tail, &want)
                });
                if !ends_with_config {
                    problems.push(format!(
                        "{file}: the server block does not end with the entry's config"
                    ));
                }
            }
        }
        let https = n.sslmode != SslMode::Disable;
        let expected: usize = n
            .portal
            .iter()
            .map(|p| {
                let home = matches!(p.kind, PortalKind::Home { .. });
                let redirect = !home && https && (n.sslmode == SslMode::Enforce || p.enforce_https);
                1 + usize::from(redirect)
            })
            .sum();
        if found != expected {
            problems.push(format!(
                "{}: {found} server blocks for {} portal entries ({expected} expected)",
                h.ip,
                n.portal.len()
            ));
        }
    }
    problems
}

/// The same directives, lines aside (the rendered file numbers them differently).
pub fn same(a: &[Directive], b: &[Directive]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.args == y.args
                && match (&x.block, &y.block) {
                    (Some(p), Some(q)) => same(p, q),
                    (None, None) => true,
                    _ => false,
                }
        })
}
