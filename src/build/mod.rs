//! Build: every infra host's OCI images, from locked packages plus the host's rendered config.
//!
//! Each image is layered as: one layer per package of the locked closure (shared by every image
//! and host that uses the package, built once and cached by the package's sha256), one layer for
//! the recipe's users, groups and directories, and one small layer with the host's rendered
//! configuration. Blobs live in one content-addressed store under the cache; each host gets an
//! OCI layout `out/<host>/oci` whose blobs are hard links into it, with one reference per image
//! (`infra-<component>`). Secrets never enter a layer: they go to `out/<host>/secrets/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::image::{Recipe, User};
use crate::lock::{ImageLock, Lock};
use crate::oci::blob::BlobStore;
use crate::oci::layer::{self, EntryKind, LayerEntry};
use crate::oci::layout;
use crate::pkg::deb;
use crate::pkg::fetch::{self, AptConfig, Cache};
use crate::plan::{Component, HostPlan, Plan, Ports};
use crate::tree::Tree;

/// Format version of cached layers: bump when layer content rules change.
const LAYER_FORMAT: &str = "infragen-layer-1";

/// Where a build reads from and writes to.
pub struct Options {
    /// Output directory (replaced as a whole).
    pub out: PathBuf,
    /// Cache: `.deb` files, layer index, blob store.
    pub cache: PathBuf,
    /// The lock file.
    pub lock: PathBuf,
    /// Local repositories holding `.deb` files (offline builds).
    pub repos: Vec<PathBuf>,
    /// An OCI layout holding imported base images (`name:tag` references).
    pub bases: Option<PathBuf>,
}

/// A layer as the build knows it (the blob is in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Compressed digest.
    pub digest: String,
    /// Uncompressed digest.
    pub diff_id: String,
    /// Compressed size.
    pub size: u64,
    /// Bytes of file content inside.
    pub content: u64,
}

/// One built image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Built {
    /// Manifest digest.
    pub digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
}

impl Built {
    /// Bytes of file content in all layers (the unpacked size, near enough).
    pub fn content(&self) -> u64 {
        self.layers.iter().map(|l| l.content).sum()
    }
    /// Compressed size of all layers.
    pub fn compressed(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
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
    /// Host → generation id of its bundle.
    pub generations: BTreeMap<String, String>,
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

/// The layer cache: an index from cache key to layer, whose blobs live in the store.
struct Layers<'a> {
    store: &'a BlobStore,
    index: PathBuf,
    epoch: u64,
    built: usize,
}

impl Layers<'_> {
    fn index_file(&self, key: &str) -> PathBuf {
        self.index.join(fetch::sha256(
            format!("{LAYER_FORMAT} {} {key}", self.epoch).as_bytes(),
        ))
    }

    /// The cached layer with `key`, when its blob is still in the store.
    fn lookup(&self, key: &str) -> Result<Option<LayerInfo>> {
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
        let mut tmp = tempfile::NamedTempFile::new_in(&self.index)?;
        std::io::Write::write_all(&mut tmp, &serde_json::to_vec(info)?)?;
        tmp.persist(&file).map_err(|e| e.error)?;
        self.built += 1;
        Ok(())
    }

