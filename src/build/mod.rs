//! Build: every infra host's OCI images, from locked packages plus the host's rendered config,
//! and a bundle for every node of the inventory (a regular node's holds its node part alone).
//!
//! Each image is layered as: one layer per package of the locked closure (shared by every image
//! and host that uses the package, built once and cached by the package's sha256), one layer for
//! the recipe's users, groups and directories, and one small layer with the host's rendered
//! configuration. Blobs live in one content-addressed store under the cache; each host gets an
//! OCI layout `out/<host>/oci` whose blobs are hard links into it, with one reference per image
//! (`infra-<component>`). Secrets never enter a layer: they go to `out/<host>/secrets/`.
//! The whole output is made in memory first ([`crate::output::Output`]) and then synced into
//! `out/`, writing only the files that differ: a rebuild that changes nothing writes nothing.
//!
//! The report types and [`build`] live here; `layers` holds the layer cache, builds missing
//! package layers on every core and takes base-image layers from an imported layout or from
//! the store (pulled from the base registry by `bases`), `entries` turns packages, recipes and
//! rendered files into layer entries, `spec` makes each image's configuration, and `sbom` each
//! image's SPDX bill of materials (`out/<host>/sbom/`).

mod entries;
mod layers;
mod plugins;
mod sbom;
mod spec;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::keypath;
use crate::lock::{Lock, LockedPackage};
use crate::oci::blob::BlobStore;
use crate::oci::layout;
use crate::output::Output;
use crate::pkg::fetch::Cache;
use crate::plan::{Component, Plan};
use crate::progress::{Event, Reporter};
use crate::tree::Tree;

pub use crate::image::{Built, LayerInfo};

use entries::{config_entries, content_key, recipe_entries};
use layers::{base_layers, build_jobs, identify, request_key, Debs, Fetched, Job, Layers};
use spec::image_spec;

/// Where a build reads from and writes to.
pub struct Options {
    /// Output directory (made to hold exactly the build's files, writing only those that
    /// differ; only if new, empty or marked by infragen).
    pub out: PathBuf,
    /// Cache: `.deb` files, layer index, blob store.
    pub cache: PathBuf,
    /// The lock file.
    pub lock: PathBuf,
    /// Local repositories holding `.deb` files (offline builds).
    pub repos: Vec<PathBuf>,
    /// An OCI layout holding imported base images (`name:tag` references).
    pub bases: Option<PathBuf>,
    /// The registry pinned base images missing from the store are pulled from.
    pub base_registry: Option<crate::bases::BaseRegistry>,
    /// The private key that signs every bundle's manifest.
    pub sign_key: Option<PathBuf>,
    /// The passphrase of an encrypted `sign_key` (else `$INFRAGEN_KEY_PASSPHRASE`).
    pub sign_passphrase: Option<Vec<u8>>,
    /// How layers are made.
    pub layers: LayerOptions,
}

/// How a build makes layers.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// Threads for layer work (fetching, decoding, compressing); `None`: one per core
    /// (`std::thread::available_parallelism`). The output does not depend on it.
    pub jobs: Option<std::num::NonZeroUsize>,
    /// How the layers built are compressed (base images' layers stay as they are).
    pub compression: crate::oci::layer::Compression,
}

impl Options {
    /// The threads layer work runs on: [`LayerOptions::jobs`], else one per core.
    fn workers(&self) -> usize {
        self.layers
            .jobs
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, std::num::NonZeroUsize::get)
    }
}

/// What a build produced per host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Host → component → image.
    pub hosts: BTreeMap<String, BTreeMap<String, Built>>,
    /// Host → component → why it is missing.
    pub incomplete: BTreeMap<String, BTreeMap<String, String>>,
    /// Layers that had to be built (not found in the cache).
    pub layers_built: usize,
    /// Base image blobs (manifests included) fetched from the base registry.
    pub base_blobs_fetched: usize,
    /// Host → generation id of its bundle.
    pub generations: BTreeMap<String, String>,
    /// How the layers built are compressed: `gzip` or `zstd`.
    pub compression: &'static str,
}

impl Report {
    /// The digest list: one line per image, `host ref digest`.
    pub fn digests(&self) -> String {
        let mut s = String::new();
        for (host, images) in &self.hosts {
            for (c, b) in images {
                let _ = writeln!(s, "{host} infra-{c} {}", b.digest);
            }
        }
        s
    }
}

