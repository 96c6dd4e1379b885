//! The layers under an image: the layer cache (an index from cache key to a layer whose blob is
//! in the store; a package layer with what its `.deb` said it was), the package layers missing
//! from it — every `.deb` fetched, read once and identified first, then each `.deb`'s data
//! decoded once and each distinct layer of it built once, each step on every core — and the
//! layers of a pinned base image imported from an OCI layout or pulled into the store from a
//! registry.
//!
//! A build's new blobs go through a batch handle of the store ([`BlobStore::batch`]): written
//! without fsyncs, made durable together by [`Layers::commit`], which writes the index entries
//! naming them only then. So an index entry on disk always names a durable blob; the entries
//! themselves are not synced (one lost or torn by a crash is a layer built again). Within the
//! build, entries not yet written are looked up in memory.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::entries::{package_drops, package_entries};
use super::{LayerInfo, Options};
use crate::image::Recipe;
use crate::lock::{ImageLock, LockedPackage};
use crate::oci::blob::BlobStore;
use crate::oci::layer::{self, Compression, EntryKind, LayerEntry};
use crate::pkg::deb::{self, Identity};
use crate::pkg::download::Progress;
use crate::pkg::fetch::{AptConfig, Cache, Vanished};
use crate::progress::Reporter;

/// Format version of cached layers: bump when layer content rules or their compressed bytes
/// change (2: gzip by zlib-rs, whose bytes differ from `miniz_oxide`'s).
const LAYER_FORMAT: &str = "infragen-layer-2";

/// The layer cache: an index from cache key to layer, whose blobs live in the store.
pub(super) struct Layers<'a> {
    /// The store, for blobs read (and base images pulled, each blob synced as it comes).
    pub(super) store: &'a BlobStore,
    /// The same store, for the blobs this build makes: synced together by [`Layers::commit`].
    pub(super) made: BlobStore,
    index: PathBuf,
    pub(super) epoch: u64,
    /// How the layers built are compressed (part of every cache key).
    compression: Compression,
    /// Layers built (compressed and stored) by this build: each distinct one once.
    pub(super) built: AtomicUsize,
    /// Index entries recorded by this build, written by [`Layers::commit`]: file → JSON.
    pending: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
    /// Index entries read from disk by this build (`None`: no such entry), and the blobs found
    /// in the store: every image asks for its layers, and most layers are shared by several
    /// images (a no-change rebuild of `three-node` asked 345 times for 79 entries).
    seen: Mutex<Seen>,
}

/// What one build has read of the layer cache already.
#[derive(Default)]
struct Seen {
    entries: BTreeMap<PathBuf, Option<Vec<u8>>>,
    blobs: std::collections::BTreeSet<String>,
}

