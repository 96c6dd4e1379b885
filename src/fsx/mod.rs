//! Filesystem safety: the one layer every extraction and every host write goes through.
//!
//! A [`Root`] is an open directory handle. Every operation takes a path relative to it and
//! resolves it with `openat2(2)`: the parent directory with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS` ([`Links::Refuse`]: a symlink anywhere on the way is an error) or with
//! `RESOLVE_IN_ROOT` ([`Links::InRoot`]: symlinks are followed as if the root were `/`, so they
//! can never lead out of it). The last component is then acted on with the `*at` call and
//! `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`, so a symlink in a tree is data, never a path that
//! infragen writes through. Paths are checked first: relative, no `..`, no NUL, no empty name.
//!
//! It does not decide what may be written (extraction rules, modes from the manifest): callers
//! do; it only guarantees where.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

mod atomic;

pub use atomic::{write_file_atomic, AtomicFile};

/// How symlinks on the way to a path are treated (the last component is never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A symlink anywhere on the way is an error: trees infragen made itself (extraction,
    /// the state directory).
    Refuse,
    /// Symlinks are resolved inside the root, as if it were `/`: host paths an operator may
    /// have linked (`/data` → a mounted disk), which must still never lead out of `--root`.
    InRoot,
}

/// What is at a path (never following a symlink there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink.
    Symlink,
    /// Anything else (device, fifo, socket).
    Other,
}

/// The metadata the callers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The kind of entry.
    pub kind: Kind,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device and inode: the same pair is the same file (two hard links to one file).
    pub ino: (u64, u64),
}

/// An open directory that every operation is relative to.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    links: Links,
}

/// A relative path checked for `..`, absolute parts, NUL and emptiness; `.` parts dropped.
pub fn relative(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir => bail!("`{}`: an absolute path", raw.display()),
            Component::ParentDir => bail!("`{}`: `..` leaves the root", raw.display()),
            Component::Prefix(_) => bail!("`{}`: not a Unix path", raw.display()),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("`{}`: an empty path", raw.display());
    }
    if raw.as_os_str().as_bytes().contains(&0) {
        bail!("`{}`: a NUL byte in the path", raw.display());
    }
    Ok(out)
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

