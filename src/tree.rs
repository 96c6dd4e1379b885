//! An in-memory file tree: the value `render` returns and `render --out` / `build` write.
//!
//! Paths are relative, `/`-separated, sorted (`BTreeMap`), so writing and hashing are
//! deterministic. Writing is all or nothing: the tree goes to a temporary directory beside the
//! target, which is then renamed into place.
//!
//! Only a directory infragen wrote is ever replaced: every output directory carries the marker
//! file [`MARKER`], and a target that exists must be empty or hold it ([`check_out`]), the way
//! cargo and mkosi refuse to overwrite what they did not create.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The file, directly in an output directory, that says infragen wrote the directory. It sits
/// beside the per-host bundles, never inside one (a bundle lists every file it holds).
pub const MARKER: &str = ".infragen-out";

/// The marker's content; a marker is recognised by its first line.
pub const MARKER_TEXT: &str = "infragen output directory: `infragen render` and `infragen build` replace it whole; keep nothing else here\n";

/// Why an output directory may not be replaced.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    /// The directory holds files and no marker: it is someone else's.
    #[error("--out {}: the directory holds files infragen did not write; nothing was changed\nhint: choose an empty or new directory, or remove it first", .0.display())]
    Foreign(PathBuf),
    /// The path exists and is not a directory.
    #[error("--out {}: exists and is not a directory; nothing was changed\nhint: choose an empty or new directory", .0.display())]
    NotDir(PathBuf),
    /// The path could not be inspected.
    #[error("--out {}: cannot inspect it: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
}

/// Checks that `dir` may be replaced by an output tree: it is absent, an empty directory, or a
/// directory holding infragen's [`MARKER`]. A symlink is judged by the directory it points to
/// (replacing it replaces the link, never what it points to).
pub fn check_out(dir: &Path) -> Result<(), OutError> {
    let io = |e| OutError::Io(dir.to_path_buf(), e);
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if !meta.is_dir() {
        return Err(OutError::NotDir(dir.to_path_buf()));
    }
    if fs::read_dir(dir).map_err(io)?.next().is_none() {
        return Ok(());
    }
    let marker = dir.join(MARKER);
    let ours = fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file())
        && fs::read(&marker).is_ok_and(|text| {
            let first = MARKER_TEXT.lines().next().unwrap_or_default();
            text.split(|&b| b == b'\n').next() == Some(first.as_bytes())
        });
    if ours {
        Ok(())
    } else {
        Err(OutError::Foreign(dir.to_path_buf()))
    }
}

/// One regular file: mode and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (e.g. `0o644`).
    pub mode: u32,
    /// Content.
    pub data: Vec<u8>,
}

/// Files by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    /// Adds a file; a path may be added once.
    pub fn add(&mut self, path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) {
        let path = path.into();
        debug_assert!(
            !path.starts_with('/') && !path.split('/').any(|p| p == ".." || p.is_empty()),
            "{path}"
        );
        let old = self.entries.insert(
            path.clone(),
            Entry {
                mode,
                data: data.into(),
            },
        );
        assert!(old.is_none(), "rendered twice: {path}");
    }

    /// The files in path order, taken out of the tree.
    pub fn into_files(self) -> impl Iterator<Item = (String, Entry)> {
        self.entries.into_iter()
    }

    /// Adds every file of `other` under `prefix/`.
    pub fn graft(&mut self, prefix: &str, other: Tree) {
        for (p, e) in other.entries {
            self.add(format!("{prefix}/{p}"), e.mode, e.data);
        }
    }

    /// Replaces the content of an existing file (tests use it to plant defects).
    pub fn set(&mut self, path: &str, data: impl Into<Vec<u8>>) {
        self.entries
            .get_mut(path)
            .unwrap_or_else(|| panic!("no file {path}"))
            .data = data.into();
    }

    /// Files in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree has no files.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Directories implied by the files, with their modes: 0700 when every file below holds a
    /// secret (mode 0600), 0755 otherwise. Derived, so the umask never decides.
    pub fn dirs(&self) -> BTreeMap<String, u32> {
        let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
        for (path, entry) in &self.entries {
            let mut d = path.as_str();
            while let Some((parent, _)) = d.rsplit_once('/') {
                let mode = dirs.entry(parent.to_owned()).or_insert(0o700);
                if entry.mode != 0o600 {
                    *mode = 0o755;
                }
                d = parent;
            }
        }
        dirs
    }

    /// Writes the files below `dir` (which must exist), with exact modes.
    pub fn write_into(&self, dir: &Path) -> Result<()> {
        let dirs = self.dirs();
        // Parents sort before their children, so each directory is made once, in order.
        for d in dirs.keys() {
            let full = dir.join(d);
            fs::create_dir(&full).with_context(|| format!("creating {}", full.display()))?;
        }
        for (path, entry) in &self.entries {
            let full = dir.join(path);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(entry.mode)
                .open(&full)
                .with_context(|| format!("writing {}", full.display()))?;
            f.write_all(&entry.data)
                .with_context(|| format!("writing {}", full.display()))?;
            // `mode` at creation is filtered by the umask; set it exactly.
            f.set_permissions(fs::Permissions::from_mode(entry.mode))
                .with_context(|| format!("setting mode of {}", full.display()))?;
        }
        for (d, mode) in dirs {
            let full = dir.join(d);
            fs::set_permissions(&full, fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting mode of {}", full.display()))?;
        }
        Ok(())
    }

    /// Replaces `dir` with exactly this tree (and the [`MARKER`]): written beside it under a
    /// temporary name, then renamed into place. On error nothing is left behind and `dir` is
    /// untouched; a `dir` infragen did not write is refused ([`OutError`]) before anything is
    /// written.
    pub fn write_atomic(&self, dir: &Path) -> Result<()> {
        check_out(dir)?;
        let parent = parent_of(dir)?;
        let name = dir
            .file_name()
            .context("output directory has no name")?
            .to_string_lossy()
            .into_owned();
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.new-"))
            .tempdir_in(&parent)?;
        self.write_into(staging.path())?;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))?;
        replace_dir(dir, staging)
    }
}

