//! The content-addressed blob store of an OCI image layout (`blobs/sha256/<hex>`) and the
//! error type of the `oci` module.
//!
//! Owns writing, reading and checking blobs. It does not know what a blob means (config,
//! manifest, layer): that is `layout`. Writes go to a temporary file in the same directory,
//! are fsynced and then renamed to their digest, so a reader never sees a partial blob and a
//! blob that is already present is never rewritten.
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md>

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
}

/// The `oci-layout` file every image layout carries.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

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
        Ok(BlobStore { root })
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

    /// Stores `bytes` under their digest; a blob already present is left untouched.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobRef, OciError> {
        let digest = sha256_digest(bytes);
        let path = self.path(&digest)?;
        if !path.is_file() {
            write_atomic(&self.blobs_dir(), &path, bytes)?;
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

    /// Reads the blob with `digest`, checking that its content hashes to it.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, OciError> {
        let path = self.path(digest)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::MissingBlob {
                    digest: digest.to_owned(),
                    root: self.root.clone(),
                })
            }
            Err(e) => return Err(OciError::io("read", path, e)),
        };
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
