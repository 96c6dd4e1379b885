//! The safe-extraction rules (docs/reliability.md, "Safe extraction") as one implementation that
//! writes nothing: reading an untrusted, possibly gzip- or zstd-compressed tar stream with both digests
//! taken as it passes and every decompression bounded ([`stream`]), and checking one entry of it
//! ([`check`]): its path, its type, its link target, its mode.
//!
//! Two callers share it: activation's extraction (`activate::extract`, which then writes each
//! checked entry through `fsx`) and the check of base image layers at import and build
//! (`oci::layout`, which writes nothing). What depends on the tree already there (a hard link's
//! target being an earlier file, what a whiteout removes) is the caller's: each holds the tree in
//! its own form.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::digest::{Digest, Hasher};

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

/// What a stream was: the digest and size of the bytes read from the source, the digest of
/// the tar stream, and how it was compressed.
#[derive(Debug)]
pub struct Digests {
    /// sha256 of the bytes read from the source (the blob digest).
    pub blob: Digest,
    /// sha256 of the tar stream (the `diff_id`).
    pub tar: Digest,
    /// Bytes read from the source.
    pub size: u64,
    /// The source began with gzip's magic number.
    pub gzip: bool,
    /// The source began with zstd's magic number (a zstd frame).
    pub zstd: bool,
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

/// Most bytes of one extension header (PAX `x`/`g`, GNU long name `L` and long link `K`): the
/// tar reader holds each whole in memory.
pub const MAX_EXTENSION: u64 = 1 << 20;

/// Follows the tar stream's header blocks as they pass, so that no extension header the tar
/// reader would hold whole is larger than [`MAX_EXTENSION`], whatever the compression ratio
/// allows. It finds the headers as the `tar` crate does: each is followed by its size rounded up
/// to 512 bytes, a PAX `size` record standing for the size of the next entry's header; the first
/// all-zero block ends the archive. GNU sparse entries, whose extra header blocks it does not
/// follow, are refused (as a type they are refused anyway).
struct Headers<R> {
    inner: R,
    /// Bytes passed so far.
    pos: u64,
    /// Where the next header block starts.
    next: u64,
    /// The header block being read, and how much of it is in.
    block: Box<[u8; 512]>,
    filled: usize,
    /// The data of the PAX header being read (at most [`MAX_EXTENSION`] bytes), and how many of
    /// its bytes are still to come.
    pax: Option<(Vec<u8>, u64)>,
    /// The size a PAX header gave the next entry.
    pax_size: Option<u64>,
    /// The archive has ended: what follows is not read as headers.
    done: bool,
}

impl<R> Headers<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            pos: 0,
            next: 0,
            block: Box::new([0; 512]),
            filled: 0,
            pax: None,
            pax_size: None,
            done: false,
        }
    }

    /// Takes in `data` (what was just read), checking each header block as it completes.
    fn follow(&mut self, data: &[u8]) -> io::Result<()> {
        let mut i = 0;
        while i < data.len() && !self.done {
            if self.pos < self.next {
                let skip = usize::try_from(self.next - self.pos)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - i);
                self.pax_data(&data[i..i + skip]);
                i += skip;
                self.pos += skip as u64;
                continue;
            }
            let take = (512 - self.filled).min(data.len() - i);
            self.block[self.filled..self.filled + take].copy_from_slice(&data[i..i + take]);
            self.filled += take;
            i += take;
            self.pos += take as u64;
            if self.filled == 512 {
                self.filled = 0;
                self.header()?;
            }
        }
        Ok(())
    }

    /// Collects the data of a PAX header (its padding left out); its `size` record once whole.
    fn pax_data(&mut self, data: &[u8]) {
        let Some((buf, remaining)) = self.pax.as_mut() else {
            return;
        };
        let n = usize::try_from(*remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        buf.extend_from_slice(&data[..n]);
        *remaining -= n as u64;
        if *remaining == 0 {
            self.pax_size = pax_size(buf);
            self.pax = None;
        }
    }

    /// The header block just read: where the next one starts, and its bounds.
    fn header(&mut self) -> io::Result<()> {
        if self.block.iter().all(|&b| b == 0) {
            self.done = true;
            return Ok(());
        }
        let kind = self.block[156];
        let mut size = header_size(&self.block[124..136])
            .ok_or_else(|| io::Error::other("a tar header with a malformed size"))?;
        match kind {
            b'S' => return Err(io::Error::other("a GNU sparse entry is not taken")),
            b'x' | b'g' | b'L' | b'K' => {
                if size > MAX_EXTENSION {
                    return Err(io::Error::other(format!(
                        "an extension header (type `{}`) of {size} bytes (the limit is {MAX_EXTENSION})",
                        char::from(kind)
                    )));
                }
                if kind == b'x' && size > 0 {
                    self.pax = Some((Vec::new(), size));
                }
                // The tar reader hands a global header out as an entry: the PAX records before
                // it are spent on it.
                if kind == b'g' {
                    self.pax_size = None;
                }
            }
            _ => size = self.pax_size.take().unwrap_or(size),
        }
        self.next = size
            .div_ceil(512)
            .checked_mul(512)
            .and_then(|padded| self.pos.checked_add(padded))
            .ok_or_else(|| io::Error::other("a tar header with a size past the end"))?;
        Ok(())
    }
}

