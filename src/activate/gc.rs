//! What is on a host: the current generation and its services, the generation list, and
//! garbage collection of generations, root trees, portable images and blobs nothing uses.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use serde_json::Value;

use super::read_manifest;
use super::runtime::portable_name;
use super::state::State;
use super::switch::runtime_of;

/// One generation on the host, as `generations` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    /// The generation id.
    pub id: String,
    /// `current` points at it.
    pub current: bool,
    /// `rollback` points at it.
    pub rollback: bool,
    /// The runtime it last ran with, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

impl std::fmt::Display for Generation {
    /// `id`, markers, `[runtime]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)?;
        if self.current {
            f.write_str(" (current)")?;
        }
        if self.rollback {
            f.write_str(" (rollback)")?;
        }
        if let Some(r) = &self.runtime {
            write!(f, " [{r}]")?;
        }
        Ok(())
    }
}

/// Every generation, newest last.
pub fn generations(root: &Path) -> Result<Vec<Generation>> {
    let state = State {
        dir: root.join("var/lib/infragen"),
        root: root.to_path_buf(),
    };
    let current = state.pointer("current");
    let rollback = state.pointer("rollback");
    Ok(state
        .history()
        .into_iter()
        .map(|id| Generation {
            current: current.as_deref() == Some(id.as_str()),
            rollback: rollback.as_deref() == Some(id.as_str()),
            runtime: state
                .generation(&id)
                .join("runtime")
                .is_file()
                .then(|| runtime_of(&state, &id).to_string()),
            id,
        })
        .collect())
}

/// The current generation and its components' units.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// The current generation, if any.
    pub generation: Option<String>,
    /// The host the generation was built for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The runtime it runs with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// An activation or rollback was interrupted (`plan.json` is left).
    pub interrupted: bool,
    /// One entry per component.
    pub units: Vec<UnitStatus>,
    /// The host files the node part owns (given back by `activate --remove`).
    pub node_files: Vec<String>,
}

/// A component's unit and its state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnitStatus {
    /// The component.
    pub component: String,
    /// Its systemd unit.
    pub unit: String,
    /// `systemctl is-active` (`None` with `--root`: systemd is not asked).
    pub active: Option<String>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(current) = &self.generation else {
            writeln!(f, "no generation is active")?;
            for path in &self.node_files {
                writeln!(f, "  {path:<28} owned")?;
            }
            return Ok(());
        };
        writeln!(
            f,
            "generation {current} (host {}, {} runtime)",
            self.host.as_deref().unwrap_or_default(),
            self.runtime.as_deref().unwrap_or_default()
        )?;
        if self.interrupted {
            writeln!(
                f,
                "an activation or rollback was interrupted: run it again to finish it"
            )?;
        }
        for u in &self.units {
            let active = u.active.as_deref().unwrap_or("(not queried with --root)");
            writeln!(f, "  {:<28} {active}", u.unit)?;
        }
        for path in &self.node_files {
            writeln!(f, "  {path:<28} owned")?;
        }
        Ok(())
    }
}

/// The current generation and its components' unit states.
pub fn status(root: &Path, systemd: bool) -> Result<Status> {
    let state = State {
        dir: root.join("var/lib/infragen"),
        root: root.to_path_buf(),
    };
    let node_files = super::node::owned(root);
    let Some(current) = state.pointer("current") else {
        return Ok(Status {
            node_files,
            ..Status::default()
        });
    };
    let m = read_manifest(&state.generation(&current).join("manifest.json"))?;
    let runtime = runtime_of(&state, &current);
    let units = m
        .components
        .keys()
        .map(|name| {
            let unit = runtime.unit(name);
            let active = systemd.then(|| {
                Command::new("systemctl")
                    .args(["is-active", &unit])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                    .unwrap_or_default()
            });
            UnitStatus {
                component: name.clone(),
                unit,
                active,
            }
        })
        .collect();
    Ok(Status {
        generation: Some(current),
        host: Some(m.host),
        runtime: Some(runtime.to_string()),
        interrupted: state.dir.join("plan.json").exists(),
        units,
        node_files,
    })
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
    // Listed first, removed after: the directory changes under the removals.
    let listed: Vec<fs::DirEntry> =
        fs::read_dir(state.dir.join("generations"))?.collect::<Result<_, _>>()?;
    for e in listed {
        let name = e.file_name().to_string_lossy().into_owned();
        if !kept.contains(&name) {
            discard(&e.path())?;
            if !name.starts_with(".trash-") {
                removed.push(format!("generation {name}"));
            }
        }
    }
    let (roots, mut portables, blobs) = used_by(&state, &kept)?;
    discard_abandoned(&state, &mut removed)?;
    // A portable image stays while a kept generation names it or portabled has it attached.
    portables.extend(super::runtime::attached_images(&state));
    remove_unused(
        &state.dir.join("portables"),
        &portables,
        "portable image",
        &mut removed,
    )?;
    remove_unused(&state.dir.join("roots"), &roots, "root", &mut removed)?;
    remove_unused(
        &state.dir.join("blobs/sha256"),
        &blobs,
        "blob",
        &mut removed,
    )?;
    Ok(removed)
}

