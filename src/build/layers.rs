//! The layers under an image: the layer cache (an index from cache key to a layer whose blob is
//! in the store; a package layer with what its `.deb` said it was), the package layers missing
//! from it — every `.deb` fetched and identified first, then the layers built, each step on
//! every core — and the layers of a pinned base image imported from an OCI layout or pulled
//! into the store from a registry.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::entries::package_entries;
use super::{LayerInfo, Options};
use crate::image::Recipe;
use crate::lock::ImageLock;
use crate::oci::blob::BlobStore;
use crate::oci::layer::{self, EntryKind, LayerEntry};
use crate::pkg::deb::{self, Identity};
use crate::pkg::download::Progress;
use crate::pkg::fetch::{AptConfig, Cache, Vanished};
use crate::progress::Reporter;

/// Format version of cached layers: bump when layer content rules change.
const LAYER_FORMAT: &str = "infragen-layer-1";

/// The layer cache: an index from cache key to layer, whose blobs live in the store.
pub(super) struct Layers<'a> {
    pub(super) store: &'a BlobStore,
    pub(super) index: PathBuf,
    pub(super) epoch: u64,
    pub(super) built: usize,
}

impl Layers<'_> {
    fn index_file(&self, key: &str) -> PathBuf {
        self.index.join(crate::digest::sha256_hex(
            format!("{LAYER_FORMAT} {} {key}", self.epoch).as_bytes(),
        ))
    }

    /// The cached layer with `key`, when its blob is still in the store.
    pub(super) fn lookup(&self, key: &str) -> Result<Option<LayerInfo>> {
        let Ok(text) = fs::read_to_string(self.index_file(key)) else {
            return Ok(None);
        };
        match serde_json::from_str::<LayerInfo>(&text) {
            Ok(info) if self.store.has(&info.digest)? => Ok(Some(info)),
            _ => Ok(None),
        }
    }

    /// Remembers a built layer under `key`.
    fn record(&mut self, key: &str, info: &LayerInfo) -> Result<()> {
        fs::create_dir_all(&self.index)?;
        let file = self.index_file(key);
        crate::fsx::write_file_atomic(&file, &serde_json::to_vec(info)?, 0o644)?;
        self.built += 1;
        Ok(())
    }

    /// The layer with `key`, from the cache, else built from `make` now.
    pub(super) fn get(
        &mut self,
        key: &str,
        make: impl FnOnce() -> Result<Vec<LayerEntry>>,
    ) -> Result<LayerInfo> {
        if let Some(info) = self.lookup(key)? {
            return Ok(info);
        }
        let info = make_layer(make()?, self.epoch, self.store)?;
        self.record(key, &info)?;
        Ok(info)
    }
}

/// Builds a layer and puts its blob in the store; safe to call from several threads.
fn make_layer(entries: Vec<LayerEntry>, epoch: u64, store: &BlobStore) -> Result<LayerInfo> {
    let content = entries
        .iter()
        .map(|e| {
            if let EntryKind::File(d) = &e.kind {
                d.len() as u64
            } else {
                0
            }
        })
        .sum();
    let l = layer::build(entries, epoch)?;
    store.put(&l.bytes)?;
    Ok(LayerInfo {
        digest: l.digest,
        diff_id: l.diff_id,
        size: l.size,
        content,
    })
}

/// A package layer in the cache index: the layer, and what the `.deb` it was made from said it
/// was (so that a cached layer is held to the lock entry that asks for it, and the SBOM lists
/// the `.deb`'s own fields, without reading the file again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PackageLayer {
    /// The layer.
    pub(super) layer: LayerInfo,
    /// What its `.deb` said it was.
    pub(super) deb: Identity,
}

