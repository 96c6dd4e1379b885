//! Atomic file writes, the one implementation: a temporary file in the destination's
//! directory, created with the exact mode (set with `fchmod`, so the umask never decides),
//! written, fsynced, renamed over the destination, and the directory fsynced. An error at any
//! step removes the temporary file and leaves the destination as it was.
//!
//! [`Root::create_atomic`] / [`Root::write_atomic`] are for host writes (the directory resolved
//! beneath the root as its [`super::Links`] rule says); [`AtomicFile::create`] /
//! [`write_file_atomic`] for what the build writes by path (outputs, caches, the lock);
//! [`AtomicFile::resume`] for a download that may go on in a later run (a stable temporary
//! name, locked while open). It does not create directories or choose modes: callers do.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::{io as errno, relative, Links, Root};

/// Makes temporary names unique between threads of one process (the pid, between processes).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name beside its destination. [`AtomicFile::commit`]
/// puts it in place; dropping it uncommitted removes it.
#[derive(Debug)]
pub struct AtomicFile {
    dir: OwnedFd,
    tmp: OsString,
    name: OsString,
    file: File,
    shown: PathBuf,
    committed: bool,
    /// Left in place when dropped uncommitted ([`AtomicFile::keep`]).
    keep: bool,
}

impl AtomicFile {
    /// Starts the file that will replace `path` (whose directory must exist, and is reached as
    /// given: the caller chose the path) with `mode` exactly.
    pub fn create(path: &Path, mode: u32) -> Result<Self> {
        let (parent, name) = split(path)?;
        Root::open(parent, Links::Refuse)?.create_atomic(Path::new(name), mode)
    }

    /// Starts `name` in the open directory `dir`; `shown` names the destination in messages.
    fn in_dir(dir: OwnedFd, name: &OsStr, mode: u32, shown: PathBuf) -> Result<Self> {
        loop {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            tmp.push(format!(".tmp-{}-{n}", std::process::id()));
            let created = rustix::fs::openat(
                &dir,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
            );
            let fd = match created {
                Ok(fd) => fd,
                // Left by a killed process that had this pid: take the next name.
                Err(Errno::EXIST) => continue,
                Err(e) => {
                    return Err(errno(e)).with_context(|| {
                        format!("creating a temporary file for {}", shown.display())
                    })
                }
            };
            let this = Self {
                dir,
                tmp,
                name: name.to_owned(),
                file: File::from(fd),
                shown,
                committed: false,
                keep: false,
            };
            // The mode given at creation is filtered by the umask; set it exactly. On error,
            // dropping `this` removes the temporary file.
            rustix::fs::fchmod(&this.file, Mode::from_raw_mode(mode & 0o7777))
                .map_err(errno)
                .with_context(|| format!("setting the mode of {}", this.shown.display()))?;
            return Ok(this);
        }
    }

    /// Opens the file that will replace `path` under a stable temporary name beside it,
    /// `.<name>.partial`, to go on with what an earlier run left there (a download that
    /// stopped): returns it with the bytes it holds, its cursor at their end, readable. It is
    /// locked (`flock`) while open: `None` when another process has it (that caller then
    /// writes its own with [`AtomicFile::create`]). Dropped uncommitted, it is removed unless
    /// [`AtomicFile::keep`] was called.
    pub fn resume(path: &Path, mode: u32) -> Result<Option<(Self, u64)>> {
        let (parent, name) = split(path)?;
        let root = Root::open(parent, Links::Refuse)?;
        let (dir, name) = root.parent_with(Path::new(name), OFlags::RDONLY)?;
        let mut tmp = OsString::from(".");
        tmp.push(name);
        tmp.push(".partial");
        let fd = rustix::fs::openat(
            &dir,
            &tmp,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map_err(errno)
        .with_context(|| format!("opening the partial file of {}", path.display()))?;
        match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => {
                return Err(errno(e))
                    .with_context(|| format!("locking the partial file of {}", path.display()))
            }
        }
        let mut this = Self {
            dir,
            tmp,
            name: name.to_owned(),
            file: File::from(fd),
            shown: path.to_path_buf(),
            committed: false,
            keep: false,
        };
        rustix::fs::fchmod(&this.file, Mode::from_raw_mode(mode & 0o7777))
            .map_err(errno)
            .with_context(|| format!("setting the mode of {}", this.shown.display()))?;
        let held = io::Seek::seek(&mut this.file, io::SeekFrom::End(0))
            .with_context(|| format!("reading the partial file of {}", path.display()))?;
        Ok(Some((this, held)))
    }

