//! Reading an operator's content: `infra_dashboards` (dashboard JSON, folders kept) and
//! `infra_rules` (vmalert rule files), e.g. `files/grafana` and `files/victoria/rules` of a
//! Pigsty checkout, unchanged.
//!
//! Both are untrusted input: read through `fsx` without following a symlink anywhere below the
//! directory, regular files only (a symlink, device, fifo or socket is refused, named), each
//! file and the whole set bounded in size, in path order. A file that is not valid JSON or YAML
//! is named with the line and column the parser gives. Merging with the built-in set is
//! [`super::dashboards`] and [`super::rules`].

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::fsx::{Kind, Links, Root};
use crate::plan::{Imported, ImportedDashboard, ImportedRules, Plan};

/// The largest file read (Pigsty's largest dashboard is under 1 MiB).
pub const MAX_FILE: u64 = 16 << 20;
/// The most bytes read from one directory.
pub const MAX_TOTAL: u64 = 256 << 20;
/// The most entries below one directory.
pub const MAX_ENTRIES: usize = 10_000;

/// Nesting and size limits of one rule file's YAML.
const YAML_LIMITS: crate::yaml::Limits = crate::yaml::Limits {
    depth: 64,
    values: 1_000_000,
    aliased: 10_000,
};

/// Reads the directories `plan.content` names into `plan.imported`.
pub fn load(plan: &mut Plan) -> Result<()> {
    let mut imported = Imported::default();
    if let Some((dir, key)) = &plan.content.dashboards {
        imported.dashboards =
            dashboards(dir).with_context(|| format!("`{key}`: {}", dir.display()))?;
    }
    if let Some((dir, key)) = &plan.content.rules {
        imported.rules = rules(dir).with_context(|| format!("`{key}`: {}", dir.display()))?;
    }
    plan.imported = imported;
    Ok(())
}

/// Every regular file below `dir` whose name ends in one of `exts`, with its text, in path
/// order; `flat`: a subdirectory is refused.
fn files(dir: &Path, exts: &[&str], flat: bool) -> Result<Vec<(String, String)>> {
    let root = Root::open(dir, Links::Refuse)?;
    let entries = root.walk()?;
    if entries.len() > MAX_ENTRIES {
        bail!("more than {MAX_ENTRIES} entries");
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for (rel, meta) in entries {
        let shown = dir.join(&rel);
        let name = rel
            .to_str()
            .with_context(|| format!("{}: a file name that is not UTF-8", shown.display()))?;
        // Names become paths in the images, manifests and Grafana's folders: printable only.
        if name.chars().any(char::is_control) {
            bail!(
                "{:?}: a file name with a control character",
                shown.display().to_string()
            );
        }
        match meta.kind {
            Kind::Dir if flat => bail!(
                "{}: a directory (rule files are read from the directory itself, not below it)",
                shown.display()
            ),
            Kind::Dir => continue,
            Kind::Symlink => bail!(
                "{}: a symlink (only regular files are read)",
                shown.display()
            ),
            Kind::Other => bail!(
                "{}: not a regular file (a device, fifo or socket)",
                shown.display()
            ),
            Kind::File => {}
        }
        if !exts.iter().any(|e| name.ends_with(e)) {
            continue;
        }
        if meta.size > MAX_FILE {
            bail!(
                "{}: larger than {}",
                shown.display(),
                crate::plural::bytes(MAX_FILE)
            );
        }
        let mut bytes = Vec::new();
        root.open_file(&rel)?
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", shown.display()))?;
        total += bytes.len() as u64;
        if bytes.len() as u64 > MAX_FILE || total > MAX_TOTAL {
            bail!("{}: past the size limit", shown.display());
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", shown.display()))?;
        out.push((name.to_owned(), text));
    }
    Ok(out)
}

/// The dashboards below `dir` (`*.json`, any depth).
pub fn dashboards(dir: &Path) -> Result<Vec<ImportedDashboard>> {
    let mut out = Vec::new();
    let mut uids: BTreeMap<String, String> = BTreeMap::new();
    for (path, text) in files(dir, &[".json"], false)? {
        let shown = dir.join(&path);
        let json =
            parse_dashboard(&text).map_err(|e| anyhow::anyhow!("{}:{e}", shown.display()))?;
        let uid = json["uid"].as_str().unwrap_or_default().to_owned();
        if let Some(other) = uids.insert(uid.clone(), path.clone()) {
            bail!(
                "{}: uid `{uid}` is also the uid of {}",
                shown.display(),
                dir.join(other).display()
            );
        }
        out.push(ImportedDashboard { path, json });
    }
    Ok(out)
}

/// A dashboard model: a JSON object with a `uid` Grafana accepts. Errors start with
/// `line:column: ` when the parser gives them, else with a space.
pub fn parse_dashboard(text: &str) -> Result<serde_json::Value, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        format!("{}:{}: not JSON: {message}", e.line(), e.column())
    })?;
    if !json.is_object() {
        return Err(" not a dashboard: the JSON is not an object".into());
    }
    match json.get("uid").and_then(serde_json::Value::as_str) {
        None | Some("") => Err(" no `uid`: every dashboard needs a stable one".into()),
        Some(uid) if !valid_uid(uid) => Err(format!(
            " uid `{uid}` is not 1 to 40 letters, digits, `-` or `_`"
        )),
        Some(_) => Ok(json),
    }
}