/// What the kept generations use: root trees, portable image names, blobs (by hex digest).
type Used = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);

/// The root trees, portable images and blobs the generations `kept` use.
fn used_by(state: &State, kept: &[String]) -> Result<Used> {
    let mut roots = BTreeSet::new();
    let mut portables = BTreeSet::new();
    let mut blobs = BTreeSet::new();
    for id in kept {
        let m = read_manifest(&state.generation(id).join("manifest.json"))?;
        for c in m.components.values() {
            roots.insert(c.root.clone());
            if let Ok(unit) = fs::read(state.generation(id).join(&c.runtimes.portable)) {
                portables.insert(portable_name(
                    c.reference.trim_start_matches("infra-"),
                    &c.root,
                    &unit,
                ));
            }
            for d in std::iter::once(&c.image)
                .chain(std::iter::once(&c.config_layer))
                .chain(&c.root_layers)
            {
                blobs.insert(d.hex().to_owned());
            }
            // The image config is named by the image manifest only.
            let manifest = fs::read(state.dir.join("blobs/sha256").join(c.image.hex())).ok();
            if let Some(doc) = manifest.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                blobs.extend(
                    doc["config"]["digest"]
                        .as_str()
                        .map(|d| d.trim_start_matches("sha256:").to_owned()),
                );
            }
        }
    }
    Ok((roots, portables, blobs))
}

/// Removes the private directories of activations and pulls that were killed (a running one is
/// younger than an hour: a pull does not hold the lock while it downloads).
fn discard_abandoned(state: &State, removed: &mut Vec<String>) -> Result<()> {
    for e in fs::read_dir(&state.dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let abandoned = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if (name.starts_with(".incoming-") || name.starts_with(".pull-")) && abandoned {
            discard(&e.path())?;
            removed.push(format!("private directory {name}"));
        }
    }
    Ok(())
}

/// Removes every entry of `dir` (a missing `dir` has none) not named in `used`, noting each as
/// `<what> <name>` in `removed`.
fn remove_unused(
    dir: &Path,
    used: &std::collections::BTreeSet<String>,
    what: &str,
    removed: &mut Vec<String>,
) -> Result<()> {
    let listed: Vec<fs::DirEntry> = match fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<_, _>>()?,
        Err(_) => Vec::new(),
    };
    for e in listed {
        let name = e.file_name().to_string_lossy().into_owned();
        if used.contains(&name) {
            continue;
        }
        discard(&e.path())?;
        if !name.starts_with(".trash-") {
            removed.push(format!("{what} {name}"));
        }
    }
    Ok(())
}

/// Removes `path` so that no interruption leaves a partial tree under its name (which staging
/// would take for complete): renamed to `.trash-<name>` first, the rename made durable, then
/// deleted. A leftover `.trash-*` is an unused entry for the next gc.
fn discard(path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = path.parent().expect("has parent");
    // Relative to the directory that holds it, never through a symlink.
    let dir = crate::fsx::Root::open(parent, crate::fsx::Links::Refuse)?;
    let trash = if name.starts_with(".trash-") {
        name
    } else {
        let trash = format!(".trash-{name}");
        dir.rename(Path::new(&name), Path::new(&trash))?;
        dir.sync_dir(Path::new(""))?;
        trash
    };
    dir.remove(Path::new(&trash))?;
    Ok(())
}
