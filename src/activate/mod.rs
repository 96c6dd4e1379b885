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
//! Data directories are created when missing and otherwise never touched. A generation that
//! cannot be staged (a layer refused) leaves the host as it was: what the run added to the state
//! directory is removed.
//!
//! Modules: `stage` (blobs and root trees), `switch` (the switch and its gate), `runtime` (how
//! each runtime installs and drives a component), `plan`, `probe`, `state`, `gc` (status,
//! generations, gc).

mod extract;
mod gc;
mod node;
mod plan;
mod probe;
mod pull;
mod runtime;
mod stage;
mod state;
mod switch;
mod unseal;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use crate::bundle::Opened;
use crate::fsx::{Links, Root};
use crate::manifest::{Digest, Manifest};
use crate::progress::Reporter;
use anyhow::{bail, Context, Result};

pub use gc::{gc, generations, status, Generation, Status, UnitStatus};
pub use node::{BEGIN as BLOCK_BEGIN, END as BLOCK_END};
pub use plan::{Action, Step};
pub use pull::Pulled;
pub use runtime::Runtime;
use state::fail_point;
pub use state::State;
use switch::{runtime_of, switch};

/// Where and how to activate.
#[allow(clippy::struct_excessive_bools)] // each is one command-line switch
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
    /// Accept a bundle without a trusted signature.
    pub allow_unsigned: bool,
    /// This host's name in the inventory (else `<root>/etc/infragen/host`).
    pub host: Option<String>,
}

/// What an activation did.
#[derive(Debug)]
pub struct Outcome {
    /// The generation now current.
    pub generation: String,
    /// The generation current before, if any (the same one when nothing changed).
    pub previous: Option<String>,
    /// The runtime it runs with.
    pub runtime: Runtime,
    /// The runtime before (what `Stop` steps stopped).
    pub from_runtime: Runtime,
    /// The steps, in the order they were taken.
    pub steps: Vec<Step>,
}

/// A staged generation's manifest (verified when it was staged), typed.
fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Manifest::parse(&bytes).with_context(|| format!("{}", path.display()))
}

fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The version order of two manifests: (profile version string, infragen version).
fn is_downgrade(old: &Manifest, new: &Manifest) -> bool {
    use crate::pkg::version::compare;
    use std::cmp::Ordering;
    let v = |s: &str| s.trim_start_matches('v').to_owned();
    match compare(&v(&new.version_string), &v(&old.version_string)) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => compare(&v(&new.infragen), &v(&old.infragen)) == Ordering::Less,
    }
}

/// Activates the bundle at `bundle`: a directory, or a tar archive of one (`.tar`, `.tar.gz`,
/// `.tgz`), unpacked first into a private directory under the safe-extraction rules.
pub fn activate(bundle: &Path, opts: &Options, progress: &Reporter) -> Result<Outcome> {
    with_dir(bundle, progress, |dir| {
        activate_dir(dir, bundle, opts, progress)
    })
}

/// What `activate --remove` took off the host.
#[derive(Debug, Default, serde::Serialize)]
pub struct Removed {
    /// The generation that was current (now the rollback target), if any.
    pub generation: Option<String>,
    /// The components stopped and removed.
    pub components: Vec<String>,
    /// The host files given back as they were before infragen first took them.
    pub files: Vec<String>,
}

