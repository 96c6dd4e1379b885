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
//!
//! Modules: `stage` (blobs and root trees), `switch` (the switch and its gate), `runtime` (how
//! each runtime installs and drives a component), `plan`, `probe`, `state`, `gc` (status,
//! generations, gc).

mod gc;
mod plan;
mod probe;
mod runtime;
mod stage;
mod state;
mod switch;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub use gc::{gc, generations, status};
pub use plan::{Action, Step};
pub use runtime::Runtime;
use state::fail_point;
pub use state::State;
use switch::{runtime_of, switch};

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
    /// How components run (`activate`; `rollback` returns to the runtime it ran with).
    pub runtime: Runtime,
}

/// What an activation did.
#[derive(Debug)]
pub struct Outcome {
    /// The generation now current.
    pub generation: String,
    /// The runtime it runs with.
    pub runtime: Runtime,
    /// The runtime before (what `Stop` steps stopped).
    pub from_runtime: Runtime,
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

/// The manifest's values that become host paths must be what a build writes: ids of 64 hex
/// digits, component names of lowercase letters and digits, absolute data and configuration
/// paths without `..`. A bundle only proves its own consistency, so this is checked, not assumed.
fn check_paths(m: &Value) -> Result<()> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let absolute = |s: &str| {
        let p = Path::new(s);
        p.is_absolute()
            && p.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            })
    };
    if !m["generation"].as_str().is_some_and(hex64) {
        bail!("the generation id is not 64 hex digits");
    }
    for (name, c) in m["components"].as_object().into_iter().flatten() {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            bail!("component name `{name}` is not lowercase letters and digits");
        }
        if !c["root"].as_str().is_some_and(hex64) {
            bail!("component `{name}`: root id is not 64 hex digits");
        }
        for v in c["data"].as_array().into_iter().flatten() {
            for key in ["host", "path"] {
                if !v[key].as_str().is_some_and(absolute) {
                    bail!(
                        "component `{name}`: data {key} {} is not a plain absolute path",
                        v[key]
                    );
                }
            }
        }
        for d in c["config_dirs"].as_array().into_iter().flatten() {
            if !d.as_str().is_some_and(absolute) {
                bail!("component `{name}`: configuration path {d} is not a plain absolute path");
            }
        }
    }
    Ok(())
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
    check_paths(&new)
        .map_err(|e| anyhow::anyhow!("bundle {}: {e}; nothing was changed", bundle.display()))?;
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
    opts.runtime.check_host(&runtime::Host {
        systemd: opts.systemd,
    })?;
    // The lock comes before reading `current`, so that the downgrade check and the plan are made
    // against what stays current (a dry run writes nothing, not even the lock).
    let locked = if opts.dry_run {
        None
    } else {
        let state = State::open(&opts.root)?;
        let lock = state.lock()?;
        Some((state, lock))
    };
    let existing = State {
        dir: opts.root.join("var/lib/infragen"),
        root: opts.root.clone(),
    };
    let current = if existing.dir.is_dir() {
        existing.pointer("current")
    } else {
        None
    };
    let old = current
        .as_ref()
        .map(|c| read_manifest(&existing.generation(c).join("manifest.json")))
        .transpose()?;
    if let Some(o) = &old {
        if !opts.allow_downgrade && current.as_deref() != Some(id.as_str()) && is_downgrade(o, &new)
        {
            bail!("bundle {} is older than the current generation ({} {} → {} {}); nothing was changed\nhint: pass --allow-downgrade, or use `infragen rollback`", bundle.display(), o["version_string"], o["infragen"], new["version_string"], new["infragen"]);
        }
    }
    if opts.dry_run {
        let from_runtime = current
            .as_deref()
            .map_or(opts.runtime, |c| runtime_of(&existing, c));
        let dir = current.as_deref().map(|c| existing.generation(c));
        let steps = switch::plan_steps(
            dir.as_deref().zip(old.as_ref()),
            from_runtime,
            bundle,
            &new,
            opts.runtime,
        );
        let outcome = Outcome {
            generation: id,
            runtime: opts.runtime,
            from_runtime,
            steps,
        };
        print_plan(current.as_deref(), &outcome);
        return Ok(outcome);
    }
    let (state, _lock) = locked.expect("locked unless a dry run");
    stage_generation(&state, bundle, &new, &id)?;
    switch(&state, &id, opts.runtime, opts, true)
}

/// Switches back to the rollback generation.
pub fn rollback(opts: &Options) -> Result<Outcome> {
    let state = State::open(&opts.root)?;
    let _lock = state.lock()?;
    let Some(target) = state.pointer("rollback") else {
        bail!("rollback: no previous generation to return to");
    };
    let runtime = runtime_of(&state, &target);
    switch(&state, &target, runtime, opts, true)
}

fn print_plan(old: Option<&str>, plan: &Outcome) {
    let short = |s: &str| s.chars().take(12).collect::<String>();
    println!(
        "generation {} → {}",
        old.map_or_else(|| "(none)".to_owned(), short),
        short(&plan.generation)
    );
    for s in &plan.steps {
        println!("  {:<7} {} ({})", s.action.to_string(), plan.unit(s), s.why);
    }
}

impl Outcome {
    /// The unit a step acts on: a stopped component's under the runtime it ran with.
    pub fn unit(&self, step: &Step) -> String {
        if step.action == Action::Stop {
            self.from_runtime.unit(&step.component)
        } else {
            self.runtime.unit(&step.component)
        }
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
    // What the nspawn and podman runtimes find through `current`: each component's machine
    // directory (a link to its root tree) and an OCI layout of the images over the blob store.
    let machines = tmp.path().join("machines");
    fs::create_dir_all(&machines)?;
    for (name, c) in &components {
        let root = c["root"].as_str().context("component without root")?;
        std::os::unix::fs::symlink(
            Path::new("../../../roots").join(root),
            machines.join(format!("infra-{name}")),
        )?;
    }
    let oci = tmp.path().join("oci");
    fs::create_dir_all(&oci)?;
    for f in ["oci-layout", "index.json"] {
        fs::copy(bundle.join("oci").join(f), oci.join(f))?;
    }
    std::os::unix::fs::symlink("../../../blobs", oci.join("blobs"))?;
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
                    // The directory too: the nspawn and podman runtimes bind it as it is.
                    std::os::unix::fs::chown(
                        &dir,
                        u32::try_from(uid).ok(),
                        u32::try_from(gid).ok(),
                    )?;
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

#[cfg(test)]
mod tests {
    use super::check_paths;
    use serde_json::json;

    #[test]
    fn manifest_paths_must_be_what_a_build_writes() {
        let hex = "a".repeat(64);
        let good = json!({"generation": hex, "components": {"nginx": {
            "root": hex, "data": [{"host": "/data/infra/nginx", "path": "/var/log/nginx"}],
            "config_dirs": ["/etc/nginx"]}}});
        check_paths(&good).unwrap();
        for (path, value) in [
            ("/components/nginx/data/0/host", json!("/data/../etc")),
            ("/components/nginx/data/0/path", json!("var/log")),
            ("/components/nginx/config_dirs/0", json!("/etc/./nginx/..")),
            ("/components/nginx/root", json!("../../etc")),
            ("/generation", json!("x")),
        ] {
            let mut bad = good.clone();
            *bad.pointer_mut(path).unwrap() = value;
            assert!(check_paths(&bad).is_err(), "{path} accepted");
        }
        let mut bad = good.clone();
        let c = bad["components"]["nginx"].clone();
        bad["components"]["../x"] = c;
        assert!(check_paths(&bad).is_err(), "a component name with a slash");
    }
}
