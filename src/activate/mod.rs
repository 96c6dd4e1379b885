//! Activation: the only stage that touches a host. A host becomes exactly what its bundle
//! describes, or stays exactly as it was.
//!
//! Order (docs/reliability.md): verify every digest of the bundle before anything is touched →
//! take the lock → plan against the current generation (`--dry-run` stops here, having written
//! nothing) → stage a complete generation (blobs, shared root trees, configuration, secrets,
//! units) under a temporary name and rename it into place → persist the plan → stop removed
//! components → switch `current` by rename → sync the live configuration → install units,
//! daemon-reload → start, restart or reload what the plan says → probe every touched component
//! → on failure switch back and restore the previous generation's services. An interrupted run
//! leaves `current` on a complete generation; running `activate` again finishes the plan.
//! Data directories are created when missing and otherwise never touched.

mod plan;
mod probe;
mod stage;
mod state;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

pub use plan::{Action, Step};
pub use state::State;
use state::{fail_point, write_atomic};

/// Where and how to activate.
pub struct Options {
    /// Host root (`/`, or `--root DIR` for an image build or a test).
    pub root: PathBuf,
    /// Drive the host's systemd (false with `--root`).
    pub systemd: bool,
    /// Print the plan, write nothing.
    pub dry_run: bool,
    /// Accept an older bundle than the current generation.
    pub allow_downgrade: bool,
    /// How long each touched component has to pass its health probe.
    pub health_timeout: Duration,
}

/// What an activation did.
#[derive(Debug)]
pub struct Outcome {
    /// The generation now current.
    pub generation: String,
    /// The steps, in the order they were taken.
    pub steps: Vec<Step>,
}

fn read_manifest(path: &Path) -> Result<Value> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))
}

fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `systemctl` on the host, or nothing at all with `--root`.
struct Host {
    systemd: bool,
}

