//! The activation state directory (`<root>/var/lib/infragen`) and its atomic operations.
//!
//! ```text
//! blobs/sha256/<hex>      verified blobs, shared by every generation
//! roots/<root-id>/        component root trees, content-addressed, shared
//! generations/<id>/       complete, immutable generations (manifest, units, config, secrets)
//! current -> generations/<id>     the active generation (replaced by rename)
//! rollback -> generations/<id>    what `rollback` returns to
//! live/<c>/               the current configuration, bound into the running service
//! history                 generation ids in activation order
//! plan.json               the switch in progress (removed when it completes)
//! lock                    held while an activation runs
//! ```
//! A directory appears under `generations/` or `roots/` only by renaming a complete,
//! fsynced temporary directory, so an interruption never leaves a partial one in use.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Paths of one state directory.
pub struct State {
    /// `<root>/var/lib/infragen`.
    pub dir: PathBuf,
    /// The host root (`/`, or `--root`).
    pub root: PathBuf,
}

/// Fails at a named point when `INFRAGEN_FAILPOINT` names it: the process dies on the spot, as
/// under `kill -9`, so that tests can interrupt an activation between any two steps.
pub fn fail_point(name: &str) {
    if std::env::var("INFRAGEN_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("infragen: fail point `{name}`");
        std::process::abort();
    }
}

/// Fails like a full disk at a named point when `INFRAGEN_FAILPOINT` names it (tests of the
/// error paths after the switch; the process goes on and must roll back). Once per process:
/// the rollback that follows finds room again, as after a transient full disk.
pub fn fail_io(name: &str) -> std::io::Result<()> {
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var("INFRAGEN_FAILPOINT").is_ok_and(|v| v == name)
        && !FIRED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
    }
    Ok(())
}

/// fsyncs a file or directory.
pub fn sync_path(path: &Path) -> Result<()> {
    let f =
        fs::File::open(path).with_context(|| format!("opening {} to sync it", path.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// Points `link` at `target` atomically: a symlink under a temporary name renamed over it.
pub fn symlink_atomic(target: &Path, link: &Path) -> Result<()> {
    let dir = link.parent().expect("has parent");
    let tmp = dir.join(format!(
        ".{}.new",
        link.file_name().expect("named").to_string_lossy()
    ));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| format!("replacing {}", link.display()))?;
    sync_path(dir)
}

impl State {
    /// The state under `root` (created).
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("var/lib/infragen");
        // Created through fsx (links resolved inside the root), then held to it: the state
        // directory may be a link (to a larger disk) but must stay inside the host root, since
        // paths below it are used as they are.
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let host = crate::fsx::Root::open(root, crate::fsx::Links::InRoot)?;
        host.mkdir_all(Path::new("var/lib/infragen"), 0o755)?;
        let (real_root, real_dir) = (fs::canonicalize(root)?, fs::canonicalize(&dir)?);
        if !real_dir.starts_with(&real_root) {
            bail!(
                "{} leads out of the host root, to {}, through a symlink; nothing was changed",
                dir.display(),
                real_dir.display()
            );
        }
        for sub in ["blobs/sha256", "roots", "generations", "live", "secrets"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        // Credentials: root's alone (each component's directory is its user's, 0700).
        fs::set_permissions(
            dir.join("secrets"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(Self {
            dir,
            root: root.to_path_buf(),
        })
    }

    /// Whether the state directory exists inside the host root (a link out of it is never
    /// used, not even for reading).
    pub fn is_usable(&self) -> bool {
        match (fs::canonicalize(&self.root), fs::canonicalize(&self.dir)) {
            (Ok(root), Ok(dir)) => dir.is_dir() && dir.starts_with(root),
            _ => false,
        }
    }

    /// A generation's directory.
    pub fn generation(&self, id: &str) -> PathBuf {
        self.dir.join("generations").join(id)
    }

    /// The generation a pointer (`current`, `rollback`) names, when it names a complete one.
    pub fn pointer(&self, name: &str) -> Option<String> {
        let target = fs::read_link(self.dir.join(name)).ok()?;
        let id = target.file_name()?.to_string_lossy().into_owned();
        self.generation(&id)
            .join("manifest.json")
            .is_file()
            .then_some(id)
    }

    /// Points `name` at generation `id`.
    pub fn set_pointer(&self, name: &str, id: &str) -> Result<()> {
        symlink_atomic(&Path::new("generations").join(id), &self.dir.join(name))
    }

    /// Generation ids in activation order (oldest first), each once.
    pub fn history(&self) -> Vec<String> {
        let text = fs::read_to_string(self.dir.join("history")).unwrap_or_default();
        let mut seen = Vec::new();
        for id in text.lines().filter(|l| !l.is_empty()) {
            seen.retain(|s: &String| s != id);
            seen.push(id.to_owned());
        }
        seen.retain(|id| self.generation(id).is_dir());
        seen
    }

    /// Records `id` as activated last.
    pub fn push_history(&self, id: &str) -> Result<()> {
        let mut ids = self.history();
        ids.retain(|s| s != id);
        ids.push(id.to_owned());
        crate::fsx::write_file_atomic(
            &self.dir.join("history"),
            (ids.join("\n") + "\n").as_bytes(),
            0o644,
        )
    }

    /// Holds the activation lock, or fails at once naming the holder.
    pub fn lock(&self) -> Result<Lock> {
        let path = self.dir.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                bail!(
                    "another activation is running (pid {}); nothing was changed",
                    holder.trim()
                );
            }
            Err(fs::TryLockError::Error(e)) => return Err(e).context("taking the activation lock"),
        }
        let mut f = &file;
        f.set_len(0)?;
        write!(f, "{}", std::process::id())?;
        Ok(Lock { _file: file })
    }
}

/// The activation lock, released when dropped (or when the process dies).
pub struct Lock {
    _file: fs::File,
}
