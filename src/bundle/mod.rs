//! Bundles: everything one host needs, and nothing else, under `out/<host>/`.
//!
//! `oci/` (the host's images), `secrets/<component>/` (0600), units for every runtime —
//! `units/infra-<c>.service` (default: the component's root tree via `RootDirectory=`),
//! `nspawn/infra-<c>.nspawn`, `portable/infra-<c>.service`, `quadlet/infra-<c>.container` — and
//! `manifest.json`, canonical JSON listing every file with its sha256 and, per component, its
//! image, root and config layers, units, data directories, reload semantics and health probe.
//! The generation id is the sha256 of the manifest's content.
//!
//! Host paths the units use (created and filled by `activate`):
//! `/var/lib/infragen/roots/<root>` — a component's root tree (every layer but the config
//! layer), shared by every generation that has the same one; `/var/lib/infragen/live/<c>/` — the
//! current configuration, bound read-only over the root, so that a configuration-only change can
//! be reloaded without a restart; `/var/lib/infragen/secrets/<c>/` — credentials, synced from the
//! current generation (a stable path: a container binds it once, at its start).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::build::Built;
use crate::image::Recipe;
use crate::plan::{Component, HostPlan, Plan};
use crate::tree::Tree;

/// Where activation keeps state on a host.
pub const STATE: &str = "/var/lib/infragen";

/// Manifest format version.
pub const VERSION: u32 = 1;

mod component;

use component::{allow_list, sandbox};
pub use component::{image_args, probe, systemd_arg, volumes, Probe, Volume};

/// Writes units and the manifest of host `h` into `dir` (which holds `oci/` and `secrets/`).
#[allow(clippy::too_many_arguments)]
pub fn write(
    dir: &Path,
    plan: &Plan,
    h: &HostPlan,
    images: &BTreeMap<String, Built>,
    recipes: &BTreeMap<Component, Recipe>,
    tree: &Tree,
    profile_digest: &str,
    incomplete: &[String],
) -> Result<String> {
    let host = h.ip.to_string();
    let mut files = Tree::default();
    let mut components = BTreeMap::new();
    let allow = allow_list(plan);
    for c in h.enabled() {
        let Some(built) = images.get(c.name()) else {
            continue;
        };
        let r = &recipes[&c];
        let unit = format!("infra-{}.service", c.name());
        let (root_layers, config_layer) = built.layers.split_at(built.layers.len() - 1);
        let root_id = crate::pkg::fetch::sha256(
            root_layers
                .iter()
                .map(|l| l.diff_id.as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        );
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
                    .map(str::to_owned)
            })
            .collect();
        let vols = volumes(h, c, r);
        let live = format!("{STATE}/live/{}", c.name());
        let creds_host = format!("{STATE}/secrets/{}", c.name());
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
        // The component's own directories that are not volumes: private tmpfs in every runtime.
        let scratch: Vec<_> = r
            .dirs
            .iter()
            .filter(|d| {
                d.owner.as_deref() == Some(r.user.name.as_str())
                    && !vols.iter().any(|v| v.path == d.path)
            })
            .collect();
        let tmpfs: Vec<String> = scratch
            .iter()
            .map(|d| {
                format!(
                    "{}:uid={},gid={},mode={}",
                    d.path, r.user.uid, r.user.gid, d.mode
                )
            })
            .collect();
        let credentials: Vec<String> = secrets
            .iter()
            .map(|s| format!("{s}:{creds_host}/{s}"))
            .collect();
        let args = image_args(h, c, r);
        let exec = args
            .iter()
            .map(|a| systemd_arg(a))
            .collect::<Vec<_>>()
            .join(" ");
        let sb = sandbox(c, h.chrony.as_ref().is_some_and(|x| x.control_clock));
        let reload = r
            .reload
            .as_deref()
            .map(|s| s.trim_start_matches("SIG").to_owned());
        let after: Vec<String> = match c {
            Component::Vmalert | Component::Grafana => vec!["infra-vmetrics.service".into()],
            _ => vec![],
        };
        let nofile = match c {
            Component::Vmetrics | Component::Vlogs | Component::Vtraces => "1048576",
            Component::Vmalert => "131072",
            Component::Nginx => "65535",
            _ => "16384",
        };
        let ctx = json!({
            "name": c.name(), "host": host, "profile": plan.name, "exec": exec, "reload": reload,
            "stop_timeout": if matches!(c, Component::Vmetrics | Component::Vlogs | Component::Vtraces | Component::Vmalert) { 120 } else { 30 },
            "nofile": nofile, "root": format!("{STATE}/roots/{root_id}"), "uid": r.user.uid, "gid": r.user.gid,
            "binds_ro": binds_ro, "binds": binds, "tmpfs": tmpfs, "credentials": credentials,
            "caps": sb.caps, "families": sb.families, "private_users": sb.private_users,
            "ip_allow": if sb.loopback { Some(allow.clone()) } else { None }, "clock": sb.clock, "after": after,
            "portable": false,
        });
        files.add(
            format!("units/{unit}"),
            0o644,
            crate::render::template("unit.service", &ctx)?,
        );
        // The portable unit is the same unit, hardening included, without `RootDirectory=`:
        // `portablectl attach` supplies the image.
        let mut portable = ctx.clone();
        portable["portable"] = json!(true);
        files.add(
            format!("portable/{unit}"),
            0o644,
            crate::render::template("unit.service", &portable)?,
        );
        let nspawn_binds_ro: Vec<String> = binds_ro
            .iter()
            .cloned()
            .chain(
                (!secrets.is_empty())
                    .then(|| format!("{creds_host}:/run/credentials/infra-{}.service", c.name())),
            )
            .collect();
        let nspawn = json!({
            "name": c.name(), "host": host, "profile": plan.name, "exec": exec, "user": r.user.name,
            "caps": sb.caps, "nofile": nofile, "binds_ro": nspawn_binds_ro, "binds": binds, "tmpfs": tmpfs, "env": r.env,
        });
        files.add(
            format!("nspawn/infra-{}.nspawn", c.name()),
            0o644,
            crate::render::template("unit.nspawn", &nspawn)?,
        );
        let volumes_q: Vec<String> = config_dirs
            .iter()
            .map(|d| format!("{live}{d}:{d}:ro"))
            .chain(vols.iter().map(|v| {
                format!(
                    "{}:{}{}",
                    v.host,
                    v.path,
                    if v.read_only { ":ro" } else { "" }
                )
            }))
            .chain((!secrets.is_empty()).then(|| {
                format!(
                    "{creds_host}:/run/credentials/infra-{}.service:ro",
                    c.name()
                )
            }))
            .collect();
        // podman refuses tmpfs `uid=`/`gid=`: the mount point's owner comes from the image's
        // directory (copied up), only the mode is given.
        let tmpfs_q: Vec<String> = scratch
            .iter()
            .map(|d| format!("{}:rw,mode={}", d.path, d.mode))
            .collect();
        let quadlet = json!({
            "name": c.name(), "host": host, "profile": plan.name, "reload": reload, "uid": r.user.uid, "gid": r.user.gid,
            "image": format!("oci:{STATE}/current/oci:infra-{}", c.name()),
            "add_caps": sb.caps.split_whitespace().collect::<Vec<_>>(), "volumes": volumes_q, "secrets": Vec::<String>::new(),
            "tmpfs": tmpfs_q,
        });
        files.add(
            format!("quadlet/infra-{}.container", c.name()),
            0o644,
            crate::render::template("unit.container", &quadlet)?,
        );
        components.insert(
            c.name().to_owned(),
            json!({
                "image": built.digest,
                "ref": format!("infra-{}", c.name()),
                "root": root_id,
                "root_layers": root_layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
                "config_layer": config_layer[0].digest,
                "config": config_layer[0].diff_id,
                "config_dirs": config_dirs,
                "unit": unit,
                "runtimes": {"unit": format!("units/{unit}"), "nspawn": format!("nspawn/infra-{}.nspawn", c.name()),
                             "portable": format!("portable/{unit}"), "podman": format!("quadlet/infra-{}.container", c.name())},
                "user": {"name": r.user.name, "uid": r.user.uid, "gid": r.user.gid},
                "data": vols,
                "secrets": secrets,
                "reload": {"signal": r.reload, "on": if r.reload.is_some() { "config" } else { "never" }},
                "health": probe(h, r),
            }),
        );
    }
    files.write_into(dir)?;
    let mut listed = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)?
                .to_string_lossy()
                .into_owned();
            // Blobs are named by their digest, checked when they entered the store (and by
            // every host on activation): hashing them again here would only cost time.
            if let Some(name) = rel
                .strip_prefix("oci/blobs/sha256/")
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                listed.insert(rel.clone(), format!("sha256:{name}"));
                continue;
            }
            let bytes = fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            listed.insert(rel, format!("sha256:{}", crate::pkg::fetch::sha256(&bytes)));
        }
    }
    let mut manifest = json!({
        "version": VERSION,
        "infragen": env!("CARGO_PKG_VERSION"),
        "host": host,
        "profile": {"name": plan.name, "digest": profile_digest},
        "version_string": h.version,
        "components": components,
        "incomplete": incomplete,
        "files": listed,
    });
    let generation = crate::pkg::fetch::sha256(&crate::oci::json::canonical(&manifest));
    manifest["generation"] = generation.clone().into();
    fs::write(
        dir.join("manifest.json"),
        crate::oci::json::canonical(&manifest),
    )?;
    Ok(generation)
}

