//! The static tree: the pull side of the distribution API as plain files, for nginx to serve
//! beside the package repository.
//!
//! `DIR/v2/<repo>/manifests/<digest or tag>` and `DIR/v2/<repo>/blobs/<digest>`. Every file is
//! written to a temporary name in its directory and renamed, so a reader never sees a partial
//! one; a blob already in another repository is hard-linked to the same file (copied when the
//! file system refuses); a file that is already there with the right content is not touched, so
//! a re-sync of an unchanged build writes nothing. Only OCI image manifests are served (nginx
//! gives every manifest `application/vnd.oci.image.manifest.v1+json`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::sink::Sink;
use crate::digest::HashWriter;
use crate::fsx::{write_file_atomic, AtomicFile};
use crate::manifest::Digest;
use crate::oci::layout::MANIFEST_MEDIA_TYPE;
use crate::registry::{check_repo, valid_tag, Pushed};

/// A static registry tree rooted at a directory.
pub struct StaticTree {
    root: PathBuf,
    /// One file per blob digest, to link the others to; filled from the tree on first use.
    blobs: Option<BTreeMap<Digest, PathBuf>>,
    /// Files written (created or replaced) so far.
    pub written: u64,
}

impl StaticTree {
    /// The tree under `root` (created as needed).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            blobs: None,
            written: 0,
        }
    }

    fn repo_dir(&self, repo: &str) -> Result<PathBuf> {
        check_repo(repo).map_err(|e| anyhow::anyhow!("repository `{repo}`: {e}"))?;
        Ok(self.root.join("v2").join(repo))
    }

    fn manifest_path(&self, repo: &str, reference: &str) -> Result<PathBuf> {
        if Digest::parse(reference).is_err() && !valid_tag(reference) {
            bail!("`{reference}` is neither a digest nor a tag");
        }
        Ok(self.repo_dir(repo)?.join("manifests").join(reference))
    }

    /// Every blob already in the tree, by digest.
    fn index(&mut self) -> Result<&mut BTreeMap<Digest, PathBuf>> {
        if self.blobs.is_none() {
            let mut found = BTreeMap::new();
            let v2 = self.root.join("v2");
            if v2.is_dir() {
                for e in walkdir::WalkDir::new(&v2).sort_by_file_name() {
                    let e = e.with_context(|| format!("reading `{}`", v2.display()))?;
                    let in_blobs = e
                        .path()
                        .parent()
                        .is_some_and(|p| p.file_name().is_some_and(|n| n == "blobs"));
                    if !in_blobs || !e.file_type().is_file() {
                        continue;
                    }
                    if let Some(d) = e.file_name().to_str().and_then(|n| Digest::parse(n).ok()) {
                        found.entry(d).or_insert_with(|| e.path().to_path_buf());
                    }
                }
            }
            self.blobs = Some(found);
        }
        Ok(self.blobs.as_mut().expect("filled above"))
    }
}

/// Writes `dest` from `source` through a temporary file beside it, checking the digest.
fn copy_checked(source: &Path, dest: &Path, digest: &Digest, size: u64) -> Result<()> {
    let input =
        fs::File::open(source).with_context(|| format!("opening `{}`", source.display()))?;
    let mut tmp = HashWriter::new(AtomicFile::create(dest, 0o644)?);
    io::copy(&mut io::BufReader::with_capacity(64 << 10, input), &mut tmp)
        .with_context(|| format!("copying `{}` to `{}`", source.display(), dest.display()))?;
    let (got, len) = (tmp.digest(), tmp.count());
    if &got != digest || len != size {
        bail!(
            "`{}` is {len} bytes hashing to {got}, not {size} bytes hashing to {digest}",
            source.display()
        );
    }
    tmp.into_inner().commit()
}

/// Hard-links `from` to `dest` through a temporary name beside `dest`.
fn link(from: &Path, dest: &Path) -> std::io::Result<()> {
    let dir = dest.parent().expect("a blob path has a parent");
    let tmp = tempfile::Builder::new().prefix(".link").tempfile_in(dir)?;
    let name = tmp.path().to_path_buf();
    // Reserve a unique name, then put the link in its place.
    drop(tmp);
    fs::hard_link(from, &name)?;
    fs::rename(&name, dest).inspect_err(|_| {
        let _ = fs::remove_file(&name);
    })
}

impl Sink for StaticTree {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn manifest_digest(&mut self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        let path = self.manifest_path(repo, reference)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(Digest::of(&b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading `{}`", path.display())),
        }
    }

    /// A local copy or link: reported by its start and end only (no `progress`).
    fn put_blob(
        &mut self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Path,
        _progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Pushed> {
        let dir = self.repo_dir(repo)?.join("blobs");
        let dest = dir.join(digest.as_str());
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size) {
            self.index()?.entry(digest.clone()).or_insert(dest);
            return Ok(Pushed::Skipped);
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
        let other = self.index()?.get(digest).cloned();
        if let Some(other) = other.filter(|o| fs::metadata(o).is_ok_and(|m| m.len() == size)) {
            if link(&other, &dest).is_ok() {
                self.written += 1;
                return Ok(Pushed::Mounted);
            }
        }
        copy_checked(source, &dest, digest, size)?;
        self.written += 1;
        self.index()?.insert(digest.clone(), dest);
        Ok(Pushed::Uploaded)
    }

    fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        if media_type != MANIFEST_MEDIA_TYPE {
            bail!("the static tree serves only OCI image manifests, not `{media_type}` (`{repo}:{reference}`)");
        }
        let digest = Digest::of(bytes);
        if Digest::parse(reference).is_ok() && reference != digest.as_str() {
            bail!("manifest for `{repo}@{reference}` hashes to {digest}, not to its reference");
        }
        let dir = self.repo_dir(repo)?.join("manifests");
        fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
        let mut paths = vec![dir.join(digest.as_str())];
        if reference != digest.as_str() {
            paths.push(self.manifest_path(repo, reference)?);
        }
        for path in paths {
            if fs::read(&path).is_ok_and(|b| b == bytes) {
                continue;
            }
            write_file_atomic(&path, bytes, 0o644)?;
            self.written += 1;
        }
        Ok(digest)
    }

    fn get_manifest(&mut self, repo: &str, reference: &str) -> Result<Option<(String, Vec<u8>)>> {
        let path = self.manifest_path(repo, reference)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some((MANIFEST_MEDIA_TYPE.to_owned(), b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading `{}`", path.display())),
        }
    }
}