impl Host {
    fn systemctl(&self, args: &[&str]) -> Result<()> {
        if !self.systemd {
            return Ok(());
        }
        let out = Command::new("systemctl")
            .args(args)
            .output()
            .context("running systemctl")?;
        if !out.status.success() {
            bail!(
                "systemctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn is_active(&self, unit: &str) -> bool {
        self.systemd
            && Command::new("systemctl")
                .args(["is-active", "--quiet", unit])
                .status()
                .is_ok_and(|s| s.success())
    }

    fn status(&self, unit: &str) -> String {
        if !self.systemd {
            return String::new();
        }
        Command::new("systemctl")
            .args(["status", "--no-pager", "--lines=5", unit])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

/// The version order of two manifests: (profile version string, infragen version).
fn is_downgrade(old: &Value, new: &Value) -> bool {
    use std::cmp::Ordering;
    let key = |m: &Value, k: &str| {
        m[k].as_str()
            .unwrap_or("")
            .trim_start_matches('v')
            .to_owned()
    };
    match crate::pkg::version::compare(&key(new, "version_string"), &key(old, "version_string")) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => {
            crate::pkg::version::compare(&key(new, "infragen"), &key(old, "infragen"))
                == Ordering::Less
        }
    }
}

fn unit_text(dir: &Path, manifest: &Value, component: &str) -> Option<String> {
    let rel = manifest["components"][component]["runtimes"]["unit"].as_str()?;
    fs::read_to_string(dir.join(rel)).ok()
}

/// Activates the bundle at `bundle`: a directory, or a tar archive of one (`.tar`, `.tar.gz`,
/// `.tgz`), unpacked into a private temporary directory first.
pub fn activate(bundle: &Path, opts: &Options) -> Result<Outcome> {
    if bundle.is_file() {
        let bytes = fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
        let tar = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(flate2::read::GzDecoder::new(&bytes[..]), 16 << 30),
                &mut out,
            )
            .with_context(|| format!("decompressing {}", bundle.display()))?;
            out
        } else {
            bytes
        };
        let dir = tempfile::Builder::new()
            .prefix("infragen-bundle-")
            .tempdir()?;
        stage::extract_tar(&tar, dir.path(), false)
            .with_context(|| format!("unpacking {}", bundle.display()))?;
        return activate_dir(dir.path(), opts);
    }
    activate_dir(bundle, opts)
}

fn activate_dir(bundle: &Path, opts: &Options) -> Result<Outcome> {
    // 1. Verify everything before touching anything.
    let problems = crate::bundle::verify(bundle).map_err(|e| {
        anyhow::anyhow!(
            "bundle {} does not verify; nothing was changed: {e:#}",
            bundle.display()
        )
    })?;
    if !problems.is_empty() {
        bail!(
            "bundle {} does not verify; nothing was changed:\n  {}",
            bundle.display(),
            problems.join("\n  ")
        );
    }
    let new = read_manifest(&bundle.join("manifest.json"))?;
    let id = new["generation"]
        .as_str()
        .context("manifest without generation")?
        .to_owned();
    if !new["incomplete"].as_array().is_none_or(Vec::is_empty) {
        eprintln!(
            "warning: the bundle is incomplete; missing images are not activated: {}",
            new["incomplete"]
        );
    }
    let state_dir = opts.root.join("var/lib/infragen");
    let current = if state_dir.is_dir() {
        State {
            dir: state_dir.clone(),
            root: opts.root.clone(),
        }
        .pointer("current")
    } else {
        None
    };
    let old = current
        .as_ref()
        .map(|c| read_manifest(&state_dir.join("generations").join(c).join("manifest.json")))
        .transpose()?;
    if let Some(o) = &old {
        if !opts.allow_downgrade && current.as_deref() != Some(id.as_str()) && is_downgrade(o, &new)
        {
            bail!("bundle {} is older than the current generation ({} {} → {} {}); nothing was changed\nhint: pass --allow-downgrade, or use `infragen rollback`", bundle.display(), o["version_string"], o["infragen"], new["version_string"], new["infragen"]);
        }
    }
    let steps = plan::plan(
        old.as_ref(),
        &new,
        &|c| {
            current.as_ref().and_then(|cur| {
                unit_text(&state_dir.join("generations").join(cur), old.as_ref()?, c)
            })
        },
        &|c| unit_text(bundle, &new, c),
    );
    if opts.dry_run {
        print_plan(current.as_deref(), &id, &steps);
        return Ok(Outcome {
            generation: id,
            steps,
        });
    }
    let state = State::open(&opts.root)?;
    let _lock = state.lock()?;
    stage_generation(&state, bundle, &new, &id)?;
    switch(&state, &id, opts, true)
}

/// Switches back to the rollback generation.
pub fn rollback(opts: &Options) -> Result<Outcome> {
    let state = State::open(&opts.root)?;
    let _lock = state.lock()?;
    let Some(target) = state.pointer("rollback") else {
        bail!("rollback: no previous generation to return to");
    };
    switch(&state, &target, opts, true)
}

fn print_plan(old: Option<&str>, new: &str, steps: &[Step]) {
    let short = |s: &str| s.chars().take(12).collect::<String>();
    println!(
        "generation {} → {}",
        old.map_or_else(|| "(none)".to_owned(), short),
        short(new)
    );
    for s in steps {
        println!(
            "  {:<7} infra-{}.service ({})",
            s.action.to_string(),
            s.component,
            s.why
        );
    }
}

/// Builds `generations/<id>` from the bundle unless it exists: blobs, root trees, config,
/// secrets, units — complete before the rename that makes it visible.
fn stage_generation(state: &State, bundle: &Path, manifest: &Value, id: &str) -> Result<()> {
    let dst = state.generation(id);
    if dst.join("manifest.json").is_file() {
        return Ok(());
    }
    let owners = euid_is_root();
    let tmp = tempfile::Builder::new()
        .prefix(".gen-")
        .tempdir_in(state.dir.join("generations"))?;
    let components = manifest["components"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, c) in &components {
        let image = c["image"].as_str().context("component without image")?;
        for blob in stage::image_blobs(bundle, image)? {
            stage::import_blob(state, bundle, &blob)?;
        }
        fail_point("stage-blobs");
        let ids = stage::diff_ids(state, image)?;
        let root_layers: Vec<(String, Option<String>)> = c["root_layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|d| {
                (
                    d.to_owned(),
                    ids.iter().find(|(l, _)| l == d).map(|(_, i)| i.clone()),
                )
            })
            .collect();
        let root = c["root"].as_str().context("component without root")?;
        stage::root_tree(state, root, &root_layers, owners)
            .with_context(|| format!("root tree of {name}"))?;
        fail_point("stage-root");
        // The configuration layer, extracted on its own: it becomes the live configuration.
        let config_layer = c["config_layer"]
            .as_str()
            .context("component without config layer")?;
        let config_dir = tmp.path().join("config").join(name);
        fs::create_dir_all(&config_dir)?;
        let bytes = fs::read(
            state
                .dir
                .join("blobs/sha256")
                .join(config_layer.trim_start_matches("sha256:")),
        )?;
        let diff = ids
            .iter()
            .find(|(l, _)| l == config_layer)
            .map(|(_, i)| i.as_str());
        stage::extract_layer(&bytes, diff, &config_dir, owners)
            .with_context(|| format!("configuration of {name}"))?;
    }
    for sub in ["units", "nspawn", "portable", "quadlet"] {
        if bundle.join(sub).is_dir() {
            stage::copy_tree(&bundle.join(sub), &tmp.path().join(sub))?;
        }
    }
    if bundle.join("secrets").is_dir() {
        stage::copy_tree(&bundle.join("secrets"), &tmp.path().join("secrets"))?;
        if owners {
            for (name, c) in &components {
                let dir = tmp.path().join("secrets").join(name);
                let (uid, gid) = (
                    c["user"]["uid"].as_u64().unwrap_or(0),
                    c["user"]["gid"].as_u64().unwrap_or(0),
                );
                if dir.is_dir() {
                    for e in fs::read_dir(&dir)? {
                        let p = e?.path();
                        std::os::unix::fs::chown(
                            &p,
                            u32::try_from(uid).ok(),
                            u32::try_from(gid).ok(),
                        )?;
                    }
                }
            }
        }
    }
    fs::copy(
        bundle.join("manifest.json"),
        tmp.path().join("manifest.json"),
    )?;
    for e in walkdir::WalkDir::new(tmp.path()).contents_first(true) {
        let e = e?;
        if e.file_type().is_file() || e.file_type().is_dir() {
            state::sync_path(e.path())?;
        }
    }
    fail_point("stage-before-rename");
    fs::rename(tmp.path(), &dst).with_context(|| format!("renaming into {}", dst.display()))?;
    let _ = tmp.keep();
    state::sync_path(&state.dir.join("generations"))?;
    fail_point("stage-after-rename");
    Ok(())
}