impl<'a> Layers<'a> {
    /// The layer cache of `store` with its index in `index`, for layers made at `epoch`.
    pub(super) fn new(
        store: &'a BlobStore,
        index: PathBuf,
        epoch: u64,
        compression: Compression,
    ) -> Self {
        Layers {
            store,
            made: store.batch(),
            index,
            epoch,
            compression,
            built: AtomicUsize::new(0),
            pending: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    /// Makes every blob this build stored durable, then writes the index entries it recorded
    /// (not synced: see the module's documentation). Returns the number of blobs synced.
    pub(super) fn commit(&self) -> Result<usize> {
        let synced = self.made.sync()?;
        let pending = std::mem::take(&mut *self.pending.lock().expect("index entries"));
        if !pending.is_empty() {
            fs::create_dir_all(&self.index)
                .with_context(|| format!("creating {}", self.index.display()))?;
        }
        for (file, json) in pending {
            let mut f = crate::fsx::AtomicFile::create(&file, 0o644)?;
            std::io::Write::write_all(&mut f, &json)
                .with_context(|| format!("writing {}", file.display()))?;
            f.commit_unsynced()?;
        }
        Ok(synced)
    }

    /// The text of the index entry for `key`: recorded by this build, else on disk.
    fn entry(&self, key: &str) -> Option<Vec<u8>> {
        let file = self.index_file(key);
        if let Some(json) = self.pending.lock().expect("index entries").get(&file) {
            return Some(json.clone());
        }
        if let Some(read) = self.seen.lock().expect("entries read").entries.get(&file) {
            return read.clone();
        }
        let read = fs::read(&file).ok();
        self.seen
            .lock()
            .expect("entries read")
            .entries
            .insert(file, read.clone());
        read
    }

    /// Whether the store holds blob `digest` (its content is not checked; see
    /// [`BlobStore::has`]). A blob found stays found for the build: nothing removes one.
    fn has(&self, digest: &str) -> Result<bool> {
        if self
            .seen
            .lock()
            .expect("blobs found")
            .blobs
            .contains(digest)
        {
            return Ok(true);
        }
        let found = self.store.has(digest)?;
        if found {
            self.seen
                .lock()
                .expect("blobs found")
                .blobs
                .insert(digest.to_owned());
        }
        Ok(found)
    }
}

impl Layers<'_> {
    fn index_file(&self, key: &str) -> PathBuf {
        self.index.join(crate::digest::sha256_hex(
            format!(
                "{LAYER_FORMAT} {} {} {key}",
                self.epoch,
                self.compression.name()
            )
            .as_bytes(),
        ))
    }

    /// The cached layer with `key`, when its blob is still in the store.
    pub(super) fn lookup(&self, key: &str) -> Result<Option<LayerInfo>> {
        let Some(text) = self.entry(key) else {
            return Ok(None);
        };
        match serde_json::from_slice::<LayerInfo>(&text) {
            Ok(info) if self.has(&info.digest)? => Ok(Some(info)),
            _ => Ok(None),
        }
    }

    /// Remembers `value` under `key`: at once for this build, on disk at [`Layers::commit`].
    fn record(&self, key: &str, value: &impl Serialize) -> Result<()> {
        let json = serde_json::to_vec(value)?;
        self.pending
            .lock()
            .expect("index entries")
            .insert(self.index_file(key), json);
        Ok(())
    }

    /// Builds a layer from `entries`, puts its blob in the store and counts it; safe to call
    /// from several threads.
    fn make(&self, entries: Vec<LayerEntry>) -> Result<LayerInfo> {
        let info = make_layer(entries, self.epoch, self.compression, &self.made)?;
        self.built.fetch_add(1, Ordering::Relaxed);
        Ok(info)
    }

    /// The layer with `key`, from the cache, else built from `make` now.
    pub(super) fn get(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<Vec<LayerEntry>>,
    ) -> Result<LayerInfo> {
        if let Some(info) = self.lookup(key)? {
            return Ok(info);
        }
        let info = self.make(make()?)?;
        self.record(key, &info)?;
        Ok(info)
    }
}

/// Builds a layer and puts its blob in the store; safe to call from several threads.
fn make_layer(
    entries: Vec<LayerEntry>,
    epoch: u64,
    compression: Compression,
    store: &BlobStore,
) -> Result<LayerInfo> {
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
    let l = layer::build_with(entries, epoch, compression)?;
    store.put(&l.bytes)?;
    Ok(LayerInfo {
        digest: l.digest,
        diff_id: l.diff_id,
        size: l.size,
        content,
        media_type: l.media_type,
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
        let Some(text) = self.entry(key) else {
            return Ok(None);
        };
        match serde_json::from_slice::<PackageLayer>(&text) {
            Ok(p) if self.has(&p.layer.digest)? => Ok(Some(p)),
            _ => Ok(None),
        }
    }
}

/// The key an image asks for a package layer by: the `.deb`, the recipe's exclude list and
/// what it keeps of this package. Two images whose lists differ where the package has no file
/// ask for the same layer under two such keys; both name it in the index, and it is built once,
/// under its content key ([`content_key`]).
pub(super) fn request_key(p: &LockedPackage, r: &Recipe) -> String {
    format!(
        "deb {} exclude {:?} keep {:?}",
        p.sha256,
        r.exclude_paths,
        r.package_paths.get(&p.name)
    )
}

/// The key of a package layer's content: the `.deb` and the paths left out of it, which with
/// [`package_entries`] make every byte of the layer. Which image asks does not enter it.
fn content_key(sha256: &str, d: &deb::Deb, drop: &[bool]) -> String {
    let mut h = crate::digest::Hasher::new();
    for (e, _) in d.entries.iter().zip(drop).filter(|(_, &out)| out) {
        h.update(e.path.as_bytes());
        h.update(b"\0");
    }
    format!("package {sha256} dropped {}", h.finish().hex())
}

/// One `.deb` some of whose layers are missing: the package, and the layers asked of it (each
/// a request key and the recipe whose exclude list filters the package's files). Every layer of
/// one `.deb` is made by one worker from one decoding of its data archive.
pub(super) struct Job<'a> {
    pub(super) package: &'a LockedPackage,
    pub(super) requests: Vec<(String, &'a Recipe)>,
}

/// A `.deb` read for the build: what it says it is, and its bytes (read once, for the
/// identity check and for every layer made from it).
pub(super) struct Fetched {
    pub(super) identity: Identity,
    bytes: Vec<u8>,
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
    fn read(&self, p: &LockedPackage, progress: Progress<'_>) -> Result<Vec<u8>> {
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

/// Every job's `.deb`, fetched and read once, with what it says it is, by sha256: every file
/// is fetched and identified, on `workers` threads, before any layer is built, so that the
/// caller can hold each one to every lock entry that asks for it first.
pub(super) fn identify(
    jobs: &[Job],
    debs: &Debs,
    workers: usize,
    progress: &Reporter,
) -> Result<BTreeMap<String, Fetched>> {
    let found = on_every_core(jobs, workers, |job| {
        let p = job.package;
        progress.start("download", &p.name, Some(p.size));
        // The lock's size stands in for a total the server does not send.
        let bytes = debs.read(p, &mut |got, total| {
            progress.progress("download", &p.name, got, total.or(Some(p.size)));
        })?;
        progress.done("download", &p.name, bytes.len() as u64, Some(&p.sha256));
        let identity = deb::identity(&bytes, &deb::Limits::default())?;
        Ok(Fetched { identity, bytes })
    })?;
    Ok(found.into_iter().collect())
}

/// Builds the missing package layers on `workers` threads, largest package first: each `.deb`'s
/// data archive is decoded once, and each distinct layer of it (by [`content_key`]) built once,
/// however many images ask for it. Each layer is recorded under its content key and under every
/// request key, with the `.deb`'s identity, found by [`identify`] and held to the lock already.
pub(super) fn build_jobs(
    jobs: &[Job],
    fetched: &BTreeMap<String, Fetched>,
    layers: &Layers,
    workers: usize,
    progress: &Reporter,
) -> Result<()> {
    on_every_core(jobs, workers, |job| {
        let p = job.package;
        let f = fetched
            .get(&p.sha256)
            .with_context(|| format!("`{}` not read before its layers", p.filename))?;
        let d = deb::read(&f.bytes, &deb::Limits::default())?;
        // content key → the requests it answers, and what the layer leaves out
        let mut wanted: BTreeMap<String, (Vec<bool>, Vec<&str>)> = BTreeMap::new();
        for (key, recipe) in &job.requests {
            let drop = package_drops(&d, recipe)?;
            let content = content_key(&p.sha256, &d, &drop);
            wanted
                .entry(content)
                .or_insert((drop, Vec::new()))
                .1
                .push(key);
        }
        for (content, (drop, keys)) in wanted {
            let layer = if let Some(cached) = layers.lookup_package(&content)? {
                cached.layer
            } else {
                progress.start("layer", &p.name, None);
                let layer = layers.make(package_entries(&d, &drop))?;
                progress.done("layer", &p.name, layer.size, Some(&layer.digest));
                layer
            };
            let record = PackageLayer {
                layer,
                deb: f.identity.clone(),
            };
            for key in std::iter::once(content.as_str()).chain(keys) {
                layers.record(key, &record)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Runs `work` on every job on `workers` threads, largest package first (so that the long ones
/// do not end up last on one core); no job starts after one has failed. The results are in the
/// order of the packages' sha256, each with it; the error is the first failure in that order,
/// naming its package.
fn on_every_core<T: Send>(
    jobs: &[Job],
    workers: usize,
    work: impl Fn(&Job) -> Result<T> + Sync,
) -> Result<Vec<(String, T)>> {
    let mut order: Vec<&Job> = jobs.iter().collect();
    order.sort_by(|a, b| {
        (b.package.size, &b.package.sha256).cmp(&(a.package.size, &a.package.sha256))
    });
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results = Mutex::new(Vec::new());
    let threads = workers.clamp(1, order.len().max(1));
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
                        .push((p.sha256.clone(), result));
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
            media_type: l.media_type,
        })
        .collect()))
}