impl Layers<'_> {
    /// The cached package layer with `key`, when its blob is still in the store.
    pub(super) fn lookup_package(&self, key: &str) -> Result<Option<PackageLayer>> {
        let Ok(text) = fs::read_to_string(self.index_file(key)) else {
            return Ok(None);
        };
        match serde_json::from_str::<PackageLayer>(&text) {
            Ok(p) if self.store.has(&p.layer.digest)? => Ok(Some(p)),
            _ => Ok(None),
        }
    }

    /// Remembers a built package layer under `key`.
    fn record_package(&mut self, key: &str, p: &PackageLayer) -> Result<()> {
        fs::create_dir_all(&self.index)?;
        let file = self.index_file(key);
        crate::fsx::write_file_atomic(&file, &serde_json::to_vec(p)?, 0o644)?;
        self.built += 1;
        Ok(())
    }
}

/// One package layer to build.
pub(super) struct Job<'a> {
    pub(super) key: String,
    pub(super) package: &'a crate::lock::LockedPackage,
    pub(super) recipe: &'a Recipe,
}

/// Where the `.deb` files come from: the cache, the local repositories, the APT sources.
pub(super) struct Debs<'a> {
    cache: &'a Cache,
    sources: Vec<crate::pkg::apt::Source>,
    repos: &'a [PathBuf],
}

impl<'a> Debs<'a> {
    /// The `.deb` files of `cache`, else of `opts.repos`, else of this machine's APT sources.
    pub(super) fn new(cache: &'a Cache, opts: &'a Options) -> Result<Self> {
        Ok(Debs {
            cache,
            sources: AptConfig::default().sources()?,
            repos: &opts.repos,
        })
    }

    /// The bytes of `p`'s `.deb`, whose sha256 and size the cache has checked to be the lock's.
    /// `progress` follows a download from a mirror (nothing for a package in the cache or a
    /// local repository).
    fn read(&self, p: &crate::lock::LockedPackage, progress: Progress<'_>) -> Result<Vec<u8>> {
        self.cache.deb(
            &p.name,
            &p.version,
            &p.filename,
            &p.sha256,
            p.size,
            self.repos,
            &self.sources,
            progress,
        )
    }
}

/// What each job's `.deb` says it is (control fields, size, sha256), by job key: every file is
/// fetched and read, on every core, before any layer is built, so that the caller can hold each
/// one to every lock entry that asks for it first.
pub(super) fn identify(
    jobs: &[Job],
    debs: &Debs,
    progress: &Reporter,
) -> Result<BTreeMap<String, Identity>> {
    let found = on_every_core(jobs, |job| {
        let p = job.package;
        progress.start("download", &p.name, Some(p.size));
        // The lock's size stands in for a total the server does not send.
        let bytes = debs.read(p, &mut |got, total| {
            progress.progress("download", &p.name, got, total.or(Some(p.size)));
        })?;
        progress.done("download", &p.name, bytes.len() as u64, Some(&p.sha256));
        Ok(deb::identity(&bytes, &deb::Limits::default())?)
    })?;
    Ok(found.into_iter().collect())
}

/// Builds the missing package layers on every core (reading a `.deb`, writing the tar and
/// compressing it are independent per package) and records each with its `.deb`'s identity,
/// found by [`identify`] and held to the lock already.
pub(super) fn build_jobs(
    jobs: &[Job],
    identities: &BTreeMap<String, Identity>,
    layers: &mut Layers,
    debs: &Debs,
    progress: &Reporter,
) -> Result<()> {
    let (epoch, store) = (layers.epoch, layers.store);
    let built = on_every_core(jobs, |job| {
        let p = job.package;
        // The cache checks the sha256 again: these are the bytes `identify` read.
        let bytes = debs.read(p, &mut |_, _| {})?;
        progress.start("layer", &p.name, None);
        let layer = make_layer(package_entries(&bytes, job.recipe)?, epoch, store)?;
        progress.done("layer", &p.name, layer.size, Some(&layer.digest));
        Ok(layer)
    })?;
    for (key, layer) in built {
        let deb = identities
            .get(&key)
            .with_context(|| format!("layer `{key}` built without its package's identity"))?
            .clone();
        layers.record_package(&key, &PackageLayer { layer, deb })?;
    }
    Ok(())
}

