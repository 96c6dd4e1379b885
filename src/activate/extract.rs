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
//! directory they sit in.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::digest::Hasher;
use crate::fsx::{Kind, Root};
use crate::manifest::Digest;

/// Bounds on one decompression.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries in one stream.
    pub entries: u64,
    /// Bytes of one path.
    pub path: usize,
    /// Expanded bytes in one stream.
    pub total: u64,
    /// Expanded bytes per compressed byte, beyond [`Limits::grace`].
    pub ratio: u64,
    /// Expanded bytes always allowed, whatever the ratio.
    pub grace: u64,
}

/// The limits for layers and bundle archives: generous for real images (the largest ratio in
/// our layers is far below), fatal for bombs.
pub const LIMITS: Limits = Limits {
    entries: 65_536,
    path: 1024,
    total: 8 << 30,
    ratio: 100,
    grace: 16 << 20,
};

/// What a stream may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// An OCI layer: files, directories, symlinks, hard links, whiteouts.
    Layer,
    /// A bundle archive: files and directories only (a bundle holds nothing else).
    Bundle,
}

/// A reader that hashes what passes through it.
struct Tap<R> {
    inner: R,
    hash: Hasher,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The compressed side's byte count, shared with the expanded side for the ratio check.
struct Ratio<R> {
    inner: R,
    limits: Limits,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    expanded: u64,
}

impl<R: Read> Read for Ratio<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.expanded += n as u64;
        let allowed = self
            .compressed
            .get()
            .saturating_mul(self.limits.ratio)
            .saturating_add(self.limits.grace)
            .min(self.limits.total);
        if self.expanded > allowed {
            return Err(io::Error::other(format!(
                "expands beyond {allowed} bytes ({} compressed bytes read; the limit is {}:1 beyond {} MiB, {} GiB in all): refused as a decompression bomb",
                self.compressed.get(),
                self.limits.ratio,
                self.limits.grace >> 20,
                self.limits.total >> 30
            )));
        }
        Ok(n)
    }
}

/// Counts compressed bytes into a shared cell.
struct Counted<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// What an extraction saw: the digest of the compressed input and of the tar stream.
#[derive(Debug)]
pub struct Digests {
    /// sha256 of the bytes read from the source (the blob digest).
    pub blob: Digest,
    /// sha256 of the tar stream (the `diff_id`).
    pub tar: Digest,
}

/// Extracts a possibly gzip-compressed tar stream from `source` into `root`, under `limits`.
/// `owners`: apply the headers' numeric owners (root only).
pub fn extract(
    source: impl Read,
    root: &Root,
    kinds: Kinds,
    owners: bool,
    limits: Limits,
) -> Result<Digests> {
    let compressed = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut blob = Tap {
        inner: Counted {
            inner: source,
            count: compressed.clone(),
        },
        hash: Hasher::new(),
    };
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        let n = blob.read(&mut magic[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = io::Cursor::new(magic[..got].to_vec());
    let chained = head.chain(blob);
    let expanded = if magic[..got] == [0x1f, 0x8b] {
        Expanded::Gz(flate2::read::MultiGzDecoder::new(chained))
    } else {
        Expanded::Plain(chained)
    };
    let mut tar_tap = Tap {
        inner: Ratio {
            inner: expanded,
            limits,
            compressed,
            expanded: 0,
        },
        hash: Hasher::new(),
    };
    entries(&mut tar_tap, root, kinds, owners, limits)?;
    // Whatever follows the archive's end is part of the stream and its digests.
    io::copy(&mut tar_tap, &mut io::sink()).context("reading to the end of the stream")?;
    let Tap { hash, inner, .. } = tar_tap;
    let tar = hash.finish();
    let (_, mut blob) = inner.inner.into_inner().into_inner();
    io::copy(&mut blob, &mut io::sink()).context("reading to the end of the blob")?;
    Ok(Digests {
        blob: blob.hash.finish(),
        tar,
    })
}

/// The expanded side: gzip or a plain tar.
enum Expanded<R> {
    Gz(flate2::read::MultiGzDecoder<R>),
    Plain(R),
}

impl<R: Read> Read for Expanded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Gz(r) => r.read(buf),
            Self::Plain(r) => r.read(buf),
        }
    }
}

impl<R> Expanded<R> {
    fn into_inner(self) -> R {
        match self {
            Self::Gz(r) => r.into_inner(),
            Self::Plain(r) => r,
        }
    }
}

/// An entry type as messages name it: the `tar` crate's name, or the type byte of one it does
/// not know (whose `Debug` is an internal variant).
fn kind_name(kind: tar::EntryType) -> String {
    use tar::EntryType as T;
    match kind {
        T::Regular
        | T::Link
        | T::Symlink
        | T::Char
        | T::Block
        | T::Directory
        | T::Fifo
        | T::Continuous
        | T::GNULongName
        | T::GNULongLink
        | T::GNUSparse
        | T::XGlobalHeader
        | T::XHeader => format!("{kind:?}"),
        _ => format!(
            "`{}` (unknown)",
            char::from(kind.as_byte()).escape_default()
        ),
    }
}

