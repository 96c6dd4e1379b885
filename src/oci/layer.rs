//! Deterministic layer blobs: a list of entries becomes a gzip- or zstd-compressed tar whose
//! bytes depend only on the entries, the given mtime and the compression.
//!
//! Owns the tar and gzip encoding and the two digests of a layer (`diff_id` of the tar,
//! `digest` of the compressed blob, both hashed while writing). It does not read the disk or
//! store blobs (that is `blob`). Every header is built here: sorted paths, explicit
//! mode/uid/gid, one mtime, empty user and group names, no device numbers, GNU long names
//! past 100 bytes, gzip at a fixed level with mtime 0, no file name and OS byte 255 (or zstd at
//! level 3, one thread, a checksum, no content size: the parameters do not depend on the
//! input's size or the machine; OCI 1.1's `+zstd` media type). A built
//! layer only adds files: a path component named like a whiteout (`.wh.`) is an error.
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md>

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::GzBuilder;
use tar::{EntryType, Header};

use super::blob::OciError;
use crate::digest::HashWriter;

/// The media type of gzip layers, the default.
pub const MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The media type of zstd layers (OCI image-spec 1.1).
/// <https://github.com/opencontainers/image-spec/blob/v1.1.0/media-types.md>
pub const ZSTD_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The gzip level of every layer: what `gzip` itself defaults to.
const GZIP_LEVEL: u32 = 6;

/// The zstd level of every layer: what `zstd` itself defaults to.
const ZSTD_LEVEL: i32 = 3;

/// How a layer's tar is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Compression {
    /// gzip, level 6 (every OCI tool reads it).
    #[default]
    Gzip,
    /// zstd, level 3 (OCI 1.1; faster to write and to read).
    Zstd,
}

impl Compression {
    /// The layer media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE,
            Compression::Zstd => ZSTD_MEDIA_TYPE,
        }
    }

    /// Its name: `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A compressing writer over the hashed blob.
enum Compressor {
    Gzip(flate2::write::GzEncoder<HashWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, HashWriter<Vec<u8>>>),
}

impl Compressor {
    fn new(c: Compression) -> io::Result<Self> {
        let blob = HashWriter::new(Vec::new());
        Ok(match c {
            Compression::Gzip => Compressor::Gzip(
                GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(blob, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                // No pledged size: zstd would tune its parameters to it. One thread (the crate
                // is built without `zstdmt`): layers are compressed in parallel instead.
                let mut z = zstd::stream::write::Encoder::new(blob, ZSTD_LEVEL)?;
                z.include_checksum(true)?;
                z.include_contentsize(false)?;
                z.include_dictid(false)?;
                Compressor::Zstd(z)
            }
        })
    }

    fn finish(self) -> io::Result<HashWriter<Vec<u8>>> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// The prefix of OCI whiteout names (`.wh.<name>`, `.wh..wh..opq`): an entry so named deletes
/// files of the layers below instead of being content, so no built entry may carry one.
/// <https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md#whiteouts>
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// One file-system object in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Path inside the layer, relative (`etc/nginx/nginx.conf`), no `.` or `..` components.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits, including setuid/setgid/sticky (at most `0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The kind of a [`LayerEntry`], with what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with its content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to the given target (stored as written).
    Symlink(String),
    /// A hard link to another entry of the same layer, named by its path.
    Hardlink(String),
}

/// A built layer: the compressed blob and its digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Media type of the blob ([`MEDIA_TYPE`] or [`ZSTD_MEDIA_TYPE`]).
    pub media_type: String,
    /// The compressed blob.
    pub bytes: Vec<u8>,
}

impl LayerEntry {
    /// A regular file.
    pub fn file(path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self::new(path, EntryKind::File(content.into()), mode)
    }

    /// A directory.
    pub fn dir(path: &str, mode: u32) -> Self {
        Self::new(path, EntryKind::Dir, mode)
    }

    /// A symbolic link, mode 0777.
    pub fn symlink(path: &str, target: &str) -> Self {
        Self::new(path, EntryKind::Symlink(target.to_owned()), 0o777)
    }

