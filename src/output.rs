//! A build's output directory: every file of it held in memory ([`Output`]: bytes, or a blob
//! of the store to hard-link), then brought onto the disk by [`Output::sync`], which writes
//! only what differs.
//!
//! A rebuild whose output is the same writes nothing: each file costs a stat (a blob: the same
//! inode as the store's; a small file: size and mode, then a read and a compare), and nothing
//! is created, renamed or removed. A file that differs is replaced whole (a temporary file
//! renamed over it, [`crate::fsx::AtomicFile::commit_unsynced`]); a file no longer produced
//! is removed. Blobs are written first, each bundle's `manifest.json` and signature last, and
//! stale files removed at the end, so a run that stops half-way leaves a bundle whose manifest
//! does not match its files — which `verify` and `activate` refuse — never one that looks
//! whole. A new or empty output directory is written beside it and renamed into place
//! (all or nothing), as [`crate::tree::replace_dir`] does. Two builds into one existing output
//! directory take turns (`flock` on the directory itself, so no lock file is written).
//!
//! It does not decide what the files are (`build`, `bundle`) and never follows a symlink below
//! the output directory (every operation goes through [`crate::fsx::Root`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fsx::{Kind, Links, Meta, Root};
use crate::tree::{check_out, Tree, MARKER, MARKER_TEXT};

/// One file of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum File {
    /// Bytes with their exact mode.
    Data {
        /// Permission bits.
        mode: u32,
        /// Content.
        data: Vec<u8>,
    },
    /// A hard link to a blob of the store (copied across file systems); its mode is the
    /// store's (0644), never changed here, since the link shares the store's inode.
    Blob {
        /// The blob's file in the store.
        from: PathBuf,
    },
}

/// Every file of an output directory by relative path (`/`-separated, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    files: BTreeMap<String, File>,
}

/// What [`Output::sync`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Files already as wanted, left alone.
    pub unchanged: usize,
    /// Files written (new or changed), links included.
    pub written: usize,
    /// Files and directories removed.
    pub removed: usize,
    /// Directories made, or whose mode was set.
    pub dirs: usize,
}

impl Output {
    /// Adds a file of bytes; a path may be added once.
    pub fn add(&mut self, path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) {
        let data = data.into();
        self.insert(path.into(), File::Data { mode, data });
    }

    /// Adds a hard link to the blob file `from`; a path may be added once.
    pub fn link(&mut self, path: impl Into<String>, from: PathBuf) {
        self.insert(path.into(), File::Blob { from });
    }

