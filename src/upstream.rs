//! Upstream images: a component taken from its upstream image instead of Debian's package,
//! chosen per component by the profile's `infragen_upstream_images` (component → `name:tag`).
//!
//! Owns the value's grammar, which components may be chosen (those whose recipe names the
//! entrypoint inside the upstream image, `upstream:` in `images/<c>/image.yml`), the lock key
//! of their pin (`upstream/<component>`, which no recipe's name can take) and the recipe such a
//! component is built from: the recipe with `base:` set to the upstream image and the upstream
//! entrypoint. Pinning and pulling are the base images' (`bases`, `lock`): an upstream image is
//! a base image chosen by the profile. No registry host is ever part of the value.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::component::Component;
use crate::image::{Base, Recipe};
use crate::oci::blob::BlobStore;

/// The profile parameter.
pub const PARAM: &str = "infragen_upstream_images";

/// An upstream image as the profile names it: repository and tag, no registry host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Upstream {
    /// Repository name, e.g. `victoriametrics/victoria-metrics`.
    pub name: String,
    /// Tag, e.g. `v1.110.0`.
    pub tag: String,
}

impl Upstream {
    /// Parses `name:tag`: a repository name of lowercase path components (the distribution
    /// grammar) whose first component is not a registry host, and a tag.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("`{s}` is not `name:tag`: {why}"));
        if s.contains('@') {
            return bad("a digest is not taken (the lock pins it)");
        }
        let Some((name, tag)) = s.rsplit_once(':') else {
            return bad("it has no tag");
        };
        if name.is_empty() || tag.is_empty() {
            return bad("the name or the tag is empty");
        }
        if name.contains(':') {
            return bad("no registry host: the registry is `--base-registry`");
        }
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() > 1 && (parts[0].contains('.') || parts[0] == "localhost") {
            return bad("no registry host: the registry is `--base-registry`");
        }
        if !parts.iter().all(|p| path_component(p)) {
            return bad("the name is lowercase letters, digits and `.`, `_`, `-` between `/`");
        }
        let first = tag.chars().next().expect("not empty");
        if tag.len() > 128
            || !(first.is_ascii_alphanumeric() || first == '_')
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return bad("the tag is letters, digits, `_`, `.` and `-`, at most 128");
        }
        Ok(Self {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

/// A path component of a repository name: `[a-z0-9]+` joined by `.`, `_`, `__` or `-`s.
fn path_component(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    b.iter().all(|c| alnum(c) || b"._-".contains(c)) && !p.contains("..") && !p.contains("___")
}

/// The lock key of a component's upstream pin: `upstream/<component>` (a `/` no component
/// name has, so it never collides with a recipe's entry).
pub fn lock_key(c: Component) -> String {
    format!("upstream/{}", c.name())
}

/// Why `c` cannot come from an upstream image, when it cannot.
pub fn refused(c: Component, r: &Recipe) -> Option<String> {
    if r.base.is_some() {
        return Some(format!(
            "`{c}` is built from its base image already (images/{c}/image.yml)"
        ));
    }
    if r.upstream.is_none() {
        return Some(format!(
            "`{c}` cannot come from an upstream image: images/{c}/image.yml names no `upstream:` entrypoint (only {} can)",
            choosable()
        ));
    }
    None
}

/// The components whose recipe names an upstream entrypoint, in backticks.
pub fn choosable() -> String {
    let names: Vec<String> = crate::image::recipes()
        .map(|all| {
            all.iter()
                .filter(|(_, r)| r.upstream.is_some() && r.base.is_none())
                .map(|(c, _)| format!("`{c}`"))
                .collect()
        })
        .unwrap_or_default();
    names.join(", ")
}

/// The recipe of a component built from upstream image `u`: its base is `u`, its entrypoint
/// the one inside `u`; user, directories, ports, health and reload stay the recipe's (our
/// layers on top put users, directories and configuration where the units expect them).
pub fn recipe(r: &Recipe, u: &Upstream) -> Option<Recipe> {
    let up = r.upstream.as_ref()?;
    Some(Recipe {
        packages: Vec::new(),
        base: Some(Base {
            name: u.name.clone(),
            tag: u.tag.clone(),
        }),
        exclude_packages: Vec::new(),
        exclude_paths: Vec::new(),
        package_paths: BTreeMap::new(),
        entrypoint: up.entrypoint.clone(),
        upstream: None,
        ..r.clone()
    })
}

/// `recipes` with each component of `chosen` built from its upstream image.
pub fn recipes(
    mut recipes: BTreeMap<Component, Recipe>,
    chosen: &BTreeMap<Component, Upstream>,
) -> BTreeMap<Component, Recipe> {
    for (c, u) in chosen {
        if let Some(r) = recipes.get(c).and_then(|r| recipe(r, u)) {
            recipes.insert(*c, r);
        }
    }
    recipes
}

/// The recipes of the upstream pins of `chosen`, by lock key.
pub fn lock_recipes(
    recipes: &BTreeMap<Component, Recipe>,
    chosen: &BTreeMap<Component, Upstream>,
) -> BTreeMap<String, Recipe> {
    chosen
        .iter()
        .filter_map(|(c, u)| Some((lock_key(*c), recipe(recipes.get(c)?, u)?)))
        .collect()
}

/// Checks that the pinned image `digest` in `source` starts what the recipe says: its
/// config's `Entrypoint` is the recipe's upstream entrypoint. An upstream image laid out
/// otherwise (a new release moved its binary) is refused rather than built into a unit that
/// cannot start.
pub fn check_entrypoint(source: &BlobStore, digest: &str, r: &Recipe) -> Result<()> {
    let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&source.get(digest)?)
        .with_context(|| format!("manifest {digest}"))?;
    let config_digest = manifest.config().digest().to_string();
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&source.get(&config_digest)?)
            .with_context(|| format!("config {config_digest}"))?;
    let got = config
        .config()
        .as_ref()
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    if got != r.entrypoint {
        bail!(
            "its entrypoint is {got:?}, not {:?} as the recipe's `upstream:` says; pin a release laid out as the recipe expects",
            r.entrypoint
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        let u = Upstream::parse("victoriametrics/victoria-metrics:v1.110.0").unwrap();
        assert_eq!(
            (u.name.as_str(), u.tag.as_str()),
            ("victoriametrics/victoria-metrics", "v1.110.0")
        );
        assert!(Upstream::parse("prom/alertmanager:v0.28.0").is_ok());
        assert!(Upstream::parse("busybox:1.36").is_ok());
        for (bad, why) in [
            ("victoriametrics/victoria-metrics", "it has no tag"),
            ("registry.example/vm:v1", "no registry host"),
            ("localhost/vm:v1", "no registry host"),
            ("host:5000/vm:v1", "no registry host"),
            ("vm@sha256:00", "a digest"),
            ("VictoriaMetrics/vm:v1", "the name is lowercase"),
            ("vm:-v1", "the tag is"),
            ("vm:", "empty"),
            ("a//b:v1", "the name is lowercase"),
        ] {
            let e = Upstream::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn only_recipes_with_an_upstream_entrypoint_are_chosen() {
        let all = crate::image::recipes().unwrap();
        assert_eq!(choosable(), "`vmetrics`");
        assert!(refused(Component::Vmetrics, &all[&Component::Vmetrics]).is_none());
        assert!(refused(Component::Grafana, &all[&Component::Grafana])
            .unwrap()
            .contains("base image already"));
        let u = Upstream::parse("victoriametrics/victoria-metrics:v1.110.0").unwrap();
        let r = recipe(&all[&Component::Vmetrics], &u).unwrap();
        assert_eq!(r.entrypoint, ["/victoria-metrics-prod"]);
        assert!(r.packages.is_empty() && r.base.is_some());
        assert_eq!(r.user, all[&Component::Vmetrics].user);
        assert_eq!(lock_key(Component::Vmetrics), "upstream/vmetrics");
    }
}
