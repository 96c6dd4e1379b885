//! The four ways a component runs on a host (docs/design.md, "Runtimes on the host") and what
//! installing, starting and removing one means for each. Every runtime runs the same root tree
//! and binds the same live configuration, data directories and credentials; they differ in the
//! unit systemd runs and in how that unit finds the current generation:
//!
//! | runtime    | systemd unit                     | installed as                                        |
//! |------------|----------------------------------|-----------------------------------------------------|
//! | `unit`     | `infra-<c>.service`              | `/etc/systemd/system/infra-<c>.service` → `current/units/…` |
//! | `nspawn`   | `systemd-nspawn@infra-<c>.service` | `/etc/systemd/nspawn/infra-<c>.nspawn` → `current/nspawn/…`, `/var/lib/machines/infra-<c>` → `current/machines/infra-<c>` → the root tree |
//! | `portable` | `infra-<c>.service` (attached)   | `portablectl attach` of `portables/infra-<c>_<hash>` (the root tree hard-linked, plus the unit) |
//! | `podman`   | `infra-<c>.service` (Quadlet)    | `/etc/containers/systemd/infra-<c>.container` → `current/quadlet/…`, image `oci:current/oci` |
//!
//! For `unit`, `nspawn` and `podman` the switch of `current` switches what runs; a portable image
//! is attached by its real path, so a changed one is re-attached (`portablectl reattach`).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::state::{sync_path, State};
use crate::fsx::{Kind, Links, Root};

/// Where the host's state lives, as units see it.
const STATE: &str = "/var/lib/infragen";

/// The portable profile infragen attaches with: the units carry their own hardening, so the
/// profile adds only the API file systems.
const PORTABLE_PROFILE: &str = "# Profile of infragen's portable services (written by infragen activate):\n# the units carry their own sandboxing.\n[Service]\nMountAPIVFS=yes\n";

/// How components run on a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// `infra-<c>.service` with `RootDirectory=` (the default).
    #[default]
    Unit,
    /// `systemd-nspawn@infra-<c>.service` with a `.nspawn` file.
    Nspawn,
    /// A portable service, attached with `portablectl`.
    Portable,
    /// A Podman Quadlet `.container`.
    Podman,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Runtime {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "unit" => Runtime::Unit,
            "nspawn" => Runtime::Nspawn,
            "portable" => Runtime::Portable,
            "podman" => Runtime::Podman,
            _ => bail!("unknown runtime `{s}` (unit, nspawn, portable, podman)"),
        })
    }
}

/// `systemctl` and friends on the host, or nothing at all with `--root`.
pub struct Host {
    /// Drive the host's systemd.
    pub systemd: bool,
}

