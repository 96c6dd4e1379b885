//! Safe extraction of untrusted tar streams (docs/reliability.md, "Safe extraction"): OCI
//! layers into root trees and configuration directories, bundle archives into a private
//! directory.
//!
//! Streamed, never buffered whole: the compressed stream and the tar stream are hashed as they
//! are read (the blob digest and the `diff_id` are compared at the end; on a mismatch the caller
//! removes the fresh directory it extracted into), and every decompression is bounded: entries,
//! path length, total size, and the ratio of expanded to compressed bytes. Every write goes
//! through [`crate::fsx::Root`] with symlinks refused on the way, so a symlink in the tree is
//! data; relative symlink targets may not climb above the root; hard links must name an earlier
//! regular file of the same stream; device, fifo and unknown entries are refused. Modes lose
//! setuid, setgid, sticky and group/other write; owners come from the layer's numeric header
//! fields (the image spec's), never names, and only when asked. Whiteouts are honoured only in
//! layers, only in the two forms the image spec defines, and never name anything outside the
//! directory they sit in. The rules that need no tree are [`crate::extraction`]'s, shared with
//! the check of base images at import and build; this module writes what they let through.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::extraction::{Checked, Item, What, Whiteout};
pub use crate::extraction::{Digests, Kinds, Limits, LIMITS};
use crate::fsx::{Kind, Root};

/// Extracts a possibly gzip-compressed tar stream from `source` into `root`, under `limits`.
/// `owners`: apply the headers' numeric owners (root only).
pub fn extract(
    source: impl Read,
    root: &Root,
    kinds: Kinds,
    owners: bool,
    limits: Limits,
) -> Result<Digests> {
    crate::extraction::stream(source, limits, |tar| {
        entries(tar, root, kinds, owners, limits)
    })
}

fn entries(
    source: &mut dyn Read,
    root: &Root,
    kinds: Kinds,
    owners: bool,
    limits: Limits,
) -> Result<()> {
    let mut archive = tar::Archive::new(source);
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    // Directories known to exist (made or seen in this stream), so that each is checked once;
    // forgotten whenever something is removed. It only saves work: every write still goes
    // through fsx, which refuses a symlink on the way.
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut count = 0u64;
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        count += 1;
        if count > limits.entries {
            bail!("more than {} entries", limits.entries);
        }
        let item = match crate::extraction::check(&entry, kinds, limits)? {
            Checked::Root => continue,
            Checked::Whiteout(w) => {
                let shown = entry_shown(&entry, limits);
                whiteout(root, &w).with_context(|| format!("entry `{shown}`"))?;
                dirs.clear();
                continue;
            }
            Checked::Item(item) => item,
        };
        let (rel, shown) = (&item.rel, item.shown());
        if !seen.insert(rel.clone()) && kinds == Kinds::Bundle {
            bail!("entry `{shown}`: a duplicate name");
        }
        // Parents: created as plain directories when missing; a symlink on the way is an error
        // of the write itself (fsx refuses it).
        if let Some(parent) = rel
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !dirs.contains(*p))
        {
            root.mkdir_all(parent, 0o755)
                .with_context(|| format!("entry `{shown}`"))?;
            dirs.extend(parent.ancestors().map(Path::to_path_buf));
        }
        let existing = root.meta(rel).with_context(|| format!("entry `{shown}`"))?;
        if existing.is_some_and(|m| m.kind == Kind::Dir) && item.what != What::Dir {
            dirs.clear(); // about to be replaced, with everything in it
        }
        if item.what == What::Dir {
            dirs.insert(rel.clone());
        }
        let chown = write(root, &item, &mut entry, existing.map(|m| m.kind))?;
        if owners && chown {
            root.chown(rel, item.uid, item.gid)
                .with_context(|| format!("entry `{shown}`"))?;
        }
    }
    Ok(())
}

/// A checked entry's path, for messages.
fn entry_shown<R: Read>(entry: &tar::Entry<'_, R>, limits: Limits) -> String {
    crate::extraction::entry_path(&entry.path_bytes(), limits)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Writes one checked entry at its path (its parents exist; `existing` is what is there now,
/// replaced). Returns whether it takes the header's owner (a hard link shares its source's).
fn write<R: Read>(
    root: &Root,
    item: &Item,
    entry: &mut tar::Entry<'_, R>,
    existing: Option<Kind>,
) -> Result<bool> {
    let (rel, shown) = (&item.rel, item.shown());
    match &item.what {
        What::Dir => {
            if existing.is_some_and(|k| k != Kind::Dir) {
                root.remove(rel)?;
            }
            root.mkdir(rel, item.mode)
                .with_context(|| format!("entry `{shown}`"))?;
            root.chmod(rel, item.mode)?;
            Ok(true)
        }
        What::File(size) => {
            if existing.is_some() {
                root.remove(rel)?;
            }
            let mut file = root
                .create(rel, item.mode)
                .with_context(|| format!("entry `{shown}`"))?;
            let got = io::copy(entry, &mut file).with_context(|| format!("entry `{shown}`"))?;
            // A short read is the end of the stream, not an error of `io::copy`.
            if got != *size {
                bail!("entry `{shown}`: the stream ends after {got} of its {size} bytes");
            }
            Ok(true)
        }
        What::Symlink(target) => {
            if existing.is_some() {
                root.remove(rel)?;
            }
            root.symlink(target, rel)
                .with_context(|| format!("entry `{shown}`"))?;
            Ok(true)
        }
        What::HardLink(to) => {
            if !root
                .meta(to)
                .ok()
                .flatten()
                .is_some_and(|m| m.kind == Kind::File)
            {
                bail!(
                    "entry `{shown}`: hard link to `{}`, which is not an earlier file of the layer",
                    to.display()
                );
            }
            if existing.is_some() {
                root.remove(rel)?;
            }
            root.hard_link(to, rel)
                .with_context(|| format!("entry `{shown}`"))?;
            Ok(false)
        }
    }
}

/// Applies a whiteout: an opaque one empties its directory, any other removes its name.
fn whiteout(root: &Root, w: &Whiteout) -> Result<()> {
    match w {
        Whiteout::Opaque(dir) => {
            if dir.as_os_str().is_empty() {
                return root.clear();
            }
            match root.meta(dir)? {
                Some(m) if m.kind == Kind::Dir => root.sub(dir)?.clear(),
                Some(_) => bail!(
                    "an opaque whiteout in `{}`, which is not a directory",
                    dir.display()
                ),
                None => Ok(()),
            }
        }
        Whiteout::Remove(path) => {
            root.remove(path)?;
            Ok(())
        }
    }
}