/// A path of the stream as messages show it: at most 64 characters.
fn show(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() > 64 {
        format!("{}…", text.chars().take(64).collect::<String>())
    } else {
        text.into_owned()
    }
}

/// A path inside a stream, checked: relative, no `..`, no NUL, within the length limit. The
/// error is the reason alone: the caller names the entry.
fn entry_path(raw: &[u8], limits: Limits) -> Result<PathBuf, String> {
    if raw.len() > limits.path {
        return Err(format!(
            "a path of {} bytes (the limit is {})",
            raw.len(),
            limits.path
        ));
    }
    if raw.contains(&0) {
        return Err("a NUL byte in the path".to_owned());
    }
    let raw = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            PathComponent::Normal(p) => out.push(p),
            PathComponent::CurDir => {}
            _ => return Err("the path leaves the root".to_owned()),
        }
    }
    Ok(out)
}

/// Whether a relative symlink target, resolved from the link's directory, stays in the root.
fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true; // resolved inside the root by whoever runs the tree; infragen never follows it
    }
    let mut depth = link.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            PathComponent::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            PathComponent::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

fn entries(
    source: &mut impl Read,
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
        let kind = entry.header().entry_type();
        let Some(rel) = entry_rel(&entry.path_bytes(), kind, limits)? else {
            continue; // the archive's own root, `./`
        };
        let shown = rel.display().to_string();
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if kinds != Kinds::Layer {
                bail!("entry `{shown}`: a whiteout in a bundle archive");
            }
            whiteout(root, &rel, hidden).with_context(|| format!("entry `{shown}`"))?;
            dirs.clear();
            continue;
        }
        if !seen.insert(rel.clone()) && kinds == Kinds::Bundle {
            bail!("entry `{shown}`: a duplicate name");
        }
        let (mode, uid, gid) = mode_and_owner(entry.header(), &shown)?;
        if !allowed(kinds, kind) {
            bail!("entry `{shown}`: type {} is not allowed", kind_name(kind));
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
        let existing = root
            .meta(&rel)
            .with_context(|| format!("entry `{shown}`"))?;
        if existing.is_some_and(|m| m.kind == Kind::Dir) && kind != tar::EntryType::Directory {
            dirs.clear(); // about to be replaced, with everything in it
        }
        let target = Made {
            rel: &rel,
            shown: &shown,
            existing: existing.is_some(),
        };
        let not_a_dir = existing.is_some_and(|m| m.kind != Kind::Dir);
        let chown = match kind {
            tar::EntryType::Directory => {
                if not_a_dir {
                    root.remove(&rel)?;
                }
                root.mkdir(&rel, mode)
                    .with_context(|| format!("entry `{shown}`"))?;
                root.chmod(&rel, mode)?;
                dirs.insert(rel.clone());
                true
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                target.file(root, &mut entry, mode)?;
                true
            }
            tar::EntryType::Symlink => {
                target.symlink(root, &entry, limits)?;
                true
            }
            // The link shares its source's owner and mode.
            tar::EntryType::Link => {
                target.hard_link(root, &entry, limits)?;
                false
            }
            _ => unreachable!("checked above"),
        };
        if owners && chown {
            root.chown(&rel, uid, gid)
                .with_context(|| format!("entry `{shown}`"))?;
        }
    }
    Ok(())
}

/// An entry's path below the root (`raw` as the archive has it), checked; `None` for the
/// archive's own root directory (`./`).
fn entry_rel(raw: &[u8], kind: tar::EntryType, limits: Limits) -> Result<Option<PathBuf>> {
    let rel =
        entry_path(raw, limits).map_err(|why| anyhow::anyhow!("entry `{}`: {why}", show(raw)))?;
    if rel.as_os_str().is_empty() {
        if kind == tar::EntryType::Directory {
            return Ok(None);
        }
        bail!("entry `{}`: an empty path", String::from_utf8_lossy(raw));
    }
    Ok(Some(rel))
}

/// An entry's mode (setuid, setgid, sticky, group and other write dropped), uid and gid.
fn mode_and_owner(header: &tar::Header, shown: &str) -> Result<(u32, u32, u32)> {
    let mode = header
        .mode()
        .with_context(|| format!("entry `{shown}`: mode"))?
        & 0o755;
    Ok((
        mode,
        u32::try_from(header.uid().unwrap_or(0)).unwrap_or(0),
        u32::try_from(header.gid().unwrap_or(0)).unwrap_or(0),
    ))
}

