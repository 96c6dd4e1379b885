//! The switch plan: what happens to each component when one generation replaces another.
//!
//! NixOS's rules, plus a health gate: a component only in the new generation starts; one only in
//! the old stops; a unit that changed (compared parsed, not byte-wise) restarts; a configuration
//! that changed reloads when the component reloads on a signal, and restarts otherwise; anything
//! else is left alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// A unit file parsed: sections → sorted (key, value) pairs, comments and blank lines dropped.
pub fn parse_unit(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.clone_into(&mut section);
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// The digests of a component's secret files in a manifest (`files` under `secrets/<c>/`).
fn secrets(manifest: Option<&Value>, component: &str) -> Vec<(String, Value)> {
    let prefix = format!("secrets/{component}/");
    manifest
        .and_then(|m| m["files"].as_object())
        .into_iter()
        .flatten()
        .filter(|(path, _)| path.starts_with(&prefix))
        .map(|(path, entry)| (path.clone(), entry.clone()))
        .collect()
}

/// The plan from `old` to `new` (manifests), given each side's unit texts.
pub fn plan(
    old: Option<&Value>,
    new: &Value,
    old_unit: &dyn Fn(&str) -> Option<String>,
    new_unit: &dyn Fn(&str) -> Option<String>,
) -> Vec<Step> {
    let empty = serde_json::Map::new();
    let old_c = old
        .and_then(|o| o["components"].as_object())
        .unwrap_or(&empty);
    let new_c = new["components"].as_object().unwrap_or(&empty);
    let mut steps = Vec::new();
    for (name, n) in new_c {
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
        if units_differ || o["root"] != n["root"] {
            steps.push(step(Action::Restart, "unit changed"));
        } else if secrets(old, name) != secrets(Some(new), name) {
            // Credentials are loaded when the service starts.
            steps.push(step(Action::Restart, "secrets changed"));
        } else if o["config"] != n["config"] {
            if n["reload"]["signal"].is_string() {
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
        if !new_c.contains_key(name) {
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

    #[allow(clippy::needless_pass_by_value)]
    fn m(components: Value) -> Value {
        json!({ "components": components })
    }

    #[test]
    fn planner_matrix() {
        let old = m(json!({
            "a": {"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "b": {"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "c": {"root": "r1", "config": "c1", "reload": {"signal": null}},
            "d": {"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "e": {"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "gone": {"root": "r1", "config": "c1", "reload": {"signal": null}},
        }));
        let new = m(json!({
            "a": {"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "b": {"root": "r1", "config": "c2", "reload": {"signal": "SIGHUP"}},
            "c": {"root": "r1", "config": "c2", "reload": {"signal": null}},
            "d": {"root": "r2", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "e": {"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}},
            "fresh": {"root": "r1", "config": "c1", "reload": {"signal": null}},
        }));
        let old_unit = |c: &str| Some(format!("[Service]\nExecStart=/x {c}\n"));
        let new_unit = |c: &str| {
            Some(if c == "e" {
                "[Service]\nExecStart=/x e --flag\n".to_owned()
            } else {
                format!("# comment\n[Service]\n ExecStart = /x {c}\n")
            })
        };
        let mut old = old;
        let mut new = new;
        old["files"] = json!({"secrets/f/key": "sha256:1", "secrets/a/key": "sha256:1"});
        new["files"] = json!({"secrets/f/key": "sha256:2", "secrets/a/key": "sha256:1"});
        old["components"]["f"] =
            json!({"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}});
        new["components"]["f"] =
            json!({"root": "r1", "config": "c1", "reload": {"signal": "SIGHUP"}});
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
            ("fresh", Action::Start),
            ("f", Action::Restart), // only its secret changed: credentials load at start
            ("gone", Action::Stop),
        ];
        let want: Vec<(String, Action)> = want.iter().map(|(c, a)| ((*c).to_owned(), *a)).collect();
        assert_eq!(got, want);
        let first = plan(None, &new, &old_unit, &new_unit);
        assert!(first.iter().all(|s| s.action == Action::Start));
    }
}
