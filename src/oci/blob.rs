//! The content-addressed blob store of an OCI image layout (`blobs/sha256/<hex>`) and the
//! error type of the `oci` module.
//!
//! Owns writing, reading and checking blobs. It does not know what a blob means (config,
//! manifest, layer): that is `layout`. Writes go to a temporary file in the same directory,
//! are fsynced and then renamed to their digest, so a reader never sees a partial blob.
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md>
//!
//! **Batched durability** ([`BlobStore::batch`]): a build stores a few dozen blobs (layers,
//! image configs, manifests), and an fsync of each file and of the directory after each one
//! made a one-parameter rebuild wait for 48 journal commits. A batch handle writes each blob the
//! same way (temporary file, renamed to its digest: a reader never sees a partial one) without
//! the fsyncs, and [`BlobStore::sync`] makes them all durable in one pass at the end: an fsync
//! of each new file, then one of the directory. The first fsync commits the file system's
//! journal with every earlier write in it, so the others find little left to do. Crash safety
//! rests on two rules:
//! - nothing that names a batch's blob as trusted is written before `sync` returns (the layer
//!   index, `build::layers`; the output directory, which links the blobs): after a crash, an
//!   unsynced blob is named by nothing that skips checking it;
//! - [`BlobStore::put`] never trusts a blob it finds under the digest it is about to write: it
//!   compares the stored bytes with its own and rewrites a blob that differs (a file a crash
//!   left empty or partial under its final name), so the next build heals it.
//!
//! Readers that open a blob by a digest found elsewhere (`get`) check its content anyway.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::digest::is_hex64;

/// Everything that can go wrong while building layers or writing an OCI layout.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Reading or writing a file failed; `action` says what was being done.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done ("write", "read", "rename", …).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Serialising a document to JSON failed.
    #[error("cannot serialise an OCI document to JSON")]
    Json(#[from] serde_json::Error),
    /// A digest is not of the form `sha256:<64 lowercase hex digits>`.
    #[error("`{0}` is not a sha256 digest\nhint: digests look like `sha256:` followed by 64 lowercase hex digits")]
    InvalidDigest(String),
    /// A blob's content does not hash to its name.
    #[error("blob `{}` is corrupt: expected `{expected}`, content hashes to `{actual}`", path.display())]
    DigestMismatch {
        /// The blob file.
        path: PathBuf,
        /// The digest its name promises.
        expected: String,
        /// The digest of its content.
        actual: String,
    },
    /// A blob that a document refers to is not in the store.
    #[error("blob `{digest}` is missing from `{}`", root.display())]
    MissingBlob {
        /// The digest looked for.
        digest: String,
        /// The layout directory.
        root: PathBuf,
    },
    /// A layer entry is invalid (bad path, duplicate, broken hardlink, bad mode).
    #[error("layer entry `{path}`: {reason}")]
    Entry {
        /// The entry's path inside the layer.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layer entry's path has a component starting with `.wh.`, which OCI readers take as a
    /// whiteout (a deletion of what the layers below hold), not as content.
    #[error("layer entry `{path}`: `{name}` starts with `.wh.`, an OCI whiteout; a built layer only adds files")]
    Whiteout {
        /// The entry's path inside the layer.
        path: String,
        /// The component that starts with `.wh.`.
        name: String,
    },
    /// An image layout read from elsewhere does not hold what was asked for, or holds
    /// something this module does not take.
    #[error("image layout `{}`: {reason}", dir.display())]
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A blob is not a regular file.
    #[error("blob `{}` is {what}; a blob must be a regular file", path.display())]
    NotRegular {
        /// The blob file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// A blob is not of the size its descriptor (or the bound on documents) says.
    #[error("blob `{}` is {size} bytes, not {expected}", path.display())]
    Size {
        /// The blob file.
        path: PathBuf,
        /// Its size (or the bytes read).
        size: u64,
        /// The size expected, and why.
        expected: String,
    },
    /// A reference name is not valid for `org.opencontainers.image.ref.name`.
    #[error("`{0}` is not a valid image reference name\nhint: use letters, digits and `-._:@+/`, starting and ending with a letter or digit")]
    InvalidRefName(String),
}

impl OciError {
    /// An I/O error at `path` while doing `action`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        OciError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// A blob as stored: its digest (`sha256:<hex>`) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlobRef {
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Size of the content in bytes.
    pub size: u64,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    crate::digest::Digest::of(bytes).into_string()
}

/// The hex part of a `sha256:<hex>` digest, validated so it can safely name a file.
pub fn digest_hex(digest: &str) -> Result<&str, OciError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if is_hex64(h) => Ok(h),
        _ => Err(OciError::InvalidDigest(digest.to_owned())),
    }
}

