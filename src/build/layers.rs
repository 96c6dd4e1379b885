//! The layers under an image: the layer cache (an index from cache key to a layer whose blob is
//! in the store), the package layers missing from it built on every core, and the layers of a
//! pinned base image imported from an OCI layout or pulled into the store from a registry.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::entries::package_entries;
use super::{LayerInfo, Options};
use crate::image::Recipe;
use crate::lock::ImageLock;
use crate::oci::blob::BlobStore;
use crate::oci::layer::{self, EntryKind, LayerEntry};
use crate::pkg::fetch::{AptConfig, Cache};
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

/// One package layer to build.
pub(super) struct Job<'a> {
    pub(super) key: String,
    pub(super) package: &'a crate::lock::LockedPackage,
    pub(super) recipe: &'a Recipe,
}

/// Builds the missing package layers on every core: fetching, reading a `.deb`, writing the
/// tar and compressing it are independent per package.
pub(super) fn build_jobs(
    jobs: Vec<Job>,
    layers: &mut Layers,
    cache: &Cache,
    opts: &Options,
    progress: &Reporter,
) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let sources = AptConfig::default().sources()?;
    let queue = std::sync::Mutex::new(jobs);
    let results = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (epoch, store) = (layers.epoch, layers.store);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some(job) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let p = job.package;
                let result =
                    match package_layer(&job, cache, &sources, opts, epoch, store, progress) {
                        // names the package and its version already, and what to run
                        Err(e) if e.is::<crate::pkg::fetch::Vanished>() => Err(e),
                        built => {
                            built.with_context(|| format!("package `{}` {}", p.name, p.version))
                        }
                    };
                let failed = result.is_err();
                results.lock().expect("results").push((job.key, result));
                if failed {
                    queue.lock().expect("queue").clear();
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, result) in results {
        layers.record(&key, &result?)?;
    }
    Ok(())
}

/// One package's layer: its `.deb` fetched (or found in the cache or a local repository),
/// read, and written as a compressed layer into the store.
fn package_layer(
    job: &Job,
    cache: &Cache,
    sources: &[crate::pkg::apt::Source],
    opts: &Options,
    epoch: u64,
    store: &BlobStore,
    progress: &Reporter,
) -> Result<LayerInfo> {
    let p = job.package;
    progress.start("download", &p.name, Some(p.size));
    let bytes = cache.deb(
        &p.name,
        &p.version,
        &p.filename,
        &p.sha256,
        &opts.repos,
        sources,
        // Bytes as they arrive from a mirror (none for a package in the cache or a local
        // repository); the lock's size stands in for a total the server does not send.
        &mut |got, total| progress.progress("download", &p.name, got, total.or(Some(p.size))),
    )?;
    progress.done("download", &p.name, bytes.len() as u64, Some(&p.sha256));
    progress.start("layer", &p.name, None);
    let layer = make_layer(package_entries(&bytes, job.recipe)?, epoch, store)?;
    progress.done("layer", &p.name, layer.size, Some(&layer.digest));
    Ok(layer)
}

/// Layers of a base image, when pinned: from the bases layout when one is given, else from
/// the store, pulling what it lacks from the base registry. `fetched` counts pulled blobs.
pub(super) fn base_layers(
    entry: &ImageLock,
    opts: &Options,
    store: &BlobStore,
    fetched: &mut usize,
) -> Result<Vec<LayerInfo>, String> {
    let Some(base) = &entry.base else {
        return Err("the lock has no base image for it".to_owned());
    };
    let reference = format!("{}:{}", base.name, base.tag);
    let how = format!(
        "run `infragen lock --base-registry HOST[:PORT][/PREFIX]` (or `$INFRAGEN_BASE_REGISTRY`) and build with the same registry, or import it into an OCI layout under the reference `{reference}` (e.g. with `skopeo copy`), run `infragen lock --bases <layout>` and build with `--bases <layout>`"
    );
    let Some(digest) = &base.digest else {
        return Err(format!(
            "base image `{reference}` is not pinned in infragen.lock (no digest yet); {how}"
        ));
    };
    let layers = if let Some(dir) = &opts.bases {
        crate::oci::layout::read_image(dir, &reference, digest, store).map_err(|e| {
            format!(
                "base image `{reference}` ({digest}) in {}: {e:#}",
                dir.display()
            )
        })?
    } else {
        if let Some(registry) = &opts.base_registry {
            let pulled = registry
                .reference(&base.name, &base.tag)
                .and_then(|r| Ok((registry.client()?, r)))
                .and_then(|(mut client, r)| crate::bases::pull(&mut client, &r, digest, store));
            match pulled {
                Ok(n) => *fetched += n,
                Err(e) => {
                    return Err(format!(
                        "base image `{reference}` ({digest}) from `{}`: {e:#}",
                        registry.base
                    ))
                }
            }
        } else if !store.has(digest).unwrap_or(false) {
            return Err(format!(
                "base image `{reference}` ({digest}) is needed; {how}"
            ));
        }
        crate::oci::layout::image_layers(store, &reference, digest, store)
            .map_err(|e| format!("base image `{reference}` ({digest}): {e:#}"))?
    };
    Ok(layers
        .into_iter()
        .map(|l| LayerInfo {
            digest: l.digest,
            diff_id: l.diff_id,
            size: l.size,
            content: 0,
        })
        .collect())
}
