//! Image recipes: `images/<component>/image.yml`, embedded in the binary.
//!
//! A recipe says where a component's root comes from (Debian packages, or a base image for
//! software Debian does not ship), which user runs it, which directories it needs (written as
//! files: no maintainer script runs), how it starts, what it exposes, how it reloads and how its
//! health is probed. Parsed strictly: an unknown key is an error. A built image, as the build
//! reports it and the bundle records it, is a [`Built`].

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::component::{Component, PortParam};

/// A layer as the build knows it (the blob is in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Compressed digest.
    pub digest: String,
    /// Uncompressed digest.
    pub diff_id: String,
    /// Compressed size.
    pub size: u64,
    /// Bytes of file content inside.
    pub content: u64,
    /// Media type of the blob (`…tar+gzip`, `…tar+zstd`).
    pub media_type: String,
}

/// One built image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Built {
    /// Manifest digest.
    pub digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
}

impl Built {
    /// Bytes of file content in all layers (the unpacked size, near enough).
    pub fn content(&self) -> u64 {
        self.layers.iter().map(|l| l.content).sum()
    }
    /// Compressed size of all layers.
    pub fn compressed(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// Where a base image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Repository name, e.g. `grafana/grafana-oss`.
    pub name: String,
    /// Tag it was taken from (documentation; the lock pins the digest).
    pub tag: String,
}

/// How a component built from packages starts when the profile takes it from its upstream
/// image instead (`infragen_upstream_images`): what of that image's layout the recipe relies
/// on. User, directories and configuration paths stay the recipe's: our layers put them there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamRecipe {
    /// The entrypoint inside the upstream image; the pinned image's config must say the same.
    pub entrypoint: Vec<String>,
}

/// The user a component runs as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name (also its group's name).
    pub name: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// A directory the image needs, owned by root or by the image's user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dir {
    /// Absolute path.
    pub path: String,
    /// `root` (default) or the image user's name.
    #[serde(default)]
    pub owner: Option<String>,
    /// Octal mode as a string, e.g. `"0750"`.
    pub mode: String,
}

/// How health is probed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// HTTP GET of this path must answer 2xx.
    #[serde(default)]
    pub http: Option<String>,
    /// A DNS query for the host's first record must answer.
    #[serde(default)]
    pub dns: Option<String>,
    /// An NTP query must answer.
    #[serde(default)]
    pub ntp: Option<bool>,
    /// The parameter naming the port to probe (required by `http` and `dns`).
    #[serde(default)]
    pub port: Option<PortParam>,
}

/// One `image.yml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Debian packages: the roots of the dependency closure.
    #[serde(default)]
    pub packages: Vec<String>,
    /// A base image instead of packages.
    #[serde(default)]
    pub base: Option<Base>,
    /// Packages left out of the closure, on top of the defaults.
    #[serde(default)]
    pub exclude_packages: Vec<String>,
    /// Paths (and everything below them) left out of package layers, on top of the defaults.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// The user.
    pub user: User,
    /// Directories.
    #[serde(default)]
    pub dirs: Vec<Dir>,
    /// Entrypoint.
    pub entrypoint: Vec<String>,
    /// `flags`: append the plan's flags for the component.
    #[serde(default)]
    pub args: Option<String>,
    /// Environment (`NAME=value`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Parameters naming the TCP/UDP ports it listens on.
    #[serde(default)]
    pub ports: Vec<PortParam>,
    /// State directories (bind-mounted at run time).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Signal that reloads the configuration, when it has one.
    #[serde(default)]
    pub reload: Option<String>,
    /// Health probe.
    #[serde(default)]
    pub health: Health,
    /// Packages of which only these paths (and what is below them) are kept.
    #[serde(default)]
    pub package_paths: BTreeMap<String, Vec<String>>,
    /// The component's upstream image layout, for a profile that takes it from there.
    #[serde(default)]
    pub upstream: Option<UpstreamRecipe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    exclude_packages: Vec<String>,
    exclude_paths: Vec<String>,
    extra_packages: Vec<String>,
    package_paths: BTreeMap<String, Vec<String>>,
}

const DEFAULTS: &str = include_str!("../images/common/defaults.yml");