    /// The layer with `key`, from the cache, else built from `make` now.
    fn get(
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
struct Job<'a> {
    key: String,
    package: &'a crate::lock::LockedPackage,
    recipe: &'a Recipe,
}

/// Builds the missing package layers on every core: fetching, reading a `.deb`, writing the
/// tar and compressing it are independent per package.
fn build_jobs(jobs: Vec<Job>, layers: &mut Layers, cache: &Cache, opts: &Options) -> Result<()> {
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
                let result = cache
                    .deb(&p.name, &p.filename, &p.sha256, &opts.repos, &sources)
                    .and_then(|bytes| package_entries(&bytes, job.recipe))
                    .and_then(|entries| make_layer(entries, epoch, store))
                    .with_context(|| format!("package `{}` {}", p.name, p.version));
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

/// Builds the images of every infra host of `plan` into `opts.out`.
pub fn build(plan: &Plan, tree: &Tree, opts: &Options) -> Result<Report> {
    let recipes = crate::image::recipes()?;
    let lock = Lock::load(&opts.lock)?;
    let cache = Cache::new(&opts.cache);
    let store = BlobStore::open(opts.cache.join("store"))?;
    // One time source: SOURCE_DATE_EPOCH when given, else the lock's.
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(lock.source_date_epoch);
    let mut layers = Layers {
        store: &store,
        index: opts.cache.join("layers"),
        epoch,
        built: 0,
    };
    let mut report = Report::default();

    // Package layers per image: the same for every host. Missing ones are built in parallel.
    let mut jobs: Vec<Job> = Vec::new();
    let mut wanted: Vec<(Component, Vec<String>)> = Vec::new();
    let mut package_layers: BTreeMap<Component, Result<Vec<LayerInfo>, String>> = BTreeMap::new();
    for c in Component::ALL {
        if !plan.hosts.iter().any(|h| h.enabled().contains(&c)) {
            continue;
        }
        let r = &recipes[&c];
        let entry = lock.image(c, r)?;
        if r.base.is_some() {
            package_layers.insert(c, base_layers(entry, opts, &store));
            continue;
        }
        let mut keys = Vec::new();
        for p in &entry.packages {
            let key = format!(
                "deb {} exclude {:?} keep {:?}",
                p.sha256,
                r.exclude_paths,
                r.package_paths.get(&p.name)
            );
            if layers.lookup(&key)?.is_none() && !jobs.iter().any(|j| j.key == key) {
                jobs.push(Job {
                    key: key.clone(),
                    package: p,
                    recipe: r,
                });
            }
            keys.push(key);
        }
        wanted.push((c, keys));
    }
    // Largest first, so that the long ones do not end up last on one core.
    jobs.sort_by_key(|j| (j.package.size, j.key.clone()));
    build_jobs(jobs, &mut layers, &cache, opts)?;
    for (c, keys) in wanted {
        let mut infos = Vec::new();
        for key in keys {
            infos.push(
                layers
                    .lookup(&key)?
                    .with_context(|| format!("layer `{key}` missing after build"))?,
            );
        }
        package_layers.insert(c, Ok(infos));
    }

    let staging = tempfile::Builder::new()
        .prefix(".infragen-build-")
        .tempdir_in(parent(&opts.out)?)?;
    for h in &plan.hosts {
        let host = h.ip.to_string();
        let layout_dir = staging.path().join(&host).join("oci");
        let host_store = BlobStore::open(&layout_dir)?;
        let mut refs = BTreeMap::new();
        for c in h.enabled() {
            let r = &recipes[&c];
            let below = match &package_layers[&c] {
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
            let mut image_layers = below;
            // Small layers are cached by content: an unchanged config is not rebuilt.
            for entries in [recipe_entries(r), config_entries(tree, &host, c)] {
                let key = content_key(&entries);
                image_layers.push(layers.get(&key, || Ok(entries))?);
            }
            let spec = image_spec(plan, h, c, r, epoch);
            let layer_refs: Vec<layout::LayerRef> = image_layers
                .iter()
                .map(|l| layout::LayerRef {
                    digest: l.digest.clone(),
                    diff_id: l.diff_id.clone(),
                    size: l.size,
                })
                .collect();
            let manifest = layout::write_image(&store, &spec, &layer_refs)?;
            link_image(&store, &host_store, &manifest.digest)?;
            report.hosts.entry(host.clone()).or_default().insert(
                c.name().to_owned(),
                Built {
                    digest: manifest.digest.clone(),
                    layers: image_layers,
                },
            );
            refs.insert(format!("infra-{}", c.name()), manifest);
        }
        layout::write_index(&layout_dir, &refs)?;
        // Secrets stay outside every image, mode 0600.
        let mut secrets = Tree::default();
        let prefix = format!("{host}/secrets/");
        for (path, e) in tree.iter() {
            if let Some(rest) = path.strip_prefix(&prefix) {
                secrets.add(rest.to_owned(), e.mode, e.data.clone());
            }
        }
        if !secrets.is_empty() {
            let dir = staging.path().join(&host).join("secrets");
            fs::create_dir_all(&dir)?;
            secrets.write_into(&dir)?;
            set_mode(&dir, 0o700)?;
        }
        if let Some(missing) = report.incomplete.get(&host) {
            let text: String = missing
                .iter()
                .map(|(c, why)| format!("infra-{c}: {why}\n"))
                .collect();
            fs::write(staging.path().join(&host).join("INCOMPLETE"), text)?;
        }
        let incomplete: Vec<String> = report
            .incomplete
            .get(&host)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let images = report.hosts.get(&host).cloned().unwrap_or_default();
        let generation = crate::bundle::write(
            &staging.path().join(&host),
            plan,
            h,
            &images,
            &recipes,
            tree,
            &plan.digest,
            &incomplete,
        )?;
        report.generations.insert(host.clone(), generation);
    }
    report.layers_built = layers.built;
    fs::write(staging.path().join("digests.txt"), report.digests())?;
    set_mode(staging.path(), 0o755)?;
    crate::tree::replace_dir(&opts.out, staging)?;
    Ok(report)
}

fn parent(out: &Path) -> Result<PathBuf> {
    let p = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok(p)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode of {}", path.display()))
}

/// Hard-links (or copies, across file systems) an image's blobs into a host's layout.
fn link_image(from: &BlobStore, to: &BlobStore, manifest: &str) -> Result<()> {
    let bytes = from.get(manifest)?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)?;
    let mut digests = vec![manifest.to_owned()];
    digests.extend(doc["config"]["digest"].as_str().map(str::to_owned));
    for l in doc["layers"].as_array().into_iter().flatten() {
        digests.extend(l["digest"].as_str().map(str::to_owned));
    }
    for d in digests {
        let dst = to.path(&d)?;
        if dst.exists() {
            continue;
        }
        let src = from.path(&d)?;
        if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).with_context(|| format!("copying blob {d}"))?;
        }
    }
    Ok(())
}

