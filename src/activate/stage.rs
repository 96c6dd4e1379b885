//! Staging: verified blobs into the shared store, root trees materialised from layers (shared
//! between generations), and a complete generation directory — all before anything switches.
//!
//! Layers are extracted by [`super::extract`] under the safe-extraction rules
//! (docs/reliability.md) into a fresh 0700 directory beside the target, renamed into place when
//! complete; on error it is removed whole.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::extract::{self, Kinds, LIMITS};
use super::state::{fail_point, sync_path, State};
use crate::fsx::{Links, Root};
use crate::manifest::Digest;

/// The directories staging adds to: blobs, root trees, generations.
const STAGED: [&str; 3] = ["blobs/sha256", "roots", "generations"];

/// The outermost directory of the state directory's path (below and including `root`) that
/// does not exist yet: what creating the state directory will create. Taken before the state
/// directory is opened.
pub fn missing_from(root: &Path, state_dir: &Path) -> Option<PathBuf> {
    let mut created = None;
    let mut p = state_dir.to_path_buf();
    while p.starts_with(root) && fs::symlink_metadata(&p).is_err() {
        created = Some(p.clone());
        if !p.pop() {
            break;
        }
    }
    created
}

/// What the state directory held before this run staged anything, so that a failure while
/// staging (a layer refused, a full disk) leaves the host as it was: the blobs, root trees and
/// generations the run added are removed, and so is the state directory (with the parents it
/// needed) when this run made it. Taken under the lock, so nothing else adds to it meanwhile.
pub struct Before {
    /// What creating the state directory created, when the state held nothing yet.
    created: Option<PathBuf>,
    /// The names in each of [`STAGED`].
    names: Vec<BTreeSet<OsString>>,
}

impl Before {
    /// Records the state; `created` is what [`missing_from`] said before the state directory
    /// was opened (kept only if the state is still empty: another run may have come between).
    pub fn take(state: &State, created: Option<PathBuf>) -> Result<Self> {
        let mut names = Vec::new();
        for sub in STAGED {
            let dir = Root::open(&state.dir.join(sub), Links::Refuse)?;
            names.push(dir.list()?.into_iter().collect::<BTreeSet<_>>());
        }
        let empty = names.iter().all(BTreeSet::is_empty)
            && fs::symlink_metadata(state.dir.join("current")).is_err();
        Ok(Self {
            created: created.filter(|_| empty),
            names,
        })
    }

    /// Removes what was added since [`Before::take`].
    pub fn undo(&self, state: &State) -> Result<()> {
        for (sub, before) in STAGED.iter().zip(&self.names) {
            let dir = Root::open(&state.dir.join(sub), Links::Refuse)?;
            for name in dir.list()? {
                if !before.contains(&name) {
                    dir.remove(Path::new(&name))?;
                }
            }
        }
        if let Some(top) = &self.created {
            fs::remove_dir_all(top).with_context(|| format!("removing {}", top.display()))?;
        }
        Ok(())
    }
}

/// Moves verified blobs from the private directory `incoming` into the state's store (a rename
/// on the same file system, else a copy checked again), skipping those already there.
pub fn import_blobs(state: &State, incoming: &Path, blobs: &[Digest]) -> Result<()> {
    let store = Root::open(&state.dir.join("blobs/sha256"), Links::Refuse)?;
    let from = Root::open(incoming, Links::Refuse)?;
    for d in blobs {
        let name = Path::new(d.hex());
        if store.meta(name)?.is_some() {
            continue;
        }
        if fs::rename(incoming.join(name), store.path().join(name)).is_err() {
            let bytes = from.read(name)?;
            if &Digest::of(&bytes) != d {
                bail!("blob {d} changed in the private directory");
            }
            store.write_atomic(name, &bytes, 0o644)?;
        }
    }
    store.sync_dir(Path::new(""))
}

/// Reads a stored blob whole (manifests and configs: small), checking its digest again.
fn read_blob(state: &State, digest: &Digest) -> Result<Vec<u8>> {
    let store = Root::open(&state.dir.join("blobs/sha256"), Links::Refuse)?;
    let bytes = store
        .read(Path::new(digest.hex()))
        .with_context(|| format!("blob {digest}"))?;
    if &Digest::of(&bytes) != digest {
        bail!("stored blob {digest} is corrupt");
    }
    Ok(bytes)
}

/// Extracts the stored layer `digest` into `root`, streaming; its digest and `diff_id` are
/// checked as it is read (a mismatch is an error, and the caller removes what it extracted into).
pub fn extract_blob(
    state: &State,
    digest: &Digest,
    diff_id: Option<&Digest>,
    root: &Root,
    owners: bool,
) -> Result<()> {
    let store = Root::open(&state.dir.join("blobs/sha256"), Links::Refuse)?;
    let file = store
        .open_file(Path::new(digest.hex()))
        .with_context(|| format!("blob {digest}"))?;
    let got = extract::extract(
        std::io::BufReader::with_capacity(1 << 20, file),
        root,
        Kinds::Layer,
        owners,
        LIMITS,
    )
    .with_context(|| format!("layer {digest}"))?;
    if &got.blob != digest {
        bail!("layer {digest}: content hashes to {}", got.blob);
    }
    match diff_id {
        Some(want) if &got.tar != want => {
            bail!(
                "layer {digest}: diff_id is {}, the image says {want}",
                got.tar
            )
        }
        Some(_) => Ok(()),
        None => bail!("layer {digest}: not a layer of its image"),
    }
}

