//! Staging: verified blobs into the shared store, root trees materialised from layers (shared
//! between generations), and a complete generation directory — all before anything switches.
//!
//! Layers are extracted under the safe-extraction rules (docs/reliability.md): each blob's
//! digest is checked before it is read and its `diff_id` after; paths with `..`, absolute paths,
//! device and fifo entries are errors; no write ever goes through a symlink (every parent is
//! checked to be a real directory); setuid/setgid/sticky bits are dropped; ownership comes from
//! the layer, which infragen wrote from the image recipe. Everything is extracted into a fresh
//! 0700 directory beside the target and renamed into place; on error it is removed whole.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::state::{fail_point, sync_path, State};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies a bundle's blob into the state's store, verifying its digest.
pub fn import_blob(state: &State, bundle: &Path, digest: &str) -> Result<PathBuf> {
    let hexd = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("`{digest}` is not a sha256 digest"))?;
    let dst = state.dir.join("blobs/sha256").join(hexd);
    if dst.is_file() {
        return Ok(dst);
    }
    let bytes = fs::read(bundle.join("oci/blobs/sha256").join(hexd))
        .with_context(|| format!("bundle blob {digest}"))?;
    let got = hex(&Sha256::digest(&bytes));
    if got != hexd {
        bail!("blob {digest}: content hashes to sha256:{got}");
    }
    super::state::write_atomic(&dst, &bytes)?;
    Ok(dst)
}

/// Reads a stored blob, checking its digest again.
fn read_blob(state: &State, digest: &str) -> Result<Vec<u8>> {
    let hexd = digest.trim_start_matches("sha256:");
    let bytes = fs::read(state.dir.join("blobs/sha256").join(hexd))
        .with_context(|| format!("blob {digest}"))?;
    if hex(&Sha256::digest(&bytes)) != hexd {
        bail!("stored blob {digest} is corrupt");
    }
    Ok(bytes)
}

/// A path inside a layer, checked: relative, no `..`, no NUL.
fn entry_path(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            PathComponent::Normal(p) => out.push(p),
            PathComponent::CurDir => {}
            _ => bail!("entry `{}`: path escapes the root", raw.display()),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("entry `{}`: empty path", raw.display());
    }
    Ok(out)
}

/// Every parent of `rel` below `root` must be a real directory (never a symlink). `known` holds
/// the directories already checked or made during this extraction (cleared when one is removed).
fn check_parents(root: &Path, rel: &Path, known: &mut BTreeSet<PathBuf>) -> Result<()> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() || known.contains(parent) {
        return Ok(());
    }
    let mut p = root.to_path_buf();
    let mut r = PathBuf::new();
    for c in parent.components() {
        p.push(c);
        r.push(c);
        if known.contains(&r) {
            continue;
        }
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("entry `{}`: a parent is not a directory", rel.display()),
            Err(_) => {
                fs::create_dir(&p)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
            }
        }
        known.insert(r.clone());
    }
    Ok(())
}

/// Removes whatever is at `path`; true when that was a directory.
fn remove_any(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(path)?;
            return Ok(true);
        }
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(false)
}

/// Extracts a gzip layer (digest-checked) into `root`, applying OCI whiteouts.
pub fn extract_layer(bytes: &[u8], diff_id: Option<&str>, root: &Path, owners: bool) -> Result<()> {
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(16 << 30)
        .read_to_end(&mut tar_bytes)
        .context("decompressing a layer")?;
    if let Some(want) = diff_id {
        let got = format!("sha256:{}", hex(&Sha256::digest(&tar_bytes)));
        if got != want {
            bail!("layer diff_id is {got}, the image says {want}");
        }
    }
    extract_tar(&tar_bytes, root, owners)
}