/// The `size` record of PAX data, read as the `tar` crate reads it: records
/// `<len> <key>=<value>\n` in order, the first `size` that parses; none once a record is
/// malformed.
fn pax_size(data: &[u8]) -> Option<u64> {
    for line in data.split(|&b| b == b'\n') {
        let space = line.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
        if line.len() + 1 != len {
            return None;
        }
        let rest = &line[space + 1..];
        let equals = rest.iter().position(|&b| b == b'=')?;
        if &rest[..equals] == b"size" {
            return std::str::from_utf8(&rest[equals + 1..]).ok()?.parse().ok();
        }
    }
    None
}

/// A header's size field as the `tar` crate reads it: base-256 when its first bit is set,
/// else octal up to the first NUL, spaces trimmed.
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut n = u64::from(field[field.len() - 8] & if field.len() == 8 { 0x7f } else { 0xff });
        for &b in &field[field.len() - 7..] {
            n = (n << 8) | u64::from(b);
        }
        return Some(n);
    }
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?;
    u64::from_str_radix(text.trim(), 8).ok()
}

impl<R: Read> Read for Headers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

/// The expanded side: gzip, zstd or a plain tar.
enum Expanded<R: Read> {
    // boxed: zlib-rs's inflate state is large (clippy::large_enum_variant)
    Gz(Box<flate2::read::MultiGzDecoder<R>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, io::BufReader<R>>>),
    Plain(R),
}

impl<R: Read> Read for Expanded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Gz(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
            Self::Plain(r) => r.read(buf),
        }
    }
}

impl<R: Read> Expanded<R> {
    /// The source, to read what follows the compressed stream (what the decoders read ahead
    /// has passed the blob's hash already).
    fn into_inner(self) -> R {
        match self {
            Self::Gz(r) => r.into_inner(),
            Self::Zstd(r) => r.finish().into_inner(),
            Self::Plain(r) => r,
        }
    }
}