/// A package's files as layer entries: owned by root, excluded paths left out.
fn package_entries(bytes: &[u8], r: &Recipe) -> Result<Vec<LayerEntry>> {
    let d = deb::read(bytes, &deb::Limits::default())?;
    let package = d.control.get("Package").cloned().unwrap_or_default();
    let mut out = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for e in d.entries {
        if r.excludes_from(&package, &e.path, e.kind == deb::Kind::Dir) {
            dropped.push(e.path);
            continue;
        }
        let kind = match e.kind {
            deb::Kind::File(data) => EntryKind::File(data),
            deb::Kind::Dir => EntryKind::Dir,
            deb::Kind::Symlink(t) => EntryKind::Symlink(t),
            deb::Kind::Hardlink(t) => {
                if dropped.contains(&t) {
                    bail!("`{}` is a hard link to excluded `{t}`", e.path);
                }
                EntryKind::Hardlink(t)
            }
        };
        out.push(LayerEntry {
            path: e.path,
            kind,
            mode: e.mode,
            uid: 0,
            gid: 0,
        });
    }
    Ok(out)
}

/// A cache key for layer entries: the sha256 of every header field and every byte.
fn content_key(entries: &[LayerEntry]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for e in entries {
        let (tag, body): (&str, &[u8]) = match &e.kind {
            EntryKind::File(d) => ("f", d),
            EntryKind::Dir => ("d", b""),
            EntryKind::Symlink(t) => ("s", t.as_bytes()),
            EntryKind::Hardlink(t) => ("h", t.as_bytes()),
        };
        h.update(
            format!(
                "{}\0{tag}\0{:o}\0{}\0{}\0{}\0",
                e.path,
                e.mode,
                e.uid,
                e.gid,
                body.len()
            )
            .as_bytes(),
        );
        h.update(body);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("content {hex}")
}

/// `/etc/passwd`, `/etc/group`, the recipe's directories and the mount points systemd needs.
fn recipe_entries(r: &Recipe) -> Vec<LayerEntry> {
    let User {
        name,
        uid,
        gid,
        home,
    } = &r.user;
    let passwd = format!("root:x:0:0:root:/root:/usr/sbin/nologin\n{name}:x:{uid}:{gid}:{name}:{home}:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    let group = format!("root:x:0:\n{name}:x:{gid}:\nnogroup:x:65534:\n");
    let mut out = vec![
        LayerEntry::file("etc/passwd", passwd, 0o644),
        LayerEntry::file("etc/group", group, 0o644),
        LayerEntry::file(
            "etc/os-release",
            "ID=infragen\nNAME=infragen\nPRETTY_NAME=\"infragen image\"\n",
            0o644,
        ),
        // Mount point for the host's resolver configuration (nspawn `ResolvConf=bind-host`).
        LayerEntry::file("etc/resolv.conf", "", 0o644),
    ];
    for d in [
        "proc", "sys", "dev", "run", "tmp", "var/tmp", "etc", "var", "var/lib",
    ] {
        let mode = if d == "tmp" || d == "var/tmp" {
            0o1777
        } else {
            0o755
        };
        out.push(LayerEntry::dir(d, mode));
    }
    for d in &r.dirs {
        let mode = u32::from_str_radix(&d.mode, 8).unwrap_or(0o755);
        let mut e = LayerEntry::dir(d.path.trim_start_matches('/'), mode);
        if d.owner.as_deref() == Some(name.as_str()) {
            e = e.owned(*uid, *gid);
        }
        out.push(e);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// The host's rendered files of one component, owned by root.
fn config_entries(tree: &Tree, host: &str, c: Component) -> Vec<LayerEntry> {
    let prefix = format!("{host}/{}/", c.name());
    tree.iter()
        .filter_map(|(p, e)| {
            p.strip_prefix(&prefix)
                .map(|rel| LayerEntry::file(rel, e.data.clone(), e.mode))
        })
        .collect()
}

/// The image configuration: entrypoint with the plan's flags, user, ports, volumes, labels.
fn image_spec(
    plan: &Plan,
    h: &HostPlan,
    c: Component,
    r: &Recipe,
    epoch: u64,
) -> layout::ImageSpec {
    let flags = flags(h, c, r);
    let mut exposed = Vec::new();
    for p in &r.ports {
        let port = port_of(&h.ports, p);
        if p == "dns_port" {
            exposed.push(format!("{port}/udp"));
        }
        exposed.push(format!("{port}/tcp"));
    }
    if c == Component::Chrony {
        exposed.push("123/udp".to_owned());
    }
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        format!("infra-{}", c.name()),
    );
    if let Some(sig) = &r.reload {
        labels.insert("io.infragen.reload-signal".to_owned(), sig.clone());
    }
    let created = layout::rfc3339(epoch);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_owned(),
        created.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.ref.name".to_owned(),
        format!("infra-{}", c.name()),
    );
    annotations.insert(
        "org.opencontainers.image.source".to_owned(),
        plan.name.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.version".to_owned(),
        format!("{} infragen-{}", h.version, env!("CARGO_PKG_VERSION")),
    );
    layout::ImageSpec {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        user: Some(format!("{}:{}", r.user.uid, r.user.gid)),
        entrypoint: r.entrypoint.clone(),
        cmd: flags,
        env: r.env.clone(),
        working_dir: Some("/".to_owned()),
        exposed_ports: exposed,
        volumes: r.volumes.clone(),
        labels,
        stop_signal: None,
        created,
        annotations,
    }
}

/// The plan's flags for a component whose recipe says `args: flags`.
pub fn flags(h: &HostPlan, c: Component, r: &Recipe) -> Vec<String> {
    if r.args.as_deref() != Some("flags") {
        return Vec::new();
    }
    match c {
        Component::Vmetrics => h.vmetrics.as_ref().map(|v| v.flags.clone()),
        Component::Vlogs => h.vlogs.as_ref().map(|v| v.flags.clone()),
        Component::Vtraces => h.vtraces.as_ref().map(|v| v.flags.clone()),
        Component::Vmalert => h.vmalert.as_ref().map(|v| v.flags.clone()),
        Component::Alertmanager => h.alertmanager.as_ref().map(|v| v.flags.clone()),
        Component::Blackbox => h.blackbox.as_ref().map(|v| v.flags.clone()),
        Component::Chrony => h.chrony.as_ref().map(|v| chrony_flags(v.control_clock)),
        _ => None,
    }
    .unwrap_or_default()
}

/// chronyd's flags: foreground, the rendered config, `-x` when it must not set the clock.
pub fn chrony_flags(control_clock: bool) -> Vec<String> {
    // -U: start as an unprivileged user (the unit grants only the capabilities it needs).
    let mut f = vec![
        "-d".to_owned(),
        "-U".to_owned(),
        "-f".to_owned(),
        "/etc/chrony/chrony.conf".to_owned(),
    ];
    if !control_clock {
        f.push("-x".to_owned());
    }
    f
}

/// The value of a port parameter on a host.
pub fn port_of(p: &Ports, name: &str) -> u16 {
    match name {
        "nginx_port" => p.nginx,
        "nginx_ssl_port" => p.nginx_ssl,
        "grafana_port" => p.grafana,
        "vmetrics_port" => p.vmetrics,
        "vlogs_port" => p.vlogs,
        "vtraces_port" => p.vtraces,
        "vmalert_port" => p.vmalert,
        "alertmanager_port" => p.alertmanager,
        "blackbox_port" => p.blackbox,
        "dns_port" => p.dns,
        _ => 0,
    }
}

/// Layers of a base image, from the bases layout, when imported and pinned.
fn base_layers(
    entry: &ImageLock,
    opts: &Options,
    store: &BlobStore,
) -> Result<Vec<LayerInfo>, String> {
    let Some(base) = &entry.base else {
        return Err("the lock has no base image for it".to_owned());
    };
    let reference = format!("{}:{}", base.name, base.tag);
    let how = format!(
        "import it into an OCI layout under the reference `{reference}` (e.g. with `skopeo copy`), run `infragen lock --bases <layout>`, and build with `--bases <layout>`"
    );
    let Some(digest) = &base.digest else {
        return Err(format!(
            "base image `{reference}` is not pinned in infragen.lock (no digest yet); {how}"
        ));
    };
    let Some(dir) = &opts.bases else {
        return Err(format!(
            "base image `{reference}` ({digest}) is needed; {how}"
        ));
    };
    crate::oci::layout::read_image(dir, &reference, digest, store)
        .map(|layers| {
            layers
                .into_iter()
                .map(|l| LayerInfo {
                    digest: l.digest,
                    diff_id: l.diff_id,
                    size: l.size,
                    content: 0,
                })
                .collect()
        })
        .map_err(|e| {
            format!(
                "base image `{reference}` ({digest}) in {}: {e:#}",
                dir.display()
            )
        })
}