    fn insert(&mut self, path: String, file: File) {
        debug_assert!(
            !path.starts_with('/') && !path.split('/').any(|p| p == ".." || p.is_empty()),
            "{path}"
        );
        match self.files.entry(path) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(file);
            }
            std::collections::btree_map::Entry::Occupied(o) => panic!("written twice: {}", o.key()),
        }
    }

    /// Adds every file of `tree` under `prefix/`.
    pub fn graft(&mut self, prefix: &str, tree: &Tree) {
        for (p, e) in tree.iter() {
            self.add(format!("{prefix}/{p}"), e.mode, e.data.clone());
        }
    }

    /// Whether a file is at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// The files below `prefix/`, by their path relative to it, in path order.
    pub fn under<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (&'a str, &'a File)> {
        let start = format!("{prefix}/");
        self.files
            .range(start.clone()..)
            .map_while(move |(p, f)| p.strip_prefix(&start).map(|rest| (rest, f)))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Directories implied by the files, with their modes: 0700 when every file below is a
    /// secret (mode 0600), 0755 otherwise, as [`Tree::dirs`].
    fn dirs(&self) -> BTreeMap<String, u32> {
        let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
        for (path, file) in &self.files {
            let secret = matches!(file, File::Data { mode: 0o600, .. });
            let mut d = path.as_str();
            while let Some((parent, _)) = d.rsplit_once('/') {
                let mode = dirs.entry(parent.to_owned()).or_insert(0o700);
                if !secret {
                    *mode = 0o755;
                }
                d = parent;
            }
        }
        dirs
    }

    /// Makes `dir` hold exactly these files (and the marker of [`crate::tree::MARKER`]),
    /// writing only what differs (see the module's documentation). A directory infragen did
    /// not write is refused ([`crate::tree::OutError`]) before anything is written.
    pub fn sync(&self, dir: &Path) -> Result<Synced> {
        check_out(dir)?;
        let fresh = match fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        if !fresh {
            // Two builds into one output directory take turns: a lock on the directory itself
            // (no lock file: a rebuild writes nothing), held until this one is done.
            let held = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
            rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive)
                .with_context(|| format!("locking {}", dir.display()))?;
            let root = Root::open(dir, Links::Refuse)?;
            return self.sync_into(&root);
        }
        // All or nothing: written beside it, then renamed into place.
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let name = dir
            .file_name()
            .context("output directory has no name")?
            .to_string_lossy()
            .into_owned();
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.new-"))
            .tempdir_in(&parent)?;
        let root = Root::open(staging.path(), Links::Refuse)?;
        root.chmod(Path::new("."), 0o755)?;
        let synced = self.sync_into(&root)?;
        crate::tree::replace_dir(dir, staging)?;
        Ok(synced)
    }

    /// [`Output::sync`] into the open directory `root`.
    fn sync_into(&self, root: &Root) -> Result<Synced> {
        let mut synced = Synced::default();
        let existing: BTreeMap<String, Meta> = root
            .walk()?
            .into_iter()
            .map(|(p, m)| (p.to_string_lossy().into_owned(), m))
            .collect();
        // Directories first, parents before children.
        for (d, mode) in self.dirs() {
            let rel = Path::new(&d);
            match existing.get(&d) {
                Some(m) if m.kind == Kind::Dir => {
                    if m.mode != mode {
                        root.chmod(rel, mode)?;
                        synced.dirs += 1;
                    }
                }
                other => {
                    if other.is_some() {
                        root.remove(rel)?;
                        synced.removed += 1;
                    }
                    root.mkdir(rel, mode)?;
                    synced.dirs += 1;
                }
            }
        }
        // Blobs, then every other file, then what says what a bundle holds.
        let last = |p: &str| {
            p == "digests.txt"
                || p.ends_with("/manifest.json")
                || p.ends_with(&format!("/{}", crate::manifest::SIGNATURE))
        };
        let order = |f: &File, p: &str| match f {
            File::Blob { .. } => 0,
            File::Data { .. } if last(p) => 2,
            File::Data { .. } => 1,
        };
        for pass in 0..3 {
            for (path, file) in &self.files {
                if order(file, path) != pass {
                    continue;
                }
                if same(root, path, file, existing.get(path))? {
                    synced.unchanged += 1;
                    continue;
                }
                let rel = Path::new(path);
                if existing.get(path).is_some_and(|m| m.kind == Kind::Dir) {
                    root.remove(rel)?;
                }
                match file {
                    File::Data { mode, data } => {
                        let mut f = root.create_atomic(rel, *mode)?;
                        f.write_all(data).with_context(|| {
                            format!("writing {}", root.path().join(rel).display())
                        })?;
                        f.commit_unsynced()?;
                    }
                    File::Blob { from } => root.link_atomic(from, rel)?,
                }
                synced.written += 1;
            }
        }
        // What is no longer produced (a removed directory takes its contents with it).
        let dirs = self.dirs();
        for path in existing.keys() {
            if path == MARKER || self.files.contains_key(path) || dirs.contains_key(path) {
                continue;
            }
            if root.meta(Path::new(path))?.is_some() {
                root.remove(Path::new(path))?;
                synced.removed += 1;
            }
        }
        let marker = Path::new(MARKER);
        let in_place = existing.get(MARKER).is_some_and(|m| {
            m.kind == Kind::File && m.mode == 0o644 && m.size == MARKER_TEXT.len() as u64
        }) && root.read(marker)? == MARKER_TEXT.as_bytes();
        if !in_place {
            if existing.get(MARKER).is_some_and(|m| m.kind == Kind::Dir) {
                root.remove(marker)?;
            }
            let mut f = root.create_atomic(marker, 0o644)?;
            f.write_all(MARKER_TEXT.as_bytes())?;
            f.commit_unsynced()?;
            synced.written += 1;
        }
        Ok(synced)
    }
}

