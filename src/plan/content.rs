//! `infra_dashboards` and `infra_rules`: the operator's directories of monitoring content,
//! resolved against the profile file (a built-in profile: the working directory), the same on
//! every infra host. Reading them is `content::import`'s; the plan carries the paths and, once
//! read, what was in them.

use std::path::{Path, PathBuf};

use super::read::Reader;

/// The parameter naming the directory of dashboards.
pub const DASHBOARDS: &str = "infra_dashboards";

/// The parameter naming the directory of rule files.
pub const RULES: &str = "infra_rules";

/// The operator's content directories (`None`: not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentDirs {
    /// `infra_dashboards`, resolved, and the key path it was written at.
    pub dashboards: Option<(PathBuf, String)>,
    /// `infra_rules`, resolved, and the key path it was written at.
    pub rules: Option<(PathBuf, String)>,
}

impl ContentDirs {
    /// The two directories, without where they were written.
    pub fn paths(&self) -> (Option<&Path>, Option<&Path>) {
        (
            self.dashboards.as_ref().map(|d| d.0.as_path()),
            self.rules.as_ref().map(|d| d.0.as_path()),
        )
    }
}

/// One dashboard read from `infra_dashboards`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedDashboard {
    /// Its path below the directory, `/`-separated (`infra/nginx-instance.json`).
    pub path: String,
    /// The dashboard model as read.
    pub json: serde_json::Value,
}

/// One rule file read from `infra_rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedRules {
    /// Its name in the directory (`node.yml`).
    pub name: String,
    /// Its text as read.
    pub text: String,
    /// Its groups' names, in file order.
    pub groups: Vec<String>,
}

/// What `content::import` read from the operator's directories (empty until then).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// Dashboards, by path.
    pub dashboards: Vec<ImportedDashboard>,
    /// Rule files, by name.
    pub rules: Vec<ImportedRules>,
}

/// Both directories as one host's variables set them; `base` is the directory a relative path
/// is taken from.
pub(super) fn read(r: &mut Reader, base: &Path) -> ContentDirs {
    ContentDirs {
        dashboards: dir(r, DASHBOARDS, base),
        rules: dir(r, RULES, base),
    }
}

fn dir(r: &mut Reader, name: &str, base: &Path) -> Option<(PathBuf, String)> {
    let path = r.var(name)?.path.clone();
    let s = r.string(name);
    if s.is_empty() {
        return None;
    }
    Some((base.join(s), path))
}

/// The directory relative content paths are taken from: the profile file's, or the working
/// directory (`.`) for a built-in profile.
pub(super) fn base_of(source: &str) -> PathBuf {
    if source.starts_with("builtin:") {
        return PathBuf::from(".");
    }
    match Path::new(source).parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_start_at_the_profile_file_or_the_working_directory() {
        assert_eq!(base_of("builtin:single-node"), PathBuf::from("."));
        assert_eq!(base_of("pigsty.yml"), PathBuf::from("."));
        assert_eq!(base_of("conf/pigsty.yml"), PathBuf::from("conf"));
        assert_eq!(base_of("/etc/p/pigsty.yml"), PathBuf::from("/etc/p"));
        // An absolute parameter value replaces the base (Path::join).
        let absolute = String::from("/srv/g");
        assert_eq!(Path::new("conf").join(&absolute), PathBuf::from("/srv/g"));
    }
}
