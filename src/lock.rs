//! `infragen.lock`: exactly which packages (and base image digests) each image is built from.
//!
//! `infragen lock` resolves every recipe's closure against the machine's APT sources and writes
//! the lock; `build` uses it and refuses a stale one (a recipe whose package roots or exclusions
//! changed since). The lock also carries the build's one time source, `source_date_epoch`: the
//! `SOURCE_DATE_EPOCH` given at lock time, else the newest `Date:` of the repositories' Release
//! files. No mirror host is written into it: packages are named by pool path and sha256.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::component::Component;
use crate::image::Recipe;
use crate::pkg::apt::Source;
use crate::pkg::fetch::{self, AptConfig, Checks};
use crate::pkg::resolve::Universe;

/// Lock format version.
pub const VERSION: u32 = 1;

/// The lock file's mode: committed to git and read by anyone who builds.
pub const MODE: u32 = 0o644;

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Architecture (`amd64`, `all`).
    pub arch: String,
    /// Path below the repository root (`pool/…`).
    pub filename: String,
    /// Size of the `.deb` in bytes.
    pub size: u64,
    /// sha256 of the `.deb`.
    pub sha256: String,
    /// Installed size in KiB, as the package declares it.
    pub installed_size: u64,
}

/// A pinned base image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBase {
    /// Repository name.
    pub name: String,
    /// Tag it was imported from.
    pub tag: String,
    /// Manifest digest, once imported or resolved; `None` until then. When the tag names a
    /// multi-platform index, this is the digest of the target platform's manifest.
    pub digest: Option<String>,
    /// The digest of the index (OCI image index or Docker manifest list) the tag named, when
    /// it named one and `digest` was picked from it; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

/// What one image is built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLock {
    /// sha256 of what resolution depends on (roots and exclusions): the staleness check.
    pub inputs: String,
    /// The closure, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
    /// The base image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<LockedBase>,
}

/// The whole lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version.
    pub version: u32,
    /// Target architecture.
    pub arch: String,
    /// Timestamps of every artifact.
    pub source_date_epoch: u64,
    /// Per component.
    pub images: BTreeMap<String, ImageLock>,
}

/// The staleness key of a recipe.
pub fn inputs(r: &Recipe) -> String {
    let text = match &r.base {
        Some(b) => format!("base {} {}", b.name, b.tag),
        None => format!("packages {:?} exclude {:?}", r.packages, r.exclude_packages),
    };
    crate::digest::sha256_hex(text.as_bytes())
}

impl Lock {
    /// Reads a lock file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "reading {}\nhint: run `infragen lock` to create it",
                path.display()
            )
        })?;
        let lock: Self = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid lock", path.display()))?;
        if lock.version != VERSION {
            bail!(
                "{}: lock version {} is not {VERSION}\nhint: run `infragen lock`",
                path.display(),
                lock.version
            );
        }
        Ok(lock)
    }

    /// Writes the lock (sorted, pretty JSON, trailing newline) atomically, mode 0644: it is
    /// committed beside the profile and read by every build.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::fsx::write_file_atomic(path, text.as_bytes(), MODE)
    }

    /// The upstream entry of `c` (`upstream/<c>`) for its upstream recipe `r`, refusing a
    /// missing or stale one: the profile chose an image `infragen lock --profile` has not seen.
    pub fn upstream(&self, c: Component, r: &Recipe) -> Result<&ImageLock> {
        let key = crate::upstream::lock_key(c);
        let hint = "hint: run `infragen lock --profile PROFILE` (with `--only-bases` to keep every package closure)";
        let Some(entry) = self.images.get(&key) else {
            bail!("infragen.lock has no entry for image `{key}`, which the profile's `{}` names\n{hint}", crate::upstream::PARAM);
        };
        if entry.inputs != inputs(r) {
            bail!("infragen.lock is stale for image `{key}`: the profile's `{}` names another image since\n{hint}", crate::upstream::PARAM);
        }
        Ok(entry)
    }

    /// The lock entry of `c`, refusing a missing or stale one.
    pub fn image(&self, c: Component, r: &Recipe) -> Result<&ImageLock> {
        let Some(entry) = self.images.get(c.name()) else {
            bail!("infragen.lock has no entry for image `{c}`\nhint: run `infragen lock`");
        };
        if entry.inputs != inputs(r) {
            bail!("infragen.lock is stale for image `{c}`: images/{c}/image.yml changed its packages since\nhint: run `infragen lock`");
        }
        Ok(entry)
    }
}

