//! The scratch of a validation run: one directory per run under a known parent,
//! `$TMPDIR/infragen-validate-<uid>/`, each beside a lock file its run holds for as long as it
//! lives. A run removes its own scratch when it ends; a run that could not (killed by
//! `kill -9`, a power cut) leaves a lock nobody holds, and the next run sweeps it before it
//! starts. It runs no checker.
//!
//! The lock is an `flock` on `<id>.lock`, taken before `<id>/` is made: the kernel drops it
//! when its holder dies, whatever the way, and a pid that the system reuses cannot pass for a
//! live run. The parent is this user's alone (mode 0700, owned by the caller, not a symbolic
//! link): a shared `/tmp` cannot hand a run someone else's directory.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{flock, FlockOperation};

/// The parent of every run's scratch for this user: `$TMPDIR/infragen-validate-<uid>`.
pub(super) fn parent() -> PathBuf {
    let uid = rustix::process::getuid().as_raw();
    std::env::temp_dir().join(format!("infragen-validate-{uid}"))
}

/// One run's scratch directory, removed with its lock when dropped.
pub(super) struct Scratch {
    dir: PathBuf,
    lock_path: PathBuf,
    // Held, not read: the lock lives as long as this file is open.
    _lock: File,
}

impl Scratch {
    /// Sweeps stale scratch under [`parent`], then makes this run's.
    pub(super) fn create() -> Result<Self> {
        Self::create_in(&parent())
    }

    /// Sweeps stale scratch under `parent`, then makes this run's there.
    fn create_in(parent: &Path) -> Result<Self> {
        own_parent(parent)?;
        sweep(parent)?;
        let (lock, lock_path) = lock_new(parent)?;
        let dir = lock_path.with_extension("");
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
            let _ = fs::remove_file(&lock_path);
            return Err(e).with_context(|| format!("creating {}", dir.display()));
        }
        Ok(Self {
            dir,
            lock_path,
            _lock: lock,
        })
    }

    /// The run's directory.
    pub(super) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The directory first: a lock without its directory is swept as well, a directory
        // without its lock would be taken for a run being made.
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Makes and locks a new `run-*.lock` in `parent`. A sweep may take a lock file in the instant
/// between its creation and its locking, and remove it: the lock is kept only when it is still
/// the file at its path once held.
fn lock_new(parent: &Path) -> Result<(File, PathBuf)> {
    for _ in 0..8 {
        let (lock, path) = tempfile::Builder::new()
            .prefix("run-")
            .suffix(".lock")
            .tempfile_in(parent)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .with_context(|| format!("creating a lock in {}", parent.display()))?;
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a sweep holds it, and removes it
        }
        let held = lock.metadata()?.ino();
        if fs::metadata(&path).is_ok_and(|m| m.ino() == held) {
            return Ok((lock, path));
        }
    }
    bail!("could not lock a scratch directory in {}", parent.display())
}

/// Makes `parent` (0700) or checks that it is a directory of this user's that others cannot
/// write to.
fn own_parent(parent: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(parent) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", parent.display())),
    }
    let meta =
        fs::symlink_metadata(parent).with_context(|| format!("reading {}", parent.display()))?;
    let uid = rustix::process::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        bail!(
            "{} is not a directory of this user's that only it can write to (the checkers' \
             scratch)\nhint: remove it, or set TMPDIR to a directory of your own",
            parent.display()
        );
    }
    Ok(())
}

/// Removes every run's scratch under `parent` whose lock no live run holds.
fn sweep(parent: &Path) -> Result<()> {
    let entries = fs::read_dir(parent).with_context(|| format!("reading {}", parent.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with("run-") {
            continue;
        }
        let lock_path = if name.ends_with(".lock") {
            path.clone()
        } else {
            path.with_extension("lock")
        };
        let lock = match File::open(&lock_path) {
            Ok(f) => Some(f),
            // A directory whose lock is gone: its run removed the lock last, so it is dead.
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("opening {}", lock_path.display())),
        };
        if let Some(lock) = &lock {
            if flock(lock, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue; // a live run's
            }
        }
        let dir = lock_path.with_extension("");
        remove(&dir, |p| fs::remove_dir_all(p))?;
        remove(&lock_path, |p| fs::remove_file(p))?;
    }
    Ok(())
}

/// Removes `path` with `how`; already gone (another run swept it) is fine.
fn remove(path: &Path, how: fn(&Path) -> std::io::Result<()>) -> Result<()> {
    match how(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing stale scratch {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runs_scratch_is_swept_a_live_ones_is_not() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        // A dead run: its lock file is there, nobody holds it.
        fs::write(p.join("run-dead.lock"), "").unwrap();
        fs::create_dir(p.join("run-dead")).unwrap();
        fs::write(p.join("run-dead/throwaway.key"), "k").unwrap();
        // A run killed between removing its directory and its lock; and a directory alone.
        fs::write(p.join("run-half.lock"), "").unwrap();
        fs::create_dir(p.join("run-orphan")).unwrap();
        // A live run: it holds its lock.
        let live = File::create(p.join("run-live.lock")).unwrap();
        flock(&live, FlockOperation::NonBlockingLockExclusive).unwrap();
        fs::create_dir(p.join("run-live")).unwrap();
        // Not ours.
        fs::write(p.join("other"), "").unwrap();
        sweep(p).unwrap();
        let mut left: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "run-live", "run-live.lock"]);
    }

    #[test]
    fn concurrent_runs_never_sweep_each_other() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path().join("scratch");
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    for _ in 0..30 {
                        let run = Scratch::create_in(&p).unwrap();
                        fs::write(run.path().join("f"), "x").unwrap();
                        std::thread::yield_now();
                        assert!(run.path().join("f").is_file(), "swept while alive");
                        assert!(run.lock_path.is_file(), "lock swept while alive");
                    }
                });
            }
        });
        assert_eq!(fs::read_dir(&p).unwrap().count(), 0);
    }
}