impl Host {
    /// Runs a host command (only when driving systemd).
    pub fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        if !self.systemd {
            return Ok(());
        }
        let out = Command::new(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// `systemctl ARGS`.
    pub fn systemctl(&self, args: &[&str]) -> Result<()> {
        self.run("systemctl", args)
    }

    /// Whether a unit is active.
    pub fn is_active(&self, unit: &str) -> bool {
        self.systemd
            && Command::new("systemctl")
                .args(["is-active", "--quiet", unit])
                .status()
                .is_ok_and(|s| s.success())
    }

    /// What systemd knows of `unit`, in one query: `(active, loaded, has a unit file)`. Once its
    /// file is gone and it has stopped, systemd forgets it, and `stop`/`disable` would fail on
    /// what is already done.
    pub fn unit_state(&self, unit: &str) -> (bool, bool, bool) {
        if !self.systemd {
            return (false, false, false);
        }
        let Ok(out) = Command::new("systemctl")
            .args(["show", "-p", "ActiveState,LoadState,FragmentPath", unit])
            .output()
        else {
            return (false, false, false);
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let active = ["active", "activating", "deactivating", "reloading"]
            .contains(&value("ActiveState").as_str());
        let fragment = value("FragmentPath");
        let has_file = !fragment.is_empty() && Path::new(&fragment).exists();
        (active, value("LoadState") == "loaded", has_file)
    }

    /// The first lines of `systemctl status`.
    pub fn status(&self, unit: &str) -> String {
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

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

impl Runtime {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Unit => "unit",
            Runtime::Nspawn => "nspawn",
            Runtime::Portable => "portable",
            Runtime::Podman => "podman",
        }
    }

    /// The systemd unit that runs component `c`.
    pub fn unit(self, c: &str) -> String {
        match self {
            Runtime::Nspawn => format!("systemd-nspawn@infra-{c}.service"),
            _ => format!("infra-{c}.service"),
        }
    }

    /// Whether a component that reloads on a signal can be reloaded under this runtime:
    /// `systemd-nspawn@.service` has no reload, so a configuration change restarts the container.
    pub fn reloads(self) -> bool {
        self != Runtime::Nspawn
    }

    /// Whether the unit is enabled with `systemctl enable` (Quadlet's generated units are
    /// installed by the generator from their `[Install]` section instead).
    fn enables(self) -> bool {
        self != Runtime::Podman
    }

    /// What the host must have for this runtime; checked before anything is touched.
    pub fn check_host(self, host: &Host) -> Result<()> {
        if !host.systemd {
            return Ok(());
        }
        match self {
            Runtime::Nspawn if !on_path("systemd-nspawn") => {
                bail!("the nspawn runtime needs systemd-nspawn (Debian: systemd-container); nothing was changed")
            }
            Runtime::Portable if !on_path("portablectl") => {
                bail!("the portable runtime needs portablectl and systemd-portabled (Debian: systemd-container); nothing was changed")
            }
            Runtime::Podman => {
                if !on_path("podman") {
                    bail!("the podman runtime needs podman (4.4 or newer, with Quadlet); nothing was changed");
                }
                let generators = [
                    "/usr/lib/systemd/system-generators/podman-system-generator",
                    "/lib/systemd/system-generators/podman-system-generator",
                ];
                if !generators.iter().any(|g| Path::new(g).exists()) {
                    bail!("the podman runtime needs Quadlet (podman 4.4 or newer): {} not found; nothing was changed", generators[0]);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Starts (and enables) component `c`'s unit.
    pub fn start(self, host: &Host, c: &str) -> Result<()> {
        let unit = self.unit(c);
        if self.enables() {
            host.systemctl(&["enable", "--now", &unit])
        } else {
            host.systemctl(&["start", &unit])
        }
    }

    /// Restarts (and enables) component `c`'s unit.
    pub fn restart(self, host: &Host, c: &str) -> Result<()> {
        let unit = self.unit(c);
        if self.enables() {
            host.systemctl(&["enable", &unit])?;
        }
        host.systemctl(&["restart", &unit])
    }

    /// Installs component `c` of the current generation so that its unit runs it: links under
    /// `/etc` and `/var/lib/machines`, or an attached portable image. Idempotent.
    pub fn install(self, state: &State, host: &Host, c: &str, root_id: &str) -> Result<()> {
        let current = Path::new(STATE).join("current");
        match self {
            Runtime::Unit => link(
                state,
                &current.join(format!("units/infra-{c}.service")),
                Path::new(&format!("etc/systemd/system/infra-{c}.service")),
            ),
            Runtime::Nspawn => install_nspawn(state, c, root_id, &current),
            Runtime::Podman => link(
                state,
                &current.join(format!("quadlet/infra-{c}.container")),
                Path::new(&format!("etc/containers/systemd/infra-{c}.container")),
            ),
            Runtime::Portable => install_portable(state, host, c, root_id),
        }
    }

    /// Stops, disables and uninstalls component `c`.
    pub fn remove(self, state: &State, host: &Host, c: &str) -> Result<()> {
        let unit = self.unit(c);
        // Idempotent: a re-run after an interruption may find it stopped, disabled or its file
        // gone already; only what systemd still has is stopped and disabled.
        let (active, loaded, has_file) = host.unit_state(&unit);
        if active {
            host.systemctl(&["stop", &unit])?;
        }
        if self.enables() && loaded {
            let disabled = host.systemctl(&["disable", &unit]);
            if disabled.is_err() && has_file {
                return disabled;
            }
        }
        let links: Vec<PathBuf> = match self {
            Runtime::Unit => vec![PathBuf::from(format!("etc/systemd/system/{unit}"))],
            Runtime::Nspawn => vec![
                PathBuf::from(format!("etc/systemd/nspawn/infra-{c}.nspawn")),
                PathBuf::from(format!("var/lib/machines/infra-{c}")),
            ],
            Runtime::Podman => vec![PathBuf::from(format!(
                "etc/containers/systemd/infra-{c}.container"
            ))],
            Runtime::Portable => {
                for image in attached(state, c) {
                    // By path, else by the name it may have been attached under.
                    let by_path = host.run(
                        "portablectl",
                        &["detach", "--no-reload", &image.to_string_lossy()],
                    );
                    if by_path.is_err() {
                        host.run(
                            "portablectl",
                            &["detach", "--no-reload", &format!("infra-{c}")],
                        )
                        .or(by_path)?;
                    }
                }
                vec![PathBuf::from(format!("var/lib/portables/infra-{c}"))]
            }
        };
        let root = Root::open(&state.root, Links::InRoot)?;
        for l in links {
            // Only what activation made there: a link (a file or directory an operator put in
            // its place is not ours to delete).
            if root.meta(&l)?.is_some_and(|m| m.kind == Kind::Symlink) {
                root.remove(&l)?;
            }
        }
        Ok(())
    }
}

/// Points `link` (below the host root) at `target` unless it already does; written through
/// [`Root`], so that no link on the way leads out of the host root.
fn link(state: &State, target: &Path, link: &Path) -> Result<()> {
    let host = Root::open(&state.root, Links::InRoot)?;
    if host.meta(link)?.is_some_and(|m| m.kind == Kind::Symlink) && host.read_link(link)? == target
    {
        return Ok(());
    }
    host.mkdir_all(link.parent().expect("has parent"), 0o755)?;
    host.symlink_atomic(target, link)
}

/// The images portabled has attached for component `c`, as paths: from the `RootDirectory=`
/// (or `RootImage=`) of the drop-in `portablectl attach` writes (persistent or `--runtime`),
/// whatever name the image was attached under; else `/etc/portables/infra-<c>[_*]`.
pub fn attached(state: &State, c: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["etc/systemd/system.attached", "run/systemd/system.attached"] {
        let conf = state
            .root
            .join(dir)
            .join(format!("infra-{c}.service.d/20-portable.conf"));
        if let Ok(text) = fs::read_to_string(&conf) {
            out.extend(text.lines().find_map(|l| {
                l.strip_prefix("RootDirectory=")
                    .or_else(|| l.strip_prefix("RootImage="))
                    .map(|p| PathBuf::from(p.trim()))
            }));
        }
    }
    if out.is_empty() {
        let prefix = format!("infra-{c}_");
        out = fs::read_dir(state.root.join("etc/portables"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) || n == format!("infra-{c}")
            })
            .map(|e| fs::read_link(e.path()).unwrap_or_else(|_| e.path()))
            .collect();
    }
    out.sort();
    out.dedup();
    out
}

/// The names of every image portabled has attached (drop-ins and `/etc/portables`), for gc.
pub fn attached_images(state: &State) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for dir in ["etc/systemd/system.attached", "run/systemd/system.attached"] {
        for e in fs::read_dir(state.root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(c) = name
                .strip_prefix("infra-")
                .and_then(|n| n.strip_suffix(".service.d"))
            {
                out.extend(
                    attached(state, c)
                        .iter()
                        .filter_map(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned()),
                );
            }
        }
    }
    out.extend(
        fs::read_dir(state.root.join("etc/portables"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read_link(e.path()).ok())
            .filter_map(|t| t.file_name().map(|n| n.to_string_lossy().into_owned())),
    );
    out
}

/// The portable image name of component `c` with a root tree and a unit: `infra-<c>_<hash>`
/// (portabled takes what precedes `_` as the prefix the unit names must carry).
/// The unit is hashed parsed, as the plan compares it: a comment-only change keeps the image
/// (the plan does not restart for it either).
pub fn portable_name(c: &str, root_id: &str, unit_text: &[u8]) -> String {
    let parsed = super::plan::parse_unit(&String::from_utf8_lossy(unit_text));
    let mut text = root_id.as_bytes().to_vec();
    text.push(b'\n');
    text.extend_from_slice(&serde_json::to_vec(&parsed).expect("serializable"));
    let hash = crate::digest::sha256_hex(&text);
    format!("infra-{c}_{}", &hash[..16])
}

/// Materialises `portables/infra-<c>_<hash>` unless it exists: the root tree hard-linked (no
/// file is copied) plus the unit in `usr/lib/systemd/system/`, renamed into place complete.
fn portable_image(state: &State, c: &str, root_id: &str, unit_text: &[u8]) -> Result<PathBuf> {
    let dir = state.dir.join("portables");
    let name = portable_name(c, root_id, unit_text);
    let dst = dir.join(&name);
    if dst.is_dir() {
        return Ok(dst);
    }
    // Every link and write relative to the state directory, never through a symlink: the root
    // tree's symlinks are recreated as data.
    let st = Root::open(&state.dir, Links::Refuse)?;
    st.mkdir_all(Path::new("portables"), 0o755)?;
    let tmp = tempfile::Builder::new().prefix(".img-").tempdir_in(&dir)?;
    let tmp_rel = Path::new("portables").join(tmp.path().file_name().expect("named"));
    let from = Path::new("roots").join(root_id);
    let owners = super::euid_is_root();
    for (rel, meta) in st.sub(&from)?.walk()? {
        let to = tmp_rel.join(&rel);
        match meta.kind {
            Kind::Dir => {
                st.mkdir(&to, meta.mode)?;
                if owners {
                    st.chown(&to, meta.uid, meta.gid)?;
                }
            }
            Kind::Symlink => {
                st.symlink(&st.read_link(&from.join(&rel))?, &to)?;
                if owners {
                    st.chown(&to, meta.uid, meta.gid)?;
                }
            }
            Kind::File => st
                .hard_link(&from.join(&rel), &to)
                .with_context(|| format!("linking {} into a portable image", rel.display()))?,
            Kind::Other => bail!(
                "{}: not a file, directory or symlink",
                state.dir.join(&from).join(&rel).display()
            ),
        }
    }
    let units = tmp_rel.join("usr/lib/systemd/system");
    st.mkdir_all(&units, 0o755)?;
    let mut f = st.create(&units.join(format!("infra-{c}.service")), 0o644)?;
    std::io::Write::write_all(&mut f, unit_text)?;
    st.chmod(&tmp_rel, 0o755)?;
    st.sync_fs()?;
    st.rename(&tmp_rel, &Path::new("portables").join(&name))?;
    let _ = tmp.keep();
    sync_path(&dir)?;
    Ok(dst)
}

/// Installs component `c` for systemd-nspawn: its mount points in its (read-only) root tree,
/// its `.nspawn` file and its machine directory.
fn install_nspawn(state: &State, c: &str, root_id: &str, current: &Path) -> Result<()> {
    // The container's root is read-only: its mount points must exist in the tree.
    let text = fs::read_to_string(state.dir.join(format!("current/nspawn/infra-{c}.nspawn")))
        .with_context(|| format!("the .nspawn file of {c}"))?;
    let tree = state.dir.join("roots").join(root_id);
    let mut points = super::stage::mount_points(&text, &state.root);
    points.extend(
        text.lines()
            .find_map(|l| l.trim().strip_prefix("User="))
            .and_then(|u| super::stage::home_of(&tree, u.trim()))
            .map(|target| super::stage::MountPoint {
                target,
                file: false,
            }),
    );
    super::stage::ensure_mount_points(&tree, &points)
        .with_context(|| format!("mount points in the root tree of {c}"))?;
    link(
        state,
        &current.join(format!("nspawn/infra-{c}.nspawn")),
        Path::new(&format!("etc/systemd/nspawn/infra-{c}.nspawn")),
    )?;
    link(
        state,
        &current.join(format!("machines/infra-{c}")),
        Path::new(&format!("var/lib/machines/infra-{c}")),
    )
}

/// Installs component `c` as a portable service: the `infragen` profile, the image, and (with
/// systemd) `portablectl attach` or `reattach` unless the same image is attached.
fn install_portable(state: &State, host: &Host, c: &str, root_id: &str) -> Result<()> {
    let profile = Path::new("etc/systemd/portable/profile/infragen/service.conf");
    let host_root = Root::open(&state.root, Links::InRoot)?;
    let same = host_root
        .meta(profile)?
        .is_some_and(|m| m.kind == Kind::File)
        && host_root.read(profile)? == PORTABLE_PROFILE.as_bytes();
    if !same {
        host_root.mkdir_all(profile.parent().expect("has parent"), 0o755)?;
        host_root.write_atomic(profile, PORTABLE_PROFILE.as_bytes(), 0o644)?;
    }
    let unit_text = fs::read(
        state
            .dir
            .join(format!("current/portable/infra-{c}.service")),
    )
    .with_context(|| format!("the portable unit of {c}"))?;
    let image = portable_image(state, c, root_id, &unit_text)?;
    let name = image
        .file_name()
        .expect("named")
        .to_string_lossy()
        .into_owned();
    let path = Path::new(STATE).join("portables").join(&name);
    if !host.systemd {
        // `--root`: nothing to attach to; leave the image where `portablectl attach
        // infra-<c>` finds it on the booted host.
        return link(
            state,
            &path,
            Path::new(&format!("var/lib/portables/infra-{c}")),
        );
    }
    let attached = attached(state, c);
    if attached
        .iter()
        .any(|p| p.file_name() == Some(name.as_ref()))
    {
        return Ok(());
    }
    let verb = if attached.is_empty() {
        "attach"
    } else {
        "reattach"
    };
    host.run(
        "portablectl",
        &[
            verb,
            "--no-reload",
            "--profile=infragen",
            &path.to_string_lossy(),
        ],
    )
}
