//! Shipping a build's output (`out/<host>/`) to a registry or a static tree.
//!
//! Each host's images go to `<namespace>/<ref name>` (`infragen/infra-nginx`) by digest, each
//! blob once per push (an image several hosts share is pushed once; a layer two image
//! repositories share is mounted, or hard-linked in the static tree). Then the host's bundle
//! goes to `<namespace>/bundle` as an OCI artifact ([`artifact`]) tagged with the host and
//! with the generation id. A bundle that carries a secret in clear is refused before anything
//! is sent. Owns what is pushed where; the wire is `registry`'s.

pub mod artifact;
mod sink;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

pub use artifact::{bundle_artifact, bundle_files, BundleFile};
pub use sink::Sink;
pub use tree::StaticTree;

use crate::manifest::{Digest, Manifest};
use crate::oci::layout::MANIFEST_MEDIA_TYPE;
use crate::progress::Reporter;
use crate::registry::{check_repo, valid_tag, Pushed, Stats};
use crate::sign::SigningKey;

/// The namespace of the static tree (`<admin_ip>/infragen/bundle:<host>`).
pub const NAMESPACE: &str = "infragen";

/// The repository (under the namespace) that holds the bundles.
pub const BUNDLE_REPO: &str = "bundle";

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Hosts pushed.
    pub hosts: usize,
    /// Blobs uploaded (written, in the static tree).
    pub uploaded: u64,
    /// Bytes of the blobs uploaded.
    pub bytes: u64,
    /// Blobs mounted from another repository (hard-linked, in the static tree).
    pub mounted: u64,
    /// Blobs that were there already.
    pub skipped: u64,
    /// Manifests and tags written.
    pub manifests: u64,
    /// Manifests and tags that were there already.
    pub manifests_present: u64,
    /// Signatures added (`--sign-key`): one per image and bundle not yet signed by the key.
    pub signatures: u64,
    /// Images and bundles the key had signed already.
    pub signatures_present: u64,
    /// The sink's request counts, when it makes requests.
    pub stats: Option<Stats>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} host{}: {} blob{} uploaded ({}), {} mounted, {} already there; {} manifest{} written, {} already there",
            self.hosts,
            if self.hosts == 1 { "" } else { "s" },
            self.uploaded,
            s(self.uploaded),
            crate::plural::bytes(self.bytes),
            self.mounted,
            self.skipped,
            self.manifests,
            s(self.manifests),
            self.manifests_present
        )?;
        if self.signatures + self.signatures_present > 0 {
            write!(
                f,
                "; {} signature{} added, {} already there",
                self.signatures,
                s(self.signatures),
                self.signatures_present
            )?;
        }
        if let Some(stats) = &self.stats {
            write!(f, "; {stats}")?;
        }
        Ok(())
    }
}

/// The host bundle directories of `out` (those holding `manifest.json`), sorted.
pub fn host_dirs(out: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for e in fs::read_dir(out).with_context(|| format!("reading `{}`", out.display()))? {
        let p = e?.path();
        if p.is_dir() && p.join("manifest.json").is_file() {
            dirs.push(p);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "`{}` holds no bundle (no `<host>/manifest.json`)\nhint: push the output directory of `infragen build`",
            out.display()
        );
    }
    Ok(dirs)
}