    /// A hard link to the entry at `target`.
    pub fn hardlink(path: &str, target: &str) -> Self {
        Self::new(path, EntryKind::Hardlink(target.to_owned()), 0o644)
    }

    /// Sets the owner and group.
    #[must_use]
    pub fn owned(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    fn new(path: &str, kind: EntryKind, mode: u32) -> Self {
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// Builds a layer from `entries` with every mtime set to `mtime` (seconds since the epoch).
///
/// Entries are sorted by path (byte order); missing parent directories are added (0755,
/// root:root); an entry given twice identically is kept once, differently is an error. In a
/// group of hard links the first path in order holds the content and the others link to it,
/// so a link always follows its target in the archive.
pub fn build(entries: Vec<LayerEntry>, mtime: u64) -> Result<Layer, OciError> {
    build_with(entries, mtime, Compression::Gzip)
}

/// [`build`], compressed with `compression`.
pub fn build_with(
    entries: Vec<LayerEntry>,
    mtime: u64,
    compression: Compression,
) -> Result<Layer, OciError> {
    let entries = normalise(entries)?;
    let finish = |e: io::Error| OciError::Entry {
        path: String::new(),
        reason: format!("cannot finish the archive: {e}"),
    };
    let compressor = Compressor::new(compression).map_err(finish)?;
    let mut tar = tar::Builder::new(HashWriter::new(compressor));
    for entry in &entries {
        append(&mut tar, entry, mtime).map_err(|e| OciError::Entry {
            path: entry.path.clone(),
            reason: format!("cannot write to the archive: {e}"),
        })?;
    }
    let tar_out = tar.into_inner().map_err(finish)?;
    let diff_id = tar_out.digest().into_string();
    let blob = tar_out.into_inner().finish().map_err(finish)?;
    let digest = blob.digest().into_string();
    Ok(Layer {
        digest,
        diff_id,
        size: blob.count(),
        media_type: compression.media_type().to_owned(),
        bytes: blob.into_inner(),
    })
}

fn append<W: Write>(tar: &mut tar::Builder<W>, e: &LayerEntry, mtime: u64) -> io::Result<()> {
    let mut h = Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(mtime);
    h.set_username("")?;
    h.set_groupname("")?;
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    match &e.kind {
        EntryKind::File(content) => {
            h.set_entry_type(EntryType::Regular);
            h.set_size(content.len() as u64);
            tar.append_data(&mut h, &e.path, content.as_slice())
        }
        EntryKind::Dir => {
            h.set_entry_type(EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{}/", e.path), io::empty())
        }
        EntryKind::Symlink(target) => {
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, &e.path, target)
        }
        EntryKind::Hardlink(target) => {
            h.set_entry_type(EntryType::Link);
            h.set_size(0);
            tar.append_link(&mut h, &e.path, target)
        }
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> OciError {
    OciError::Entry {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Checks a path and returns it without a trailing `/`. A component starting with `.wh.` is
/// refused: the layer would delete what it names instead of holding it.
fn clean_path(path: &str) -> Result<String, OciError> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Err(invalid(path, "the path is empty"));
    }
    if trimmed.starts_with('/') {
        return Err(invalid(path, "the path must be relative (no leading `/`)"));
    }
    if trimmed.contains('\0') {
        return Err(invalid(path, "the path contains a NUL byte"));
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid(
            path,
            "the path has an empty, `.` or `..` component",
        ));
    }
    if let Some(name) = trimmed.split('/').find(|c| c.starts_with(WHITEOUT_PREFIX)) {
        return Err(OciError::Whiteout {
            path: trimmed.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(trimmed.to_owned())
}

/// Validates, deduplicates, completes and orders the entries.
fn normalise(entries: Vec<LayerEntry>) -> Result<Vec<LayerEntry>, OciError> {
    let mut by_path: BTreeMap<String, LayerEntry> = BTreeMap::new();
    for mut e in entries {
        e.path = clean_path(&e.path)?;
        if e.mode > 0o7777 {
            return Err(invalid(
                &e.path,
                format!("mode {:o} has bits beyond 7777", e.mode),
            ));
        }
        match &mut e.kind {
            EntryKind::Symlink(t) if t.is_empty() || t.contains('\0') => {
                return Err(invalid(
                    &e.path,
                    "the symlink target is empty or has a NUL byte",
                ));
            }
            EntryKind::Hardlink(t) => {
                *t = clean_path(t).map_err(|err| match err {
                    // Named by the link: the target is not an entry of its own.
                    OciError::Whiteout { name, .. } => OciError::Whiteout {
                        path: e.path.clone(),
                        name,
                    },
                    other => other,
                })?;
            }
            _ => {}
        }
        match by_path.get(&e.path) {
            Some(prev) if *prev == e => {}
            Some(_) => {
                return Err(invalid(&e.path, "given twice with different content"));
            }
            None => {
                by_path.insert(e.path.clone(), e);
            }
        }
    }
    add_parents(&mut by_path)?;
    regroup_hardlinks(&mut by_path)?;
    Ok(by_path.into_values().collect())
}

/// Adds every missing ancestor directory; an ancestor that exists must be a directory.
fn add_parents(by_path: &mut BTreeMap<String, LayerEntry>) -> Result<(), OciError> {
    let mut missing = Vec::new();
    for path in by_path.keys() {
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            parent = p;
            match by_path.get(p) {
                Some(e) if e.kind == EntryKind::Dir => {}
                Some(_) => {
                    return Err(invalid(
                        path,
                        format!("its parent `{p}` is not a directory"),
                    ));
                }
                None => missing.push(p.to_owned()),
            }
        }
    }
    for p in missing {
        by_path
            .entry(p.clone())
            .or_insert_with(|| LayerEntry::dir(&p, 0o755));
    }
    Ok(())
}

/// Makes the first path (in archive order) of every hard-link group the regular file and the
/// others links to it: tar readers resolve a link against an entry already extracted.
fn regroup_hardlinks(by_path: &mut BTreeMap<String, LayerEntry>) -> Result<(), OciError> {
    // Each link's final file, following chains of links.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, e) in by_path.iter() {
        let EntryKind::Hardlink(first) = &e.kind else {
            continue;
        };
        let mut target = first.clone();
        let mut hops = 0;
        loop {
            match by_path.get(&target).map(|t| &t.kind) {
                Some(EntryKind::File(_)) => break,
                Some(EntryKind::Hardlink(next)) if hops < by_path.len() => {
                    target.clone_from(next);
                    hops += 1;
                }
                Some(EntryKind::Hardlink(_)) => {
                    return Err(invalid(path, "the hard link is part of a cycle"));
                }
                Some(_) => {
                    return Err(invalid(
                        path,
                        format!("the hard link target `{first}` is not a regular file"),
                    ));
                }
                None => {
                    return Err(invalid(
                        path,
                        format!("the hard link target `{first}` is not in the layer"),
                    ));
                }
            }
        }
        groups.entry(target).or_default().push(path.clone());
    }
    for (file, links) in groups {
        // `links` is in path order, as `by_path` was walked in order.
        let head = if links[0] < file {
            links[0].clone()
        } else {
            file.clone()
        };
        if head != file {
            let content = by_path.remove(&file).expect("the group's file exists");
            let link = by_path.get_mut(&head).expect("the group's link exists");
            link.kind = content.kind;
            link.mode = content.mode;
            link.uid = content.uid;
            link.gid = content.gid;
            by_path.insert(
                file.clone(),
                LayerEntry {
                    path: file.clone(),
                    kind: EntryKind::Hardlink(head.clone()),
                    ..content
                },
            );
        }
        let (mode, uid, gid) = {
            let h = &by_path[&head];
            (h.mode, h.uid, h.gid)
        };
        for path in links.iter().chain([&file]).filter(|p| **p != head) {
            let e = by_path.get_mut(path).expect("the group's link exists");
            e.kind = EntryKind::Hardlink(head.clone());
            (e.mode, e.uid, e.gid) = (mode, uid, gid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::blob::sha256_digest;
    use std::io::Read;

    fn unpack(layer: &Layer) -> Vec<(String, EntryType, u32, String, Vec<u8>)> {
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(layer.bytes.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(sha256_digest(&tar_bytes), layer.diff_id);
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap())
                    .unwrap_or_default();
                let h = e.header();
                assert_eq!(h.mtime().unwrap(), 1_700_000_000);
                assert_eq!(h.username_bytes(), Some(&b""[..]));
                let (ty, mode) = (h.entry_type(), h.mode().unwrap());
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, ty, mode, link, data)
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_completed_and_digested() {
        let long = format!("opt/{}/f", "d".repeat(140));
        let layer = build(
            vec![
                LayerEntry::file("usr/bin/tool", "#!/bin/sh\n", 0o755),
                LayerEntry::symlink("usr/bin/alias", "tool"),
                LayerEntry::file(&long, "x", 0o600).owned(101, 102),
                LayerEntry::hardlink("usr/bin/a-link", "usr/bin/tool"),
                LayerEntry::dir("etc/", 0o750),
            ],
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(layer.size, layer.bytes.len() as u64);
        assert_eq!(layer.digest, sha256_digest(&layer.bytes));
        assert_eq!(layer.bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let got: Vec<(String, EntryType, u32, String)> = unpack(&layer)
            .into_iter()
            .map(|(p, t, m, l, _)| (p, t, m, l))
            .collect();
        let want = [
            ("etc/", EntryType::Directory, 0o750, ""),
            ("opt/", EntryType::Directory, 0o755, ""),
            (
                &format!("opt/{}/", "d".repeat(140)),
                EntryType::Directory,
                0o755,
                "",
            ),
            (&long, EntryType::Regular, 0o600, ""),
            ("usr/", EntryType::Directory, 0o755, ""),
            ("usr/bin/", EntryType::Directory, 0o755, ""),
            // The link sorts first, so it holds the content and the file links to it.
            ("usr/bin/a-link", EntryType::Regular, 0o755, ""),
            ("usr/bin/alias", EntryType::Symlink, 0o777, "tool"),
            ("usr/bin/tool", EntryType::Link, 0o755, "usr/bin/a-link"),
        ];
        let want: Vec<(String, EntryType, u32, String)> = want
            .iter()
            .map(|(p, t, m, l)| ((*p).to_owned(), *t, *m, (*l).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_same_entries_give_the_same_bytes() {
        let entries = vec![
            LayerEntry::file("b", "2", 0o644),
            LayerEntry::file("a/x", "1", 0o644),
        ];
        let mut reversed = entries.clone();
        reversed.reverse();
        let one = build(entries, 0).unwrap();
        assert_eq!(one, build(reversed, 0).unwrap());
        assert_ne!(
            one.digest,
            build(vec![LayerEntry::file("b", "2", 0o644)], 1)
                .unwrap()
                .digest
        );
    }

    #[test]
    fn zstd_layers_hold_the_same_tar_in_a_deterministic_zstd_frame() {
        let entries = || {
            vec![
                LayerEntry::file("etc/a.conf", "x = 1\n".repeat(500), 0o644),
                LayerEntry::dir("var/lib/a", 0o750).owned(7, 7),
                LayerEntry::symlink("usr/bin/a", "../lib/a"),
            ]
        };
        let gz = build(entries(), 5).unwrap();
        let zst = build_with(entries(), 5, Compression::Zstd).unwrap();
        assert_eq!(zst.media_type, ZSTD_MEDIA_TYPE);
        assert_eq!(gz.media_type, MEDIA_TYPE);
        // the same tar, compressed otherwise
        assert_eq!(zst.diff_id, gz.diff_id);
        assert_ne!(zst.digest, gz.digest);
        assert_eq!(zst.digest, sha256_digest(&zst.bytes));
        assert_eq!(zst.size, zst.bytes.len() as u64);
        assert_eq!(zst.bytes[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        let tar = zstd::stream::decode_all(zst.bytes.as_slice()).unwrap();
        assert_eq!(sha256_digest(&tar), zst.diff_id);
        // every run the same bytes, whatever the order given
        let mut reversed = entries();
        reversed.reverse();
        assert_eq!(zst, build_with(reversed, 5, Compression::Zstd).unwrap());
        // pinned: a change here changes every zstd image digest
        assert_eq!(
            zst.digest,
            "sha256:1a4a76110760ea61eac531400dbddd0939313a96989797946638b2c1d1efa3f5"
        );
    }

    #[test]
    fn bad_entries_are_rejected() {
        let cases: Vec<(Vec<LayerEntry>, &str)> = vec![
            (vec![LayerEntry::file("/etc/x", "", 0o644)], "relative"),
            (vec![LayerEntry::file("a/../b", "", 0o644)], "`..`"),
            (vec![LayerEntry::file("a//b", "", 0o644)], "empty"),
            (vec![LayerEntry::file("", "", 0o644)], "empty"),
            (vec![LayerEntry::file("x", "", 0o100_644)], "beyond 7777"),
            (
                vec![
                    LayerEntry::file("x", "1", 0o644),
                    LayerEntry::file("x", "2", 0o644),
                ],
                "given twice",
            ),
            (
                vec![
                    LayerEntry::file("x", "1", 0o644),
                    LayerEntry::file("x/y", "2", 0o644),
                ],
                "not a directory",
            ),
            (
                vec![LayerEntry::hardlink("l", "nowhere")],
                "not in the layer",
            ),
            (
                vec![LayerEntry::dir("d", 0o755), LayerEntry::hardlink("l", "d")],
                "not a regular file",
            ),
            (
                vec![
                    LayerEntry::hardlink("l", "m"),
                    LayerEntry::hardlink("m", "l"),
                ],
                "cycle",
            ),
            (vec![LayerEntry::symlink("s", "")], "symlink target"),
            (
                vec![LayerEntry::hardlink("l", "etc/.wh.x")],
                "layer entry `l`: `.wh.x` starts with `.wh.`",
            ),
        ];
        for (entries, needle) in cases {
            let err = build(entries.clone(), 0).unwrap_err().to_string();
            assert!(err.contains(needle), "{entries:?}: {err}");
        }
        // The same entry twice is fine.
        let e = LayerEntry::file("x", "1", 0o644);
        assert!(build(vec![e.clone(), e], 0).is_ok());
    }

    /// A `.wh.` name anywhere in a path would be a whiteout at activation: refused with a typed
    /// error naming the entry, whatever the kind of entry. A target or a name merely containing
    /// `.wh.` is content.
    #[test]
    fn whiteout_names_are_refused() {
        let cases = [
            (LayerEntry::file("etc/.wh.passwd", "", 0o644), ".wh.passwd"),
            (
                LayerEntry::file("etc/.wh..wh..opq", "", 0o644),
                ".wh..wh..opq",
            ),
            (LayerEntry::dir(".wh.usr/", 0o755), ".wh.usr"),
            (LayerEntry::file(".wh.usr/bin/x", "", 0o755), ".wh.usr"),
            (LayerEntry::symlink("bin/.wh.sh", "dash"), ".wh.sh"),
            (LayerEntry::file(".wh.", "", 0o644), ".wh."),
        ];
        for (entry, want) in cases {
            let path = entry.path.trim_end_matches('/').to_owned();
            match build(vec![entry], 0) {
                Err(OciError::Whiteout { path: p, name }) => {
                    assert_eq!((p.as_str(), name.as_str()), (path.as_str(), want));
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        let err = build(vec![LayerEntry::file("etc/.wh.passwd", "", 0o644)], 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer entry `etc/.wh.passwd`: `.wh.passwd` starts with `.wh.`, an OCI whiteout; a built layer only adds files"
        );
        let fine = vec![
            LayerEntry::file("etc/x.wh.y", "", 0o644),
            LayerEntry::file("etc/wh.x", "", 0o644),
            LayerEntry::symlink("etc/l", ".wh.x"),
        ];
        assert!(build(fine, 0).is_ok());
    }
}