/// A uid as Grafana accepts one.
fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 40
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The rule files in `dir` (`*.yml`, `*.yaml`; no subdirectory).
pub fn rules(dir: &Path) -> Result<Vec<ImportedRules>> {
    let mut out: Vec<ImportedRules> = Vec::new();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (name, text) in files(dir, &[".yml", ".yaml"], true)? {
        let shown = dir.join(&name);
        let groups = group_names(&text).map_err(|e| anyhow::anyhow!("{}:{e}", shown.display()))?;
        for g in &groups {
            if let Some(other) = owner.insert(g.clone(), name.clone()) {
                bail!(
                    "{}: group `{g}` is also a group of {} (a group name is unique in the set)",
                    shown.display(),
                    dir.join(other).display()
                );
            }
        }
        out.push(ImportedRules { name, text, groups });
    }
    Ok(out)
}

/// The names of the groups of a vmalert rule file, in file order. Errors start with
/// `line:column: ` when the parser gives them, else with a space.
pub fn group_names(text: &str) -> Result<Vec<String>, String> {
    let (value, _) =
        crate::yaml::parse(text, YAML_LIMITS).map_err(|e| format!("{}: not YAML: {e}", e.at()))?;
    let json = serde_json::to_value(&value).map_err(|e| format!(" {e}"))?;
    let Some(groups) = json.get("groups").and_then(serde_json::Value::as_array) else {
        return Err(" not a vmalert rule file: no `groups` list".into());
    };
    let mut names = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        match g.get("name").and_then(serde_json::Value::as_str) {
            Some(n) if !n.is_empty() => {
                if names.iter().any(|m| m == n) {
                    return Err(format!(" groups[{i}]: group `{n}` twice in the file"));
                }
                names.push(n.to_owned());
            }
            _ => return Err(format!(" groups[{i}]: a group without a `name`")),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dashboard_needs_json_an_object_and_a_uid() {
        assert_eq!(
            parse_dashboard("{\n  \"uid\": 1,,\n}").unwrap_err(),
            "2:12: not JSON: key must be a string"
        );
        assert_eq!(
            parse_dashboard("[]").unwrap_err(),
            " not a dashboard: the JSON is not an object"
        );
        assert_eq!(
            parse_dashboard("{\"title\": \"x\"}").unwrap_err(),
            " no `uid`: every dashboard needs a stable one"
        );
        assert_eq!(
            parse_dashboard("{\"uid\": \"a b\"}").unwrap_err(),
            " uid `a b` is not 1 to 40 letters, digits, `-` or `_`"
        );
        assert!(parse_dashboard("{\"uid\": \"node-instance\"}").is_ok());
    }

    #[test]
    fn rule_files_name_their_groups_once_each() {
        assert_eq!(
            group_names("groups:\n  - name: a\n    rules: []\n  - name: b\n").unwrap(),
            ["a", "b"]
        );
        assert!(group_names("groups: [\n")
            .unwrap_err()
            .starts_with("2:1: not YAML"));
        assert_eq!(
            group_names("rules: []\n").unwrap_err(),
            " not a vmalert rule file: no `groups` list"
        );
        assert_eq!(
            group_names("groups:\n  - name: a\n  - name: a\n").unwrap_err(),
            " groups[1]: group `a` twice in the file"
        );
        assert_eq!(
            group_names("groups:\n  - rules: []\n").unwrap_err(),
            " groups[0]: a group without a `name`"
        );
    }
}