impl Root {
    /// Opens the directory `path` (the root itself is the caller's choice and may be reached
    /// through symlinks; nothing below it will be, beyond what `links` allows).
    pub fn open(path: &Path, links: Links) -> Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)
        .with_context(|| format!("opening directory {}", path.display()))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
            links,
        })
    }

    /// The path this root was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn resolve(&self) -> ResolveFlags {
        match self.links {
            Links::Refuse => {
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
            }
            Links::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        }
    }

    fn shown(&self, rel: &Path) -> String {
        self.path.join(rel).display().to_string()
    }

    /// Opens `rel` below the root with `flags` (resolution confined as the root says).
    fn open_at(&self, rel: &Path, flags: OFlags, mode: Mode) -> std::io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::openat2(&self.fd, rel, flags | OFlags::CLOEXEC, mode, self.resolve()).map_err(
            |e| {
                if e == Errno::LOOP || e == Errno::XDEV {
                    std::io::Error::other("a symlink on the way, which infragen does not follow")
                } else {
                    io(e)
                }
            },
        )
    }

    /// The parent directory of `rel` (opened as a path handle) and its last component.
    fn parent<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
        self.parent_with(rel, OFlags::PATH)
    }

    /// The parent directory of `rel` opened with `flags` (`RDONLY` to fsync it) and its last
    /// component.
    fn parent_with<'a>(&self, rel: &'a Path, flags: OFlags) -> Result<(OwnedFd, &'a OsStr)> {
        let name = rel
            .file_name()
            .with_context(|| format!("`{}`: no file name", rel.display()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self
            .open_at(parent, flags | OFlags::DIRECTORY, Mode::empty())
            .with_context(|| format!("{}: opening its directory", self.shown(rel)))?;
        Ok((fd, name))
    }

    /// A sub-directory as a root of its own (same link rule).
    pub fn sub(&self, rel: &Path) -> Result<Self> {
        let rel = relative(rel)?;
        let fd = self
            .open_at(&rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .with_context(|| format!("opening directory {}", self.shown(&rel)))?;
        Ok(Self {
            fd,
            path: self.path.join(rel),
            links: self.links,
        })
    }

    /// What is at `rel`, not following a symlink there; `None` when nothing is (a missing
    /// parent directory included).
    pub fn meta(&self, rel: &Path) -> Result<Option<Meta>> {
        let name = rel
            .file_name()
            .with_context(|| format!("`{}`: no file name", rel.display()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = match self.open_at(parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{}: opening its directory", self.shown(rel)))
            }
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let kind = match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => Kind::Dir,
                    FileType::RegularFile => Kind::File,
                    FileType::Symlink => Kind::Symlink,
                    _ => Kind::Other,
                };
                Ok(Some(Meta {
                    kind,
                    mode: st.st_mode & 0o7777,
                    uid: st.st_uid,
                    gid: st.st_gid,
                    size: u64::try_from(st.st_size).unwrap_or(0),
                    ino: (st.st_dev, st.st_ino),
                }))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io(e)).with_context(|| format!("stat {}", self.shown(rel))),
        }
    }

    /// Creates directory `rel` with `mode` (exactly) unless a directory is there; a file or
    /// symlink in its place is an error.
    pub fn mkdir(&self, rel: &Path, mode: u32) -> Result<()> {
        let (dir, name) = self.parent(rel)?;
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(mode & 0o7777)) {
            Ok(()) => self.chmod(rel, mode),
            Err(Errno::EXIST) => match self.meta(rel)? {
                Some(m) if m.kind == Kind::Dir => Ok(()),
                _ => bail!("{}: exists and is not a directory", self.shown(rel)),
            },
            Err(e) => Err(io(e)).with_context(|| format!("creating {}", self.shown(rel))),
        }
    }

    /// Creates `rel` and every missing parent (new ones with `mode`).
    pub fn mkdir_all(&self, rel: &Path, mode: u32) -> Result<()> {
        let rel = relative(rel)?;
        let mut p = PathBuf::new();
        for c in rel.components() {
            p.push(c);
            match self.meta(&p)? {
                Some(m) if m.kind == Kind::Dir => {}
                // An operator's link to a directory, resolved inside the root.
                Some(m) if m.kind == Kind::Symlink && self.links == Links::InRoot => {
                    self.open_at(&p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
                        .with_context(|| {
                            format!(
                                "{}: a link that is not a directory in the root",
                                self.shown(&p)
                            )
                        })?;
                }
                _ => self.mkdir(&p, mode)?,
            }
        }
        Ok(())
    }

    /// Opens `rel` for reading, a symlink at its end refused (and a fifo never waited on).
    fn open_read(&self, rel: &Path) -> Result<OwnedFd> {
        self.open_at(
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", self.shown(rel)))
    }

    /// Sets the permission bits of `rel` (a file or directory, never through a symlink).
    pub fn chmod(&self, rel: &Path, mode: u32) -> Result<()> {
        let fd = self.open_read(rel)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))
            .map_err(io)
            .with_context(|| format!("chmod {}", self.shown(rel)))
    }

    /// Sets the owner of `rel` (a symlink itself, when it is one).
    pub fn chown(&self, rel: &Path, uid: u32, gid: u32) -> Result<()> {
        let (dir, name) = self.parent(rel)?;
        rustix::fs::chownat(
            &dir,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io)
        .with_context(|| format!("chown {}", self.shown(rel)))
    }

    /// Creates a new regular file `rel` with `mode` (exactly); an existing entry is an error.
    pub fn create(&self, rel: &Path, mode: u32) -> Result<File> {
        let (dir, name) = self.parent(rel)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map_err(io)
        .with_context(|| format!("creating {}", self.shown(rel)))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))
            .map_err(io)
            .with_context(|| format!("chmod {}", self.shown(rel)))?;
        Ok(File::from(fd))
    }

    /// Opens the regular file `rel` for reading (never through a symlink at its end).
    pub fn open_file(&self, rel: &Path) -> Result<File> {
        let file = File::from(self.open_read(rel)?);
        if !file.metadata()?.is_file() {
            bail!("{}: not a regular file", self.shown(rel));
        }
        Ok(file)
    }

    /// Reads the regular file `rel` whole.
    pub fn read(&self, rel: &Path) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut self.open_file(rel)?, &mut out)
            .with_context(|| format!("reading {}", self.shown(rel)))?;
        Ok(out)
    }

    /// Creates the symlink `rel` pointing at `target` (stored as given, never followed).
    pub fn symlink(&self, target: &Path, rel: &Path) -> Result<()> {
        let (dir, name) = self.parent(rel)?;
        rustix::fs::symlinkat(target, &dir, name)
            .map_err(io)
            .with_context(|| format!("creating symlink {}", self.shown(rel)))
    }

    /// Points symlink `rel` at `target` atomically (a new link renamed over it).
    pub fn symlink_atomic(&self, target: &Path, rel: &Path) -> Result<()> {
        let name = rel
            .file_name()
            .with_context(|| format!("`{}`: no file name", rel.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".new");
        let tmp = rel.with_file_name(tmp_name);
        self.remove(&tmp)?;
        self.symlink(target, &tmp)?;
        self.rename(&tmp, rel)?;
        self.sync_dir(rel.parent().unwrap_or(Path::new("")))
    }

    /// The target of symlink `rel`.
    pub fn read_link(&self, rel: &Path) -> Result<PathBuf> {
        let (dir, name) = self.parent(rel)?;
        let t = rustix::fs::readlinkat(&dir, name, Vec::new())
            .map_err(io)
            .with_context(|| format!("reading link {}", self.shown(rel)))?;
        Ok(PathBuf::from(OsStr::from_bytes(t.as_bytes())))
    }

    /// Hard-links `to` to the existing regular file `from` (both below the root; a symlink at
    /// `from` is linked as itself, never followed).
    pub fn hard_link(&self, from: &Path, to: &Path) -> Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        rustix::fs::linkat(&fdir, fname, &tdir, tname, AtFlags::empty())
            .map_err(io)
            .with_context(|| format!("linking {} to {}", self.shown(to), self.shown(from)))
    }

    /// Renames `from` to `to` (replacing a file there).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        rustix::fs::renameat(&fdir, fname, &tdir, tname)
            .map_err(io)
            .with_context(|| format!("renaming {} to {}", self.shown(from), self.shown(to)))
    }

    /// Removes whatever is at `rel` (a directory with everything in it); nothing there is fine.
    /// Returns whether a directory was removed.
    pub fn remove(&self, rel: &Path) -> Result<bool> {
        let Some(meta) = self.meta(rel)? else {
            return Ok(false);
        };
        let (dir, name) = self.parent(rel)?;
        if meta.kind == Kind::Dir {
            self.sub(rel)?.clear()?;
            rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)
                .map_err(io)
                .with_context(|| format!("removing {}", self.shown(rel)))?;
            return Ok(true);
        }
        rustix::fs::unlinkat(&dir, name, AtFlags::empty())
            .map_err(io)
            .with_context(|| format!("removing {}", self.shown(rel)))?;
        Ok(false)
    }

    /// The names in this directory, sorted.
    pub fn list(&self) -> Result<Vec<std::ffi::OsString>> {
        let mut names = Vec::new();
        let dir = rustix::fs::Dir::read_from(&self.fd)
            .map_err(io)
            .with_context(|| format!("listing {}", self.path.display()))?;
        for e in dir {
            let e = e.map_err(io)?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every entry below this directory (directories before their contents, sorted), never
    /// descending through a symlink.
    pub fn walk(&self) -> Result<Vec<(PathBuf, Meta)>> {
        let mut out = Vec::new();
        self.walk_into(Path::new(""), &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, prefix: &Path, out: &mut Vec<(PathBuf, Meta)>) -> Result<()> {
        for name in self.list()? {
            let rel = Path::new(&name);
            let Some(meta) = self.meta(rel)? else {
                continue;
            };
            out.push((prefix.join(rel), meta));
            if meta.kind == Kind::Dir {
                self.sub(rel)?.walk_into(&prefix.join(rel), out)?;
            }
        }
        Ok(())
    }

    /// Removes everything in this directory, keeping it.
    pub fn clear(&self) -> Result<()> {
        for name in self.list()? {
            self.remove(Path::new(&name))?;
        }
        Ok(())
    }

    /// fsyncs directory `rel` (`""` for the root).
    pub fn sync_dir(&self, rel: &Path) -> Result<()> {
        let fd = self
            .open_at(rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .with_context(|| format!("opening {}", self.shown(rel)))?;
        rustix::fs::fsync(&fd)
            .map_err(io)
            .with_context(|| format!("syncing {}", self.shown(rel)))
    }

    /// Makes everything written on this root's file system durable (`syncfs`).
    pub fn sync_fs(&self) -> Result<()> {
        rustix::fs::syncfs(self.fd.as_fd())
            .map_err(io)
            .with_context(|| format!("syncing the file system of {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::{relative, Kind, Links, Root};
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    #[test]
    fn paths_are_checked() {
        for bad in ["", "/etc", "a/../../b", "..", "./"] {
            assert!(relative(Path::new(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(relative(Path::new("./a/./b")).unwrap(), Path::new("a/b"));
    }

    #[test]
    fn nothing_is_written_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        let root = t.path().join("root");
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("rel")).unwrap();
        let r = Root::open(&root, Links::Refuse).unwrap();
        for link in ["abs", "rel"] {
            let p = Path::new(link).join("x");
            assert!(r.mkdir(&p, 0o755).is_err(), "{link}");
            assert!(r.create(&p, 0o644).is_err(), "{link}");
            assert!(r.symlink(Path::new("/etc"), &p).is_err(), "{link}");
            assert!(r.write_atomic(&p, b"x", 0o644).is_err(), "{link}");
            assert!(r.mkdir_all(&p, 0o755).is_err(), "{link}");
            // The link itself is data: chown/remove act on it, chmod refuses it.
            assert!(r.chmod(Path::new(link), 0o777).is_err(), "{link}");
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        // In-root resolution follows links, but only inside the root: `abs` means
        // `<root>/<outside>`, which does not exist; `in` means `<root>/real`.
        let r = Root::open(&root, Links::InRoot).unwrap();
        assert!(r.mkdir_all(Path::new("abs/x"), 0o755).is_err());
        fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("in")).unwrap();
        r.mkdir_all(Path::new("in/x/y"), 0o755).unwrap();
        assert!(root.join("real/x/y").is_dir());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert!(r.remove(Path::new("abs")).is_ok());
        assert!(outside.is_dir());
    }

    #[test]
    fn files_and_modes_are_exact() {
        let t = tempfile::tempdir().unwrap();
        let r = Root::open(t.path(), Links::Refuse).unwrap();
        r.mkdir_all(Path::new("a/b"), 0o700).unwrap();
        r.write_atomic(Path::new("a/b/f"), b"hello", 0o600).unwrap();
        r.write_atomic(Path::new("a/b/f"), b"again", 0o640).unwrap();
        let m = r.meta(Path::new("a/b/f")).unwrap().unwrap();
        assert_eq!((m.kind, m.mode, m.size), (Kind::File, 0o640, 5));
        assert_eq!(
            fs::metadata(t.path().join("a/b"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o700
        );
        assert_eq!(r.read(Path::new("a/b/f")).unwrap(), b"again");
        r.hard_link(Path::new("a/b/f"), Path::new("a/g")).unwrap();
        assert!(r.remove(Path::new("a")).unwrap());
        assert!(r.meta(Path::new("a/b/f")).unwrap().is_none());
        assert!(r.list().unwrap().is_empty());
    }
}