/// Refuses a bundle whose manifest lists a file under `secrets/` not encrypted: the manifest
/// must be sealed (name its recipients) and every secret an `.age` file.
pub fn check_secrets(m: &Manifest) -> Result<()> {
    if let Some(path) = m
        .files
        .keys()
        // The exact name the encryption writes: `.AGE` is not it.
        .find(|p| {
            p.starts_with("secrets/")
                && (!m.sealed() || Path::new(p.as_str()).extension().is_none_or(|e| e != "age"))
        })
    {
        bail!(
            "host `{}`: `{path}` is a secret in clear (not an `.age` file); refusing to push the bundle\nhint: run `infragen host init` on the host, put its key in the profile as `infragen_host_key`, and rebuild",
            m.host
        );
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    #[serde(default)]
    media_type: Option<String>,
    config: Blob,
    layers: Vec<Blob>,
}

#[derive(Deserialize)]
struct Blob {
    digest: Digest,
    size: u64,
}

/// Pushes every host bundle of `out` into `sink` under `namespace` (`infragen`). Every bundle
/// is read and checked (manifest, secrets) before anything is sent. With `key`, every image and
/// bundle gets a sigstore signature attachment (`sha256-<hex>.sig`, see [`crate::sign::attach`])
/// naming it by digest in its repository.
pub fn push(
    out: &Path,
    sink: &mut dyn Sink,
    namespace: &str,
    key: Option<&SigningKey>,
    progress: &Reporter,
) -> Result<Summary> {
    check_repo(namespace).map_err(|e| anyhow::anyhow!("namespace `{namespace}`: {e}"))?;
    let mut hosts = Vec::new();
    for dir in host_dirs(out)? {
        let path = dir.join("manifest.json");
        let bytes = fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        let m = Manifest::parse(&bytes).with_context(|| format!("`{}`", dir.display()))?;
        check_secrets(&m)?;
        if !valid_tag(&m.host) {
            bail!(
                "host `{}` cannot be a tag: the bundle could not be found by it",
                m.host
            );
        }
        hosts.push((dir, m));
    }
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    let empty = work.path().join("empty");
    fs::write(&empty, artifact::EMPTY)?;
    let mut p = Pusher {
        sink,
        summary: Summary::default(),
        done: BTreeSet::new(),
        key,
        work: work.path().to_path_buf(),
        progress,
    };
    progress.phase("push");
    for (dir, m) in &hosts {
        let layout = dir.join("oci");
        // A regular node's bundle (its node part alone) has no image and no layout.
        let refs = if m.components.is_empty() && !layout.exists() {
            BTreeMap::new()
        } else {
            crate::oci::layout::refs(&layout).with_context(|| format!("`{}`", layout.display()))?
        };
        for (name, digest) in refs {
            let repo = format!("{namespace}/{name}");
            let digest = Digest::parse(&digest)?;
            if p.image(&layout, &repo, &digest)? {
                p.sign(&repo, &digest)?;
            }
        }
        let files = scan(dir)?;
        let bytes = bundle_artifact(&m.host, m.id(), &files);
        let repo = format!("{namespace}/{BUNDLE_REPO}");
        let digest = Digest::of(&bytes);
        if p.sink.manifest_digest(&repo, digest.as_str())?.is_none() {
            p.blob(&repo, &Digest::parse(artifact::EMPTY_DIGEST)?, 2, &empty)?;
            for f in &files {
                p.blob(&repo, &f.digest, f.size, &dir.join(&f.path))?;
            }
        }
        for tag in [m.host.as_str(), m.id()] {
            if p.sink.manifest_digest(&repo, tag)?.as_ref() == Some(&digest) {
                p.summary.manifests_present += 1;
            } else {
                p.sink
                    .put_manifest(&repo, tag, MANIFEST_MEDIA_TYPE, &bytes)?;
                p.summary.manifests += 1;
            }
        }
        p.sign(&repo, &digest)?;
        p.summary.hosts += 1;
    }
    let mut summary = p.summary;
    summary.stats = p.sink.stats().cloned();
    Ok(summary)
}

struct Pusher<'a> {
    sink: &'a mut dyn Sink,
    summary: Summary,
    /// Image manifests handled in this push, by repository.
    done: BTreeSet<(String, Digest)>,
    /// The signing key, with `--sign-key`.
    key: Option<&'a SigningKey>,
    /// A private directory for the signature blobs.
    work: PathBuf,
    progress: &'a Reporter,
}