/// Every recipe, with the defaults merged in, by component.
pub fn recipes() -> Result<BTreeMap<Component, Recipe>> {
    let defaults: Defaults =
        crate::yaml::from_str_as(DEFAULTS).context("images/common/defaults.yml")?;
    let mut out = BTreeMap::new();
    for c in Component::ALL {
        let mut r: Recipe = crate::yaml::from_str_as(c.describe().recipe)
            .with_context(|| format!("images/{}/image.yml", c.name()))?;
        if r.packages.is_empty() == r.base.is_none() {
            bail!(
                "images/{}/image.yml: give either `packages` or `base`",
                c.name()
            );
        }
        if r.base.is_none() {
            r.exclude_packages
                .extend(defaults.exclude_packages.iter().cloned());
            r.exclude_paths
                .extend(defaults.exclude_paths.iter().cloned());
            r.packages.extend(defaults.extra_packages.iter().cloned());
            for (p, paths) in &defaults.package_paths {
                r.package_paths
                    .entry(p.clone())
                    .or_default()
                    .extend(paths.iter().cloned());
            }
        }
        if r.base.is_some() && r.upstream.is_some() {
            bail!(
                "images/{}/image.yml: `upstream` is for a recipe of packages, not of a base image",
                c.name()
            );
        }
        if r.upstream.as_ref().is_some_and(|u| u.entrypoint.is_empty()) {
            bail!(
                "images/{}/image.yml: `upstream.entrypoint` is empty",
                c.name()
            );
        }
        if (r.health.http.is_some() || r.health.dns.is_some()) && r.health.port.is_none() {
            bail!(
                "images/{}/image.yml: `health.http` and `health.dns` need `health.port`",
                c.name()
            );
        }
        r.exclude_packages.sort();
        r.exclude_packages.dedup();
        r.exclude_paths.sort();
        r.exclude_paths.dedup();
        for d in &r.dirs {
            u32::from_str_radix(&d.mode, 8)
                .with_context(|| format!("images/{}/image.yml: mode `{}`", c.name(), d.mode))?;
            if let Some(o) = &d.owner {
                if o != "root" && o != &r.user.name {
                    bail!("images/{}/image.yml: `{}` is owned by `{o}`, which is neither root nor the image user", c.name(), d.path);
                }
            }
        }
        out.insert(c, r);
    }
    Ok(out)
}

impl Recipe {
    /// Whether `path` of `package` is left out: by `exclude_paths`, or by `package_paths`
    /// naming what alone is kept of that package (directories leading to a kept path stay).
    pub fn excludes_from(&self, package: &str, path: &str, is_dir: bool) -> bool {
        if let Some(keep) = self.package_paths.get(package) {
            let kept = keep.iter().any(|k| {
                path == k
                    || path
                        .strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
                    || (is_dir
                        && k.strip_prefix(path)
                            .is_some_and(|rest| rest.starts_with('/')))
            });
            if !kept {
                return true;
            }
        }
        self.excludes(path)
    }

    /// Whether `path` (relative, no leading `/`) is left out by `exclude_paths`.
    pub fn excludes(&self, path: &str) -> bool {
        self.exclude_paths.iter().any(|e| {
            path == e
                || path
                    .strip_prefix(e.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_that_is_not_a_port_parameter_is_refused() {
        let grafana = Component::Grafana.describe().recipe;
        let bad = grafana.replace("ports: [grafana_port]", "ports: [grafana]");
        assert_ne!(bad, grafana);
        let e = crate::yaml::from_str_as::<Recipe>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ports[0]: unknown variant `grafana`"), "{e}");
        let bad = grafana.replace("port: grafana_port }", "port: graphana_port }");
        assert_ne!(bad, grafana);
        assert!(crate::yaml::from_str_as::<Recipe>(&bad).is_err());
    }

    #[test]
    fn every_recipe_parses_and_names_its_ports() {
        let all = recipes().unwrap();
        assert_eq!(all.len(), 11);
        for (c, r) in &all {
            for p in &r.ports {
                assert!(
                    crate::params::get(p.name()).is_some(),
                    "{c}: port parameter `{p}`"
                );
            }
            assert!(!r.entrypoint.is_empty(), "{c}");
        }
        let vm = &all[&Component::Vmalert];
        assert!(vm.excludes("usr/bin/victoria-metrics"));
        assert!(vm.excludes("usr/share/doc/x/copyright"));
        assert!(!vm.excludes("usr/bin/vmalert"));
        assert!(!vm.excludes("usr/share/docs"));
    }
}
