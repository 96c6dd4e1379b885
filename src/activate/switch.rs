//! The switch: from the current generation to a staged one, under a runtime. Stops what goes,
//! moves `current` by rename, syncs the live configuration, installs the runtime's units,
//! starts, restarts or reloads what the plan says, then probes; a failed probe switches back.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::plan::{self, Action, Step};
use super::probe;
use super::runtime::{Host, Runtime};
use super::state::{self, fail_point, write_atomic, State};
use super::{euid_is_root, read_manifest, Options, Outcome};

/// Makes `to` equal to `from`, file by file, each replaced by rename so that a reloading service
/// never reads half a file; modes follow the source, and so do owners when running as root.
/// Used for `live/<c>` (the configuration) and `secrets/<c>` (the credentials).
fn sync_dir(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if to.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        fs::remove_file(to)?; // ours to repair: these hold nothing but synced copies
    }
    fs::create_dir_all(to)?;
    let owners = euid_is_root();
    let mut wanted = std::collections::BTreeSet::new();
    for e in walkdir::WalkDir::new(from).sort_by_file_name() {
        let e = e?;
        let rel = e.path().strip_prefix(from)?.to_path_buf();
        wanted.insert(rel.clone());
        let dst = to.join(&rel);
        let meta = e.path().symlink_metadata()?;
        if meta.is_dir() {
            if !dst.is_dir() {
                let _ = fs::remove_file(&dst);
                fs::create_dir_all(&dst)?;
            }
        } else if meta.is_file() {
            let bytes = fs::read(e.path())?;
            if fs::read(&dst).ok().as_deref() != Some(bytes.as_slice()) {
                write_atomic(&dst, &bytes)?;
            }
        } else {
            bail!("{}: not a file or directory", e.path().display());
        }
        fs::set_permissions(&dst, meta.permissions())?;
        if owners {
            std::os::unix::fs::chown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        }
    }
    let mut leftovers = Vec::new();
    for e in walkdir::WalkDir::new(to).contents_first(true) {
        let e = e?;
        let rel = e.path().strip_prefix(to)?.to_path_buf();
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

/// Installs generation `id` (current) for `runtime`: users, live configuration, data
/// directories, the runtime's units, `daemon-reload`. An error names the component it concerns
/// (`*` for all).
fn install(
    state: &State,
    id: &str,
    components: &serde_json::Map<String, Value>,
    runtime: Runtime,
    host: &Host,
) -> std::result::Result<(), (String, anyhow::Error)> {
    let all = |e: anyhow::Error| ("*".to_owned(), e);
    sysusers(state, components, host).map_err(all)?;
    for (name, c) in components {
        let one = |e: anyhow::Error| (name.clone(), e);
        for (from, to) in [("config", "live"), ("secrets", "secrets")] {
            let src = state.generation(id).join(from).join(name);
            let dst = state.dir.join(to).join(name);
            if src.is_dir() || to == "live" {
                sync_dir(&src, &dst)
                    .with_context(|| format!("syncing {}", dst.display()))
                    .map_err(one)?;
            } else if dst.exists() {
                fs::remove_dir_all(&dst)
                    .with_context(|| format!("removing {}", dst.display()))
                    .map_err(one)?;
            }
        }
        for v in c["data"].as_array().into_iter().flatten() {
            let p = state.root.join(
                v["host"]
                    .as_str()
                    .unwrap_or("/nonexistent")
                    .trim_start_matches('/'),
            );
            if !p.exists() {
                let made = fs::create_dir_all(&p).and_then(|()| {
                    if euid_is_root() {
                        let (uid, gid) = (
                            v["uid"].as_u64().and_then(|u| u32::try_from(u).ok()),
                            v["gid"].as_u64().and_then(|g| u32::try_from(g).ok()),
                        );
                        std::os::unix::fs::chown(&p, uid, gid)?;
                    }
                    Ok(())
                });
                made.with_context(|| format!("data directory {}", p.display()))
                    .map_err(one)?;
            }
        }
        runtime
            .install(state, host, name, c["root"].as_str().unwrap_or(""))
            .with_context(|| format!("installing {name} for the {runtime} runtime"))
            .map_err(one)?;
    }
    host.systemctl(&["daemon-reload"]).map_err(all)
}

/// The runtime generation `id` was last switched to with (`unit` when never).
pub fn runtime_of(state: &State, id: &str) -> Runtime {
    fs::read_to_string(state.generation(id).join("runtime"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_default()
}

/// The unit text of `component` for `runtime` in a generation (or bundle) directory.
pub fn unit_text(
    dir: &Path,
    manifest: &Value,
    component: &str,
    runtime: Runtime,
) -> Option<String> {
    let rel = manifest["components"][component]["runtimes"][runtime.name()].as_str()?;
    fs::read_to_string(dir.join(rel)).ok()
}

/// The steps from the generation in `old` (a directory and its manifest, run with
/// `from_runtime`) to the one in `new_dir` (run with `runtime`): the plan of [`plan::plan`],
/// every component started afresh when the runtime changes, and reloads made restarts where the
/// runtime cannot reload.
pub fn plan_steps(
    old: Option<(&Path, &Value)>,
    from_runtime: Runtime,
    new_dir: &Path,
    new: &Value,
    runtime: Runtime,
) -> Vec<Step> {
    let mut steps = plan::plan(
        old.map(|(_, m)| m),
        new,
        &|c| old.and_then(|(dir, m)| unit_text(dir, m, c, from_runtime)),
        &|c| unit_text(new_dir, new, c, runtime),
    );
    for s in &mut steps {
        if from_runtime != runtime && s.action != Action::Stop {
            s.action = Action::Start;
            s.why = format!("runtime {from_runtime} → {runtime}");
        } else if s.action == Action::Reload && !runtime.reloads() {
            s.action = Action::Restart;
            s.why = format!("configuration changed; the {runtime} runtime does not reload");
        }
    }
    steps
}

/// [`plan_steps`] between two staged generations.
fn steps(
    state: &State,
    from: Option<&str>,
    from_runtime: Runtime,
    id: &str,
    runtime: Runtime,
) -> Result<Vec<Step>> {
    let new = read_manifest(&state.generation(id).join("manifest.json"))?;
    let old = from
        .map(|f| {
            read_manifest(&state.generation(f).join("manifest.json"))
                .map(|m| (state.generation(f), m))
        })
        .transpose()?;
    Ok(plan_steps(
        old.as_ref().map(|(d, m)| (d.as_path(), m)),
        from_runtime,
        &state.generation(id),
        &new,
        runtime,
    ))
}

/// Switches the host to generation `id` (staged) run with `runtime`, with the health gate and
/// automatic rollback.
pub fn switch(
    state: &State,
    id: &str,
    runtime: Runtime,
    opts: &Options,
    gate: bool,
) -> Result<Outcome> {
    let host = Host {
        systemd: opts.systemd,
    };
    runtime.check_host(&host)?;
    let new = read_manifest(&state.generation(id).join("manifest.json"))?;
    let previous = state.pointer("current");
    // What `infragen rollback` returned to before this switch: restored if the gate sends the
    // host back, so that the failed generation does not become the rollback target.
    let rollback_before = state.pointer("rollback");
    // Resume: a plan left by an interrupted run toward this generation is finished, not redone.
    let plan_file = state.dir.join("plan.json");
    let resumed: Option<Value> = fs::read(&plan_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|p: &Value| {
            p["to"] == json!(id)
                && previous.as_deref() == Some(id)
                && p["runtime"] == json!(runtime.name())
        });
    // `before`: what ran until now, and how; its components are what a runtime change removes.
    let (from, before, before_runtime) = match &resumed {
        Some(p) => {
            let before_runtime = p["from_runtime"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or_default();
            (
                p["from"].as_str().map(str::to_owned),
                p["before"].as_str().map(str::to_owned),
                before_runtime,
            )
        }
        None => (
            previous.clone().filter(|p| p != id),
            previous.clone(),
            previous
                .as_deref()
                .map_or(runtime, |p| runtime_of(state, p)),
        ),
    };
    let steps = if from.is_none() && before.as_deref() == Some(id) {
        // Already current: converge (units installed, live config synced, services started),
        // restart nothing — unless the runtime changes.
        steps(state, Some(id), before_runtime, id, runtime)?
    } else {
        steps(state, from.as_deref(), before_runtime, id, runtime)?
    };
    // A component left alone or reloaded must be running: one that is not is started (and
    // probed); reloading a stopped service would fail.
    let steps: Vec<Step> = steps
        .into_iter()
        .map(|s| {
            if matches!(s.action, Action::Keep | Action::Reload)
                && host.systemd
                && !host.is_active(&runtime.unit(&s.component))
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
        &serde_json::to_vec(&json!({
            "from": from, "before": before, "to": id, "steps": steps,
            "from_runtime": before_runtime.name(), "runtime": runtime.name(),
        }))?,
    )?;
    fail_point("plan-written");

    if before_runtime == runtime {
        for s in steps.iter().filter(|s| s.action == Action::Stop) {
            runtime.remove(state, &host, &s.component)?;
        }
    } else if let Some(b) = &before {
        let old = read_manifest(&state.generation(b).join("manifest.json"))?;
        for c in old["components"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
        {
            before_runtime.remove(state, &host, c)?;
        }
    }
    fail_point("after-stop");
    if let Some(f) = &from {
        state.set_pointer("rollback", f)?;
    }
    if runtime_of(state, id) != runtime || !state.generation(id).join("runtime").is_file() {
        write_atomic(
            &state.generation(id).join("runtime"),
            format!("{runtime}\n").as_bytes(),
        )?;
    }
    state.set_pointer("current", id)?;
    state.push_history(id)?;
    fail_point("after-switch");

    let components = new["components"].as_object().cloned().unwrap_or_default();
    // From here on the host is on the new generation: a failure to install it goes through the
    // gate (and its rollback) like a unit that does not start, naming the component and path.
    let installed = install(state, id, &components, runtime, &host);
    fail_point("after-live");
    let mut failure: Option<(String, String)> = match installed {
        Ok(()) => None,
        Err((component, e)) if gate => Some((component, format!("could not be installed: {e:#}"))),
        Err((_, e)) => return Err(e),
    };
    // A unit that fails to start fails the gate like a failed probe.
    for s in steps.iter().take_while(|_| failure.is_none()) {
        let done = match s.action {
            Action::Start | Action::Keep => runtime.start(&host, &s.component),
            Action::Restart => runtime.restart(&host, &s.component),
            Action::Reload => host.systemctl(&["reload", &runtime.unit(&s.component)]),
            Action::Stop => Ok(()),
        };
        if let Err(e) = done {
            if !gate {
                return Err(e);
            }
            failure = Some((s.component.clone(), format!("did not {}: {e:#}", s.action)));
            break;
        }
    }
    fail_point("after-actions");
    if gate && opts.systemd && failure.is_none() {
        for s in steps
            .iter()
            .filter(|s| matches!(s.action, Action::Start | Action::Restart | Action::Reload))
        {
            let probe = &components[&s.component]["health"];
            if probe.is_null() {
                continue;
            }
            if let Err(e) = probe::until(probe, opts.health_timeout) {
                failure = Some((
                    s.component.clone(),
                    format!("failed its health probe ({probe}): {e:#}"),
                ));
                break;
            }
        }
    }
    if let Some((component, what)) = failure {
        let status = host.status(&runtime.unit(&component));
        let _ = fs::remove_file(&plan_file);
        let back = match &before {
            Some(b) if b != id || before_runtime != runtime => {
                match switch(state, b, before_runtime, opts, false) {
                    Ok(_) => {
                        match &rollback_before {
                            Some(r) => state.set_pointer("rollback", r)?,
                            None => {
                                let _ = fs::remove_file(state.dir.join("rollback"));
                            }
                        }
                        format!(
                            "rolled back to generation {} ({before_runtime} runtime)",
                            &b[..12.min(b.len())]
                        )
                    }
                    Err(re) => format!("rollback failed too: {re:#}"),
                }
            }
            Some(_) => "the generation was already current and stays so; the other components were left alone".to_owned(),
            None => {
                // Nothing was active before: leave nothing active now.
                for name in components.keys() {
                    let _ = runtime.remove(state, &host, name);
                }
                let _ = fs::remove_file(state.dir.join("current"));
                let _ = host.systemctl(&["daemon-reload"]);
                "no previous generation: the new components were stopped and removed".to_owned()
            }
        };
        let who = if component == "*" {
            "the generation".to_owned()
        } else {
            format!("component `{component}`")
        };
        bail!("{who} {what}\n{back}\nunit status:\n{status}");
    }
    fs::remove_file(&plan_file).ok();
    state::sync_path(&state.dir)?;
    Ok(Outcome {
        generation: id.to_owned(),
        runtime,
        from_runtime: before_runtime,
        steps,
    })
}