/// `activate --remove`: the bundle (a host's last one, checked like any activation: built for
/// this host, signed by a trusted key) authorises taking infragen off the host. Every component
/// of the current generation is stopped and its units removed, its live configuration and
/// credentials deleted, and every host file of the node part given back as it was before
/// infragen first took it; `current` goes (it becomes the rollback target, so `infragen
/// rollback` undoes the removal). Generations and blobs stay until `gc`.
pub fn remove(bundle: &Path, opts: &Options, progress: &Reporter) -> Result<Removed> {
    with_dir(bundle, progress, |dir| {
        progress.phase("verify");
        let opened = Opened::open(dir).map_err(|e| {
            anyhow::anyhow!(
                "bundle {} does not verify; nothing was changed: {e:#}",
                bundle.display()
            )
        })?;
        if !opened.problems.is_empty() {
            bail!(
                "bundle {} does not verify; nothing was changed:\n  {}",
                bundle.display(),
                opened.problems.join("\n  ")
            );
        }
        trust(&opened, bundle, opts, progress)?;
        let existing = State {
            dir: opts.root.join("var/lib/infragen"),
            root: opts.root.clone(),
        };
        if !existing.is_usable() {
            return Ok(Removed::default());
        }
        let current = existing.pointer("current");
        let old = current
            .as_ref()
            .map(|c| read_manifest(&existing.generation(c).join("manifest.json")))
            .transpose()?;
        let removed = Removed {
            generation: current.clone(),
            components: old
                .as_ref()
                .map(|m| m.components.keys().cloned().collect())
                .unwrap_or_default(),
            files: node::owned(&opts.root),
        };
        if opts.dry_run {
            return Ok(removed);
        }
        progress.phase("remove");
        let state = State::open(&opts.root)?;
        let _lock = state.lock()?;
        let host = runtime::Host {
            systemd: opts.systemd,
        };
        if let (Some(c), Some(m)) = (&current, &old) {
            let runtime = runtime_of(&state, c);
            for name in m.components.keys() {
                runtime
                    .remove(&state, &host, name)
                    .with_context(|| format!("removing component {name}"))?;
            }
            let st = Root::open(&state.dir, Links::Refuse)?;
            for dir in ["live", "secrets"] {
                st.remove(Path::new(dir))?;
            }
            let host_root = Root::open(&state.root, Links::InRoot)?;
            host_root.remove(Path::new("etc/sysusers.d/infragen.conf"))?;
            host.systemctl(&["daemon-reload"])?;
        }
        let changed = node::apply(&state, "", None)?;
        for n in node::after(&changed, &host)? {
            progress.warning(n);
        }
        if let Some(c) = &current {
            state.set_pointer("rollback", c)?;
            fs::remove_file(state.dir.join("current"))
                .with_context(|| format!("removing {}", state.dir.join("current").display()))?;
        }
        state::sync_path(&state.dir)?;
        Ok(removed)
    })
}

/// Runs `f` on the bundle directory: `bundle` itself, or an archive of one unpacked into a
/// private directory under the safe-extraction rules.
fn with_dir<T>(
    bundle: &Path,
    progress: &Reporter,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    if bundle.is_file() {
        let dir = tempfile::Builder::new()
            .prefix("infragen-bundle-")
            .tempdir()?;
        let file =
            fs::File::open(bundle).with_context(|| format!("reading {}", bundle.display()))?;
        let root = Root::open(dir.path(), Links::Refuse)?;
        progress.phase("unpack");
        extract::extract(
            std::io::BufReader::new(file),
            &root,
            extract::Kinds::Bundle,
            false,
            extract::LIMITS,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "bundle {} does not verify; nothing was changed: unpacking it: {e:#}",
                bundle.display()
            )
        })?;
        return f(dir.path());
    }
    f(bundle)
}

/// Pulls the bundle `reference` names (`host[:port]/namespace/bundle[:tag]`, the tag defaulting
/// to this host's name) from a registry, checking its signature first (module `pull`), and
/// activates it; with `pull_only`, stops once its blobs are in the host's store. Returns what
/// was pulled, and the outcome unless `pull_only`.
pub fn activate_from(
    reference: &str,
    registry: &crate::registry::Options,
    opts: &Options,
    pull_only: bool,
    progress: &Reporter,
) -> Result<(Pulled, Option<Outcome>)> {
    let Some((host, _)) = identity(opts)? else {
        bail!(
            "this host has no name to pull its bundle by\nhint: write the host's inventory name to /{IDENTITY}, or pass --host NAME"
        )
    };
    let existing = State {
        dir: opts.root.join("var/lib/infragen"),
        root: opts.root.clone(),
    };
    // The private directory lives in the state directory (created if need be), so that what
    // it receives is imported by rename; a dry run writes nothing there.
    let parent = if opts.dry_run {
        std::env::temp_dir()
    } else {
        State::open(&opts.root)?.dir
    };
    let dir = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a private directory in {}", parent.display()))?;
    let store = if existing.is_usable() {
        Root::open(&existing.dir.join("blobs/sha256"), Links::Refuse).ok()
    } else {
        None
    };
    let trusted = if opts.allow_unsigned {
        None
    } else {
        Some(crate::sign::trusted_keys(&opts.root)?)
    };
    let mut check = |client: &mut crate::registry::Client, repo: &str, digest: &Digest| {
        pull_signature(client, repo, digest, trusted.as_deref(), reference)
    };
    let pulled = pull::pull(
        &pull::Source {
            reference,
            registry,
        },
        &host,
        dir.path(),
        store.as_ref(),
        &mut check,
        progress,
    )?;
    progress.note(pulled.summary(reference));
    let shown = Path::new(reference);
    if pull_only {
        prefetch(dir.path(), shown, opts, progress)?;
        return Ok((pulled, None));
    }
    let outcome = activate_dir(dir.path(), shown, opts, progress)?;
    Ok((pulled, Some(outcome)))
}