/// Builds the images of every infra host of `plan` and the bundle of every node into `opts.out`.
pub fn build(plan: &Plan, tree: &Tree, opts: &Options, progress: &Reporter) -> Result<Report> {
    // Refuse a directory infragen may not replace before any work (`replace_dir` checks again).
    crate::tree::check_out(&opts.out)?;
    // A bad key fails before any work.
    let signer = opts
        .sign_key
        .as_deref()
        .map(|k| crate::sign::SigningKey::load_with(k, opts.sign_passphrase.as_deref()))
        .transpose()?;
    // A component the profile takes from its upstream image is built from that recipe.
    let recipes = crate::upstream::recipes(crate::image::recipes()?, &plan.upstream);
    let lock = Lock::load(&opts.lock)?;
    let store = BlobStore::open(opts.cache.join("store"))?;
    // One time source: SOURCE_DATE_EPOCH when given, else the lock's; both bounded.
    let epoch = lock.epoch()?;
    let layers = Layers::new(
        &store,
        opts.cache.join("layers"),
        epoch,
        opts.layers.compression,
    );
    let mut report = Report::default();
    progress.phase("layers");
    let below = package_layers(plan, &recipes, &lock, &layers, &mut report, opts, progress)?;
    let plugin_layers = plugins::layers(plan, &lock, &opts.lock, &layers)?;
    let host = HostBuild {
        plan,
        tree,
        recipes: &recipes,
        below: &below,
        plugins: &plugin_layers,
        signer: signer.as_ref(),
        progress,
    };
    let mut output = Output::default();
    for h in &plan.hosts {
        progress.phase("images");
        host.images(h, &layers, &mut report, &mut output)?;
        progress.phase("bundle");
        let generation = host.bundle(h, &report, &mut output)?;
        report.generations.insert(h.ip.to_string(), generation);
    }
    // Every other node of the inventory: a bundle of its node part alone.
    progress.phase("bundle");
    for n in plan.regular_nodes() {
        let host = n.ip.to_string();
        let generation = crate::bundle::write_node(&mut output, plan, n, tree, signer.as_ref())
            .with_context(|| format!("the bundle of node {host}"))?;
        progress.event(Event::Bundle {
            host: host.clone(),
            path: host.clone(),
            generation: generation.clone(),
        });
        report.generations.insert(host, generation);
    }
    // The blobs made durable and the layer index written before the output names them.
    layers.commit()?;
    report.layers_built = layers.built.into_inner();
    report.compression = opts.layers.compression.name();
    progress.phase("write");
    output.add("digests.txt", 0o644, report.digests());
    output.sync(&opts.out)?;
    Ok(report)
}

/// What lies below each image's own layers, per component: its package layers (built on every
/// core when missing) or its base image's layers, or why it cannot be built; and what the SBOM
/// lists.
type Below = BTreeMap<Component, (Result<Vec<LayerInfo>, String>, sbom::Contents)>;

/// A lock entry that asks for a package layer: its key path in the lock
/// (`images.nginx.packages[3]`), the entry, and the layer's cache key.
type Claim<'a> = (String, &'a LockedPackage, String);

/// The package (or base image) layers of every component some host enables: the same for
/// every host. Every `.deb` of a missing layer is fetched and identified, and every lock entry
/// is held to what its `.deb` says, before any layer is built; then the missing ones are built
/// in parallel.
fn package_layers(
    plan: &Plan,
    recipes: &BTreeMap<Component, crate::image::Recipe>,
    lock: &Lock,
    layers: &Layers,
    report: &mut Report,
    opts: &Options,
    progress: &Reporter,
) -> Result<Below> {
    // sha256 of a `.deb` → the layers of it that are missing
    let mut jobs: BTreeMap<&str, Job> = BTreeMap::new();
    let mut claims: Vec<Claim> = Vec::new();
    let mut wanted: Vec<(Component, &crate::lock::ImageLock, Vec<String>)> = Vec::new();
    let mut below = Below::new();
    for c in Component::ALL {
        if !plan.hosts.iter().any(|h| h.enabled().contains(&c)) {
            continue;
        }
        let r = &recipes[&c];
        if r.base.is_some() {
            let got = base_below(c, r, lock, plan, layers.store, opts, progress, report)?;
            below.insert(c, got);
            continue;
        }
        let entry = lock.image(c, r)?;
        let at = keypath::join(&keypath::join("images", c.name()), "packages");
        let mut keys = Vec::new();
        for (i, p) in entry.packages.iter().enumerate() {
            let key = request_key(p, r);
            if layers.lookup_package(&key)?.is_none() {
                let job = jobs.entry(&p.sha256).or_insert_with(|| Job {
                    package: p,
                    requests: Vec::new(),
                });
                if !job.requests.iter().any(|(k, _)| *k == key) {
                    job.requests.push((key.clone(), r));
                }
            }
            claims.push((keypath::index(&at, i), p, key.clone()));
            keys.push(key);
        }
        wanted.push((c, entry, keys));
    }
    let jobs: Vec<Job> = jobs.into_values().collect();
    let cache = Cache::new(&opts.cache).with_downloader(crate::pkg::fetch::Downloader::new(
        crate::net::Proxies::from_env().with_profile(&plan.proxy_env),
    ));
    let workers = opts.workers();
    let fetched = if jobs.is_empty() {
        BTreeMap::new()
    } else {
        identify(&jobs, &Debs::new(&cache, opts)?, workers, progress)?
    };
    check_claims(&claims, &fetched, layers, &opts.lock)?;
    build_jobs(&jobs, &fetched, layers, workers, progress)?;
    drop(fetched);
    for (c, entry, keys) in wanted {
        let mut got = Vec::new();
        for key in keys {
            got.push(
                layers
                    .lookup_package(&key)?
                    .with_context(|| format!("layer `{key}` missing after build"))?,
            );
        }
        let contents = sbom::Contents::of(entry, &got);
        let infos = got.into_iter().map(|p| p.layer).collect();
        below.insert(c, (Ok(infos), contents));
    }
    Ok(below)
}

