//! Pulling a host's bundle from a registry, or from an infra node's static registry tree, into
//! a private directory that activation then verifies like any bundle.
//!
//! Order, each step before the next reads anything more: the artifact manifest (by tag, its
//! digest computed from its bytes) → its sigstore signature by a trusted key, unless unsigned
//! bundles are allowed → `manifest.json` and `manifest.sig` → every other file of the artifact,
//! which must be one the signed manifest lists, with the same digest → the images' blobs the
//! manifest lists and the host's store lacks, from the image repositories the bundle's
//! `oci/index.json` names. Every byte is hashed as it arrives and checked before it is kept;
//! writes go through [`crate::fsx`] into a private directory. Blobs the store holds are left
//! out: activation takes them from the store (verified again when read).
//!
//! It does not activate: [`super::activate`] does, on the directory this returns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::fsx::{Links, Root};
use crate::manifest::{Digest, Manifest, SIGNATURE};
use crate::plural::count;
use crate::progress::Reporter;
use crate::registry::{Client, Reference};
use crate::ship::artifact::{bundle_files, BundleFile, ARTIFACT_TYPE, GENERATION, HOST};

/// The media type a bundle artifact and an image manifest come as.
use crate::oci::layout::MANIFEST_MEDIA_TYPE as MANIFEST;

/// The largest `manifest.json` or `manifest.sig` read into memory.
const MAX_SMALL: u64 = 64 << 20;

/// What a pull fetched.
#[derive(Debug, Default)]
pub struct Pulled {
    /// The artifact manifest's digest.
    pub artifact: Option<Digest>,
    /// Blobs fetched from the registry.
    pub fetched: usize,
    /// Their bytes.
    pub fetched_bytes: u64,
    /// Blobs the host's store had already.
    pub reused: usize,
    /// Bundle files other than blobs (always fetched: small).
    pub files: usize,
    /// Requests sent.
    pub requests: u64,
}

impl Pulled {
    /// One line for the operator.
    pub fn summary(&self, reference: &str) -> String {
        format!(
            "pulled {reference}: {} fetched ({}), {} in the host's store; {}; {}",
            count(self.fetched, "blob"),
            crate::plural::bytes(self.fetched_bytes),
            self.reused,
            count(self.files, "bundle file"),
            count(self.requests, "request")
        )
    }
}

/// Where to pull from and how to check it.
pub struct Source<'a> {
    /// `host[:port]/namespace/bundle[:tag]`; without a tag, this host's name.
    pub reference: &'a str,
    /// How to reach the registry.
    pub registry: &'a crate::registry::Options,
}