/// The blob store of one OCI image layout directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// For a batch handle ([`BlobStore::batch`]): the blobs written and not yet synced.
    unsynced: Option<Arc<Mutex<Vec<PathBuf>>>>,
}

/// The largest document (manifest, config, `index.json`) read whole: OCI registries accept
/// manifests up to 4 MiB; configs with a long history stay far below this.
pub const MAX_DOCUMENT: u64 = 16 << 20;

/// The `oci-layout` file every image layout carries.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

impl BlobStore {
    /// Opens (creating if needed) the layout at `dir`: `blobs/sha256/` and `oci-layout`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OciError> {
        let root = dir.as_ref().to_path_buf();
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| OciError::io("create", &blobs, e))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&root, &layout, OCI_LAYOUT)?;
        }
        Ok(BlobStore {
            root,
            unsynced: None,
        })
    }

    /// A handle on the same store whose [`BlobStore::put`] does not fsync: the blobs it writes
    /// are durable once [`BlobStore::sync`] has returned, and nothing may name them as trusted
    /// before (see the module's documentation).
    #[must_use]
    pub fn batch(&self) -> Self {
        BlobStore {
            root: self.root.clone(),
            unsynced: Some(Arc::default()),
        }
    }

    /// Makes every blob this batch handle has written durable: an fsync of each file and of
    /// the directory (whose renames are done), all at once on their own threads, so that the
    /// file system commits them together (on a busy disk one fsync can wait for a second or
    /// more, and one after another they add up). Returns how many blobs it synced; nothing to
    /// do for a plain handle.
    pub fn sync(&self) -> Result<usize, OciError> {
        /// At most this many fsyncs wait at once.
        const AT_ONCE: usize = 32;
        let Some(unsynced) = &self.unsynced else {
            return Ok(0);
        };
        let paths = std::mem::take(&mut *unsynced.lock().expect("unsynced blobs"));
        if paths.is_empty() {
            return Ok(0);
        }
        let count = paths.len();
        let all: Vec<PathBuf> = std::iter::once(self.blobs_dir()).chain(paths).collect();
        let sync = |path: &PathBuf| {
            fs::File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| OciError::io("sync", path, e))
        };
        for chunk in all.chunks(AT_ONCE) {
            std::thread::scope(|s| {
                let threads: Vec<_> = chunk.iter().map(|p| s.spawn(move || sync(p))).collect();
                threads
                    .into_iter()
                    .try_for_each(|t| t.join().expect("fsync thread"))
            })?;
        }
        Ok(count)
    }

    /// The layout directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a blob with `digest` is (or would be) stored at.
    pub fn path(&self, digest: &str) -> Result<PathBuf, OciError> {
        Ok(self.blobs_dir().join(digest_hex(digest)?))
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Stores `bytes` under their digest. A blob already present with these bytes is left
    /// untouched; one with other bytes (left empty or partial by a crash) is replaced.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobRef, OciError> {
        let digest = sha256_digest(bytes);
        let path = self.path(&digest)?;
        if !holds(&path, bytes)? {
            match &self.unsynced {
                None => write_atomic(&self.blobs_dir(), &path, bytes)?,
                Some(unsynced) => {
                    write_unsynced(&path, bytes)?;
                    unsynced.lock().expect("unsynced blobs").push(path);
                }
            }
        }
        Ok(BlobRef {
            digest,
            size: bytes.len() as u64,
        })
    }

    /// Whether a blob with `digest` is present (its content is not checked).
    pub fn has(&self, digest: &str) -> Result<bool, OciError> {
        Ok(self.path(digest)?.is_file())
    }

    /// Opens the blob `digest` for streaming, with its size: a regular file reached without
    /// following a symlink anywhere below the layout directory, opened without waiting (a fifo
    /// never blocks) and checked on the open descriptor. A symlink (to `/dev/zero` or anything
    /// else), a fifo, a device or a socket under a digest's name is refused, naming its kind.
    pub fn open_blob(&self, digest: &str) -> Result<(fs::File, u64), OciError> {
        let rel = Path::new("blobs/sha256").join(digest_hex(digest)?);
        let path = self.root.join(&rel);
        let refused =
            |e: anyhow::Error| OciError::io("open", &path, io::Error::other(format!("{e:#}")));
        let root =
            crate::fsx::Root::open(&self.root, crate::fsx::Links::Refuse).map_err(refused)?;
        let kind = match root.meta(&rel).map_err(refused)? {
            None => {
                return Err(OciError::MissingBlob {
                    digest: digest.to_owned(),
                    root: self.root.clone(),
                })
            }
            Some(m) => m.kind,
        };
        let what = match kind {
            crate::fsx::Kind::File => None,
            crate::fsx::Kind::Symlink => Some("a symlink, which infragen does not follow"),
            crate::fsx::Kind::Dir => Some("a directory"),
            crate::fsx::Kind::Other => Some("a fifo, device or socket"),
        };
        if let Some(what) = what {
            return Err(OciError::NotRegular { path, what });
        }
        let file = root.open_file(&rel).map_err(refused)?;
        let size = file
            .metadata()
            .map_err(|e| OciError::io("stat", &path, e))?
            .len();
        Ok((file, size))
    }

    /// Reads the blob with `digest` (a document: at most [`MAX_DOCUMENT`] bytes), checking that
    /// its content hashes to it. The blob is opened as [`BlobStore::open_blob`] does.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, OciError> {
        self.get_sized(digest, None)
    }

    /// [`BlobStore::get`] for a blob whose descriptor says it has `size` bytes: a blob of
    /// another size is refused, and no more than `size + 1` bytes are ever read.
    pub fn get_sized(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>, OciError> {
        let (file, on_disk) = self.open_blob(digest)?;
        let path = self.path(digest)?;
        let limit = size.unwrap_or(MAX_DOCUMENT).min(MAX_DOCUMENT);
        if on_disk > limit || size.is_some_and(|s| s != on_disk) {
            return Err(OciError::Size {
                path,
                size: on_disk,
                expected: size.map_or_else(
                    || format!("at most {MAX_DOCUMENT}, the most a document may have"),
                    |s| format!("{s} as its descriptor says"),
                ),
            });
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, limit + 1), &mut bytes)
            .map_err(|e| OciError::io("read", &path, e))?;
        if bytes.len() as u64 != on_disk {
            return Err(OciError::Size {
                path,
                size: bytes.len() as u64,
                expected: format!("{on_disk} as it was when opened"),
            });
        }
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(OciError::DigestMismatch {
                path,
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Checks every blob: its name must be a sha256 hex digest of its content. Returns one
    /// line per problem, in file-name order; empty when the store is sound.
    pub fn fsck(&self) -> Result<Vec<String>, OciError> {
        let dir = self.blobs_dir();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| OciError::io("list", &dir, e))? {
            let entry = entry.map_err(|e| OciError::io("list", &dir, e))?;
            names.push(entry.file_name());
        }
        names.sort();
        let mut problems = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let shown = format!("blobs/sha256/{}", name.to_string_lossy());
            let Some(hex_name) = name.to_str().filter(|n| is_hex64(n)) else {
                problems.push(format!("{shown}: not named by a sha256 digest"));
                continue;
            };
            if !path.is_file() {
                problems.push(format!("{shown}: not a regular file"));
                continue;
            }
            let bytes = fs::read(&path).map_err(|e| OciError::io("read", &path, e))?;
            let actual = sha256_digest(&bytes);
            if actual != format!("sha256:{hex_name}") {
                problems.push(format!("{shown}: content hashes to {actual}"));
            }
        }
        Ok(problems)
    }
}

