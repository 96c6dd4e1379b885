//! Bundles: everything one host needs, and nothing else, under `out/<host>/`.
//!
//! `oci/` (the host's images), `secrets/<component>/` (0600; `<name>.age` files encrypted to the
//! host's key when it has one, see `crate::secrets`), units for every runtime —
//! `units/infra-<c>.service` (default: the component's root tree via `RootDirectory=`),
//! `nspawn/infra-<c>.nspawn`, `portable/infra-<c>.service`, `quadlet/infra-<c>.container` — and
//! `manifest.json`, canonical JSON listing every file with its sha256 and, per component, its
//! image, root and config layers, units, data directories, reload semantics and health probe.
//! The generation id is the sha256 of the manifest's content. Every host also gets its node part
//! (`node/<name>` and the manifest's `node`, docs/nodes.md); a node of the inventory that is not
//! an infra host gets a bundle of its node part alone ([`write_node`]).
//!
//! Host paths the units use (created and filled by `activate`):
//! `/var/lib/infragen/roots/<root>` — a component's root tree (every layer but the config
//! layer), shared by every generation that has the same one; `/var/lib/infragen/live/<c>/` — the
//! current configuration, bound read-only over the root, so that a configuration-only change can
//! be reloaded without a restart; `/var/lib/infragen/secrets/<c>/` — credentials, synced from the
//! current generation (a stable path: a container binds it once, at its start).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::image::{Built, Recipe};
use crate::manifest::{
    ComponentEntry, Digest, FileEntry, Manifest, ProfileRef, Reload, Runtimes, User, SIGNATURE,
};
use crate::output::Output;
use crate::plan::{Component, HostPlan, NodePlan, Plan};
use crate::sign::SigningKey;
use crate::tree::Tree;

/// Where activation keeps state on a host.
pub const STATE: &str = "/var/lib/infragen";

mod component;
mod node;
mod open;

pub use open::{Checked, Opened};

pub use crate::manifest::{Probe, Volume};
use component::{allow_list, sandbox};
pub use component::{image_args, probe, systemd_arg, volumes};

/// Adds the units and the manifest of host `h` to `output` under `host/` (which holds
/// `oci/` and `secrets/` already).
#[allow(clippy::too_many_arguments)]
pub fn write(
    output: &mut Output,
    host: &str,
    plan: &Plan,
    h: &HostPlan,
    images: &BTreeMap<String, Built>,
    recipes: &BTreeMap<Component, Recipe>,
    tree: &Tree,
    profile_digest: &str,
    incomplete: &[String],
    sign: Option<&SigningKey>,
) -> Result<String> {
    debug_assert_eq!(host, h.ip.to_string());
    // A host with a key has its secrets as `<name>.age` (crate::secrets); the credential keeps
    // its name.
    let sealed = crate::secrets::recipients(h);
    let mut files = Tree::default();
    let mut components = BTreeMap::new();
    let allow = allow_list(plan);
    for c in h.enabled() {
        let Some(built) = images.get(c.name()) else {
            continue;
        };
        let shape = Shape::of(h, c, &recipes[&c], tree, sealed.is_some());
        let entry = shape.files(plan, built, &allow, &mut files)?;
        components.insert(c.name().to_owned(), entry);
    }
    let node = plan
        .node(h.ip)
        .and_then(|n| node::part(plan, n, tree, &mut files));
    output.graft(host, &files);
    let manifest = Manifest {
        version: if sealed.is_some() {
            crate::manifest::VERSION_SEALED
        } else {
            crate::manifest::VERSION
        },
        infragen: env!("CARGO_PKG_VERSION").to_owned(),
        host: host.to_owned(),
        profile: ProfileRef {
            name: plan.name.clone(),
            digest: profile_digest.to_owned(),
        },
        version_string: h.version.clone(),
        files: list_files(output, host, &components)?,
        components,
        incomplete: incomplete.to_vec(),
        node,
        recipients: sealed.map(|to| to.iter().map(ToString::to_string).collect()),
        generation: None,
    };
    finish(output, manifest, sign)
}

/// Writes the bundle of regular node `n` (not an infra host) into `dir`: its node files and a
/// manifest with no component; it has no image and no secret, so nothing is sealed.
pub fn write_node(
    output: &mut Output,
    plan: &Plan,
    n: &NodePlan,
    tree: &Tree,
    sign: Option<&SigningKey>,
) -> Result<String> {
    let host = n.ip.to_string();
    let mut files = Tree::default();
    let node = node::part(plan, n, tree, &mut files);
    output.graft(&host, &files);
    let components = BTreeMap::new();
    let manifest = Manifest {
        version: crate::manifest::VERSION,
        infragen: env!("CARGO_PKG_VERSION").to_owned(),
        host: host.clone(),
        profile: ProfileRef {
            name: plan.name.clone(),
            digest: plan.digest.clone(),
        },
        version_string: n.settings.version.clone(),
        files: list_files(output, &host, &components)?,
        components,
        incomplete: Vec::new(),
        node,
        recipients: None,
        generation: None,
    };
    finish(output, manifest, sign)
}

