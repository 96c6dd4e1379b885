//! The switch plan: what happens to each component when one generation replaces another.
//!
//! NixOS's rules, plus a health gate: a component only in the new generation starts; one only in
//! the old stops; a unit that changed (compared parsed, not byte-wise) restarts; a configuration
//! that changed reloads when the component reloads on a signal, and restarts otherwise; anything
//! else is left alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::manifest::{FileEntry, Manifest};

/// What happens to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// New: start it.
    Start,
    /// Gone: stop and disable it.
    Stop,
    /// Unit or root changed: restart it.
    Restart,
    /// Only its configuration changed and it reloads on a signal.
    Reload,
    /// Unchanged.
    Keep,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Reload => "reload",
            Action::Keep => "keep",
        })
    }
}

/// One component's step, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Component name.
    pub component: String,
    /// What happens.
    pub action: Action,
    /// Why, for people.
    pub why: String,
}

/// A unit file parsed, for comparison: section → key → the key's values in file order.
///
/// Follows systemd.syntax(7): lines starting with `#` or `;` are comments (also inside a
/// continued line); a line ending in an odd number of backslashes continues on the next, the
/// backslash replaced by a space; white space around keys and values does not count. Keys
/// that repeat keep their order (`ExecStartPre=` lines run in order); the order of distinct
/// keys does not count. An empty assignment (`ExecStart=`) resets the list: the values before
/// it are dropped and an empty value stands for the reset, so a reset is never equal to its
/// absence (it is in a drop-in).
pub fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in logical_lines(text) {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.clone_into(&mut section);
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let values = out
            .entry(section.clone())
            .or_default()
            .entry(k.trim().to_owned())
            .or_default();
        let v = v.trim();
        if v.is_empty() {
            values.clear();
        }
        values.push(v.to_owned());
    }
    out
}

/// The lines of a unit file with comments and blank lines dropped and continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for raw in text.lines() {
        let start = raw.trim_start();
        if start.is_empty() && pending.is_none() {
            continue;
        }
        if start.starts_with('#') || start.starts_with(';') {
            continue;
        }
        let mut line = match pending.take() {
            Some(mut p) => {
                p.push_str(raw);
                p
            }
            None => raw.to_owned(),
        };
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            line.pop();
            line.push(' ');
            pending = Some(line);
        } else {
            out.push(line);
        }
    }
    out.extend(pending);
    out
}

/// A component's secret files in a manifest (`files` under `secrets/<c>/`): digest, mode, owner.
fn secrets<'a>(manifest: Option<&'a Manifest>, component: &str) -> Vec<(&'a str, &'a FileEntry)> {
    let prefix = format!("secrets/{component}/");
    manifest
        .into_iter()
        .flat_map(|m| &m.files)
        .filter(|(path, _)| path.starts_with(&prefix))
        .map(|(path, entry)| (path.as_str(), entry))
        .collect()
}