/// The repository of image `name` beside the bundle repository `repo` (`ns/bundle` → `ns/name`).
fn sibling(repo: &str, name: &str) -> String {
    match repo.rsplit_once('/') {
        Some((ns, _)) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// Pulls the bundle `src.reference` for host `host` into the new private directory `into`
/// (which must exist and be empty); `store` is the host's blob store (`blobs/sha256`), when it
/// has one: blobs there are not fetched.
/// `verify_signature` checks the artifact's sigstore signature (given the client, the
/// repository and the artifact digest) before anything else is fetched.
pub fn pull(
    src: &Source,
    host: &str,
    into: &Path,
    store: Option<&Root>,
    verify_signature: &mut dyn FnMut(&mut Client, &str, &Digest) -> Result<()>,
    progress: &Reporter,
) -> Result<Pulled> {
    let mut r = Reference::parse(src.reference)?;
    if r.tag.is_none() && r.digest.is_none() {
        r.tag = Some(host.to_owned());
    }
    let at = r
        .digest
        .as_ref()
        .map_or_else(|| r.tag.clone().unwrap_or_default(), ToString::to_string);
    progress.phase("pull");
    let mut client = Client::new(&r.host, src.registry)?;
    let (files, digest, generation) = artifact(&mut client, &r, &at, host)?;
    verify_signature(&mut client, &r.repo, &digest)?;
    let mut p = Puller {
        client,
        shown: display(&r, &at),
        repo: r.repo.clone(),
        dir: Root::open(into, Links::Refuse)?,
        store,
        handled: std::collections::BTreeSet::new(),
        pulled: Pulled {
            artifact: Some(digest),
            ..Pulled::default()
        },
        progress,
    };
    let manifest = p.bundle_files(&files, host, &generation)?;
    let repo_of = p.images()?;
    p.blobs(&manifest, &repo_of)?;
    p.pulled.requests = p.client.stats.total();
    Ok(p.pulled)
}

/// The bundle artifact at `at`: its files, its digest and the generation it claims, once its
/// type and its host are checked.
fn artifact(
    client: &mut Client,
    r: &Reference,
    at: &str,
    host: &str,
) -> Result<(Vec<BundleFile>, Digest, String)> {
    let (media_type, bytes, digest) = client
        .get_manifest(&r.repo, at, &[MANIFEST])
        .with_context(|| format!("the bundle `{}`", display(r, at)))?;
    if media_type != MANIFEST && !media_type.is_empty() {
        bail!(
            "`{}` is a `{media_type}`, not a bundle artifact",
            display(r, at)
        );
    }
    let files = bundle_files(&bytes).with_context(|| format!("the bundle `{}`", display(r, at)))?;
    let artifact: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if artifact["artifactType"].as_str() != Some(ARTIFACT_TYPE) {
        bail!("`{}` is not an infragen bundle", display(r, at));
    }
    // The artifact names its host: another host's bundle is refused before anything more is
    // fetched (the signed manifest.json is checked again below).
    let claimed_host = artifact["annotations"][HOST].as_str().unwrap_or_default();
    if claimed_host != host {
        bail!(
            "`{}` is the bundle of host `{claimed_host}`, and this host is `{host}`; nothing was changed",
            display(r, at)
        );
    }
    let claimed_generation = artifact["annotations"][GENERATION]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((files, digest, claimed_generation))
}

/// A pull under way, once the artifact and its signature are checked.
struct Puller<'a> {
    client: Client,
    /// The reference as shown in errors.
    shown: String,
    /// The bundle's repository.
    repo: String,
    /// The private directory.
    dir: Root,
    /// The host's blob store.
    store: Option<&'a Root>,
    /// Blobs counted already.
    handled: std::collections::BTreeSet<Digest>,
    pulled: Pulled,
    progress: &'a Reporter,
}

impl Puller<'_> {
    /// Whether the host's store holds blob `d`. A stored blob counts as there only at the size
    /// its verified descriptor gives (it is hashed again whenever it is read); one of another
    /// size was not written by a verified import, and is refused rather than trusted or
    /// silently replaced.
    fn stored(&self, d: &Digest, size: u64) -> Result<bool> {
        let Some(s) = self.store else {
            return Ok(false);
        };
        match s.meta(Path::new(d.hex())).ok().flatten() {
            None => Ok(false),
            Some(m) if m.size == size && m.kind == crate::fsx::Kind::File => Ok(true),
            Some(m) => bail!(
                "the host's store holds blob {d} as {} bytes, and it is {size}: the store is corrupt; nothing was changed\nhint: remove {}",
                m.size,
                s.path().join(d.hex()).display()
            ),
        }
    }

    /// The signed manifest first (it says what every other file must be), then every other
    /// file of the artifact, each one the manifest lists with the same digest.
    fn bundle_files(
        &mut self,
        files: &[BundleFile],
        host: &str,
        claimed_generation: &str,
    ) -> Result<Manifest> {
        let shown = self.shown.clone();
        let by_path: BTreeMap<&str, &BundleFile> =
            files.iter().map(|f| (f.path.as_str(), f)).collect();
        let Some(m) = by_path.get("manifest.json") else {
            bail!("the bundle `{shown}` has no manifest.json");
        };
        let manifest_bytes = fetch_small(&mut self.client, &self.repo, m)?;
        let manifest = Manifest::parse(&manifest_bytes)
            .with_context(|| format!("manifest.json of `{shown}`"))?;
        if manifest.host != host {
            bail!(
                "`{shown}` is the bundle of host `{}`, and this host is `{host}`",
                manifest.host
            );
        }
        if manifest.id() != claimed_generation {
            bail!(
                "the bundle `{shown}` claims generation `{claimed_generation}`, its manifest.json is generation `{}`",
                manifest.id()
            );
        }
        self.dir
            .write_atomic(Path::new("manifest.json"), &manifest_bytes, 0o600)?;
        if let Some(s) = by_path.get(SIGNATURE) {
            let sig = fetch_small(&mut self.client, &self.repo, s)?;
            self.dir.write_atomic(Path::new(SIGNATURE), &sig, 0o600)?;
        }
        self.pulled.files = 1;
        for f in files {
            if f.path == "manifest.json" || f.path == SIGNATURE {
                continue;
            }
            match manifest.files.get(&f.path) {
                Some(e) if e.digest == f.digest => {}
                Some(e) => bail!(
                    "the bundle `{shown}` carries `{}` as {}, its signed manifest says {}",
                    f.path,
                    f.digest,
                    e.digest
                ),
                None => bail!(
                    "the bundle `{shown}` carries `{}`, which its signed manifest does not list",
                    f.path
                ),
            }
            if f.path.starts_with("oci/blobs/") {
                bail!(
                    "the bundle `{shown}` carries the blob `{}` as a file; blobs come from image repositories",
                    f.path
                );
            }
            let repo = self.repo.clone();
            self.fetch_into(&repo, &f.path, &f.digest, f.size)?;
            self.pulled.files += 1;
        }
        for path in manifest.files.keys() {
            if !path.starts_with("oci/blobs/") && !by_path.contains_key(path.as_str()) {
                bail!("the bundle `{shown}` lacks `{path}`, which its signed manifest lists");
            }
        }
        Ok(manifest)
    }

    /// Which repository holds each blob: the index names the images, their manifests (fetched
    /// unless stored) the rest.
    fn images(&mut self) -> Result<BTreeMap<Digest, (String, u64)>> {
        let index: serde_json::Value =
            serde_json::from_slice(&self.dir.read(Path::new("oci/index.json"))?)
                .context("oci/index.json")?;
        let mut repo_of: BTreeMap<Digest, (String, u64)> = BTreeMap::new();
        for d in index["manifests"].as_array().into_iter().flatten() {
            let name = d["annotations"][crate::oci::layout::REF_NAME]
                .as_str()
                .context("oci/index.json: an image without a ref name")?;
            let digest = Digest::parse(d["digest"].as_str().unwrap_or(""))?;
            let size = d["size"].as_u64().context("oci/index.json: a size")?;
            let repo = sibling(&self.repo, name);
            crate::registry::check_repo(&repo)
                .map_err(|e| anyhow::anyhow!("image `{name}`: {e}"))?;
            let bytes = self.image_manifest(name, &repo, &digest, size)?;
            let m: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("image manifest {digest}"))?;
            for d in
                std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten())
            {
                let blob = Digest::parse(d["digest"].as_str().unwrap_or(""))?;
                let size = d["size"].as_u64().context("a descriptor without a size")?;
                repo_of.entry(blob).or_insert((repo.clone(), size));
            }
        }
        Ok(repo_of)
    }

    /// Image `name`'s manifest, from the store or the registry (kept in the private directory).
    fn image_manifest(
        &mut self,
        name: &str,
        repo: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>> {
        if let Some(s) = self
            .store
            .filter(|_| self.stored(digest, size).unwrap_or(false))
        {
            let b = s.read(Path::new(digest.hex()))?;
            if Digest::of(&b) != *digest {
                bail!("stored blob {digest} is corrupt");
            }
            if self.handled.insert(digest.clone()) {
                self.pulled.reused += 1;
            }
            return Ok(b);
        }
        // Refuses a stored blob of the wrong size.
        self.stored(digest, size)?;
        // An image manifest is served by the manifests endpoint (a registry need not serve it
        // as a blob); the client checks that it hashes to the digest asked for.
        let (_, bytes, _) = self
            .client
            .get_manifest(repo, digest.as_str(), &[MANIFEST])
            .with_context(|| format!("image `{name}`"))?;
        if bytes.len() as u64 != size {
            bail!(
                "image `{name}`: manifest {digest} is {} bytes, the index says {size}",
                bytes.len()
            );
        }
        if self.handled.insert(digest.clone()) {
            self.dir.mkdir_all(Path::new("oci/blobs/sha256"), 0o700)?;
            self.dir.write_atomic(&blob_path(digest), &bytes, 0o600)?;
            self.pulled.fetched += 1;
            self.pulled.fetched_bytes += size;
        }
        Ok(bytes)
    }

    /// Every blob the manifest lists and the store lacks, from its image's repository.
    fn blobs(
        &mut self,
        manifest: &Manifest,
        repo_of: &BTreeMap<Digest, (String, u64)>,
    ) -> Result<()> {
        for path in manifest.files.keys() {
            let Some(hex) = path.strip_prefix("oci/blobs/sha256/") else {
                continue;
            };
            let digest = Digest::parse(&format!("sha256:{hex}"))?;
            if !self.handled.insert(digest.clone()) {
                continue;
            }
            let Some((repo, size)) = repo_of.get(&digest) else {
                bail!(
                    "the bundle `{}` lists blob {digest}, which none of its images uses",
                    self.shown
                );
            };
            if self.stored(&digest, *size)? {
                self.pulled.reused += 1;
                continue;
            }
            let rel = blob_path(&digest);
            self.fetch_into(repo, &rel.to_string_lossy(), &digest, *size)?;
            self.pulled.fetched += 1;
            self.pulled.fetched_bytes += size;
        }
        Ok(())
    }

    /// Streams `digest` into `rel` of the private directory under a temporary name, renamed
    /// when it verifies; its bytes are reported as they arrive.
    fn fetch_into(&mut self, repo: &str, rel: &str, digest: &Digest, size: u64) -> Result<()> {
        let rel = crate::fsx::relative(Path::new(rel))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() {
            self.dir.mkdir_all(parent, 0o700)?;
        }
        let file = self.dir.create_atomic(&rel, 0o600)?;
        let name = rel.display().to_string();
        self.progress.start("pull", &name, Some(size));
        let mut counted = crate::progress::Counted::new(file, self.progress, "pull", &name, size);
        self.client
            .get_blob_to(repo, digest, size, &mut counted)
            .with_context(|| format!("`{name}` from `{repo}`"))?;
        let (file, bytes) = counted.into_inner();
        file.commit()?;
        self.progress
            .done("pull", &name, bytes, Some(digest.as_str()));
        Ok(())
    }
}

