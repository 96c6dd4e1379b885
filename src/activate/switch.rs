//! The switch: from the current generation to a staged one, under a runtime. Stops what goes,
//! moves `current` by rename, syncs the live configuration, installs the runtime's units,
//! starts, restarts or reloads what the plan says, then probes; a failed probe switches back.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;

use super::node;
use super::plan::{self, Action, Step};
use super::probe;
use super::runtime::{Host, Runtime};
use super::state::{self, fail_point, State};
use super::{euid_is_root, read_manifest, Options, Outcome};
use crate::fsx::{write_file_atomic, Kind, Links, Root};
use crate::progress::{Event, Reporter};

/// The failure's name when the node part fails (not a component name: those are letters and
/// digits).
const NODE: &str = "(node)";

/// Makes `to` equal to `from` (both below the state directory `st`), file by file, each
/// replaced by rename so that a reloading service never reads half a file; modes and owners
/// follow the staged generation, which took them from the signed manifest. Used for `live/<c>`
/// (the configuration) and `secrets/<c>` (the credentials). Every write goes through [`Root`].
fn sync_dir(st: &Root, from: &Path, to: &Path) -> Result<()> {
    if st.meta(to)?.is_some_and(|m| m.kind != Kind::Dir) {
        st.remove(to)?; // ours to repair: these hold nothing but synced copies
    }
    let top = st
        .meta(from)?
        .with_context(|| format!("{} is missing", from.display()))?;
    st.mkdir_all(to, top.mode)?;
    let owners = euid_is_root();
    let (src, dst) = (st.sub(from)?, st.sub(to)?);
    let mut wanted = std::collections::BTreeSet::new();
    for (rel, meta) in src.walk()? {
        wanted.insert(rel.clone());
        let there = dst.meta(&rel)?;
        match meta.kind {
            Kind::Dir => {
                if there.is_some_and(|m| m.kind != Kind::Dir) {
                    dst.remove(&rel)?;
                }
                dst.mkdir(&rel, meta.mode)?;
            }
            Kind::File => {
                let bytes = src.read(&rel)?;
                let same = there.is_some_and(|m| m.kind == Kind::File) && dst.read(&rel)? == bytes;
                if !same {
                    if there.is_some_and(|m| m.kind == Kind::Dir) {
                        dst.remove(&rel)?;
                    }
                    dst.write_atomic(&rel, &bytes, meta.mode)?;
                }
            }
            _ => bail!(
                "{}: not a file or directory",
                src.path().join(&rel).display()
            ),
        }
        dst.chmod(&rel, meta.mode)?;
        if owners {
            dst.chown(&rel, meta.uid, meta.gid)?;
        }
    }
    st.chmod(to, top.mode)?;
    if owners {
        st.chown(to, top.uid, top.gid)?;
    }
    for (rel, _) in dst.walk()?.into_iter().rev() {
        if !wanted.contains(&rel) {
            dst.remove(&rel)?;
        }
    }
    Ok(())
}