/// zstd's frame magic number, little-endian 0xFD2FB528 (RFC 8878, 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads a possibly gzip- or zstd-compressed tar stream from `source`, bounded by `limits`: `visit` reads
/// the tar stream (its entries), then the rest of both streams is read so that the digests cover
/// every byte. Nothing is buffered beyond the decoder's window and `visit`'s own reads.
pub fn stream(
    source: impl Read,
    limits: Limits,
    visit: impl FnOnce(&mut dyn Read) -> Result<()>,
) -> Result<Digests> {
    let compressed = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut blob = Tap {
        inner: Counted {
            inner: source,
            count: compressed.clone(),
        },
        hash: Hasher::new(),
    };
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        let n = blob.read(&mut magic[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = io::Cursor::new(magic[..got].to_vec());
    let chained = head.chain(blob);
    let gzip = magic[..got].starts_with(&[0x1f, 0x8b]);
    let zstd = magic[..got] == ZSTD_MAGIC;
    let expanded = if gzip {
        Expanded::Gz(Box::new(flate2::read::MultiGzDecoder::new(chained)))
    } else if zstd {
        // libzstd refuses a frame whose window is over 128 MiB (its default limit): memory
        // stays bounded whatever the frame header asks.
        let d = zstd::stream::read::Decoder::new(chained).context("starting zstd")?;
        Expanded::Zstd(Box::new(d))
    } else {
        Expanded::Plain(chained)
    };
    let mut tar_tap = Headers::new(Tap {
        inner: Ratio {
            inner: expanded,
            limits,
            compressed: compressed.clone(),
            expanded: 0,
        },
        hash: Hasher::new(),
    });
    visit(&mut tar_tap)?;
    // Whatever follows the archive's end is part of the stream and its digests.
    io::copy(&mut tar_tap, &mut io::sink()).context("reading to the end of the stream")?;
    let Tap { hash, inner, .. } = tar_tap.inner;
    let tar = hash.finish();
    let (_, mut blob) = inner.inner.into_inner().into_inner();
    io::copy(&mut blob, &mut io::sink()).context("reading to the end of the blob")?;
    Ok(Digests {
        blob: blob.hash.finish(),
        tar,
        size: compressed.get(),
        gzip,
        zstd,
    })
}

/// An entry type as messages name it: the `tar` crate's name, or the type byte of one it does
/// not know (whose `Debug` is an internal variant).
pub fn kind_name(kind: tar::EntryType) -> String {
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
pub fn show(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() > 64 {
        format!("{}…", text.chars().take(64).collect::<String>())
    } else {
        text.into_owned()
    }
}

/// A path inside a stream, checked: relative, no `..`, no NUL, within the length limit. The
/// error is the reason alone: the caller names the entry.
pub fn entry_path(raw: &[u8], limits: Limits) -> Result<PathBuf, String> {
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
/// An absolute target is the caller's to judge: activation keeps it (resolved inside the root by
/// whoever runs the tree; infragen never follows it), a base image's check resolves it in the
/// image's own tree.
pub fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
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

/// A whiteout entry of a layer (image-spec, "Whiteouts").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whiteout {
    /// `<dir>/.wh..wh..opq`: everything the layers below hold in `<dir>` goes.
    Opaque(PathBuf),
    /// `<dir>/.wh.<name>`: `<dir>/<name>` goes.
    Remove(PathBuf),
}

/// The whiteout `rel` (`<dir>/.wh.<hidden>`): only the two forms the image spec defines, never
/// naming anything outside the directory it sits in.
fn whiteout(rel: &Path, hidden: &str) -> Result<Whiteout> {
    let dir = rel.parent().unwrap_or(Path::new(""));
    if hidden == ".wh..opq" {
        return Ok(Whiteout::Opaque(dir.to_path_buf()));
    }
    if hidden.is_empty()
        || hidden == "."
        || hidden == ".."
        || hidden.contains('/')
        || hidden.starts_with(".wh.")
    {
        bail!("a whiteout of `{hidden}`, which is not a name in its directory");
    }
    Ok(Whiteout::Remove(dir.join(hidden)))
}

/// What a checked entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    /// A symlink to this target (relative ones stay inside the root).
    Symlink(PathBuf),
    /// A hard link to this path of the stream (whether it is an earlier regular file is the
    /// caller's check: it holds the tree).
    HardLink(PathBuf),
}

/// One entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its path below the root.
    pub rel: PathBuf,
    /// Its mode, setuid, setgid, sticky and group/other write dropped.
    pub mode: u32,
    /// The owner of the header's numeric field (0 when it has none that fits).
    pub uid: u32,
    /// The group of the header's numeric field.
    pub gid: u32,
    /// What it is.
    pub what: What,
}

impl Item {
    /// The path as messages show it.
    pub fn shown(&self) -> String {
        self.rel.display().to_string()
    }
}

/// What [`check`] found an entry to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The archive's own root directory (`./`): nothing to do.
    Root,
    /// A whiteout (only in layers).
    Whiteout(Whiteout),
    /// Anything else that may be in the stream.
    Item(Item),
}