fn display(r: &Reference, at: &str) -> String {
    if at.starts_with("sha256:") {
        format!("{}/{}@{at}", r.host, r.repo)
    } else {
        format!("{}/{}:{at}", r.host, r.repo)
    }
}

fn blob_path(d: &Digest) -> PathBuf {
    Path::new("oci/blobs/sha256").join(d.hex())
}

fn fetch_small(client: &mut Client, repo: &str, f: &BundleFile) -> Result<Vec<u8>> {
    if f.size > MAX_SMALL {
        bail!(
            "`{}` is {} bytes, more than a bundle's manifest may be",
            f.path,
            f.size
        );
    }
    let mut bytes = Vec::new();
    client.get_blob_to(repo, &f.digest, f.size, &mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::{sibling, Pulled};

    #[test]
    fn the_summary_counts_in_words() {
        let one = Pulled {
            fetched: 1,
            fetched_bytes: 0,
            reused: 2,
            files: 1,
            requests: 1,
            ..Pulled::default()
        };
        assert_eq!(
            one.summary("r/bundle:g1"),
            format!(
                "pulled r/bundle:g1: 1 blob fetched ({}), 2 in the host's store; 1 bundle file; 1 request",
                crate::plural::bytes(0)
            )
        );
        let many = Pulled {
            fetched: 3,
            files: 2,
            requests: 5,
            ..Pulled::default()
        };
        assert!(many.summary("r").ends_with("2 bundle files; 5 requests"));
        assert!(many.summary("r").starts_with("pulled r: 3 blobs fetched ("));
    }

    #[test]
    fn images_live_beside_the_bundle_repository() {
        assert_eq!(
            sibling("infragen/bundle", "infra-nginx"),
            "infragen/infra-nginx"
        );
        assert_eq!(sibling("a/b/bundle", "x"), "a/b/x");
        assert_eq!(sibling("bundle", "x"), "x");
    }
}