/// Sets the manifest's generation id, checks it, adds it (and its signature with `sign`) to
/// `output` under its host; returns the generation id.
fn finish(
    output: &mut Output,
    mut manifest: Manifest,
    sign: Option<&SigningKey>,
) -> Result<String> {
    let host = manifest.host.clone();
    let generation = manifest.compute_generation();
    manifest.generation = Some(generation.clone());
    manifest
        .check()
        .context("the manifest this build made does not check (a bug)")?;
    let bytes = manifest.to_canonical();
    if let Some(key) = sign {
        output.add(
            format!("{host}/{SIGNATURE}"),
            0o644,
            key.sign(&bytes, &host)?,
        );
    }
    output.add(format!("{host}/manifest.json"), 0o644, bytes);
    Ok(generation)
}

/// Every file of `output` under `host/` with its digest, and the mode and owner a host gives it.
fn list_files(
    output: &Output,
    host: &str,
    components: &BTreeMap<String, ComponentEntry>,
) -> Result<BTreeMap<String, FileEntry>> {
    let mut listed = BTreeMap::new();
    for (rel, file) in output.under(host) {
        // Blobs are named by their digest, checked when they entered the store (and by every
        // host on activation): hashing them again here would only cost time.
        let digest = match file {
            crate::output::File::Blob { .. } => {
                let name = rel
                    .strip_prefix("oci/blobs/sha256/")
                    .filter(|n| crate::manifest::is_hex64(n))
                    .with_context(|| format!("`{rel}`: a blob outside `oci/blobs/sha256/`"))?;
                Digest::parse(&format!("sha256:{name}"))?
            }
            crate::output::File::Data { data, .. } => Digest::of(data),
        };
        let rel = rel.to_owned();
        // Modes and owners on the host come from here, never from the files: secrets are the
        // component user's alone, everything else is root's and world-readable.
        let (mode, uid, gid) = if let Some(rest) = rel.strip_prefix("secrets/") {
            // A component not built (incomplete) still keeps its secrets root's alone.
            let user = rest
                .split_once('/')
                .and_then(|(c, _)| components.get(c))
                .map_or((0, 0), |c: &ComponentEntry| (c.user.uid, c.user.gid));
            (0o600, user.0, user.1)
        } else {
            (0o644, 0, 0)
        };
        listed.insert(
            rel,
            FileEntry {
                digest,
                mode,
                uid,
                gid,
            },
        );
    }
    Ok(listed)
}

/// What one component's units are made of, on one host.
struct Shape<'a> {
    h: &'a HostPlan,
    c: Component,
    r: &'a Recipe,
    host: String,
    /// `/etc/<dir>` directories its rendered configuration fills (bound from `live/`).
    config_dirs: BTreeSet<String>,
    /// Its secrets' names (as credentials).
    secrets: Vec<String>,
    vols: Vec<Volume>,
    /// `/var/lib/infragen/live/<c>`.
    live: String,
    /// `/var/lib/infragen/secrets/<c>`.
    creds_host: String,
    /// Read-only binds: the configuration, then the read-only volumes.
    binds_ro: Vec<String>,
    /// Read-write binds: the other volumes.
    binds: Vec<String>,
}

impl<'a> Shape<'a> {
    fn of(h: &'a HostPlan, c: Component, r: &'a Recipe, tree: &Tree, sealed: bool) -> Self {
        let host = h.ip.to_string();
        let suffix = if sealed { crate::secrets::SUFFIX } else { "" };
        let config_prefix = format!("{host}/{}/", c.name());
        let mut config_dirs: BTreeSet<String> = BTreeSet::new();
        for (p, _) in tree.iter() {
            if let Some(rest) = p.strip_prefix(&config_prefix) {
                let mut parts = rest.splitn(3, '/');
                if let (Some("etc"), Some(first)) = (parts.next(), parts.next()) {
                    config_dirs.insert(format!("/etc/{first}"));
                }
            }
        }
        let secrets: Vec<String> = tree
            .iter()
            .filter_map(|(p, _)| {
                p.strip_prefix(&format!("{host}/secrets/{}/", c.name()))
                    .and_then(|n| n.strip_suffix(suffix))
                    .map(str::to_owned)
            })
            .collect();
        let vols = volumes(h, c, r);
        let live = format!("{STATE}/live/{}", c.name());
        let binds_ro: Vec<String> = config_dirs
            .iter()
            .map(|d| format!("{live}{d}:{d}"))
            .chain(
                vols.iter()
                    .filter(|v| v.read_only)
                    .map(|v| format!("{}:{}", v.host, v.path)),
            )
            .collect();
        let binds: Vec<String> = vols
            .iter()
            .filter(|v| !v.read_only)
            .map(|v| format!("{}:{}", v.host, v.path))
            .collect();
        Self {
            h,
            c,
            r,
            host,
            config_dirs,
            secrets,
            vols,
            creds_host: format!("{STATE}/secrets/{}", c.name()),
            live,
            binds_ro,
            binds,
        }
    }