/// Writes `bytes` to `target` atomically: a temporary file in `dir` (the target's directory),
/// mode 0644 whatever the umask, fsynced, renamed over `target`, and the directory fsynced.
pub(crate) fn write_atomic(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), OciError> {
    debug_assert_eq!(target.parent(), Some(dir));
    crate::fsx::write_file_atomic(target, bytes, 0o644)
        .map_err(|e| OciError::io("write", target, io::Error::other(format!("{e:#}"))))
}

/// Whether the file at `path` is a regular file holding exactly `bytes` (compared, not
/// hashed: the caller has the bytes).
fn holds(path: &Path, bytes: &[u8]) -> Result<bool, OciError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(OciError::io("stat", path, e)),
    }
    let mut file = fs::File::open(path).map_err(|e| OciError::io("open", path, e))?;
    let mut chunk = vec![0; bytes.len().min(1 << 20)];
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = io::Read::read(&mut file, &mut chunk[..rest.len().min(1 << 20)])
            .map_err(|e| OciError::io("read", path, e))?;
        if n == 0 || chunk[..n] != rest[..n] {
            return Ok(false);
        }
        rest = &rest[n..];
    }
    Ok(true)
}

/// Writes `bytes` to `target` as [`write_atomic`] does, without the fsyncs: a reader never
/// sees a partial file, but a crash may lose it (see [`BlobStore::batch`]).
fn write_unsynced(target: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let failed =
        |e: anyhow::Error| OciError::io("write", target, io::Error::other(format!("{e:#}")));
    let mut f = crate::fsx::AtomicFile::create(target, 0o644).map_err(failed)?;
    io::Write::write_all(&mut f, bytes).map_err(|e| OciError::io("write", target, e))?;
    f.commit_unsynced().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"hello").unwrap();
        assert_eq!(
            a.digest,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(a.size, 5);
        assert_eq!(store.put(b"hello").unwrap(), a);
        assert!(store.has(&a.digest).unwrap());
        assert_eq!(store.get(&a.digest).unwrap(), b"hello");
        let mode = fs::metadata(store.path(&a.digest).unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(
            fs::read(dir.path().join("oci-layout")).unwrap(),
            OCI_LAYOUT.to_vec()
        );
        assert!(store.fsck().unwrap().is_empty());
    }

    #[test]
    fn a_batch_writes_unsynced_until_sync_and_put_heals_a_torn_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let batch = store.batch();
        let a = batch.put(b"layer").unwrap();
        let b = batch.put(b"config").unwrap();
        assert_eq!(
            batch.put(b"layer").unwrap(),
            a,
            "present: not written again"
        );
        assert_eq!(store.get(&a.digest).unwrap(), b"layer", "visible at once");
        assert_eq!(batch.sync().unwrap(), 2);
        assert_eq!(batch.sync().unwrap(), 0, "nothing left to sync");
        assert_eq!(
            store.sync().unwrap(),
            0,
            "a plain handle syncs as it writes"
        );
        // What a crash can leave under a blob's name: nothing, a part, other bytes of its size.
        let path = store.path(&b.digest).unwrap();
        for torn in [&b""[..], b"con", b"CONFIG"] {
            fs::write(&path, torn).unwrap();
            assert_eq!(batch.put(b"config").unwrap(), b);
            assert_eq!(fs::read(&path).unwrap(), b"config", "{torn:?} replaced");
        }
        assert_eq!(batch.sync().unwrap(), 3);
        assert!(store.fsck().unwrap().is_empty());
    }

    #[test]
    fn bad_digests_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        for bad in ["sha256:../../etc", "md5:00", "sha256:ABC", ""] {
            assert!(
                matches!(store.has(bad), Err(OciError::InvalidDigest(_))),
                "{bad}"
            );
        }
        let absent = sha256_digest(b"absent");
        assert!(!store.has(&absent).unwrap());
        assert!(matches!(
            store.get(&absent),
            Err(OciError::MissingBlob { .. })
        ));
    }

    #[test]
    fn get_and_fsck_see_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"payload").unwrap();
        let path = store.path(&a.digest).unwrap();
        fs::write(&path, b"pAyload").unwrap();
        assert!(matches!(
            store.get(&a.digest),
            Err(OciError::DigestMismatch { .. })
        ));
        fs::write(path.with_file_name("stray"), b"x").unwrap();
        let problems = store.fsck().unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains(&digest_hex(&a.digest).unwrap()[..12]));
        assert!(problems[1].starts_with("blobs/sha256/stray:"));
    }
}
