//! The local package repository (Pigsty's repo component): `repo_home/repo_name` filled with the
//! locked packages, a flat APT index and the `repo_complete` marker, so that builds and hosts can
//! run offline from it (`deb [trusted=yes] file:/www/pigsty/ ./`).
//!
//! The marker follows Pigsty's SOW format: one line per package file, `<sha256>  <basename>`,
//! sorted by name. It is withdrawn first and written last, so a half-synced directory never
//! looks complete. Every `.deb` is held to each lock entry that names its file (control fields,
//! size, sha256: `LockedPackage::check`) before it is put there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fsx::write_file_atomic;
use crate::keypath;
use crate::lock::{Lock, LockedPackage};
use crate::pkg::deb;
use crate::pkg::fetch::{AptConfig, Cache};

/// Control fields copied into the index, in this order, when the package has them.
const FIELDS: &[&str] = &[
    "Package",
    "Source",
    "Version",
    "Architecture",
    "Maintainer",
    "Installed-Size",
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Suggests",
    "Conflicts",
    "Breaks",
    "Replaces",
    "Provides",
    "Section",
    "Priority",
    "Essential",
    "Multi-Arch",
    "Homepage",
    "Description",
];

/// Syncs every package of `lock` into `dir`; returns the number of packages.
pub fn sync(dir: &Path, lock_path: &Path, cache: &Path, repos: &[PathBuf]) -> Result<usize> {
    let lock = Lock::load(lock_path)?;
    let cache = Cache::new(cache);
    let mut by_file = BTreeMap::new();
    // Every entry naming a file, by its key path: each is held to the file.
    let mut claims: BTreeMap<String, Vec<(String, &LockedPackage)>> = BTreeMap::new();
    for (key, image) in &lock.images {
        let at = keypath::join(&keypath::join("images", key), "packages");
        for (i, p) in image.packages.iter().enumerate() {
            let base = p
                .filename
                .rsplit('/')
                .next()
                .unwrap_or(&p.filename)
                .to_owned();
            claims
                .entry(base.clone())
                .or_default()
                .push((keypath::index(&at, i), p));
            by_file.insert(base, p.clone());
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let marker = dir.join("repo_complete");
    if marker.exists() {
        fs::remove_file(&marker)?;
    }
    let mut sources = None;
    let mut index = String::new();
    let mut complete = String::new();
    for (base, p) in &by_file {
        let target = dir.join(base);
        let (bytes, there) = match fs::read(&target) {
            Ok(b) if crate::digest::sha256_hex(&b) == p.sha256 => (b, true),
            _ => {
                if sources.is_none() {
                    sources = Some(AptConfig::default().sources()?);
                }
                let b = cache.deb(
                    &p.name,
                    &p.version,
                    &p.filename,
                    &p.sha256,
                    p.size,
                    repos,
                    sources.as_deref().unwrap_or_default(),
                    &mut |_, _| {},
                )?;
                (b, false)
            }
        };
        let control = deb::read(&bytes, &deb::Limits::default())
            .with_context(|| format!("reading {base}"))?
            .control;
        let identity = deb::Identity::of(&control, &bytes);
        for (at, claim) in &claims[base] {
            claim.check(lock_path, at, &identity)?;
        }
        if !there {
            write_file_atomic(&target, &bytes, 0o644)?;
        }
        for f in FIELDS {
            if let Some(v) = control.get(*f) {
                let _ = writeln!(index, "{f}: {v}");
            }
        }
        let _ = writeln!(
            index,
            "Filename: ./{base}\nSize: {}\nSHA256: {}\n",
            bytes.len(),
            p.sha256
        );
        let _ = writeln!(complete, "{}  {base}", p.sha256);
    }
    write_file_atomic(&dir.join("Packages"), index.as_bytes(), 0o644)?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(9));
    gz.write_all(index.as_bytes())?;
    write_file_atomic(&dir.join("Packages.gz"), &gz.finish()?, 0o644)?;
    write_file_atomic(&marker, complete.as_bytes(), 0o644)?;
    Ok(by_file.len())
}