/// Checks one entry of a stream of `kinds` against the rules that need no tree: its path, its
/// type, its mode and its link target. Errors name the entry (`entry `PATH`: …`).
pub fn check<R: Read>(entry: &tar::Entry<'_, R>, kinds: Kinds, limits: Limits) -> Result<Checked> {
    let kind = entry.header().entry_type();
    let raw = entry.path_bytes();
    let rel = entry_path(&raw, limits).map_err(|why| anyhow!("entry `{}`: {why}", show(&raw)))?;
    if rel.as_os_str().is_empty() {
        if kind == tar::EntryType::Directory {
            return Ok(Checked::Root);
        }
        bail!("entry `{}`: an empty path", String::from_utf8_lossy(&raw));
    }
    let shown = rel.display().to_string();
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(hidden) = name.strip_prefix(".wh.") {
        if kinds != Kinds::Layer {
            bail!("entry `{shown}`: a whiteout in a bundle archive");
        }
        return whiteout(&rel, hidden)
            .map(Checked::Whiteout)
            .with_context(|| format!("entry `{shown}`"));
    }
    let mode = entry
        .header()
        .mode()
        .with_context(|| format!("entry `{shown}`: mode"))?
        & 0o755;
    let uid = u32::try_from(entry.header().uid().unwrap_or(0)).unwrap_or(0);
    let gid = u32::try_from(entry.header().gid().unwrap_or(0)).unwrap_or(0);
    if !allowed(kinds, kind) {
        bail!("entry `{shown}`: type {} is not allowed", kind_name(kind));
    }
    let what = match kind {
        tar::EntryType::Directory => What::Dir,
        tar::EntryType::Symlink => What::Symlink(symlink_target(entry, &rel, &shown, limits)?),
        tar::EntryType::Link => What::HardLink(hard_link_target(entry, &shown, limits)?),
        _ => What::File(entry.size()),
    };
    Ok(Checked::Item(Item {
        rel,
        mode,
        uid,
        gid,
        what,
    }))
}

/// A symlink's target: not empty, no NUL, within the length limit, and a relative one stays
/// inside the root.
fn symlink_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    rel: &Path,
    shown: &str,
    limits: Limits,
) -> Result<PathBuf> {
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
    Ok(target)
}