/// Checks the artifact's sigstore signature (`sha256-<hex>.sig` in its repository) against
/// the trusted keys; `trusted` is `None` when unsigned bundles are allowed.
fn pull_signature(
    client: &mut crate::registry::Client,
    repo: &str,
    digest: &Digest,
    trusted: Option<&[crate::sign::PublicKey]>,
    reference: &str,
) -> Result<()> {
    let Some(trusted) = trusted else {
        return Ok(());
    };
    let refuse = |why: String, hint: &str| {
        anyhow::anyhow!("bundle {reference} is refused; nothing was changed: {why}\nhint: {hint}")
    };
    if trusted.is_empty() {
        return Err(refuse(
            "this host trusts no keys".to_owned(),
            "copy the build's infragen.pub to /etc/infragen/trusted/, or pass --allow-unsigned",
        ));
    }
    let tag = crate::sign::attach::tag(digest);
    if client.manifest_digest(repo, &tag)?.is_none() {
        return Err(refuse(
            format!("it is not signed: the registry has no `{repo}:{tag}`"),
            "push it with --sign-key FILE, or pass --allow-unsigned",
        ));
    }
    let (_, attachment, _) =
        client.get_manifest(repo, &tag, &[crate::sign::attach::MANIFEST_MEDIA_TYPE])?;
    // The sizes the attachment gives its layers (each bounded) say how much to read of each.
    let sizes: BTreeMap<String, u64> = serde_json::from_slice::<serde_json::Value>(&attachment)
        .ok()
        .and_then(|v| v["layers"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| Some((l["digest"].as_str()?.to_owned(), l["size"].as_u64()?)))
        .collect();
    let client = std::cell::RefCell::new(client);
    let fetch = |d: &Digest| -> Result<Vec<u8>> {
        let size = *sizes
            .get(d.as_str())
            .filter(|s| **s <= crate::sign::attach::MAX_PAYLOAD)
            .with_context(|| {
                format!("signature payload {d}: no size, or more than the payload limit")
            })?;
        let mut bytes = Vec::new();
        client.borrow_mut().get_blob_to(repo, d, size, &mut bytes)?;
        Ok(bytes)
    };
    crate::sign::attach::verify_attachment(
        &attachment,
        fetch,
        digest,
        &crate::sign::attach::Identity::Any,
        trusted,
    )
    .map(|_| ())
    .map_err(|e| {
        refuse(
            format!("{e:#}"),
            "push it with --sign-key FILE, a key this host trusts",
        )
    })
}

/// `--pull-only`: verifies a pulled bundle like an activation would and moves its blobs into
/// the host's store; nothing else changes.
fn prefetch(bundle: &Path, shown: &Path, opts: &Options, progress: &Reporter) -> Result<()> {
    progress.phase("verify");
    let opened = Opened::open(bundle)?;
    if !opened.problems.is_empty() {
        bail!(
            "bundle {} does not verify:\n  {}",
            shown.display(),
            opened.problems.join("\n  ")
        );
    }
    trust(&opened, shown, opts, progress)?;
    let state = State::open(&opts.root)?;
    let _lock = state.lock()?;
    let incoming = tempfile::Builder::new()
        .prefix(".incoming-")
        .tempdir_in(&state.dir)?;
    let root = Root::open(incoming.path(), Links::Refuse)?;
    let store = state.dir.join("blobs/sha256");
    let checked = opened.check_files(Some(&root), &|d| store.join(d.hex()).is_file())?;
    if !checked.problems.is_empty() {
        bail!(
            "bundle {} does not verify:\n  {}",
            shown.display(),
            checked.problems.join("\n  ")
        );
    }
    stage::import_blobs(&state, incoming.path(), &checked.blobs)
}

/// Extracts `bytes` (a tar stream, gzip'd or not) into the existing directory `dir` under the
/// safe-extraction rules and limits activation uses: as a layer (`layer`; owners applied when
/// root, as for root trees) or as a bundle archive. For the fuzzer (tests/fuzz.rs), not an API.
#[doc(hidden)]
pub fn extract_for_fuzz(bytes: &[u8], dir: &Path, layer: bool) -> Result<()> {
    let root = Root::open(dir, Links::Refuse)?;
    let kinds = if layer {
        extract::Kinds::Layer
    } else {
        extract::Kinds::Bundle
    };
    extract::extract(
        bytes,
        &root,
        kinds,
        layer && euid_is_root(),
        extract::LIMITS,
    )
    .map(|_| ())
}

/// Who this host is: `--host`, else `<root>/etc/infragen/host`.
fn identity(opts: &Options) -> Result<Option<(String, String)>> {
    if let Some(h) = &opts.host {
        return Ok(Some((h.clone(), "--host".to_owned())));
    }
    if !opts.root.is_dir() {
        return Ok(None);
    }
    let r = Root::open(&opts.root, Links::InRoot)?;
    let rel = Path::new(IDENTITY);
    if r.meta(rel)?.is_none() {
        return Ok(None);
    }
    let text = String::from_utf8(r.read(rel)?).unwrap_or_default();
    Ok(Some((
        text.trim().to_owned(),
        opts.root.join(IDENTITY).display().to_string(),
    )))
}

/// Where a host names itself (below its root).
pub const IDENTITY: &str = "etc/infragen/host";

/// The trust checks, before any other byte of the bundle is read: built for this host, signed
/// by a key this host trusts (unless told otherwise).
fn trust(opened: &Opened, shown: &Path, opts: &Options, progress: &Reporter) -> Result<()> {
    let m = &opened.manifest;
    let refuse = |why: String, hint: &str| {
        anyhow::anyhow!(
            "bundle {} is refused; nothing was changed: {why}\nhint: {hint}",
            shown.display()
        )
    };
    match identity(opts)? {
        Some((me, _)) if me == m.host => {}
        Some((me, from)) => {
            return Err(refuse(
                format!("it was built for host `{}`, and this host is `{me}` (from {from})", m.host),
                "activate the bundle built for this host, or pass --host NAME if this host's name is wrong",
            ))
        }
        None => {
            return Err(refuse(
                format!("this host has no name to check the bundle's host `{}` against", m.host),
                &format!("write the host's inventory name to /{IDENTITY}, or pass --host NAME"),
            ))
        }
    }
    if opts.allow_unsigned {
        if opened.signature.is_none() {
            progress.warning("the bundle is not signed (--allow-unsigned)");
        }
        return Ok(());
    }
    let Some(sig) = &opened.signature else {
        return Err(refuse(
            "it is not signed".to_owned(),
            "build it with --sign-key FILE, or pass --allow-unsigned",
        ));
    };
    let trusted = crate::sign::trusted_keys(&opts.root)?;
    if trusted.is_empty() {
        return Err(refuse(
            format!(
                "no trusted keys in {}",
                opts.root.join(crate::sign::TRUSTED).display()
            ),
            "copy the build's infragen.pub there, or pass --allow-unsigned",
        ));
    }
    crate::sign::verify(&opened.bytes, sig, &m.host, &trusted).map_err(|e| {
        refuse(
            format!("{e:#}"),
            "activate a bundle signed by a trusted key",
        )
    })?;
    Ok(())
}

fn activate_dir(
    bundle: &Path,
    shown: &Path,
    opts: &Options,
    progress: &Reporter,
) -> Result<Outcome> {
    progress.phase("verify");
    let existing = State {
        dir: opts.root.join("var/lib/infragen"),
        root: opts.root.clone(),
    };
    let read = read_verified(bundle, shown, opts, &existing, progress)?;
    let new_m = &read.opened.manifest;
    let id = new_m.id().to_owned();
    // The lock comes before reading `current`, so that the downgrade check and the plan are made
    // against what stays current (a dry run writes nothing, not even the lock).
    let locked = if opts.dry_run {
        None
    } else {
        let created = stage::missing_from(&opts.root, &existing.dir);
        let state = State::open(&opts.root)?;
        let lock = state.lock()?;
        let before = stage::Before::take(&state, created)?;
        Some((state, lock, before))
    };
    let current = if existing.is_usable() {
        existing.pointer("current")
    } else {
        None
    };
    let old = current
        .as_ref()
        .map(|c| read_manifest(&existing.generation(c).join("manifest.json")))
        .transpose()?;
    if let Some(o) = &old {
        if !opts.allow_downgrade
            && current.as_deref() != Some(id.as_str())
            && is_downgrade(o, new_m)
        {
            bail!("bundle {} is older than the current generation ({} {} → {} {}); nothing was changed\nhint: pass --allow-downgrade, or use `infragen rollback`", shown.display(), o.version_string, o.infragen, new_m.version_string, new_m.infragen);
        }
    }
    let Some((state, _lock, before)) = locked else {
        return Ok(dry_run(&existing, current, old.as_ref(), &read, opts));
    };
    progress.phase("stage");
    let incoming = read.incoming.expect("made unless a dry run");
    let imported = stage::import_blobs(&state, incoming.path(), &read.checked.blobs);
    drop(incoming);
    let staged = imported.and_then(|()| {
        fail_point("stage-blobs");
        stage_generation(&state, &read.opened, &read.checked.files)
    });
    // A generation that cannot be staged (a layer refused, a full disk) leaves nothing behind.
    if let Err(e) = staged {
        return Err(match before.undo(&state) {
            Ok(()) => e.context(format!(
                "bundle {} cannot be staged; nothing was changed",
                shown.display()
            )),
            Err(u) => e.context(format!("removing what was staged failed too: {u:#}")),
        });
    }
    switch(&state, &id, opts.runtime, opts, true, progress)
}

/// A bundle read once and verified: its manifest, every file through its digest check, and
/// the private directory holding its blobs (none for a dry run).
struct Read {
    opened: Opened,
    checked: crate::bundle::Checked,
    incoming: Option<tempfile::TempDir>,
}

/// Reads and verifies the bundle: the manifest, the host and the signature before anything
/// else; then every file, read once through its digest check: blobs into a private directory
/// (inside the state directory when there is one, so that importing them is a rename),
/// everything else into memory; then sealed secrets are opened, in memory. Nothing is read from
/// the bundle after this, and nothing on the host has changed.
fn read_verified(
    bundle: &Path,
    shown: &Path,
    opts: &Options,
    existing: &State,
    progress: &Reporter,
) -> Result<Read> {
    let unverified = |e: String| {
        anyhow::anyhow!(
            "bundle {} does not verify; nothing was changed:\n  {e}",
            shown.display()
        )
    };
    let opened = Opened::open(bundle).map_err(|e| unverified(format!("{e:#}")))?;
    if !opened.problems.is_empty() {
        return Err(unverified(opened.problems.join("\n  ")));
    }
    trust(&opened, shown, opts, progress)?;
    if !opened.manifest.incomplete.is_empty() {
        progress.warning(format!(
            "the bundle is incomplete; missing images are not activated: {}",
            opened.manifest.incomplete.join(", ")
        ));
    }
    opts.runtime.check_host(&runtime::Host {
        systemd: opts.systemd,
    })?;
    let incoming = if opts.dry_run {
        None
    } else {
        let parent = if existing.is_usable() {
            existing.dir.clone()
        } else {
            std::env::temp_dir()
        };
        Some(
            tempfile::Builder::new()
                .prefix(".incoming-")
                .tempdir_in(&parent)
                .with_context(|| format!("creating a private directory in {}", parent.display()))?,
        )
    };
    let incoming_root = incoming
        .as_ref()
        .map(|d| Root::open(d.path(), Links::Refuse))
        .transpose()?;
    // Blobs the store holds already (verified when they entered it) are hashed, not copied.
    let store = existing.dir.join("blobs/sha256");
    let mut checked =
        opened.check_files(incoming_root.as_ref(), &|d| store.join(d.hex()).is_file())?;
    if !checked.problems.is_empty() {
        return Err(unverified(checked.problems.join("\n  ")));
    }
    // Sealed secrets are opened now: a host that cannot is refused untouched.
    unseal::unseal(&opened.manifest, &mut checked.files, &opts.root).map_err(|e| {
        anyhow::anyhow!(
            "bundle {} is refused; nothing was changed: {e:#}",
            shown.display()
        )
    })?;
    Ok(Read {
        opened,
        checked,
        incoming,
    })
}

/// `--dry-run`: the plan against the current generation, nothing written.
fn dry_run(
    existing: &State,
    current: Option<String>,
    old: Option<&Manifest>,
    read: &Read,
    opts: &Options,
) -> Outcome {
    let new_m = &read.opened.manifest;
    let from_runtime = current
        .as_deref()
        .map_or(opts.runtime, |c| runtime_of(existing, c));
    let dir = current.as_deref().map(|c| existing.generation(c));
    let steps = switch::plan_steps(
        dir.as_deref().zip(old),
        from_runtime,
        &|c| {
            let rel = new_m.components.get(c)?.runtimes.get(opts.runtime.name())?;
            String::from_utf8(read.checked.files.get(rel)?.clone()).ok()
        },
        new_m,
        opts.runtime,
    );
    Outcome {
        generation: new_m.id().to_owned(),
        previous: current,
        runtime: opts.runtime,
        from_runtime,
        steps,
    }
}

/// Switches back to the rollback generation.
pub fn rollback(opts: &Options, progress: &Reporter) -> Result<Outcome> {
    progress.phase("rollback");
    let state = State::open(&opts.root)?;
    let _lock = state.lock()?;
    let Some(target) = state.pointer("rollback") else {
        bail!("rollback: no previous generation to return to");
    };
    let runtime = runtime_of(&state, &target);
    switch(&state, &target, runtime, opts, true, progress)
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

/// Builds `generations/<id>` from what verification read unless it exists: root trees and
/// configuration from the blob store, every other file from memory with the manifest's mode
/// and owner — complete and synced before the rename that makes it visible. Every write goes
/// through [`Root`], refusing symlinks on the way.
fn stage_generation(
    state: &State,
    opened: &Opened,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let m = &opened.manifest;
    let id = m.id();
    let dst = state.generation(id);
    if dst.join("manifest.json").is_file() {
        return Ok(());
    }
    let owners = euid_is_root();
    let tmp = tempfile::Builder::new()
        .prefix(".gen-")
        .tempdir_in(state.dir.join("generations"))?;
    let gen = Root::open(tmp.path(), Links::Refuse)?;
    for (name, c) in &m.components {
        stage_component(state, &gen, name, c, owners)?;
    }
    stage_files(&gen, m, files, owners)?;
    link_runtimes(&gen, m)?;
    gen.write_atomic(Path::new("manifest.json"), &opened.bytes, 0o644)?;
    if let Some(sig) = &opened.signature {
        gen.write_atomic(Path::new(crate::manifest::SIGNATURE), sig, 0o644)?;
    }
    gen.sync_fs()?;
    fail_point("stage-before-rename");
    fs::rename(tmp.path(), &dst).with_context(|| format!("renaming into {}", dst.display()))?;
    let _ = tmp.keep();
    state::sync_path(&state.dir.join("generations"))?;
    fail_point("stage-after-rename");
    Ok(())
}

/// Stages one component: its shared root tree (checked against its layers' `diff_id`s) and its
/// configuration layer, extracted on its own into `config/<name>` of the generation.
fn stage_component(
    state: &State,
    gen: &Root,
    name: &str,
    c: &crate::manifest::ComponentEntry,
    owners: bool,
) -> Result<()> {
    let ids = stage::diff_ids(state, &c.image)?;
    let diff_of = |d: &Digest| ids.iter().find(|(l, _)| l == d).map(|(_, i)| i.clone());
    let root_layers: Vec<(Digest, Option<Digest>)> = c
        .root_layers
        .iter()
        .map(|d| (d.clone(), diff_of(d)))
        .collect();
    // Root trees are shared by id: an id that is not what its layers make would reuse
    // another tree, or store this one under a name that means other content.
    let mut diff_ids = Vec::new();
    for (layer, diff) in &root_layers {
        let diff = diff.as_ref().with_context(|| {
            format!("component `{name}`: root layer {layer} is not a layer of its image")
        })?;
        diff_ids.push(diff.as_str());
    }
    let root_id = crate::digest::sha256_hex(diff_ids.join("\n").as_bytes());
    if root_id != c.root {
        bail!(
            "component `{name}`: root id {} is not the digest of its layers' diff_ids ({root_id})",
            c.root
        );
    }
    stage::root_tree(state, &c.root, &root_layers, owners)
        .with_context(|| format!("root tree of {name}"))?;
    fail_point("stage-root");
    // The configuration layer, extracted on its own: it becomes the live configuration.
    let config_dir = Path::new("config").join(name);
    gen.mkdir_all(&config_dir, 0o755)?;
    let diff = diff_of(&c.config_layer);
    if diff.as_ref() != Some(&c.config) {
        bail!("component `{name}`: the manifest's config diff_id is not the image's");
    }
    stage::extract_blob(
        state,
        &c.config_layer,
        diff.as_ref(),
        &gen.sub(&config_dir)?,
        owners,
    )
    .with_context(|| format!("configuration of {name}"))?;
    Ok(())
}

/// Writes every other file, as verified, with the manifest's mode and owner. Secrets live in
/// 0700 directories owned by their component's user.
fn stage_files(
    gen: &Root,
    m: &Manifest,
    files: &BTreeMap<String, Vec<u8>>,
    owners: bool,
) -> Result<()> {
    for (rel, bytes) in files {
        let path = Path::new(rel);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let private = rel.starts_with("secrets/");
            gen.mkdir_all(parent, if private { 0o700 } else { 0o755 })?;
        }
        // A sealed secret keeps its `.age` entry's mode and owner under its clear name.
        let f = m
            .files
            .get(rel)
            .or_else(|| m.files.get(&format!("{rel}{}", crate::secrets::SUFFIX)))
            .with_context(|| format!("{rel}: not in the manifest"))?;
        let mut out = gen.create(path, f.mode)?;
        std::io::Write::write_all(&mut out, bytes)?;
        if owners {
            gen.chown(path, f.uid, f.gid)?;
        }
    }
    if owners {
        for (name, c) in &m.components {
            let dir = Path::new("secrets").join(name);
            if gen.meta(&dir)?.is_some() {
                gen.chmod(&dir, 0o700)?;
                gen.chown(&dir, c.user.uid, c.user.gid)?;
            }
        }
    }
    Ok(())
}

/// What the nspawn and podman runtimes find through `current`: each component's machine
/// directory (a link to its root tree) and an OCI layout of the images over the blob store.
fn link_runtimes(gen: &Root, m: &Manifest) -> Result<()> {
    gen.mkdir(Path::new("machines"), 0o755)?;
    for (name, c) in &m.components {
        gen.symlink(
            &Path::new("../../../roots").join(&c.root),
            &Path::new("machines").join(format!("infra-{name}")),
        )?;
    }
    gen.mkdir_all(Path::new("oci"), 0o755)?;
    gen.symlink(Path::new("../../../blobs"), Path::new("oci/blobs"))?;
    Ok(())
}