/// Holds every lock entry to what its `.deb` says (`identities` for the files just read, the
/// layer cache's record for the others): a layer made from another package's file is never
/// built or reused under this entry's name.
fn check_claims(
    claims: &[Claim],
    fetched: &BTreeMap<String, Fetched>,
    layers: &Layers,
    lock: &Path,
) -> Result<()> {
    for (at, p, key) in claims {
        let deb = match fetched.get(&p.sha256) {
            Some(f) => f.identity.clone(),
            None => {
                layers
                    .lookup_package(key)?
                    .with_context(|| format!("layer `{key}` left the cache during the build"))?
                    .deb
            }
        };
        p.check(lock, at, &deb)?;
    }
    Ok(())
}

/// What lies below component `c`'s own layers when its recipe `r` names a base image (its own
/// or, chosen by the profile, its upstream one): the base image's layers, or why they cannot
/// be had.
#[allow(clippy::too_many_arguments)] // the build's state, passed down one step
fn base_below(
    c: Component,
    r: &crate::image::Recipe,
    lock: &Lock,
    plan: &Plan,
    store: &BlobStore,
    opts: &Options,
    progress: &Reporter,
    report: &mut Report,
) -> Result<(Result<Vec<LayerInfo>, String>, sbom::Contents)> {
    let upstream = plan.upstream.contains_key(&c);
    let entry = if upstream {
        lock.upstream(c, r)?
    } else {
        lock.image(c, r)?
    };
    let name = c.name().to_owned();
    progress.start("base", &name, None);
    let mut got = base_layers(entry, opts, store, &mut report.base_blobs_fetched)?;
    if upstream && got.is_ok() {
        if let Err(e) = upstream_entrypoint(entry, opts, store, r) {
            got = Err(e);
        }
    }
    let bytes = got.as_ref().map_or(0, |l| l.iter().map(|l| l.size).sum());
    progress.done("base", &name, bytes, None);
    Ok((got, sbom::Contents::of(entry, &[])))
}

/// What every host's images and bundle are made from.
struct HostBuild<'a> {
    plan: &'a Plan,
    tree: &'a Tree,
    recipes: &'a BTreeMap<Component, crate::image::Recipe>,
    below: &'a Below,
    /// The Grafana plugin layer of each plugin directory (`grafana_plugin_dir`).
    plugins: &'a BTreeMap<PathBuf, LayerInfo>,
    signer: Option<&'a crate::sign::SigningKey>,
    progress: &'a Reporter,
}