/// The components' users, declared for systemd-sysusers (`/etc/sysusers.d/infragen.conf`):
/// systemd resolves `User=` on the host, so the image's numeric users must exist there too.
fn sysusers(state: &State, components: &Components, host: &Host) -> Result<()> {
    if components.is_empty() {
        return Ok(()); // a node bundle: nothing to declare, nothing written
    }
    let mut users = std::collections::BTreeMap::new();
    for c in components.values() {
        let u = &c.user;
        users.insert(
            u.uid,
            (format!("infra-{}", u.name.trim_start_matches('_')), u.gid),
        );
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
    let rel = Path::new("etc/sysusers.d/infragen.conf");
    let host_root = Root::open(&state.root, Links::InRoot)?;
    host_root.mkdir_all(rel.parent().expect("has parent"), 0o755)?;
    let same = host_root.meta(rel)?.is_some_and(|m| m.kind == Kind::File)
        && host_root.read(rel)? == text.as_bytes();
    if !same {
        host_root.write_atomic(rel, text.as_bytes(), 0o644)?;
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
    components: &Components,
    runtime: Runtime,
    host: &Host,
) -> std::result::Result<(), (String, anyhow::Error)> {
    let all = |e: anyhow::Error| ("*".to_owned(), e);
    sysusers(state, components, host).map_err(all)?;
    let st = Root::open(&state.dir, Links::Refuse).map_err(all)?;
    let host_root = Root::open(&state.root, Links::InRoot).map_err(all)?;
    let gen = Path::new("generations").join(id);
    for (name, c) in components {
        let one = |e: anyhow::Error| (name.clone(), e);
        for (from, to) in [("config", "live"), ("secrets", "secrets")] {
            let src = gen.join(from).join(name);
            let dst = Path::new(to).join(name);
            let staged = st.meta(&src).map_err(one)?.is_some();
            if staged {
                sync_dir(&st, &src, &dst)
                    .with_context(|| format!("syncing {}", state.dir.join(&dst).display()))
                    .map_err(one)?;
            } else {
                st.remove(&dst)
                    .with_context(|| format!("removing {}", state.dir.join(&dst).display()))
                    .map_err(one)?;
            }
        }
        for v in &c.data {
            let rel = Path::new(v.host.trim_start_matches('/'));
            // Created when missing (links resolved inside the host root: `/data` may be a
            // mounted disk's link), and otherwise never touched.
            let made = (|| -> Result<()> {
                if host_root.meta(rel)?.is_some() {
                    return Ok(());
                }
                host_root.mkdir_all(rel, 0o755)?;
                if euid_is_root() {
                    host_root.chown(rel, v.uid, v.gid)?;
                }
                Ok(())
            })();
            made.with_context(|| format!("data directory {}", state.root.join(rel).display()))
                .map_err(one)?;
        }
        runtime
            .install(state, host, name, &c.root)
            .with_context(|| format!("installing {name} for the {runtime} runtime"))
            .map_err(one)?;
    }
    // A removed component's configuration and credentials go with it.
    for dir in ["live", "secrets"] {
        let names = st.sub(Path::new(dir)).and_then(|d| d.list()).map_err(all)?;
        for n in names {
            if !components.contains_key(&*n.to_string_lossy()) {
                st.remove(&Path::new(dir).join(&n)).map_err(all)?;
            }
        }
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
    manifest: &Manifest,
    component: &str,
    runtime: Runtime,
) -> Option<String> {
    let rel = manifest
        .components
        .get(component)?
        .runtimes
        .get(runtime.name())?;
    fs::read_to_string(dir.join(rel)).ok()
}

/// The steps from the generation in `old` (a directory and its manifest, run with
/// `from_runtime`) to the new one (its units from `new_unit`, run with `runtime`): the plan of [`plan::plan`],
/// every component started afresh when the runtime changes, and reloads made restarts where the
/// runtime cannot reload.
pub fn plan_steps(
    old: Option<(&Path, &Manifest)>,
    from_runtime: Runtime,
    new_unit: &dyn Fn(&str) -> Option<String>,
    new: &Manifest,
    runtime: Runtime,
) -> Vec<Step> {
    let mut steps = plan::plan(
        old.map(|(_, m)| m),
        new,
        &|c| old.and_then(|(dir, m)| unit_text(dir, m, c, from_runtime)),
        new_unit,
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
        &|c| unit_text(&state.generation(id), &new, c, runtime),
        &new,
        runtime,
    ))
}

/// The components of a manifest.
type Components = std::collections::BTreeMap<String, crate::manifest::ComponentEntry>;

/// `plan.json`: the switch in progress, so that an interrupted run resumes it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    /// The generation switched from (the rollback target), when another.
    from: Option<String>,
    /// What was current before the switch, the same generation included.
    before: Option<String>,
    /// The generation switched to.
    to: String,
    /// The steps.
    steps: Vec<Step>,
    /// The runtime `before` ran with.
    from_runtime: String,
    /// The runtime `to` runs with.
    runtime: String,
}

/// Where a switch starts from: what ran until now and how, and what to do.
#[allow(clippy::struct_field_names)] // `from` is the rollback target, as in `plan.json`
struct From {
    /// The generation switched from (the rollback target), when another.
    from: Option<String>,
    /// What was current before the switch, the same generation included.
    before: Option<String>,
    /// The runtime `before` ran with.
    runtime: Runtime,
    /// The steps, in order.
    steps: Vec<Step>,
}

/// Switches the host to generation `id` (staged) run with `runtime`, with the health gate and
/// automatic rollback.
pub fn switch(
    state: &State,
    id: &str,
    runtime: Runtime,
    opts: &Options,
    gate: bool,
    progress: &Reporter,
) -> Result<Outcome> {
    let host = Host {
        systemd: opts.systemd,
    };
    runtime.check_host(&host)?;
    progress.phase("switch");
    let new = read_manifest(&state.generation(id).join("manifest.json"))?;
    // What `infragen rollback` returned to before this switch: restored if the gate sends the
    // host back, so that the failed generation does not become the rollback target.
    let rollback_before = state.pointer("rollback");
    let plan_file = state.dir.join("plan.json");
    let start = where_from(state, id, runtime, &host)?;
    persist(&plan_file, &start, id, runtime)?;
    stop(state, &start, runtime, &host)?;
    let recorded = flip(state, &start, id, runtime)?;
    let components = &new.components;
    let installed = recorded
        .map_err(|e| ("*".to_owned(), e))
        .and_then(|()| install(state, id, components, runtime, &host))
        .and_then(|()| {
            node::apply(state, id, new.node.as_ref())
                .and_then(|changed| node::after(&changed, &host))
                .map(|notes| notes.into_iter().for_each(|n| progress.warning(n)))
                .map_err(|e| (NODE.to_owned(), e))
        });
    fail_point("after-live");
    let mut failure: Option<(String, String)> = match installed {
        Ok(()) => None,
        Err((component, e)) if gate => Some((component, format!("could not be installed: {e:#}"))),
        Err((_, e)) => return Err(e),
    };
    if failure.is_none() {
        failure = act(&start.steps, runtime, &host, gate, progress)?;
    }
    fail_point("after-actions");
    if gate && opts.systemd && failure.is_none() {
        progress.phase("probe");
        failure = probe_all(&start.steps, components, opts.health_timeout);
        if failure.is_none() {
            if let Some(n) = &new.node {
                failure = probe::node_all(&n.probes, opts.health_timeout)
                    .map(|what| (NODE.to_owned(), what));
            }
        }
    }
    if let Some((component, what)) = failure {
        let _ = fs::remove_file(&plan_file);
        let back = Back {
            state,
            id,
            runtime,
            opts,
            host: &host,
            progress,
        };
        let status = if component == NODE || component == "*" {
            String::new()
        } else {
            format!("\nunit status:\n{}", host.status(&runtime.unit(&component)))
        };
        let back = back.go(&start, rollback_before.as_deref(), components)?;
        let who = if component == "*" {
            "the generation".to_owned()
        } else if component == NODE {
            "the node part".to_owned()
        } else {
            format!("component `{component}`")
        };
        bail!("{who} {what}\n{back}{status}");
    }
    fs::remove_file(&plan_file).ok();
    state::sync_path(&state.dir)?;
    Ok(Outcome {
        generation: id.to_owned(),
        previous: start.before,
        runtime,
        from_runtime: start.runtime,
        steps: start.steps,
    })
}

/// What the switch starts from, resuming a plan an interrupted run left toward this
/// generation (finished, not redone), and the steps to take.
fn where_from(state: &State, id: &str, runtime: Runtime, host: &Host) -> Result<From> {
    let previous = state.pointer("current");
    let resumed: Option<Persisted> = fs::read(state.dir.join("plan.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|p: &Persisted| {
            p.to == id && previous.as_deref() == Some(id) && p.runtime == runtime.name()
        });
    // `before`: what ran until now, and how; its components are what a runtime change removes.
    let (from, before, before_runtime) = match &resumed {
        Some(p) => (
            p.from.clone(),
            p.before.clone(),
            p.from_runtime.parse().unwrap_or_default(),
        ),
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
    Ok(From {
        from,
        before,
        runtime: before_runtime,
        steps,
    })
}

/// Writes `plan.json`, so that an interrupted run resumes this switch.
fn persist(plan_file: &Path, start: &From, id: &str, runtime: Runtime) -> Result<()> {
    write_file_atomic(
        plan_file,
        &serde_json::to_vec(&Persisted {
            from: start.from.clone(),
            before: start.before.clone(),
            to: id.to_owned(),
            steps: start.steps.clone(),
            from_runtime: start.runtime.name().to_owned(),
            runtime: runtime.name().to_owned(),
        })?,
        0o644,
    )?;
    fail_point("plan-written");
    Ok(())
}

/// Stops what goes: the removed components, or every component of a runtime being left.
fn stop(state: &State, start: &From, runtime: Runtime, host: &Host) -> Result<()> {
    if start.runtime == runtime {
        for s in start.steps.iter().filter(|s| s.action == Action::Stop) {
            runtime.remove(state, host, &s.component)?;
        }
    } else if let Some(b) = &start.before {
        let old = read_manifest(&state.generation(b).join("manifest.json"))?;
        for c in old.components.keys() {
            start.runtime.remove(state, host, c)?;
        }
    }
    fail_point("after-stop");
    Ok(())
}

/// Moves `rollback` and `current`, and records the generation in the history. The outer error
/// is a failure before the switch; the inner one, after it (it goes through the gate).
fn flip(state: &State, start: &From, id: &str, runtime: Runtime) -> Result<Result<()>> {
    if let Some(f) = &start.from {
        state.set_pointer("rollback", f)?;
    }
    if runtime_of(state, id) != runtime || !state.generation(id).join("runtime").is_file() {
        write_file_atomic(
            &state.generation(id).join("runtime"),
            format!("{runtime}\n").as_bytes(),
            0o644,
        )?;
    }
    state.set_pointer("current", id)?;
    // From here on the host is on the new generation: any failure (a full disk included) goes
    // through the gate and its rollback like a unit that does not start, naming what failed.
    let recorded = state::fail_io("history-enospc")
        .map_err(anyhow::Error::from)
        .and_then(|()| state.push_history(id))
        .with_context(|| format!("recording {}", state.dir.join("history").display()));
    fail_point("after-switch");
    Ok(recorded)
}

/// Starts, restarts or reloads what the steps say. A unit that fails to start fails the gate
/// like a failed probe: returned as the failure (component, what) when gated.
fn act(
    steps: &[Step],
    runtime: Runtime,
    host: &Host,
    gate: bool,
    progress: &Reporter,
) -> Result<Option<(String, String)>> {
    for s in steps {
        let done = match s.action {
            Action::Start | Action::Keep => runtime.start(host, &s.component),
            Action::Restart => runtime.restart(host, &s.component),
            Action::Reload => host.systemctl(&["reload", &runtime.unit(&s.component)]),
            Action::Stop => Ok(()),
        };
        if let Err(e) = done {
            if !gate {
                return Err(e);
            }
            return Ok(Some((
                s.component.clone(),
                format!("did not {}: {e:#}", s.action),
            )));
        }
        if s.action != Action::Keep {
            progress.event(Event::Step {
                action: s.action.to_string(),
                component: s.component.clone(),
                unit: runtime.unit(&s.component),
                why: s.why.clone(),
            });
        }
    }
    Ok(None)
}

/// Probes every started, restarted or reloaded component; the first failure, if any.
fn probe_all(
    steps: &[Step],
    components: &Components,
    timeout: std::time::Duration,
) -> Option<(String, String)> {
    for s in steps
        .iter()
        .filter(|s| matches!(s.action, Action::Start | Action::Restart | Action::Reload))
    {
        let Some(probe) = components.get(&s.component).and_then(|c| c.health.as_ref()) else {
            continue;
        };
        if let Err(e) = probe::until(probe, timeout) {
            return Some((
                s.component.clone(),
                format!(
                    "failed its health probe ({}): {e:#}",
                    probe::describe(probe)
                ),
            ));
        }
    }
    None
}

/// Sending the host back after a failed gate.
struct Back<'a> {
    state: &'a State,
    id: &'a str,
    runtime: Runtime,
    opts: &'a Options,
    host: &'a Host,
    progress: &'a Reporter,
}

impl Back<'_> {
    /// Returns to what ran before (or to nothing) and says what happened.
    fn go(
        &self,
        start: &From,
        rollback_before: Option<&str>,
        components: &Components,
    ) -> Result<String> {
        let state = self.state;
        Ok(match &start.before {
            Some(b) if b != self.id || start.runtime != self.runtime => {
                self.progress.phase("rollback");
                match switch(state, b, start.runtime, self.opts, false, self.progress) {
                    Ok(_) => {
                        match rollback_before {
                            Some(r) => state.set_pointer("rollback", r)?,
                            None => {
                                let _ = fs::remove_file(state.dir.join("rollback"));
                            }
                        }
                        format!(
                            "rolled back to generation {} ({} runtime)",
                            &b[..12.min(b.len())],
                            start.runtime
                        )
                    }
                    Err(re) => format!("rollback failed too: {re:#}"),
                }
            }
            Some(_) => "the generation was already current and stays so; the other components were left alone".to_owned(),
            None => {
                self.progress.phase("rollback");
                // Nothing was active before: leave nothing active now.
                for name in components.keys() {
                    let _ = self.runtime.remove(state, self.host, name);
                }
                // The host files it took are given back.
                let given = node::apply(state, self.id, None)
                    .and_then(|changed| node::after(&changed, self.host))
                    .map(|notes| notes.into_iter().for_each(|n| self.progress.warning(n)));
                let _ = fs::remove_file(state.dir.join("current"));
                let _ = self.host.systemctl(&["daemon-reload"]);
                if let Err(e) = given {
                    return Ok(format!("no previous generation: the new components were stopped and removed; giving back the host files failed: {e:#}"));
                }
                "no previous generation: the new components were stopped and removed".to_owned()
            }
        })
    }
}
