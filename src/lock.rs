//! `infragen.lock`: exactly which packages (and base image digests) each image is built from.
//!
//! `infragen lock` resolves every recipe's closure against the machine's APT sources and writes
//! the lock; `build` uses it and refuses a stale one (a recipe whose package roots or exclusions
//! changed since). The lock also carries the build's one time source, `source_date_epoch`: the
//! `SOURCE_DATE_EPOCH` given at lock time, else the newest `Date:` of the repositories' Release
//! files, bounded to what RFC 3339 can write (`oci::layout::check_epoch`) wherever it comes
//! from. No mirror host is written into it: packages are named by pool path and sha256.
//!
//! A locked package is only a claim about a file: [`LockedPackage::check`] holds the `.deb`
//! that `build` reads to it (the `Package`, `Version` and `Architecture` of its own control
//! file, its size and sha256) before the file becomes a layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::component::Component;
use crate::image::Recipe;
use crate::oci::layout::{check_epoch, parse_epoch};
use crate::pkg::apt::Source;
use crate::pkg::deb::Identity;
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

/// A `.deb` that is not the package its lock entry names: the lock entry (file and key path)
/// and every field in which the two differ. Its message names the package already.
#[derive(Debug, thiserror::Error)]
#[error("{lock}: `{at}` (package `{name}` {version} {arch}) is not what its .deb says: {}\nhint: the lock (or the repository index it was resolved from) names another file under this package; run `infragen lock` and review the diff", .differences.join("; "))]
pub struct Mismatch {
    /// The lock file.
    pub lock: String,
    /// The key path of the entry (`images.nginx.packages[3]`).
    pub at: String,
    /// The entry's package name.
    pub name: String,
    /// The entry's version.
    pub version: String,
    /// The entry's architecture.
    pub arch: String,
    /// What the `.deb` says, field by field, where it differs.
    pub differences: Vec<String>,
}