/// Materialises a root tree from its layers unless it exists; returns its path. Extracted into
/// a fresh private directory that is removed whole on any error.
pub fn root_tree(
    state: &State,
    id: &str,
    layers: &[(Digest, Option<Digest>)],
    owners: bool,
) -> Result<PathBuf> {
    let dst = state.dir.join("roots").join(id);
    if dst.is_dir() {
        return Ok(dst);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".root-")
        .tempdir_in(state.dir.join("roots"))?;
    let root = Root::open(tmp.path(), Links::Refuse)?;
    for (digest, diff_id) in layers {
        extract_blob(state, digest, diff_id.as_ref(), &root, owners)?;
    }
    root.chmod(Path::new("."), 0o755)?;
    root.sync_fs()?;
    fail_point("root-before-rename");
    fs::rename(tmp.path(), &dst)?;
    let _ = tmp.keep();
    sync_path(&state.dir.join("roots"))?;
    Ok(dst)
}

#[derive(Deserialize)]
struct ImageManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: Digest,
}

#[derive(Deserialize)]
struct ImageConfig {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<Digest>,
}

/// The `diff_id`s of an image's layers, from its config blob, by layer digest.
pub fn diff_ids(state: &State, manifest_digest: &Digest) -> Result<Vec<(Digest, Digest)>> {
    let manifest: ImageManifest = serde_json::from_slice(&read_blob(state, manifest_digest)?)
        .with_context(|| format!("image manifest {manifest_digest}"))?;
    let config: ImageConfig =
        serde_json::from_slice(&read_blob(state, &manifest.config.digest)?)
            .with_context(|| format!("image config {}", manifest.config.digest))?;
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        bail!(
            "image {manifest_digest}: {} but {}",
            crate::plural::count(manifest.layers.len(), "layer"),
            crate::plural::count(config.rootfs.diff_ids.len(), "diff_id")
        );
    }
    Ok(manifest
        .layers
        .into_iter()
        .map(|l| l.digest)
        .zip(config.rootfs.diff_ids)
        .collect())
}

/// A place in a root tree something is mounted on.
pub struct MountPoint {
    /// Where, inside the tree.
    pub target: PathBuf,
    /// Whether a file is bound there (a directory otherwise).
    pub file: bool,
}

/// The mount points a `.nspawn` file binds into a root tree: `Bind=`/`BindReadOnly=` targets
/// (files where the host source, under `host_root`, is a file) and `TemporaryFileSystem=` paths.
pub fn mount_points(nspawn: &str, host_root: &Path) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for line in nspawn.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let mut parts = value.split(':');
        let (source, target) = match key.trim() {
            "Bind" | "BindReadOnly" => {
                let source = parts.next().unwrap_or("");
                (Some(source), parts.next().or(Some(source)))
            }
            "TemporaryFileSystem" => (None, parts.next()),
            _ => (None, None),
        };
        if let Some(t) = target.filter(|t| t.starts_with('/')) {
            let file = source.is_some_and(|s| {
                fs::metadata(host_root.join(s.trim_start_matches('/'))).is_ok_and(|m| m.is_file())
            });
            out.push(MountPoint {
                target: PathBuf::from(t),
                file,
            });
        }
    }
    out
}

/// Creates the missing mount points in the root tree `root`, as systemd does for a unit's bind
/// mounts, so that a read-only container (`ReadOnly=yes`) finds them. Never through a symlink:
/// a mount point behind one is left to the container manager, which resolves it inside the tree.
pub fn ensure_mount_points(root: &Path, points: &[MountPoint]) -> Result<()> {
    let tree = Root::open(root, Links::Refuse)?;
    'points: for point in points {
        let rel = point.target.strip_prefix("/").unwrap_or(&point.target);
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let mut p = PathBuf::new();
        let last = rel.components().count();
        for (n, c) in rel.components().enumerate() {
            p.push(c);
            match tree.meta(&p)? {
                Some(m) if m.kind == crate::fsx::Kind::Dir || n + 1 == last => {}
                Some(_) => continue 'points,
                None if point.file && n + 1 == last => {
                    tree.create(&p, 0o644)?;
                }
                None => tree.mkdir(&p, 0o755)?,
            }
        }
    }
    Ok(())
}

/// The home directory of `user` in the root tree's `/etc/passwd` (systemd-nspawn creates it
/// when it switches to the user, which a read-only tree refuses).
pub fn home_of(root: &Path, user: &str) -> Option<PathBuf> {
    let passwd = fs::read_to_string(root.join("etc/passwd")).ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 7 && f[0] == user && f[5] != "/nonexistent").then(|| PathBuf::from(f[5]))
    })
}