/// Whether the entry at `path` (its metadata `meta`) already is `file`: a blob when it is
/// the store's file itself (same inode), or of the same size and bytes (a copy); bytes when
/// mode, size and content match.
fn same(root: &Root, path: &str, file: &File, meta: Option<&Meta>) -> Result<bool> {
    let Some(meta) = meta.filter(|m| m.kind == Kind::File) else {
        return Ok(false);
    };
    match file {
        File::Data { mode, data } => Ok(meta.mode == *mode
            && meta.size == data.len() as u64
            && root.read(Path::new(path))? == *data),
        File::Blob { from } => {
            let st = fs::metadata(from).with_context(|| format!("stat {}", from.display()))?;
            if (st.dev(), st.ino()) == meta.ino {
                return Ok(true);
            }
            if st.len() != meta.size {
                return Ok(false);
            }
            let theirs = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
            Ok(root.read(Path::new(path))? == theirs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Output, Synced};
    use crate::tree::MARKER;
    use std::fs;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::Path;

    fn tree(dir: &Path) -> Vec<(String, u32, Option<Vec<u8>>)> {
        let mut v: Vec<_> = walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .skip(1)
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
                let data = e.file_type().is_file().then(|| fs::read(e.path()).unwrap());
                (rel, mode, data)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_second_sync_writes_nothing_and_a_change_writes_only_itself() {
        let t = tempfile::tempdir().unwrap();
        let blob = t.path().join("blob");
        fs::write(&blob, b"layer").unwrap();
        let out = t.path().join("x/out");
        let mut o = Output::default();
        o.add("h/units/a.service", 0o644, "a");
        o.add("h/secrets/grafana/pw", 0o600, "s");
        o.add("h/manifest.json", 0o644, "{}");
        o.link("h/oci/blobs/sha256/b", blob.clone());
        o.add("digests.txt", 0o644, "d");
        let first = o.sync(&out).unwrap();
        assert_eq!((first.written, first.removed), (5 + 1, 0), "{first:?}");
        let before = tree(&out);
        assert!(
            before.contains(&("h/secrets".to_owned(), 0o700, None)),
            "{before:?}"
        );
        assert!(before.contains(&(
            "h/secrets/grafana/pw".to_owned(),
            0o600,
            Some(b"s".to_vec())
        )));
        assert_eq!(
            fs::metadata(out.join("h/oci/blobs/sha256/b"))
                .unwrap()
                .ino(),
            fs::metadata(&blob).unwrap().ino(),
            "a blob is a hard link to the store's"
        );
        let inodes = |p: &str| fs::symlink_metadata(out.join(p)).unwrap().ino();
        let kept = inodes("h/units/a.service");
        assert_eq!(
            o.sync(&out).unwrap(),
            Synced {
                unchanged: 5,
                written: 0,
                removed: 0,
                dirs: 0
            }
        );
        assert_eq!(tree(&out), before);
        assert_eq!(inodes("h/units/a.service"), kept, "not replaced");

        // One file changes, one goes, one comes: only those are touched.
        let mut p = Output::default();
        p.add("h/units/a.service", 0o644, "a");
        p.add("h/secrets/grafana/pw", 0o600, "changed");
        p.add("h/manifest.json", 0o644, "{}");
        p.add("h/units/new.service", 0o644, "n");
        p.add("digests.txt", 0o644, "d");
        let s = p.sync(&out).unwrap();
        assert_eq!((s.unchanged, s.written, s.removed), (3, 2, 1), "{s:?}");
        assert_eq!(inodes("h/units/a.service"), kept);
        assert!(
            !out.join("h/oci").exists(),
            "a directory no longer produced goes"
        );
        assert_eq!(
            fs::read(out.join("h/secrets/grafana/pw")).unwrap(),
            b"changed"
        );
        assert!(out.join(MARKER).is_file());
        // A file's mode changed by hand, a stray file, a symlink in place of a file: put right.
        fs::set_permissions(out.join("digests.txt"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::write(out.join("h/stray"), "x").unwrap();
        fs::remove_file(out.join("h/manifest.json")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("h/manifest.json")).unwrap();
        let s = p.sync(&out).unwrap();
        assert_eq!((s.written, s.removed), (2, 1), "{s:?}");
        assert_eq!(fs::read(out.join("h/manifest.json")).unwrap(), b"{}");
        assert!(fs::symlink_metadata(out.join("h/manifest.json"))
            .unwrap()
            .is_file());
        // Nothing but the output and the marker: no temporary file left anywhere.
        let names: Vec<String> = tree(&out).into_iter().map(|e| e.0).collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
        let beside: Vec<_> = fs::read_dir(t.path().join("x")).unwrap().collect();
        assert_eq!(beside.len(), 1, "no staging directory left beside");
    }

    /// A blob on another file system (`/dev/shm`, a tmpfs, when it is one) cannot be linked:
    /// it is copied, and the copy is then recognised by its bytes (nothing written again).
    #[test]
    fn a_blob_on_another_file_system_is_copied_then_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let blob = shm.path().join("blob");
        fs::write(&blob, b"layer bytes").unwrap();
        let across = fs::metadata(&blob).unwrap().dev() != fs::metadata(t.path()).unwrap().dev();
        let out = t.path().join("out");
        let mut o = Output::default();
        o.link("h/oci/blobs/sha256/b", blob.clone());
        o.sync(&out).unwrap();
        let at = out.join("h/oci/blobs/sha256/b");
        assert_eq!(fs::read(&at).unwrap(), b"layer bytes");
        let linked = fs::metadata(&at).unwrap().ino() == fs::metadata(&blob).unwrap().ino();
        assert_eq!(linked, !across, "linked on one file system, copied across");
        let s = o.sync(&out).unwrap();
        assert_eq!((s.unchanged, s.written), (1, 0), "{s:?}");
    }

    #[test]
    fn a_directory_infragen_did_not_write_is_refused_untouched() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("thesis.tex"), "work").unwrap();
        let before = tree(t.path());
        let mut o = Output::default();
        o.add("h/x", 0o644, "x");
        assert!(o.sync(t.path()).is_err());
        assert_eq!(tree(t.path()), before);
    }
}