    /// The component's own directories that are not volumes: private tmpfs in every runtime.
    fn scratch(&self) -> Vec<&'a crate::image::Dir> {
        self.r
            .dirs
            .iter()
            .filter(|d| {
                d.owner.as_deref() == Some(self.r.user.name.as_str())
                    && !self.vols.iter().any(|v| v.path == d.path)
            })
            .collect()
    }

    /// The reload signal without `SIG`.
    fn reload(&self) -> Option<String> {
        self.r
            .reload
            .as_deref()
            .map(|s| s.trim_start_matches("SIG").to_owned())
    }

    /// Adds the component's unit for every runtime to `files`; returns its manifest entry.
    fn files(
        &self,
        plan: &Plan,
        built: &Built,
        allow: &str,
        files: &mut Tree,
    ) -> Result<ComponentEntry> {
        let (root_layers, config_layer) = built.layers.split_at(built.layers.len() - 1);
        let root_id = crate::digest::sha256_hex(
            root_layers
                .iter()
                .map(|l| l.diff_id.as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        );
        let exec = image_args(self.h, self.c, self.r)
            .iter()
            .map(|a| systemd_arg(a))
            .collect::<Vec<_>>()
            .join(" ");
        self.units(plan, &exec, &root_id, allow, files)?;
        self.nspawn(plan, &exec, files)?;
        self.quadlet(plan, files)?;
        let (c, r) = (self.c, self.r);
        let unit = format!("infra-{}.service", c.name());
        Ok(ComponentEntry {
            image: Digest::parse(&built.digest)?,
            reference: format!("infra-{}", c.name()),
            root: root_id,
            root_layers: root_layers
                .iter()
                .map(|l| Digest::parse(&l.digest))
                .collect::<Result<_>>()?,
            config_layer: Digest::parse(&config_layer[0].digest)?,
            config: Digest::parse(&config_layer[0].diff_id)?,
            config_dirs: self.config_dirs.iter().cloned().collect(),
            unit: unit.clone(),
            runtimes: Runtimes {
                unit: format!("units/{unit}"),
                nspawn: format!("nspawn/infra-{}.nspawn", c.name()),
                portable: format!("portable/{unit}"),
                podman: format!("quadlet/infra-{}.container", c.name()),
            },
            user: User {
                name: r.user.name.clone(),
                uid: r.user.uid,
                gid: r.user.gid,
            },
            data: self.vols.clone(),
            secrets: self.secrets.clone(),
            reload: Reload {
                signal: r.reload.clone(),
                on: if r.reload.is_some() {
                    "config"
                } else {
                    "never"
                }
                .to_owned(),
            },
            health: probe(self.h, r),
        })
    }

    /// `units/infra-<c>.service` (the root tree by `RootDirectory=`) and
    /// `portable/infra-<c>.service` (the same unit, hardening included, without
    /// `RootDirectory=`: `portablectl attach` supplies the image).
    fn units(
        &self,
        plan: &Plan,
        exec: &str,
        root_id: &str,
        allow: &str,
        files: &mut Tree,
    ) -> Result<()> {
        let (c, r) = (self.c, self.r);
        let unit = format!("infra-{}.service", c.name());
        let sb = sandbox(c, self.h.chrony.as_ref().is_some_and(|x| x.control_clock));
        let after: Vec<String> = match c {
            Component::Vmalert | Component::Grafana => vec!["infra-vmetrics.service".into()],
            Component::NginxExporter => vec!["infra-nginx.service".into()],
            _ => vec![],
        };
        let tmpfs: Vec<String> = self
            .scratch()
            .iter()
            .map(|d| {
                format!(
                    "{}:uid={},gid={},mode={}",
                    d.path, r.user.uid, r.user.gid, d.mode
                )
            })
            .collect();
        let credentials: Vec<String> = self
            .secrets
            .iter()
            .map(|s| format!("{s}:{}/{s}", self.creds_host))
            .collect();
        let ctx = json!({
            "name": c.name(), "host": self.host, "profile": plan.name, "exec": exec, "reload": self.reload(),
            "stop_timeout": if matches!(c, Component::Vmetrics | Component::Vlogs | Component::Vtraces | Component::Vmalert) { 120 } else { 30 },
            "nofile": nofile(c), "root": format!("{STATE}/roots/{root_id}"), "uid": r.user.uid, "gid": r.user.gid,
            "binds_ro": self.binds_ro, "binds": self.binds, "tmpfs": tmpfs, "credentials": credentials,
            "caps": sb.caps, "families": sb.families, "private_users": sb.private_users,
            "ip_allow": if sb.loopback { Some(allow) } else { None }, "clock": sb.clock, "after": after,
            "portable": false,
        });
        files.add(
            format!("units/{unit}"),
            0o644,
            crate::render::template("unit.service", &ctx)?,
        );
        let mut portable = ctx.clone();
        portable["portable"] = json!(true);
        files.add(
            format!("portable/{unit}"),
            0o644,
            crate::render::template("unit.service", &portable)?,
        );
        Ok(())
    }

    /// `nspawn/infra-<c>.nspawn`.
    fn nspawn(&self, plan: &Plan, exec: &str, files: &mut Tree) -> Result<()> {
        let (c, r) = (self.c, self.r);
        let sb = sandbox(c, self.h.chrony.as_ref().is_some_and(|x| x.control_clock));
        let tmpfs: Vec<String> = self
            .scratch()
            .iter()
            .map(|d| {
                format!(
                    "{}:uid={},gid={},mode={}",
                    d.path, r.user.uid, r.user.gid, d.mode
                )
            })
            .collect();
        let binds_ro: Vec<String> = self
            .binds_ro
            .iter()
            .cloned()
            .chain((!self.secrets.is_empty()).then(|| {
                format!(
                    "{}:/run/credentials/infra-{}.service",
                    self.creds_host,
                    c.name()
                )
            }))
            .collect();
        let nspawn = json!({
            "name": c.name(), "host": self.host, "profile": plan.name, "exec": exec, "user": r.user.name,
            "caps": sb.caps, "nofile": nofile(c), "binds_ro": binds_ro, "binds": self.binds, "tmpfs": tmpfs, "env": r.env,
        });
        files.add(
            format!("nspawn/infra-{}.nspawn", c.name()),
            0o644,
            crate::render::template("unit.nspawn", &nspawn)?,
        );
        Ok(())
    }

    /// `quadlet/infra-<c>.container` (podman).
    fn quadlet(&self, plan: &Plan, files: &mut Tree) -> Result<()> {
        let (c, r) = (self.c, self.r);
        let sb = sandbox(c, self.h.chrony.as_ref().is_some_and(|x| x.control_clock));
        let volumes_q: Vec<String> = self
            .config_dirs
            .iter()
            .map(|d| format!("{}{d}:{d}:ro", self.live))
            .chain(self.vols.iter().map(|v| {
                format!(
                    "{}:{}{}",
                    v.host,
                    v.path,
                    if v.read_only { ":ro" } else { "" }
                )
            }))
            .chain((!self.secrets.is_empty()).then(|| {
                format!(
                    "{}:/run/credentials/infra-{}.service:ro",
                    self.creds_host,
                    c.name()
                )
            }))
            .collect();
        // podman refuses tmpfs `uid=`/`gid=`: the mount point's owner comes from the image's
        // directory (copied up), only the mode is given.
        let tmpfs_q: Vec<String> = self
            .scratch()
            .iter()
            .map(|d| format!("{}:rw,mode={}", d.path, d.mode))
            .collect();
        let quadlet = json!({
            "name": c.name(), "host": self.host, "profile": plan.name, "reload": self.reload(), "uid": r.user.uid, "gid": r.user.gid,
            "image": format!("oci:{STATE}/current/oci:infra-{}", c.name()),
            "add_caps": sb.caps.split_whitespace().collect::<Vec<_>>(), "volumes": volumes_q, "secrets": Vec::<String>::new(),
            "tmpfs": tmpfs_q,
        });
        files.add(
            format!("quadlet/infra-{}.container", c.name()),
            0o644,
            crate::render::template("unit.container", &quadlet)?,
        );
        Ok(())
    }
}

/// The open-files limit of a component's service.
fn nofile(c: Component) -> &'static str {
    match c {
        Component::Vmetrics | Component::Vlogs | Component::Vtraces => "1048576",
        Component::Vmalert => "131072",
        Component::Nginx => "65535",
        _ => "16384",
    }
}

/// Recomputes every digest of a bundle against its manifest; returns the differences.
pub fn verify(dir: &Path) -> Result<Vec<String>> {
    let opened = Opened::open(dir)?;
    let mut problems = opened.problems.clone();
    problems.extend(opened.check_files(None, &|_| false)?.problems);
    Ok(problems)
}