/// Resolves every recipe against the machine's APT sources (and `bases` for base images).
/// Every source is read and verified as `checks` says, except those `drop` names (by URI):
/// one that fails (signature, dates, suite, sizes, unreachable) fails the whole resolution,
/// naming it, since resolving without it could pick the older packages of another source.
pub fn resolve(
    recipes: &BTreeMap<Component, Recipe>,
    apt: &AptConfig,
    arch: &str,
    checks: Checks,
    drop: &[String],
    previous: Option<&Lock>,
    bases: Option<&Path>,
) -> Result<Lock> {
    let imported = match bases {
        Some(dir) => crate::oci::layout::refs(dir)?,
        None => BTreeMap::new(),
    };
    let sources = kept(apt.sources()?, drop, &apt.etc)?;
    let mut packages = Vec::new();
    let mut newest = 0u64;
    let mut failures = Vec::new();
    let downloader = fetch::Downloader::new(apt.proxies.clone());
    for s in &sources {
        match fetch::packages(s, arch, checks, &downloader) {
            Ok((p, date)) => {
                packages.extend(p);
                newest = newest.max(date.unwrap_or(0));
            }
            Err(e) => {
                failures.push(format!("APT source `{}`: {e:#}", s.name()).replace('\n', "\n    "));
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} failed verification, so nothing was resolved:\n  {}\nhint: without a source, \
             older packages from another one can be chosen; fix the source, or leave it out on \
             purpose with `infragen lock --drop-source URI`",
            crate::plural::count(failures.len(), "APT source"),
            failures.join("\n  ")
        );
    }
    let universe = Universe::new(packages);
    let mut images = BTreeMap::new();
    for (c, r) in recipes {
        let entry = if let Some(b) = &r.base {
            base_entry(c.name(), r, b, &imported, previous)
        } else {
            let exclude: BTreeSet<String> = r.exclude_packages.iter().cloned().collect();
            let closure = universe
                .resolve(&r.packages, &exclude, arch)
                .with_context(|| format!("resolving image `{c}`"))?;
            let packages = closure
                .into_iter()
                .map(|p| LockedPackage {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: p.arch.clone(),
                    filename: p.filename.clone(),
                    size: p.size,
                    sha256: p.sha256.clone(),
                    installed_size: p.installed_size,
                })
                .collect();
            ImageLock {
                inputs: inputs(r),
                packages,
                base: None,
            }
        };
        images.insert(c.name().to_owned(), entry);
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(newest);
    Ok(Lock {
        version: VERSION,
        arch: arch.to_owned(),
        source_date_epoch: epoch,
        images,
    })
}

/// The sources of `all` that `drop` does not name; refuses a `drop` entry that names no
/// source (a typo would otherwise drop nothing) and an empty result.
fn kept(all: Vec<Source>, drop: &[String], etc: &Path) -> Result<Vec<Source>> {
    if all.is_empty() {
        bail!("no APT sources in {}", etc.display());
    }
    for d in drop {
        if !all.iter().any(|s| s.is(d)) {
            let uris: Vec<String> = all.iter().map(|s| format!("`{}`", s.uri)).collect();
            bail!(
                "--drop-source `{d}` names no APT source in {} (its sources: {})",
                etc.display(),
                uris.join(", ")
            );
        }
    }
    let kept: Vec<Source> = all
        .into_iter()
        .filter(|s| !drop.iter().any(|d| s.is(d)))
        .collect();
    if kept.is_empty() {
        bail!("--drop-source leaves no APT source in {}", etc.display());
    }
    Ok(kept)
}

/// The lock entry `key` of the base recipe `r`: the digest imported into the bases layout,
/// else the previous lock's pin when the name and tag are unchanged, else unpinned.
fn base_entry(
    key: &str,
    r: &Recipe,
    b: &crate::image::Base,
    imported: &BTreeMap<String, String>,
    previous: Option<&Lock>,
) -> ImageLock {
    let before = previous
        .and_then(|l| l.images.get(key))
        .and_then(|e| e.base.as_ref())
        .filter(|pb| pb.name == b.name && pb.tag == b.tag);
    let (digest, index) = match imported.get(&format!("{}:{}", b.name, b.tag)) {
        Some(d) => (Some(d.clone()), None),
        None => (
            before.and_then(|pb| pb.digest.clone()),
            before.and_then(|pb| pb.index.clone()),
        ),
    };
    ImageLock {
        inputs: inputs(r),
        packages: Vec::new(),
        base: Some(LockedBase {
            name: b.name.clone(),
            tag: b.tag.clone(),
            digest,
            index,
        }),
    }
}

/// `previous` with only its base images re-pinned (from `bases`, else kept): every package
/// closure and the time source stay as they are. For pinning a base image without moving
/// Debian packages (`infragen lock --only-bases`).
pub fn rebase(
    recipes: &BTreeMap<Component, Recipe>,
    previous: &Lock,
    bases: Option<&Path>,
) -> Result<Lock> {
    let imported = match bases {
        Some(dir) => crate::oci::layout::refs(dir)?,
        None => BTreeMap::new(),
    };
    let mut lock = previous.clone();
    for (c, r) in recipes {
        if let Some(b) = &r.base {
            let entry = base_entry(c.name(), r, b, &imported, Some(previous));
            lock.images.insert(c.name().to_owned(), entry);
        }
    }
    Ok(lock)
}

/// Sets the upstream entries of `lock` (`upstream/<component>`, `crate::upstream`): exactly
/// those of `chosen` (recipes by lock key, from the profile), pinned as base images are (from
/// `bases`, else the previous pin for the same name and tag, else unpinned); without a profile
/// (`None`), the previous lock's upstream entries are kept as they were.
pub fn set_upstream(
    lock: &mut Lock,
    chosen: Option<&BTreeMap<String, Recipe>>,
    previous: Option<&Lock>,
    bases: Option<&Path>,
) -> Result<()> {
    let Some(chosen) = chosen else {
        for (k, e) in previous.iter().flat_map(|p| &p.images) {
            if k.starts_with(UPSTREAM_PREFIX) {
                lock.images.insert(k.clone(), e.clone());
            }
        }
        return Ok(());
    };
    let imported = match bases {
        Some(dir) => crate::oci::layout::refs(dir)?,
        None => BTreeMap::new(),
    };
    lock.images.retain(|k, _| !k.starts_with(UPSTREAM_PREFIX));
    for (key, r) in chosen {
        let b = r
            .base
            .as_ref()
            .context("an upstream recipe names its image")?;
        let entry = base_entry(key, r, b, &imported, previous);
        lock.images.insert(key.clone(), entry);
    }
    Ok(())
}

/// The prefix of upstream entries' keys.
const UPSTREAM_PREFIX: &str = "upstream/";

#[cfg(test)]
mod tests {
    use super::{Lock, VERSION};
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_lock_is_saved_readable_by_all_and_loads_back() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("infragen.lock");
        let lock = Lock {
            version: VERSION,
            arch: "amd64".to_owned(),
            source_date_epoch: 1,
            images: std::collections::BTreeMap::new(),
        };
        lock.save(&path).unwrap();
        lock.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{mode:o}");
        assert_eq!(Lock::load(&path).unwrap(), lock);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