/// Extracts a tar stream into `root` under the same rules (whiteouts included).
pub fn extract_tar(tar_bytes: &[u8], root: &Path, owners: bool) -> Result<()> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut links = Vec::new();
    let mut known: BTreeSet<PathBuf> = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        if entry.header().entry_type() == tar::EntryType::Directory
            && raw.components().all(|c| matches!(c, PathComponent::CurDir))
        {
            continue; // the archive's own root, `./`
        }
        let rel = entry_path(&raw)?;
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        check_parents(root, &rel, &mut known)?;
        let target = root.join(&rel);
        if name == ".wh..wh..opq" {
            let dir = target.parent().expect("has parent");
            for e in fs::read_dir(dir)? {
                remove_any(&e?.path())?;
            }
            known.clear();
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            remove_any(&target.with_file_name(hidden))?;
            known.clear();
            continue;
        }
        let header = entry.header();
        let mode = header.mode()? & 0o777; // setuid, setgid and sticky bits dropped
        let (uid, gid) = (
            u32::try_from(header.uid()?).unwrap_or(0),
            u32::try_from(header.gid()?).unwrap_or(0),
        );
        match header.entry_type() {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&target)?;
                        fs::create_dir(&target)?;
                    }
                    Err(_) => fs::create_dir(&target)?,
                }
                known.insert(rel.clone());
                fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o777))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if remove_any(&target)? {
                    known.clear();
                }
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                let mut file = fs::File::create(&target)?;
                std::io::Write::write_all(&mut file, &data)?;
                file.set_permissions(fs::Permissions::from_mode(mode & 0o777))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()?
                    .context("symlink without a target")?
                    .into_owned();
                if remove_any(&target)? {
                    known.clear();
                }
                std::os::unix::fs::symlink(&link, &target)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()?
                    .context("hard link without a target")?
                    .into_owned();
                links.push((rel.clone(), entry_path(&link)?));
                continue;
            }
            other => bail!("entry `{}`: type {other:?} is not allowed", raw.display()),
        }
        if owners {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", target.display()))?;
        }
    }
    // Hard links last, when their sources exist. Both ends are checked again now: a later entry
    // may have put a symlink where a parent directory was, and a link must never be made through
    // one (it would reach outside the root).
    for (rel, to) in links {
        let src = root.join(&to);
        if !real_parents(root, &to) || !fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
            bail!(
                "entry `{}`: hard link to `{}`, which is not a file of the layer",
                rel.display(),
                to.display()
            );
        }
        check_parents(root, &rel, &mut BTreeSet::new())?;
        let dst = root.join(&rel);
        remove_any(&dst)?;
        fs::hard_link(&src, &dst)?;
    }
    Ok(())
}

/// Whether every parent of `rel` below `root` is a real directory (no symlink, nothing missing).
fn real_parents(root: &Path, rel: &Path) -> bool {
    let mut p = root.to_path_buf();
    rel.parent()
        .into_iter()
        .flat_map(Path::components)
        .all(|c| {
            p.push(c);
            fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
        })
}

/// Materialises a root tree from its layers unless it exists; returns its path.
pub fn root_tree(
    state: &State,
    id: &str,
    layers: &[(String, Option<String>)],
    owners: bool,
) -> Result<PathBuf> {
    let dst = state.dir.join("roots").join(id);
    if dst.is_dir() {
        return Ok(dst);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".root-")
        .tempdir_in(state.dir.join("roots"))?;
    for (digest, diff_id) in layers {
        let bytes = read_blob(state, digest)?;
        extract_layer(&bytes, diff_id.as_deref(), tmp.path(), owners)
            .with_context(|| format!("layer {digest}"))?;
    }
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))?;
    super::state::sync_tree(tmp.path())?;
    fail_point("root-before-rename");
    fs::rename(tmp.path(), &dst)?;
    let _ = tmp.keep();
    sync_path(&state.dir.join("roots"))?;
    Ok(dst)
}

/// The `diff_id`s of an image's layers, from its config blob, by layer digest.
pub fn diff_ids(state: &State, manifest_digest: &str) -> Result<Vec<(String, String)>> {
    let manifest: Value = serde_json::from_slice(&read_blob(state, manifest_digest)?)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("manifest without config")?;
    let config: Value = serde_json::from_slice(&read_blob(state, config_digest)?)?;
    let digests: Vec<String> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str().map(str::to_owned))
        .collect();
    let ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect();
    if digests.len() != ids.len() {
        bail!(
            "image {manifest_digest}: {} layers but {} diff_ids",
            digests.len(),
            ids.len()
        );
    }
    Ok(digests.into_iter().zip(ids).collect())
}

/// Every blob an image needs: manifest, config, layers.
pub fn image_blobs(bundle: &Path, manifest_digest: &str) -> Result<BTreeSet<String>> {
    let hexd = manifest_digest.trim_start_matches("sha256:");
    let manifest: Value =
        serde_json::from_slice(&fs::read(bundle.join("oci/blobs/sha256").join(hexd))?)?;
    let mut out = BTreeSet::new();
    out.insert(manifest_digest.to_owned());
    out.extend(manifest["config"]["digest"].as_str().map(str::to_owned));
    for l in manifest["layers"].as_array().into_iter().flatten() {
        out.extend(l["digest"].as_str().map(str::to_owned));
    }
    Ok(out)
}

/// Copies a directory tree (regular files, directories, symlinks), preserving modes.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(from).sort_by_file_name() {
        let e = e?;
        let rel = e.path().strip_prefix(from)?;
        let dst = to.join(rel);
        let meta = e.path().symlink_metadata()?;
        if meta.is_dir() {
            fs::create_dir_all(&dst)?;
            fs::set_permissions(&dst, meta.permissions())?;
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &dst)?;
        } else {
            fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
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
    'points: for point in points {
        let rel = point.target.strip_prefix("/").unwrap_or(&point.target);
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let mut p = root.to_path_buf();
        let last = rel.components().count();
        for (n, c) in rel.components().enumerate() {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() || n + 1 == last => {}
                Ok(_) => continue 'points,
                Err(_) if point.file && n + 1 == last => {
                    fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o644))?;
                }
                Err(_) => {
                    fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
                }
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