/// A hard link's target as a path of the stream (relative, no `..`).
fn hard_link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    shown: &str,
    limits: Limits,
) -> Result<PathBuf> {
    let target = entry
        .link_name_bytes()
        .with_context(|| format!("entry `{shown}`: a hard link without a target"))?
        .into_owned();
    entry_path(&target, limits).map_err(|why| {
        anyhow!(
            "entry `{shown}`: hard link target `{}`: {why}",
            show(&target)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{stays_inside, stream, whiteout, Whiteout, LIMITS, MAX_EXTENSION};
    use std::path::{Path, PathBuf};

    /// A header of `kind` and `size` followed by `size` bytes of `fill`, padded.
    fn raw(name: &str, kind: tar::EntryType, size: u64, fill: u8) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.resize(
            512 + usize::try_from(size.div_ceil(512) * 512).unwrap(),
            fill,
        );
        out
    }

    /// The entry paths `stream` lets the tar reader see, or the error.
    fn paths(tar: &[u8]) -> Result<Vec<String>, String> {
        let mut seen = Vec::new();
        stream(tar, LIMITS, |r| {
            for e in tar::Archive::new(r).entries()? {
                seen.push(String::from_utf8_lossy(&e?.path_bytes()).into_owned());
            }
            Ok(())
        })
        .map_err(|e| format!("{e:#}"))?;
        Ok(seen)
    }

    #[test]
    fn zstd_gzip_and_plain_streams_give_the_same_tar() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/x", b"hello".as_slice()).unwrap();
        let tar = b.into_inner().unwrap();
        let zst = zstd::stream::encode_all(tar.as_slice(), 3).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        for (blob, zstd, gzip) in [
            (&zst, true, false),
            (&gz, false, true),
            (&tar, false, false),
        ] {
            let got = stream(blob.as_slice(), LIMITS, |r| {
                let names: Vec<String> = tar::Archive::new(r)
                    .entries()?
                    .map(|e| Ok(e?.path()?.display().to_string()))
                    .collect::<anyhow::Result<_>>()?;
                assert_eq!(names, ["etc/x"]);
                Ok(())
            })
            .unwrap();
            assert_eq!((got.zstd, got.gzip), (zstd, gzip));
            assert_eq!(got.tar.as_str(), crate::digest::Digest::of(&tar).as_str());
            assert_eq!(got.blob.as_str(), crate::digest::Digest::of(blob).as_str());
            assert_eq!(got.size, blob.len() as u64);
        }
        // a corrupt zstd frame is an error, not a short tar
        let mut bad = zst.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff;
        assert!(stream(bad.as_slice(), LIMITS, |r| {
            std::io::copy(r, &mut std::io::sink())?;
            Ok(())
        })
        .is_err());
    }

    #[test]
    fn headers_are_followed_as_the_tar_reader_reads_them() {
        // Long names (GNU `L`), PAX records, sizes across block boundaries, a base-256 size.
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/file", "d".repeat(300));
        for (i, name) in [long.as_str(), "a", "b/c"].iter().enumerate() {
            let data = vec![b'x'; 511 + i * 700];
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.append_pax_extensions([("comment", b"hello".as_slice())])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "p", b"abc".as_slice()).unwrap();
        let mut tar = b.into_inner().unwrap();
        assert_eq!(paths(&tar).unwrap(), [long.as_str(), "a", "b/c", "p"]);
        // What follows the end of the archive is not read as headers.
        tar.extend(raw("junk", tar::EntryType::XHeader, 4 << 20, 0));
        assert_eq!(paths(&tar).unwrap().len(), 4);
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 7;
        field[10] = 1;
        assert_eq!(super::header_size(&field), Some(263));
    }

    #[test]
    fn large_extension_headers_and_moving_sizes_are_refused() {
        for kind in [
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
        ] {
            let mut tar = raw("x", kind, MAX_EXTENSION + 1, b'a');
            tar.extend(raw("f", tar::EntryType::Regular, 1, b'a'));
            let err = paths(&tar).unwrap_err();
            assert!(err.contains("an extension header"), "{kind:?}: {err}");
        }
        // A PAX `size` moves the next header: a large extension header behind an entry whose
        // header claims 1024 bytes is found where the tar reader finds it.
        let mut tar = raw("pax", tar::EntryType::XHeader, 9, 0);
        tar[512..521].copy_from_slice(b"9 size=0\n");
        tar.extend(&raw("f", tar::EntryType::Regular, 1024, 0)[..512]);
        tar.extend(raw("x", tar::EntryType::XHeader, MAX_EXTENSION + 1, b'a'));
        let err = paths(&tar).unwrap_err();
        assert!(err.contains("an extension header"), "{err}");
        assert_eq!(super::pax_size(b"9 size=7\n"), Some(7));
        assert_eq!(super::pax_size(b"12 path=abc\n9 size=7\n"), Some(7));
        assert_eq!(super::pax_size(b"9 size=x\n"), None);
        assert_eq!(super::pax_size(b"8 size=7\n"), None);
        let err = paths(&raw("s", tar::EntryType::GNUSparse, 0, 0)).unwrap_err();
        assert!(err.contains("sparse"), "{err}");
    }

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

    #[test]
    fn whiteouts() {
        let rel = |s: &str| PathBuf::from(s);
        assert_eq!(
            whiteout(&rel("a/.wh..wh..opq"), ".wh..opq").unwrap(),
            Whiteout::Opaque(rel("a"))
        );
        assert_eq!(
            whiteout(&rel("a/.wh.b"), "b").unwrap(),
            Whiteout::Remove(rel("a/b"))
        );
        for bad in ["", ".", "..", ".wh.x"] {
            assert!(whiteout(&rel("a/x"), bad).is_err(), "{bad}");
        }
    }
}