fn parent_of(dir: &Path) -> Result<std::path::PathBuf> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    Ok(parent)
}

/// Puts the finished `staging` directory (on the same file system) in the place of `dir`,
/// marked with [`MARKER`]: the old tree is moved aside, the new one renamed in, the old one
/// removed. A `dir` that [`check_out`] refuses is left alone. A failure puts the old tree back;
/// `staging` is removed whatever happens.
pub fn replace_dir(dir: &Path, staging: tempfile::TempDir) -> Result<()> {
    check_out(dir)?;
    let marker = staging.path().join(MARKER);
    fs::write(&marker, MARKER_TEXT).with_context(|| format!("writing {}", marker.display()))?;
    fs::set_permissions(&marker, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting mode of {}", marker.display()))?;
    let parent = parent_of(dir)?;
    let name = dir
        .file_name()
        .context("output directory has no name")?
        .to_string_lossy()
        .into_owned();
    if dir.exists() {
        let old = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(&parent)?;
        let old_path = old.path().join("tree");
        fs::rename(dir, &old_path).with_context(|| format!("moving {} aside", dir.display()))?;
        if let Err(e) = fs::rename(staging.path(), dir) {
            let _ = fs::rename(&old_path, dir);
            return Err(e).with_context(|| format!("renaming into {}", dir.display()));
        }
        drop(old);
    } else {
        fs::rename(staging.path(), dir)
            .with_context(|| format!("renaming into {}", dir.display()))?;
    }
    // The staging directory was renamed away; forget it rather than delete `dir`.
    let _ = staging.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn atomic_write_replaces_whole_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut a = Tree::default();
        a.add("h/x.conf", 0o640, "x");
        a.add("h/old", 0o644, "o");
        a.write_atomic(&out).unwrap();
        assert_eq!(
            fs::metadata(out.join("h/x.conf"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o640
        );
        let mut b = Tree::default();
        b.add("h/x.conf", 0o644, "y");
        b.write_atomic(&out).unwrap();
        assert!(!out.join("h/old").exists());
        let mut c = Tree::default();
        c.add("h/secrets/k", 0o600, "s");
        c.add("h/conf", 0o644, "c");
        assert_eq!(
            c.dirs().into_iter().collect::<Vec<_>>(),
            [("h".to_owned(), 0o755), ("h/secrets".to_owned(), 0o700)]
        );
        assert_eq!(fs::read_to_string(out.join("h/x.conf")).unwrap(), "y");
        assert_eq!(fs::read_to_string(out.join(MARKER)).unwrap(), MARKER_TEXT);
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging directories left");
    }

    #[test]
    fn only_new_empty_or_marked_directories_may_be_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let d = tmp.path().join(name);
            fs::create_dir(&d).unwrap();
            d
        };
        assert!(check_out(&tmp.path().join("absent")).is_ok());
        assert!(check_out(&dir("empty")).is_ok());
        let marked = dir("marked");
        fs::write(marked.join(MARKER), MARKER_TEXT).unwrap();
        fs::write(marked.join("x"), "").unwrap();
        assert!(check_out(&marked).is_ok());

        let user = dir("user");
        fs::write(user.join("thesis.tex"), "work").unwrap();
        let hidden = dir("hidden");
        fs::write(hidden.join(".bashrc"), "").unwrap();
        let other_marker = dir("other-marker");
        fs::write(other_marker.join(MARKER), "something else\n").unwrap();
        let marker_dir = dir("marker-dir");
        fs::create_dir(marker_dir.join(MARKER)).unwrap();
        let marker_link = dir("marker-link");
        std::os::unix::fs::symlink(marked.join(MARKER), marker_link.join(MARKER)).unwrap();
        for d in [&user, &hidden, &other_marker, &marker_dir, &marker_link] {
            assert!(
                matches!(check_out(d), Err(OutError::Foreign(_))),
                "{}",
                d.display()
            );
        }
        assert!(matches!(
            check_out(&user.join("thesis.tex")),
            Err(OutError::NotDir(_))
        ));

        // Refused before anything is written: the user's file stays, nothing appears beside it.
        let mut t = Tree::default();
        t.add("h/x", 0o644, "x");
        let err = t.write_atomic(&user).unwrap_err();
        assert!(err.downcast_ref::<OutError>().is_some(), "{err:#}");
        assert_eq!(fs::read_to_string(user.join("thesis.tex")).unwrap(), "work");
        assert_eq!(fs::read_dir(&user).unwrap().count(), 1);
        let staging = tempfile::tempdir_in(tmp.path()).unwrap();
        let staged = staging.path().to_path_buf();
        assert!(replace_dir(&user, staging).is_err());
        assert!(!staged.exists(), "the staging directory is removed");
        let names: BTreeSet<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}