impl Pusher<'_> {
    fn blob(&mut self, repo: &str, digest: &Digest, size: u64, source: &Path) -> Result<()> {
        let name = format!("{repo}@{digest}");
        self.progress.start("push", &name, Some(size));
        let reporter = self.progress;
        let pushed = self
            .sink
            .put_blob(repo, digest, size, source, &mut |sent, total| {
                reporter.progress("push", &name, sent, total);
            })
            .with_context(|| format!("pushing blob {digest} to `{repo}`"))?;
        self.progress
            .done("push", &name, size, Some(digest.as_str()));
        match pushed {
            Pushed::Uploaded => {
                self.summary.uploaded += 1;
                self.summary.bytes += size;
            }
            Pushed::Mounted => self.summary.mounted += 1,
            Pushed::Skipped => self.summary.skipped += 1,
        }
        Ok(())
    }

    /// Adds a signature by the key (if any) to the attachment of manifest `digest` in `repo`,
    /// unless the key signed it already.
    fn sign(&mut self, repo: &str, digest: &Digest) -> Result<()> {
        let Some(key) = self.key else {
            return Ok(());
        };
        let tag = crate::sign::attach::tag(digest);
        let existing = match self.sink.get_manifest(repo, &tag)? {
            Some((media_type, bytes))
                if media_type == MANIFEST_MEDIA_TYPE || media_type.is_empty() =>
            {
                Some(bytes)
            }
            Some((media_type, _)) => {
                bail!("`{repo}:{tag}` is a `{media_type}`, not a signature attachment")
            }
            None => None,
        };
        let identity = match self.sink.registry_host() {
            Some(h) => format!("{h}/{repo}@{digest}"),
            None => format!("{repo}@{digest}"),
        };
        let a = crate::sign::attach::sign_attachment(key, &identity, digest, existing.as_deref())
            .with_context(|| format!("signing `{repo}@{digest}`"))?;
        if !a.added {
            self.summary.signatures_present += 1;
            return Ok(());
        }
        for (d, bytes) in &a.blobs {
            let path = self.work.join(d.hex());
            fs::write(&path, bytes).with_context(|| format!("writing `{}`", path.display()))?;
            self.blob(repo, d, bytes.len() as u64, &path)?;
        }
        self.sink
            .put_manifest(repo, &a.tag, a.media_type, &a.manifest)
            .with_context(|| format!("pushing the signature `{repo}:{}`", a.tag))?;
        self.summary.signatures += 1;
        Ok(())
    }

    /// Pushes image `digest` of the layout at `layout` to `repo`, unless it is there; false
    /// when this push handled it already.
    fn image(&mut self, layout: &Path, repo: &str, digest: &Digest) -> Result<bool> {
        if !self.done.insert((repo.to_owned(), digest.clone())) {
            return Ok(false);
        }
        if self.sink.manifest_digest(repo, digest.as_str())?.is_some() {
            self.summary.manifests_present += 1;
            return Ok(true);
        }
        let blob = |d: &Digest| layout.join("blobs/sha256").join(d.hex());
        let path = blob(digest);
        let bytes = fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        if &Digest::of(&bytes) != digest {
            bail!("`{}` does not hash to its name", path.display());
        }
        let m: ImageManifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("image manifest `{}`", path.display()))?;
        let media_type = m.media_type.as_deref().unwrap_or(MANIFEST_MEDIA_TYPE);
        if media_type != MANIFEST_MEDIA_TYPE {
            bail!(
                "`{}` is `{media_type}`, not an OCI image manifest",
                path.display()
            );
        }
        for b in std::iter::once(&m.config).chain(&m.layers) {
            self.blob(repo, &b.digest, b.size, &blob(&b.digest))?;
        }
        self.sink
            .put_manifest(repo, digest.as_str(), media_type, &bytes)
            .with_context(|| format!("pushing image {digest} to `{repo}`"))?;
        self.summary.manifests += 1;
        Ok(true)
    }
}

/// Every file of the bundle at `dir` but the image blobs (`oci/blobs/`), hashed, sorted by
/// path. Anything but a regular file or a directory is refused.
pub fn scan(dir: &Path) -> Result<Vec<BundleFile>> {
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.with_context(|| format!("reading `{}`", dir.display()))?;
        let rel = e.path().strip_prefix(dir)?;
        let Some(path) = rel.to_str() else {
            bail!("`{}`: a file name that is not UTF-8", e.path().display());
        };
        if path.starts_with("oci/blobs/") || path == "oci/blobs" {
            continue;
        }
        if e.file_type().is_dir() {
            continue;
        }
        if !e.file_type().is_file() {
            bail!("`{}` is not a regular file", e.path().display());
        }
        let bytes =
            fs::read(e.path()).with_context(|| format!("reading `{}`", e.path().display()))?;
        files.push(BundleFile {
            path: path.to_owned(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