/// Recomputes every digest of a bundle against its manifest; returns the differences.
pub fn verify(dir: &Path) -> Result<Vec<String>> {
    let text = fs::read(dir.join("manifest.json"))
        .with_context(|| format!("reading {}/manifest.json", dir.display()))?;
    let manifest: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}/manifest.json: not JSON", dir.display()))?;
    let mut problems = Vec::new();
    if crate::oci::json::canonical(&manifest) != text {
        problems.push("manifest.json: not in canonical form".to_owned());
    }
    let mut without = manifest.clone();
    let claimed = without
        .as_object_mut()
        .and_then(|o| o.remove("generation"))
        .and_then(|g| g.as_str().map(str::to_owned));
    let generation = crate::pkg::fetch::sha256(&crate::oci::json::canonical(&without));
    if claimed.as_deref() != Some(generation.as_str()) {
        problems.push(format!(
            "manifest.json: generation {claimed:?} is not the digest of its content ({generation})"
        ));
    }
    let files = manifest["files"].as_object().cloned().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry?;
        let rel = entry
            .path()
            .strip_prefix(dir)?
            .to_string_lossy()
            .into_owned();
        if rel.is_empty() || rel == "manifest.json" || entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            problems.push(format!("{rel}: not a regular file"));
            continue;
        }
        seen.insert(rel.clone());
        let Some(want) = files.get(&rel).and_then(|v| v.as_str()) else {
            problems.push(format!("{rel}: not in the manifest"));
            continue;
        };
        let got = format!(
            "sha256:{}",
            crate::pkg::fetch::sha256(&fs::read(entry.path())?)
        );
        if got != want {
            problems.push(format!("{rel}: sha256 is {got}, the manifest says {want}"));
        }
    }
    for rel in files.keys() {
        if !seen.contains(rel) {
            problems.push(format!("{rel}: missing"));
        }
    }
    Ok(problems)
}