/// Makes `live/<component>` equal to the generation's configuration, file by file, each
/// replaced by rename so that a reloading service never reads half a file.
fn sync_live(state: &State, id: &str, component: &str) -> Result<()> {
    let from = state.generation(id).join("config").join(component);
    let to = state.dir.join("live").join(component);
    fs::create_dir_all(&to)?;
    let mut wanted = std::collections::BTreeSet::new();
    for e in walkdir::WalkDir::new(&from).sort_by_file_name() {
        let e = e?;
        let rel = e.path().strip_prefix(&from)?.to_path_buf();
        wanted.insert(rel.clone());
        let dst = to.join(&rel);
        let meta = e.path().symlink_metadata()?;
        if meta.is_dir() {
            if !dst.is_dir() {
                let _ = fs::remove_file(&dst);
                fs::create_dir_all(&dst)?;
            }
            fs::set_permissions(&dst, meta.permissions())?;
        } else {
            let bytes = fs::read(e.path())?;
            if fs::read(&dst).ok().as_deref() != Some(bytes.as_slice()) {
                write_atomic(&dst, &bytes)?;
            }
            fs::set_permissions(&dst, meta.permissions())?;
        }
    }
    let mut leftovers = Vec::new();
    for e in walkdir::WalkDir::new(&to).contents_first(true) {
        let e = e?;
        let rel = e.path().strip_prefix(&to)?.to_path_buf();
        if !rel.as_os_str().is_empty() && !wanted.contains(&rel) {
            leftovers.push(e.path().to_path_buf());
        }
    }
    for p in leftovers {
        if p.is_dir() {
            fs::remove_dir_all(&p)?;
        } else {
            fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// The components' users, declared for systemd-sysusers (`/etc/sysusers.d/infragen.conf`):
/// systemd resolves `User=` on the host, so the image's numeric users must exist there too.
fn sysusers(state: &State, components: &serde_json::Map<String, Value>, host: &Host) -> Result<()> {
    let mut users = std::collections::BTreeMap::new();
    for c in components.values() {
        let u = &c["user"];
        if let (Some(name), Some(uid), Some(gid)) =
            (u["name"].as_str(), u["uid"].as_u64(), u["gid"].as_u64())
        {
            users.insert(
                uid,
                (format!("infra-{}", name.trim_start_matches('_')), gid),
            );
        }
    }
    let mut text =
        String::from("# Users of infragen's components (written by infragen activate).\n");
    for (uid, (name, gid)) in &users {
        let _ = writeln!(text, "g {name} {gid}");
        let _ = writeln!(
            text,
            "u {name} {uid}:{gid} \"infragen {name}\" / /usr/sbin/nologin"
        );
    }
    let path = state.root.join("etc/sysusers.d/infragen.conf");
    fs::create_dir_all(path.parent().expect("has parent"))?;
    if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        write_atomic(&path, text.as_bytes())?;
    }
    if host.systemd {
        let out = Command::new("systemd-sysusers")
            .arg(&path)
            .output()
            .context("running systemd-sysusers")?;
        if !out.status.success() {
            bail!(
                "systemd-sysusers {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

fn unit_link(state: &State, component: &str) -> PathBuf {
    state
        .root
        .join("etc/systemd/system")
        .join(format!("infra-{component}.service"))
}

/// Switches the host to generation `id` (staged), with the health gate and automatic rollback.
fn switch(state: &State, id: &str, opts: &Options, gate: bool) -> Result<Outcome> {
    let host = Host {
        systemd: opts.systemd,
    };
    let new = read_manifest(&state.generation(id).join("manifest.json"))?;
    let previous = state.pointer("current");
    // Resume: a plan left by an interrupted run toward this generation is finished, not redone.
    let plan_file = state.dir.join("plan.json");
    let resumed: Option<Value> = fs::read(&plan_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let from = match (&resumed, &previous) {
        (Some(p), Some(cur)) if p["to"] == json!(id) && cur == id => {
            p["from"].as_str().map(str::to_owned)
        }
        _ => previous.clone().filter(|p| p != id),
    };
    let old = from
        .as_ref()
        .map(|f| read_manifest(&state.generation(f).join("manifest.json")))
        .transpose()?;
    let steps = if previous.as_deref() == Some(id) && resumed.is_none() {
        // Already current: converge (units installed, live config synced, services started),
        // restart nothing.
        plan::plan(
            Some(&new),
            &new,
            &|c| unit_text(&state.generation(id), &new, c),
            &|c| unit_text(&state.generation(id), &new, c),
        )
    } else {
        plan::plan(
            old.as_ref(),
            &new,
            &|c| {
                from.as_ref()
                    .and_then(|f| unit_text(&state.generation(f), old.as_ref()?, c))
            },
            &|c| unit_text(&state.generation(id), &new, c),
        )
    };
    // A component left alone must still be running: one that is not is started (and probed).
    let steps: Vec<Step> = steps
        .into_iter()
        .map(|s| {
            if s.action == Action::Keep
                && host.systemd
                && !host.is_active(&format!("infra-{}.service", s.component))
            {
                Step {
                    action: Action::Start,
                    why: "not running".to_owned(),
                    ..s
                }
            } else {
                s
            }
        })
        .collect();
    write_atomic(
        &plan_file,
        &serde_json::to_vec(&json!({"from": from, "to": id, "steps": steps}))?,
    )?;
    fail_point("plan-written");

    for s in steps.iter().filter(|s| s.action == Action::Stop) {
        let unit = format!("infra-{}.service", s.component);
        host.systemctl(&["disable", "--now", &unit])?;
        let _ = fs::remove_file(unit_link(state, &s.component));
    }
    fail_point("after-stop");
    if let Some(f) = &from {
        state.set_pointer("rollback", f)?;
    }
    state.set_pointer("current", id)?;
    state.push_history(id)?;
    fail_point("after-switch");

    let components = new["components"].as_object().cloned().unwrap_or_default();
    fs::create_dir_all(state.root.join("etc/systemd/system"))?;
    sysusers(state, &components, &host)?;
    for (name, c) in &components {
        sync_live(state, id, name)?;
        for v in c["data"].as_array().into_iter().flatten() {
            let p = state.root.join(
                v["host"]
                    .as_str()
                    .unwrap_or("/nonexistent")
                    .trim_start_matches('/'),
            );
            if !p.exists() {
                fs::create_dir_all(&p)?;
                if euid_is_root() {
                    let (uid, gid) = (
                        v["uid"].as_u64().and_then(|u| u32::try_from(u).ok()),
                        v["gid"].as_u64().and_then(|g| u32::try_from(g).ok()),
                    );
                    std::os::unix::fs::chown(&p, uid, gid)?;
                }
            }
        }
        let link = unit_link(state, name);
        let target =
            Path::new("/var/lib/infragen/current/units").join(format!("infra-{name}.service"));
        if fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            state::symlink_atomic(&target, &link)?;
        }
    }
    fail_point("after-live");
    host.systemctl(&["daemon-reload"])?;
    for s in &steps {
        let unit = format!("infra-{}.service", s.component);
        match s.action {
            Action::Start | Action::Keep => host.systemctl(&["enable", "--now", &unit])?,
            Action::Restart => {
                host.systemctl(&["enable", &unit])?;
                host.systemctl(&["restart", &unit])?;
            }
            Action::Reload => host.systemctl(&["reload", &unit])?,
            Action::Stop => {}
        }
    }
    fail_point("after-actions");

    if gate && opts.systemd {
        for s in steps
            .iter()
            .filter(|s| matches!(s.action, Action::Start | Action::Restart | Action::Reload))
        {
            let probe = &components[&s.component]["health"];
            if probe.is_null() {
                continue;
            }
            if let Err(e) = probe::until(probe, opts.health_timeout) {
                let unit = format!("infra-{}.service", s.component);
                let status = host.status(&unit);
                let _ = fs::remove_file(&plan_file);
                let back = if let Some(f) = &from {
                    match switch(state, f, opts, false) {
                        Ok(_) => format!("rolled back to generation {}", &f[..12.min(f.len())]),
                        Err(re) => format!("rollback failed too: {re:#}"),
                    }
                } else {
                    // Nothing was active before: leave nothing active now.
                    for name in components.keys() {
                        let _ =
                            host.systemctl(&["disable", "--now", &format!("infra-{name}.service")]);
                        let _ = fs::remove_file(unit_link(state, name));
                    }
                    let _ = fs::remove_file(state.dir.join("current"));
                    let _ = host.systemctl(&["daemon-reload"]);
                    "no previous generation: the new components were stopped and removed".to_owned()
                };
                bail!("component `{}` failed its health probe ({}): {e:#}\n{back}\nunit status:\n{status}", s.component, probe);
            }
        }
    }
    fs::remove_file(&plan_file).ok();
    state::sync_path(&state.dir)?;
    Ok(Outcome {
        generation: id.to_owned(),
        steps,
    })
}

/// One line per generation, newest last: id, markers.
pub fn generations(root: &Path) -> Result<Vec<String>> {
    let state = State {
        dir: root.join("var/lib/infragen"),
        root: root.to_path_buf(),
    };
    let current = state.pointer("current");
    let rollback = state.pointer("rollback");
    Ok(state
        .history()
        .into_iter()
        .map(|id| {
            let mut line = id.clone();
            if current.as_deref() == Some(id.as_str()) {
                line.push_str(" (current)");
            }
            if rollback.as_deref() == Some(id.as_str()) {
                line.push_str(" (rollback)");
            }
            line
        })
        .collect())
}

/// The current generation and its components' unit states.
pub fn status(root: &Path, systemd: bool) -> Result<String> {
    let state = State {
        dir: root.join("var/lib/infragen"),
        root: root.to_path_buf(),
    };
    let Some(current) = state.pointer("current") else {
        return Ok("no generation is active\n".to_owned());
    };
    let m = read_manifest(&state.generation(&current).join("manifest.json"))?;
    let mut s = format!(
        "generation {current} (host {})\n",
        m["host"].as_str().unwrap_or("?")
    );
    if state.dir.join("plan.json").exists() {
        s.push_str("an activation was interrupted: run `infragen activate` again to finish it\n");
    }
    for name in m["components"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
    {
        let unit = format!("infra-{name}.service");
        let active = if systemd {
            Command::new("systemctl")
                .args(["is-active", &unit])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        } else {
            "(not queried with --root)".to_owned()
        };
        let _ = writeln!(s, "  {unit:<28} {active}");
    }
    Ok(s)
}

/// Removes all but the newest `keep` generations (never `current` or `rollback`), then roots
/// and blobs no remaining generation uses. Returns what was removed.
pub fn gc(root: &Path, keep: usize) -> Result<Vec<String>> {
    let state = State::open(root)?;
    let _lock = state.lock()?;
    let history = state.history();
    let pinned: Vec<String> = ["current", "rollback"]
        .iter()
        .filter_map(|p| state.pointer(p))
        .collect();
    let mut kept: Vec<String> = history.iter().rev().take(keep).cloned().collect();
    kept.extend(pinned);
    let mut removed = Vec::new();
    for e in fs::read_dir(state.dir.join("generations"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !kept.contains(&name) {
            fs::remove_dir_all(e.path())?;
            removed.push(format!("generation {name}"));
        }
    }
    let mut roots = std::collections::BTreeSet::new();
    let mut blobs = std::collections::BTreeSet::new();
    for id in &kept {
        let m = read_manifest(&state.generation(id).join("manifest.json"))?;
        for c in m["components"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            roots.extend(c["root"].as_str().map(str::to_owned));
            for key in ["image", "config_layer"] {
                blobs.extend(
                    c[key]
                        .as_str()
                        .map(|d| d.trim_start_matches("sha256:").to_owned()),
                );
            }
            for l in c["root_layers"].as_array().into_iter().flatten() {
                blobs.extend(
                    l.as_str()
                        .map(|d| d.trim_start_matches("sha256:").to_owned()),
                );
            }
            // The image config is named by the image manifest only.
            let manifest = c["image"].as_str().and_then(|image| {
                fs::read(
                    state
                        .dir
                        .join("blobs/sha256")
                        .join(image.trim_start_matches("sha256:")),
                )
                .ok()
            });
            if let Some(doc) = manifest.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                blobs.extend(
                    doc["config"]["digest"]
                        .as_str()
                        .map(|d| d.trim_start_matches("sha256:").to_owned()),
                );
            }
        }
    }
    for e in fs::read_dir(state.dir.join("roots"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !roots.contains(&name) {
            fs::remove_dir_all(e.path())?;
            removed.push(format!("root {name}"));
        }
    }
    for e in fs::read_dir(state.dir.join("blobs/sha256"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !blobs.contains(&name) {
            fs::remove_file(e.path())?;
            removed.push(format!("blob {name}"));
        }
    }
    Ok(removed)
}