    /// Leaves the temporary file in place if this is dropped uncommitted: a
    /// [`AtomicFile::resume`]d download goes on from it in a later run.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The open temporary file (to write to, or for its metadata).
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Puts the file in place durably: fsync, rename over the destination, fsync of the
    /// directory (so the rename itself survives a crash).
    pub fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("writing {}", self.shown.display()))?;
        rustix::fs::renameat(&self.dir, &self.tmp, &self.dir, &self.name)
            .map_err(errno)
            .with_context(|| format!("renaming into {}", self.shown.display()))?;
        self.committed = true;
        rustix::fs::fsync(&self.dir)
            .map_err(errno)
            .with_context(|| format!("syncing the directory of {}", self.shown.display()))
    }
}

impl AtomicFile {
    /// Puts the file in place by renaming it over the destination, without the fsyncs of
    /// [`AtomicFile::commit`]: for files that are checked by digest when read and rewritten by
    /// the next run (a build's output directory, whose every bundle lists each file's sha256),
    /// where a reader must never see a partial file but a crash may lose the change.
    pub fn commit_unsynced(mut self) -> Result<()> {
        rustix::fs::renameat(&self.dir, &self.tmp, &self.dir, &self.name)
            .map_err(errno)
            .with_context(|| format!("renaming into {}", self.shown.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed && !self.keep {
            let _ = rustix::fs::unlinkat(&self.dir, &self.tmp, AtFlags::empty());
        }
    }
}

/// Writes `bytes` to `path` atomically with `mode` exactly (see [`AtomicFile`]).
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    f.commit()
}

impl Root {
    /// Starts the file that will replace `rel` below this root, with `mode` exactly (its
    /// directory resolved as the root's link rule says; a symlink at `rel` is replaced, never
    /// followed).
    pub fn create_atomic(&self, rel: &Path, mode: u32) -> Result<AtomicFile> {
        let rel = relative(rel)?;
        let (dir, name) = self.parent_with(&rel, OFlags::RDONLY)?;
        AtomicFile::in_dir(dir, name, mode, self.path.join(&rel))
    }