impl LockedPackage {
    /// Checks that `deb` is the package this entry (at key path `at` of the lock file `lock`)
    /// names: the same `Package`, `Version` and `Architecture` in its control file, the same
    /// size and sha256. The error, a [`Mismatch`], lists every field that differs.
    pub fn check(&self, lock: &Path, at: &str, deb: &Identity) -> Result<()> {
        let mut differences = Vec::new();
        for (field, said, locked) in [
            ("Package", &deb.package, &self.name),
            ("Version", &deb.version, &self.version),
            ("Architecture", &deb.architecture, &self.arch),
        ] {
            if said != locked {
                differences.push(format!(
                    "its control file says {field} `{}`, not `{}`",
                    said.escape_debug(),
                    locked.escape_debug()
                ));
            }
        }
        if deb.size != self.size {
            differences.push(format!("it is {} bytes, not {}", deb.size, self.size));
        }
        if deb.sha256 != self.sha256 {
            differences.push(format!("its sha256 is {}, not {}", deb.sha256, self.sha256));
        }
        if differences.is_empty() {
            return Ok(());
        }
        Err(anyhow::Error::new(Mismatch {
            lock: lock.display().to_string(),
            at: at.to_owned(),
            name: self.name.clone(),
            version: self.version.clone(),
            arch: self.arch.clone(),
            differences,
        }))
    }
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
    /// Timestamps of every artifact: seconds since 1970, at most
    /// [`crate::oci::layout::LAST_EPOCH`] (9999-12-31T23:59:59Z).
    pub source_date_epoch: u64,
    /// Per component.
    pub images: BTreeMap<String, ImageLock>,
    /// Grafana plugin archives by file name (`grafana_plugin_dir`), pinned by `infragen lock
    /// --profile`; absent when the profile names no plugin directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, LockedPlugin>,
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
        if let Err(e) = check_epoch(lock.source_date_epoch) {
            bail!(
                "{}: `source_date_epoch`: {e}\nhint: run `infragen lock` (with `SOURCE_DATE_EPOCH` unset, or set to a time before then)",
                path.display()
            );
        }
        Ok(lock)
    }

    /// The build's one time source: `$SOURCE_DATE_EPOCH` when it is set (and not empty), else
    /// the lock's `source_date_epoch`.
    pub fn epoch(&self) -> Result<u64> {
        Ok(source_date_epoch()?.unwrap_or(self.source_date_epoch))
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

/// `$SOURCE_DATE_EPOCH` (reproducible-builds.org's grammar: decimal seconds since 1970), bounded
/// like every time we write; `None` when it is unset or empty. Anything else is refused, naming
/// the variable: a mistyped value never falls back silently to another time.
pub fn source_date_epoch() -> Result<Option<u64>> {
    let Some(value) = std::env::var_os("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    parse_epoch(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("`$SOURCE_DATE_EPOCH`: {e}"))
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
    // A bad time source fails before any index is fetched.
    let given = source_date_epoch()?;
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
    let epoch = match given {
        Some(e) => e,
        None => check_epoch(newest)
            .map_err(|e| anyhow::anyhow!("the newest Release `Date:` of the APT sources: {e}"))?,
    };
    Ok(Lock {
        version: VERSION,
        arch: arch.to_owned(),
        source_date_epoch: epoch,
        images,
        plugins: BTreeMap::new(),
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

// ---- Grafana plugin archives -------------------------------------------------------------

/// One pinned plugin archive (a zip as Grafana's catalogue ships it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlugin {
    /// sha256 of the archive.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Which plugin archives `infragen lock` pins.
#[derive(Debug, Clone, Copy)]
pub enum PluginPins<'a> {
    /// No profile given: the previous lock's pins stay as they were.
    Keep,
    /// The profile names no plugin directory: none.
    Nothing,
    /// Every archive of this directory.
    Dir(&'a Path),
}

/// The file names of the plugin archives of `dir` (`*.zip`), sorted; a `.zip` that is not a
/// regular file is refused.
pub fn plugin_archives(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)
        .with_context(|| format!("reading the Grafana plugin directory {}", dir.display()))?
    {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let zip = Path::new(&name)
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("zip"));
        if !zip {
            continue;
        }
        if !e.file_type()?.is_file() {
            bail!(
                "{}: a plugin archive must be a regular file",
                dir.join(&name).display()
            );
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Sets the plugin pins of `lock` as `pins` says: each archive by file name, its sha256 and
/// size.
pub fn pin_plugins(lock: &mut Lock, pins: PluginPins<'_>, previous: Option<&Lock>) -> Result<()> {
    lock.plugins = match pins {
        PluginPins::Keep => previous.map(|p| p.plugins.clone()).unwrap_or_default(),
        PluginPins::Nothing => BTreeMap::new(),
        PluginPins::Dir(dir) => {
            let mut pinned = BTreeMap::new();
            for name in plugin_archives(dir)? {
                let path = dir.join(&name);
                let bytes =
                    fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                pinned.insert(
                    name,
                    LockedPlugin {
                        sha256: crate::digest::sha256_hex(&bytes),
                        size: bytes.len() as u64,
                    },
                );
            }
            pinned
        }
    };
    Ok(())
}

/// The prefix of upstream entries' keys.
const UPSTREAM_PREFIX: &str = "upstream/";

#[cfg(test)]
mod tests {
    use super::{Lock, LockedPackage, Mismatch, VERSION};
    use crate::pkg::deb::Identity;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    /// A change to what a `.deb` says.
    type Change = fn(&mut Identity);

    fn nginx() -> LockedPackage {
        LockedPackage {
            name: "nginx".to_owned(),
            version: "1.22.1-9".to_owned(),
            arch: "amd64".to_owned(),
            filename: "pool/main/n/nginx/nginx_1.22.1-9_amd64.deb".to_owned(),
            size: 1000,
            sha256: "a".repeat(64),
            installed_size: 3,
        }
    }

    #[test]
    fn a_deb_is_held_to_every_field_of_its_lock_entry() {
        let locked = nginx();
        let same = Identity {
            package: "nginx".to_owned(),
            version: "1.22.1-9".to_owned(),
            architecture: "amd64".to_owned(),
            size: 1000,
            sha256: "a".repeat(64),
        };
        let lock = Path::new("x/infragen.lock");
        let at = "images.nginx.packages[3]";
        locked.check(lock, at, &same).unwrap();
        let head = "x/infragen.lock: `images.nginx.packages[3]` (package `nginx` 1.22.1-9 amd64) is not what its .deb says: ";
        let hint = "\nhint: the lock (or the repository index it was resolved from) names another file under this package; run `infragen lock` and review the diff";
        let b = "b".repeat(64);
        let a = "a".repeat(64);
        let cases: [(Change, String); 6] = [
            (
                |d| d.package = "libpcre2-8-0".to_owned(),
                "its control file says Package `libpcre2-8-0`, not `nginx`".to_owned(),
            ),
            (
                |d| d.version = "1.22.1-8".to_owned(),
                "its control file says Version `1.22.1-8`, not `1.22.1-9`".to_owned(),
            ),
            (
                |d| d.architecture = "all".to_owned(),
                "its control file says Architecture `all`, not `amd64`".to_owned(),
            ),
            (|d| d.size = 999, "it is 999 bytes, not 1000".to_owned()),
            (
                |d| d.sha256 = "b".repeat(64),
                format!("its sha256 is {b}, not {a}"),
            ),
            (
                |d| {
                    d.package = "evil\nPackage: nginx".to_owned();
                    d.size = 7;
                },
                "its control file says Package `evil\\nPackage: nginx`, not `nginx`; it is 7 bytes, not 1000".to_owned(),
            ),
        ];
        for (change, want) in cases {
            let mut deb = same.clone();
            change(&mut deb);
            let e = locked.check(lock, at, &deb).unwrap_err();
            assert!(e.is::<Mismatch>(), "{e}");
            assert_eq!(e.to_string(), format!("{head}{want}{hint}"));
        }
    }

    #[test]
    fn a_lock_whose_time_is_past_rfc3339_is_refused_naming_the_key() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("infragen.lock");
        let text = |epoch: &str| {
            format!("{{\"version\": 1, \"arch\": \"amd64\", \"source_date_epoch\": {epoch}, \"images\": {{}}}}")
        };
        std::fs::write(&path, text("253402300799")).unwrap();
        assert_eq!(
            Lock::load(&path).unwrap().source_date_epoch,
            253_402_300_799
        );
        for epoch in ["253402300800", "18446744073709551615"] {
            std::fs::write(&path, text(epoch)).unwrap();
            let e = format!("{:#}", Lock::load(&path).unwrap_err());
            assert_eq!(
                e,
                format!("{}: `source_date_epoch`: {epoch} is after 9999-12-31T23:59:59Z (253402300799), the last instant RFC 3339 can write\nhint: run `infragen lock` (with `SOURCE_DATE_EPOCH` unset, or set to a time before then)", path.display())
            );
        }
    }

    #[test]
    fn the_lock_is_saved_readable_by_all_and_loads_back() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("infragen.lock");
        let lock = Lock {
            version: VERSION,
            arch: "amd64".to_owned(),
            source_date_epoch: 1,
            images: std::collections::BTreeMap::new(),
            plugins: std::collections::BTreeMap::new(),
        };
        lock.save(&path).unwrap();
        lock.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{mode:o}");
        assert_eq!(Lock::load(&path).unwrap(), lock);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