/// Whether an entry of type `kind` may be in a stream of `kinds`.
fn allowed(kinds: Kinds, kind: tar::EntryType) -> bool {
    match kinds {
        Kinds::Bundle => matches!(
            kind,
            tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous
        ),
        Kinds::Layer => matches!(
            kind,
            tar::EntryType::Directory
                | tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Symlink
                | tar::EntryType::Link
        ),
    }
}

/// One entry being written at `rel` (its parents exist).
struct Made<'a> {
    rel: &'a Path,
    /// `rel` as errors show it.
    shown: &'a str,
    /// Something is at `rel` already (replaced).
    existing: bool,
}

impl Made<'_> {
    /// A regular file with the entry's content, which must be all there.
    fn file<R: Read>(&self, root: &Root, entry: &mut tar::Entry<'_, R>, mode: u32) -> Result<()> {
        let (rel, shown) = (self.rel, self.shown);
        if self.existing {
            root.remove(rel)?;
        }
        let mut file = root
            .create(rel, mode)
            .with_context(|| format!("entry `{shown}`"))?;
        let size = entry.size();
        let got = io::copy(entry, &mut file).with_context(|| format!("entry `{shown}`"))?;
        // A short read is the end of the stream, not an error of `io::copy`.
        if got != size {
            bail!("entry `{shown}`: the stream ends after {got} of its {size} bytes");
        }
        Ok(())
    }

    /// A symlink whose target stays inside the root.
    fn symlink<R: Read>(
        &self,
        root: &Root,
        entry: &tar::Entry<'_, R>,
        limits: Limits,
    ) -> Result<()> {
        let (rel, shown) = (self.rel, self.shown);
        let target = entry
            .link_name_bytes()
            .with_context(|| format!("entry `{shown}`: a symlink without a target"))?
            .into_owned();
        if target.is_empty() || target.contains(&0) || target.len() > limits.path {
            bail!("entry `{shown}`: a symlink target that is empty, too long or has a NUL");
        }
        let target = PathBuf::from(std::ffi::OsStr::from_bytes(&target));
        if !stays_inside(rel, &target) {
            bail!(
                "entry `{shown}`: symlink target `{}` climbs out of the root",
                target.display()
            );
        }
        if self.existing {
            root.remove(rel)?;
        }
        root.symlink(&target, rel)
            .with_context(|| format!("entry `{shown}`"))
    }

    /// A hard link to an earlier file of the same stream.
    fn hard_link<R: Read>(
        &self,
        root: &Root,
        entry: &tar::Entry<'_, R>,
        limits: Limits,
    ) -> Result<()> {
        let (rel, shown) = (self.rel, self.shown);
        let target = entry
            .link_name_bytes()
            .with_context(|| format!("entry `{shown}`: a hard link without a target"))?
            .into_owned();
        let to = entry_path(&target, limits).map_err(|why| {
            anyhow::anyhow!(
                "entry `{shown}`: hard link target `{}`: {why}",
                show(&target)
            )
        })?;
        if !root
            .meta(&to)
            .ok()
            .flatten()
            .is_some_and(|m| m.kind == Kind::File)
        {
            bail!(
                "entry `{shown}`: hard link to `{}`, which is not an earlier file of the layer",
                to.display()
            );
        }
        if self.existing {
            root.remove(rel)?;
        }
        root.hard_link(&to, rel)
            .with_context(|| format!("entry `{shown}`"))
    }
}

/// Applies a whiteout entry `rel` (`<dir>/.wh.<name>`): `.wh..wh..opq` empties `<dir>`, any
/// other removes `<dir>/<name>`, which must be a plain name in that directory.
fn whiteout(root: &Root, rel: &Path, hidden: &str) -> Result<()> {
    let dir = rel.parent().unwrap_or(Path::new(""));
    if hidden == ".wh..opq" {
        if dir.as_os_str().is_empty() {
            return root.clear();
        }
        return match root.meta(dir)? {
            Some(m) if m.kind == Kind::Dir => root.sub(dir)?.clear(),
            Some(_) => bail!(
                "an opaque whiteout in `{}`, which is not a directory",
                dir.display()
            ),
            None => Ok(()),
        };
    }
    if hidden.is_empty()
        || hidden == "."
        || hidden == ".."
        || hidden.contains('/')
        || hidden.starts_with(".wh.")
    {
        bail!("a whiteout of `{hidden}`, which is not a name in its directory");
    }
    root.remove(&dir.join(hidden))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::stays_inside;
    use std::path::Path;

    #[test]
    fn symlink_targets() {
        for (link, target, ok) in [
            ("usr/bin/awk", "/etc/alternatives/awk", true),
            ("usr/bin/x", "../lib/x", true),
            ("usr/bin/x", "../../../etc/shadow", false),
            ("x", "..", false),
            ("a/b", "../..", false),
            ("a/b", "..", true),
        ] {
            assert_eq!(
                stays_inside(Path::new(link), Path::new(target)),
                ok,
                "{link} -> {target}"
            );
        }
    }
}