    /// Writes `bytes` to `rel` atomically with `mode` exactly (see [`AtomicFile`]).
    pub fn write_atomic(&self, rel: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let mut f = self.create_atomic(rel, mode)?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", self.shown(rel)))?;
        f.commit()
    }
}

impl Root {
    /// Makes `rel` below this root a hard link to the regular file `from` (a path outside the
    /// root, the caller's: a blob store), replacing what is at `rel` atomically: linked under a
    /// temporary name beside it, then renamed over it (not synced, as
    /// [`AtomicFile::commit_unsynced`]). Across file systems, where no link can be made, the
    /// file is copied instead.
    pub fn link_atomic(&self, from: &Path, rel: &Path) -> Result<()> {
        let rel = relative(rel)?;
        let (dir, name) = self.parent_with(&rel, OFlags::RDONLY)?;
        let shown = self.path.join(&rel);
        loop {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            tmp.push(format!(".tmp-{}-{n}", std::process::id()));
            match rustix::fs::linkat(rustix::fs::CWD, from, &dir, &tmp, AtFlags::empty()) {
                Ok(()) => {}
                Err(Errno::EXIST) => continue,
                Err(Errno::XDEV) => {
                    let mut f = AtomicFile::in_dir(dir, name, 0o644, shown.clone())?;
                    let mut src = std::fs::File::open(from)
                        .with_context(|| format!("reading {}", from.display()))?;
                    io::copy(&mut src, f.file()).with_context(|| {
                        format!("copying {} to {}", from.display(), shown.display())
                    })?;
                    return f.commit_unsynced();
                }
                Err(e) => {
                    return Err(errno(e)).with_context(|| {
                        format!("linking {} to {}", shown.display(), from.display())
                    })
                }
            }
            if let Err(e) = rustix::fs::renameat(&dir, &tmp, &dir, name) {
                let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
                return Err(errno(e)).with_context(|| format!("renaming into {}", shown.display()));
            }
            return Ok(());
        }
    }
}

/// `path`'s directory (`.` for a bare name) and file name.
fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    let name = path
        .file_name()
        .with_context(|| format!("`{}`: no file name", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

#[cfg(test)]
mod tests {
    use super::{write_file_atomic, AtomicFile};
    use crate::fsx::{Links, Root};
    use std::fs;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;
    use std::process::Command;

    /// Where [`write_under_umask`] writes (set by [`modes_are_exact_whatever_the_umask`]).
    const DIR_VAR: &str = "INFRAGEN_ATOMIC_TEST_DIR";

    /// The files the child writes, by path and by root, and the mode each must have.
    const FILES: [(&str, u32); 4] = [
        ("public", 0o644),
        ("private", 0o600),
        ("exec", 0o755),
        ("shared", 0o664),
    ];

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    #[ignore = "helper: run in a child process by modes_are_exact_whatever_the_umask"]
    fn write_under_umask() {
        let dir = std::path::PathBuf::from(std::env::var_os(DIR_VAR).expect(DIR_VAR));
        let root = Root::open(&dir.join("root"), Links::Refuse).unwrap();
        for (name, m) in FILES {
            write_file_atomic(&dir.join("path").join(name), name.as_bytes(), m).unwrap();
            root.write_atomic(Path::new(name), name.as_bytes(), m)
                .unwrap();
        }
    }

    #[test]
    fn modes_are_exact_whatever_the_umask() {
        let exe = std::env::current_exe().unwrap();
        for umask in ["077", "000", "022"] {
            let t = tempfile::tempdir().unwrap();
            fs::create_dir(t.path().join("path")).unwrap();
            fs::create_dir(t.path().join("root")).unwrap();
            let out = Command::new("sh")
                .args(["-c", r#"umask "$1" && shift && exec "$@""#, "sh", umask])
                .arg(&exe)
                .args(["--exact", "fsx::atomic::tests::write_under_umask"])
                .args(["--ignored", "--test-threads=1"])
                .env(DIR_VAR, t.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "umask {umask}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            for sub in ["path", "root"] {
                let dir = t.path().join(sub);
                for (name, m) in FILES {
                    let p = dir.join(name);
                    assert_eq!(mode(&p), m, "umask {umask}: {}", p.display());
                    assert_eq!(fs::read(&p).unwrap(), name.as_bytes());
                }
                let mut want: Vec<&str> = FILES.iter().map(|f| f.0).collect();
                want.sort_unstable();
                assert_eq!(names(&dir), want, "umask {umask}: no temporary file left");
            }
        }
    }

    #[test]
    fn a_file_is_replaced_whole_and_a_link_is_replaced_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let (target, link) = (t.path().join("target"), t.path().join("link"));
        fs::write(&target, b"untouched").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_file_atomic(&link, b"new", 0o640).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(
            (fs::read(&link).unwrap(), mode(&link)),
            (b"new".to_vec(), 0o640)
        );
        write_file_atomic(&link, b"again", 0o600).unwrap();
        assert_eq!(
            (fs::read(&link).unwrap(), mode(&link)),
            (b"again".to_vec(), 0o600)
        );
        assert_eq!(names(t.path()), ["link", "target"]);
    }

    #[test]
    fn nothing_is_left_behind_on_error() {
        let t = tempfile::tempdir().unwrap();
        // Abandoned: dropping it removes the temporary file; the old content stays.
        fs::write(t.path().join("f"), b"old").unwrap();
        let mut f = AtomicFile::create(&t.path().join("f"), 0o644).unwrap();
        f.write_all(b"half").unwrap();
        assert_eq!(names(t.path()).len(), 2);
        drop(f);
        assert_eq!(names(t.path()), ["f"]);
        assert_eq!(fs::read(t.path().join("f")).unwrap(), b"old");
        // The rename fails (a directory is in the way): the error names the path, and the
        // temporary file is gone.
        fs::create_dir(t.path().join("d")).unwrap();
        fs::write(t.path().join("d/x"), b"").unwrap();
        let e = write_file_atomic(&t.path().join("d"), b"x", 0o644).unwrap_err();
        assert!(format!("{e:#}").contains("renaming into"), "{e:#}");
        assert_eq!(names(t.path()), ["d", "f"]);
        // A missing directory is an error naming it; nothing is created.
        let e = write_file_atomic(&t.path().join("no/f"), b"x", 0o644).unwrap_err();
        assert!(format!("{e:#}").contains("no"), "{e:#}");
        assert_eq!(names(t.path()), ["d", "f"]);
        // The same through a root.
        let root = Root::open(t.path(), Links::Refuse).unwrap();
        assert!(root.write_atomic(Path::new("d"), b"x", 0o644).is_err());
        drop(root.create_atomic(Path::new("g"), 0o644).unwrap());
        assert_eq!(names(t.path()), ["d", "f"]);
    }

    #[test]
    fn a_resumed_file_is_kept_when_asked_locked_while_open_and_committed_in_place() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("p.deb");
        let (mut f, held) = AtomicFile::resume(&dest, 0o644).unwrap().unwrap();
        assert_eq!(held, 0);
        // Another opener (another process, or another open here) is told to make its own.
        assert!(AtomicFile::resume(&dest, 0o644).unwrap().is_none());
        f.write_all(b"half").unwrap();
        f.keep();
        drop(f);
        assert_eq!(names(t.path()), [".p.deb.partial"]);
        let (mut f, held) = AtomicFile::resume(&dest, 0o644).unwrap().unwrap();
        assert_eq!(held, 4);
        f.write_all(b" and the rest").unwrap();
        f.commit().unwrap();
        assert_eq!(names(t.path()), ["p.deb"]);
        assert_eq!(fs::read(&dest).unwrap(), b"half and the rest");
        // Not kept: removed like any other.
        let (f, _) = AtomicFile::resume(&dest, 0o644).unwrap().unwrap();
        drop(f);
        assert_eq!(names(t.path()), ["p.deb"]);
    }
}