impl HostBuild<'_> {
    /// Host `h`'s images (each with its SBOM) in its OCI layout in `output`; the ones that
    /// cannot be built go to the report's `incomplete`.
    fn images(
        &self,
        h: &crate::plan::HostPlan,
        layers: &Layers,
        report: &mut Report,
        output: &mut Output,
    ) -> Result<()> {
        let host = h.ip.to_string();
        let store = layers.store;
        let layout = format!("{host}/oci");
        output.add(
            format!("{layout}/oci-layout"),
            0o644,
            crate::oci::blob::OCI_LAYOUT,
        );
        let mut refs = BTreeMap::new();
        for c in h.enabled() {
            let r = &self.recipes[&c];
            let (below, contents) = &self.below[&c];
            let mut image_layers = match below {
                Ok(l) => l.clone(),
                Err(why) => {
                    report
                        .incomplete
                        .entry(host.clone())
                        .or_default()
                        .insert(c.name().to_owned(), why.clone());
                    continue;
                }
            };
            // Grafana's plugins, when the profile names a plugin directory: their own layer.
            if let Some(dir) = h
                .grafana
                .as_ref()
                .and_then(|g| g.plugin_dir(&self.plan.source))
            {
                if c == Component::Grafana {
                    image_layers.push(self.plugins[&dir].clone());
                }
            }
            // Small layers are cached by content: an unchanged config is not rebuilt.
            for entries in [recipe_entries(r), config_entries(self.tree, &host, c)] {
                let key = content_key(&entries);
                image_layers.push(layers.get(&key, || Ok(entries))?);
            }
            let spec = image_spec(self.plan, h, c, r, layers.epoch)?;
            let layer_refs: Vec<layout::LayerRef> = image_layers
                .iter()
                .map(|l| layout::LayerRef {
                    digest: l.digest.clone(),
                    diff_id: l.diff_id.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
                .collect();
            let manifest = layout::write_image(&layers.made, &spec, &layer_refs)?;
            link_image(store, &layout, &manifest.digest, output)?;
            let built = Built {
                digest: manifest.digest.clone(),
                layers: image_layers,
            };
            self.progress.event(Event::Image {
                host: host.clone(),
                component: c.name().to_owned(),
                digest: built.digest.clone(),
                layers: built.layers.len(),
                bytes: built.compressed(),
            });
            report
                .hosts
                .entry(host.clone())
                .or_default()
                .insert(c.name().to_owned(), built);
            let reference = format!("infra-{}", c.name());
            let doc = sbom::document(&reference, &host, &manifest.digest, contents, layers.epoch)?;
            let mut text = serde_json::to_vec_pretty(&doc)?;
            text.push(b'\n');
            output.add(format!("{host}/sbom/{reference}.spdx.json"), 0o644, text);
            refs.insert(reference, manifest);
        }
        output.add(
            format!("{layout}/index.json"),
            0o644,
            layout::index_json(&refs)?,
        );
        Ok(())
    }

    /// Host `h`'s secrets (outside every image, mode 0600), `INCOMPLETE` note and bundle
    /// manifest; returns its generation id.
    fn bundle(
        &self,
        h: &crate::plan::HostPlan,
        report: &Report,
        output: &mut Output,
    ) -> Result<String> {
        let host = h.ip.to_string();
        let mut secrets = Tree::default();
        let prefix = format!("{host}/secrets/");
        for (path, e) in self.tree.iter() {
            if let Some(rest) = path.strip_prefix(&prefix) {
                secrets.add(rest.to_owned(), e.mode, e.data.clone());
            }
        }
        // Secrets are 0600, so their directories are 0700 (`Output::sync`).
        output.graft(&format!("{host}/secrets"), &secrets);
        if let Some(missing) = report.incomplete.get(&host) {
            let text: String = missing
                .iter()
                .map(|(c, why)| format!("infra-{c}: {why}\n"))
                .collect();
            output.add(format!("{host}/INCOMPLETE"), 0o644, text);
        }
        let incomplete: Vec<String> = report
            .incomplete
            .get(&host)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let images = report.hosts.get(&host).cloned().unwrap_or_default();
        let generation = crate::bundle::write(
            output,
            &host,
            self.plan,
            h,
            &images,
            self.recipes,
            self.tree,
            &self.plan.digest,
            &incomplete,
            self.signer,
        )?;
        self.progress.event(Event::Bundle {
            host: host.clone(),
            path: host,
            generation: generation.clone(),
        });
        Ok(generation)
    }
}

/// Checks a pinned upstream image's entrypoint against its recipe (`crate::upstream`).
fn upstream_entrypoint(
    entry: &crate::lock::ImageLock,
    opts: &Options,
    store: &BlobStore,
    r: &crate::image::Recipe,
) -> Result<(), String> {
    let Some(base) = &entry.base else {
        return Err("the lock has no upstream image for it".to_owned());
    };
    let digest = base.digest.as_deref().unwrap_or_default();
    let checked = match &opts.bases {
        Some(dir) => BlobStore::open(dir)
            .map_err(anyhow::Error::from)
            .and_then(|layout| crate::upstream::check_entrypoint(&layout, digest, r)),
        None => crate::upstream::check_entrypoint(store, digest, r),
    };
    checked.map_err(|e| {
        format!(
            "upstream image `{}:{}` ({digest}): {e:#}",
            base.name, base.tag
        )
    })
}

/// Links an image's blobs (manifest, config, layers) from the store into a host's layout
/// `layout` of `output`.
fn link_image(from: &BlobStore, layout: &str, manifest: &str, output: &mut Output) -> Result<()> {
    let bytes = from.get(manifest)?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)?;
    let mut digests = vec![manifest.to_owned()];
    digests.extend(doc["config"]["digest"].as_str().map(str::to_owned));
    for l in doc["layers"].as_array().into_iter().flatten() {
        digests.extend(l["digest"].as_str().map(str::to_owned));
    }
    for d in digests {
        let hex = crate::oci::blob::digest_hex(&d)?;
        let at = format!("{layout}/blobs/sha256/{hex}");
        if !output.contains(&at) {
            output.link(at, from.path(&d)?);
        }
    }
    Ok(())
}