/// Runs `work` on every job, on every core, largest package first (so that the long ones do not
/// end up last on one core); no job starts after one has failed. The results are in key order;
/// the error is the first failure in key order, naming its package.
fn on_every_core<T: Send>(
    jobs: &[Job],
    work: impl Fn(&Job) -> Result<T> + Sync,
) -> Result<Vec<(String, T)>> {
    let mut order: Vec<&Job> = jobs.iter().collect();
    order.sort_by(|a, b| (b.package.size, &b.key).cmp(&(a.package.size, &a.key)));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(order.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(job) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let p = job.package;
                    let result = match work(job) {
                        // names the package and its version already, and what to run
                        Err(e) if e.is::<Vanished>() => Err(e),
                        done => done.with_context(|| format!("package `{}` {}", p.name, p.version)),
                    };
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    results
                        .lock()
                        .expect("results")
                        .push((job.key.clone(), result));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
        .into_iter()
        .map(|(key, result)| result.map(|t| (key, t)))
        .collect()
}

/// Layers of a base image, when pinned: from the bases layout when one is given, else from
/// the store, pulling what it lacks from the base registry. `fetched` counts pulled blobs.
/// `Ok(Err(why))` is a base image missing (not pinned, not in the layout, not reachable): the
/// image is not built. `Err` is a base image that is there and breaks a rule (a layer entry, a
/// blob, a digest): refused, the build fails.
pub(super) fn base_layers(
    entry: &ImageLock,
    opts: &Options,
    store: &BlobStore,
    fetched: &mut usize,
) -> Result<Result<Vec<LayerInfo>, String>> {
    let Some(base) = &entry.base else {
        return Ok(Err("the lock has no base image for it".to_owned()));
    };
    let reference = format!("{}:{}", base.name, base.tag);
    let how = format!(
        "run `infragen lock --base-registry HOST[:PORT][/PREFIX]` (or `$INFRAGEN_BASE_REGISTRY`) and build with the same registry, or import it into an OCI layout under the reference `{reference}` (e.g. with `skopeo copy`), run `infragen lock --bases <layout>` and build with `--bases <layout>`"
    );
    let Some(digest) = &base.digest else {
        return Ok(Err(format!(
            "base image `{reference}` is not pinned in infragen.lock (no digest yet); {how}"
        )));
    };
    let layers = if let Some(dir) = &opts.bases {
        if let Err(e) = crate::oci::layout::pinned(dir, &reference, digest) {
            return Ok(Err(format!(
                "base image `{reference}` ({digest}) in {}: {e:#}",
                dir.display()
            )));
        }
        crate::oci::blob::BlobStore::open(dir)
            .and_then(|layout| crate::oci::layout::image_layers(&layout, &reference, digest, store))
            .with_context(|| format!("base image `{reference}` ({digest}) refused"))?
    } else {
        if let Some(registry) = &opts.base_registry {
            let pulled = registry
                .reference(&base.name, &base.tag)
                .and_then(|r| Ok((registry.client()?, r)))
                .and_then(|(mut client, r)| crate::bases::pull(&mut client, &r, digest, store));
            match pulled {
                Ok(n) => *fetched += n,
                Err(e) => {
                    return Ok(Err(format!(
                        "base image `{reference}` ({digest}) from `{}`: {e:#}",
                        registry.base
                    )))
                }
            }
        } else if !store.has(digest).unwrap_or(false) {
            return Ok(Err(format!(
                "base image `{reference}` ({digest}) is needed; {how}"
            )));
        }
        crate::oci::layout::image_layers(store, &reference, digest, store)
            .with_context(|| format!("base image `{reference}` ({digest}) refused"))?
    };
    Ok(Ok(layers
        .into_iter()
        .map(|l| LayerInfo {
            digest: l.digest,
            diff_id: l.diff_id,
            size: l.size,
            content: 0,
        })
        .collect()))
}