/// The plan from `old` to `new` (manifests), given each side's unit texts.
pub fn plan(
    old: Option<&Manifest>,
    new: &Manifest,
    old_unit: &dyn Fn(&str) -> Option<String>,
    new_unit: &dyn Fn(&str) -> Option<String>,
) -> Vec<Step> {
    let empty = BTreeMap::new();
    let old_c = old.map_or(&empty, |o| &o.components);
    let mut steps = Vec::new();
    for (name, n) in &new.components {
        let step = |action, why: &str| Step {
            component: name.clone(),
            action,
            why: why.to_owned(),
        };
        let Some(o) = old_c.get(name) else {
            steps.push(step(Action::Start, "new"));
            continue;
        };
        let units_differ = match (old_unit(name), new_unit(name)) {
            (Some(a), Some(b)) => parse_unit(&a) != parse_unit(&b),
            _ => true,
        };
        if units_differ || o.root != n.root {
            steps.push(step(Action::Restart, "unit changed"));
        } else if secrets(old, name) != secrets(Some(new), name) {
            // Credentials are loaded when the service starts.
            steps.push(step(Action::Restart, "secrets changed"));
        } else if o.config != n.config {
            if n.reload.signal.is_some() {
                steps.push(step(Action::Reload, "configuration changed"));
            } else {
                steps.push(step(
                    Action::Restart,
                    "configuration changed; it does not reload",
                ));
            }
        } else {
            steps.push(step(Action::Keep, "unchanged"));
        }
    }
    for name in old_c.keys() {
        if !new.components.contains_key(name) {
            steps.push(Step {
                component: name.clone(),
                action: Action::Stop,
                why: "removed".to_owned(),
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A manifest whose components differ in root, config and reload signal only; `files`
    /// holds one secret per `(component, digest letter)`.
    fn m(components: &[(&str, char, char, bool)], secrets: &[(&str, char)]) -> Manifest {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let mut files = serde_json::Map::new();
        for (c, dg) in secrets {
            files.insert(
                format!("secrets/{c}/key"),
                json!({"digest": d(*dg), "mode": "0600", "uid": 0, "gid": 0}),
            );
        }
        let mut comps = serde_json::Map::new();
        for (name, root, config, reloads) in components {
            comps.insert(
                (*name).to_owned(),
                json!({
                    "image": d('a'), "ref": format!("infra-{name}"), "root": root.to_string().repeat(64),
                    "root_layers": [], "config_layer": d('a'), "config": d(*config), "config_dirs": [],
                    "unit": format!("infra-{name}.service"),
                    "runtimes": {"unit": "u", "nspawn": "n", "portable": "p", "podman": "q"},
                    "user": {"name": "x", "uid": 1, "gid": 1}, "data": [], "secrets": [],
                    "reload": {"signal": if *reloads { Some("SIGHUP") } else { None }, "on": "config"},
                    "health": null,
                }),
            );
        }
        serde_json::from_value(json!({
            "version": 2, "infragen": "0", "host": "h", "profile": {"name": "p", "digest": "d"},
            "version_string": "v1", "components": comps, "incomplete": [], "files": files,
        }))
        .unwrap()
    }

    #[test]
    fn planner_matrix() {
        let old = m(
            &[
                ("a", '1', '1', true),
                ("b", '1', '1', true),
                ("c", '1', '1', false),
                ("d", '1', '1', true),
                ("e", '1', '1', true),
                ("f", '1', '1', true),
                ("gone", '1', '1', false),
            ],
            &[("f", '1'), ("a", '1')],
        );
        let new = m(
            &[
                ("a", '1', '1', true),
                ("b", '1', '2', true),
                ("c", '1', '2', false),
                ("d", '2', '1', true),
                ("e", '1', '1', true),
                ("f", '1', '1', true),
                ("fresh", '1', '1', false),
            ],
            &[("f", '2'), ("a", '1')],
        );
        let old_unit = |c: &str| Some(format!("[Service]\nExecStart=/x {c}\n"));
        let new_unit = |c: &str| {
            Some(if c == "e" {
                "[Service]\nExecStart=/x e --flag\n".to_owned()
            } else {
                format!("# comment\n[Service]\n ExecStart = /x {c}\n")
            })
        };
        let steps = plan(Some(&old), &new, &old_unit, &new_unit);
        let got: Vec<(String, Action)> = steps
            .iter()
            .map(|s| (s.component.clone(), s.action))
            .collect();
        let want = [
            ("a", Action::Keep),
            ("b", Action::Reload),
            ("c", Action::Restart),
            ("d", Action::Restart),
            ("e", Action::Restart),
            ("f", Action::Restart), // only its secret changed: credentials load at start
            ("fresh", Action::Start),
            ("gone", Action::Stop),
        ];
        let want: Vec<(String, Action)> = want.iter().map(|(c, a)| ((*c).to_owned(), *a)).collect();
        assert_eq!(got, want);
        let first = plan(None, &new, &old_unit, &new_unit);
        assert!(first.iter().all(|s| s.action == Action::Start));
    }

    /// Pairs of unit texts and whether the plan must see them as the same unit.
    #[test]
    fn unit_comparison() {
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "comments and white space",
                "[Service]\nExecStart=/x\n",
                "# c\n[Service]\n; c\n  ExecStart = /x  \n\n",
                true,
            ),
            (
                "distinct keys reordered",
                "[Service]\nUser=a\nExecStart=/x\n",
                "[Service]\nExecStart=/x\nUser=a\n",
                true,
            ),
            (
                "ExecStartPre= reordered",
                "[Service]\nExecStartPre=/a\nExecStartPre=/b\nExecStart=/x\n",
                "[Service]\nExecStartPre=/b\nExecStartPre=/a\nExecStart=/x\n",
                false,
            ),
            (
                "a reset moved",
                "[Service]\nExecStart=/a\nExecStart=\nExecStart=/b\n",
                "[Service]\nExecStart=\nExecStart=/a\nExecStart=/b\n",
                false,
            ),
            (
                "a reset added",
                "[Service]\nExecStart=/b\n",
                "[Service]\nExecStart=\nExecStart=/b\n",
                false,
            ),
            (
                "what a reset drops does not count",
                "[Service]\nExecStart=/a\nExecStart=\nExecStart=/b\n",
                "[Service]\nExecStart=/c\nExecStart=\nExecStart=/b\n",
                true,
            ),
            (
                "a continuation is the joined line",
                "[Service]\nExecStart=/x \\\n  --flag\n",
                "[Service]\nExecStart=/x    --flag\n",
                true,
            ),
            (
                "a comment inside a continuation",
                "[Service]\nExecStart=/x \\\n# c\n--flag\n",
                "[Service]\nExecStart=/x  --flag\n",
                true,
            ),
            (
                "a changed continuation line",
                "[Service]\nExecStart=/x \\\n  --flag\n",
                "[Service]\nExecStart=/x \\\n  --other\n",
                false,
            ),
            (
                "an escaped backslash ends the line",
                "[Service]\nExecStart=/x \\\\\nUser=a\n",
                "[Service]\nExecStart=/x \\\\ User=a\n",
                false,
            ),
            (
                "same key in another section",
                "[Unit]\nAfter=a\n[Service]\nExecStart=/x\n",
                "[Unit]\n[Service]\nExecStart=/x\nAfter=a\n",
                false,
            ),
        ];
        for (name, a, b, same) in cases {
            assert_eq!(parse_unit(a) == parse_unit(b), *same, "{name}");
        }
    }

    /// The planner restarts for an in-order change of repeated keys.
    #[test]
    fn reordered_exec_start_pre_restarts() {
        let both = m(&[("a", '1', '1', true)], &[]);
        let old_unit = |_: &str| Some("[Service]\nExecStartPre=/a\nExecStartPre=/b\n".to_owned());
        let new_unit = |_: &str| Some("[Service]\nExecStartPre=/b\nExecStartPre=/a\n".to_owned());
        let steps = plan(Some(&both), &both, &old_unit, &new_unit);
        assert_eq!(steps[0].action, Action::Restart);
        assert_eq!(steps[0].why, "unit changed");
    }
}
