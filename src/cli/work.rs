//! The build side of the command line: check, render, build, lock, repo sync, params.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{BaseArgs, ProfileArgs, StoreArgs, Ui};
use crate::plan::{self, Plan};
use crate::plural::count;
use crate::problem::Problems;
use crate::profile::{self, LoadError};
use crate::{params, render, validate};

/// Loads and resolves a profile, printing warnings; on failure prints the error and returns 2.
pub(super) fn load_plan(p: &ProfileArgs, ui: &Ui) -> Result<Plan, i32> {
    let inventory = profile::load(&p.profile, &p.address_map).map_err(|e: LoadError| {
        ui.error(&e);
        2
    })?;
    let mut plan = plan::resolve(&inventory).map_err(|e: Problems| {
        ui.error(&e);
        2
    })?;
    super::content::import(&mut plan, ui)?;
    for w in &plan.warnings {
        match w.position(&inventory.positions) {
            Some(at) => ui.warn(format!("{}:{at}: {w}", plan.source)),
            None => ui.warn(format!("{}: {w}", plan.source)),
        }
    }
    Ok(plan)
}

/// Refuses an output directory infragen may not replace, before any work is done.
fn check_out(out: &Path, ui: &Ui) -> Result<(), i32> {
    crate::tree::check_out(out).map_err(|e| {
        ui.error(&e);
        out_code(&e)
    })
}

/// 2 for an output directory that is someone else's (invalid input), 1 if it could not be read.
fn out_code(e: &crate::tree::OutError) -> i32 {
    match e {
        crate::tree::OutError::Io(..) => 1,
        _ => 2,
    }
}

/// The exit code of a failed render or build: 2 when the output directory was refused (it
/// changed after [`check_out`]), 1 otherwise.
fn failure_code(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<crate::tree::OutError>()
        .map_or(1, out_code)
}

/// One infra host of `check --json`.
#[derive(Serialize)]
struct CheckedHost {
    host: String,
    seq: u32,
    admin: bool,
    components: Vec<&'static str>,
    disabled: BTreeMap<String, String>,
}

pub(super) fn check(p: &ProfileArgs, ui: &Ui) -> i32 {
    let plan = match load_plan(p, ui) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    ui.say(format!(
        "{}: {} of {} in the inventory",
        plan.source,
        count(plan.hosts.len(), "infra host"),
        plan.inventory_hosts
    ));
    let mut hosts = Vec::new();
    for h in &plan.hosts {
        let on: Vec<&'static str> = h.enabled().iter().map(|c| c.name()).collect();
        ui.say(format!(
            "  {} infra-{}{}: {}",
            h.ip,
            h.seq,
            if h.is_admin { " (admin)" } else { "" },
            on.join(" ")
        ));
        for (c, why) in &h.disabled {
            ui.say(format!("    {c} disabled by {why}"));
        }
        hosts.push(CheckedHost {
            host: h.ip.to_string(),
            seq: h.seq,
            admin: h.is_admin,
            components: on,
            disabled: h
                .disabled
                .iter()
                .map(|(c, why)| (c.to_string(), why.clone()))
                .collect(),
        });
    }
    // The other nodes get a bundle of their node part alone: counted, not listed (an inventory
    // may have thousands); `--json` lists their addresses.
    let nodes: Vec<String> = plan.regular_nodes().map(|n| n.ip.to_string()).collect();
    if !nodes.is_empty() {
        ui.say(format!(
            "  {}: node part only (hosts, resolver, chrony, APT source, CA)",
            count(nodes.len(), "other node")
        ));
    }
    ui.set("source", &plan.source);
    ui.set("inventory_hosts", plan.inventory_hosts);
    ui.set("hosts", hosts);
    ui.set("nodes", nodes);
    0
}

pub(super) fn render(
    p: &ProfileArgs,
    out: &Path,
    run_validators: bool,
    strict: bool,
    ui: &Ui,
) -> i32 {
    if let Err(code) = check_out(out, ui) {
        return code;
    }
    render::prepare();
    let plan = match load_plan(p, ui) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let tree = match render::plan(&plan) {
        Ok(t) => t,
        Err(e) => {
            ui.error(format!("{e:#}"));
            return 1;
        }
    };
    if run_validators {
        match validate::tree(&plan, &tree) {
            Ok(report) => {
                validated(&report, ui);
                if !report.ok(strict) {
                    ui.error(format!(
                        "validation failed; nothing was written to {}",
                        out.display()
                    ));
                    return 1;
                }
            }
            Err(e) => {
                ui.error(format!("validation could not run: {e:#}"));
                return 1;
            }
        }
    }
    if let Err(e) = super::content::checked(&plan, &tree, (run_validators, strict), out, ui) {
        ui.error(format!("{e:#}"));
        return 1;
    }
    if let Err(e) = tree.write_atomic(out) {
        ui.error(format!("{e:#}"));
        return failure_code(&e);
    }
    ui.say(format!(
        "rendered {} for {} and {} into {}",
        count(tree.len(), "file"),
        count(plan.hosts.len(), "infra host"),
        count(plan.regular_nodes().count(), "other node"),
        out.display()
    ));
    0
}

/// Shows what the checkers said: their report, then their warnings.
fn validated(report: &validate::Report, ui: &Ui) {
    let text = report.text();
    if !text.is_empty() {
        ui.say(text.trim_end_matches('\n'));
    }
    for w in report.warnings() {
        ui.warn(w.clone());
    }
}

/// What `infragen build` was asked.
pub(super) struct BuildArgs<'a> {
    pub profile: &'a ProfileArgs,
    pub store: &'a StoreArgs,
    pub base: &'a BaseArgs,
    pub out: &'a Path,
    pub validate: bool,
    pub strict: bool,
    pub sign_key: Option<(&'a Path, Option<&'a Path>)>,
    pub layer: &'a super::LayerArgs,
}

pub(super) fn build(a: &BuildArgs, ui: &Ui) -> i32 {
    if let Err(code) = check_out(a.out, ui) {
        return code;
    }
    render::prepare();
    let plan = match load_plan(a.profile, ui) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let base_registry = match a.base.registry(ui) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Hosts whose secrets stay in clear: said once the build succeeded, not before an error.
    let mut in_clear = Vec::new();
    let mut certificates = Vec::new();
    let result = build_images(
        a,
        &plan,
        base_registry.as_ref(),
        (&mut in_clear, &mut certificates),
        ui,
    );
    if result.is_ok() && !in_clear.is_empty() {
        ui.warn(format!(
            "secrets in clear for {} without `infragen_host_key`: {}",
            count(in_clear.len(), "host"),
            in_clear.join(", ")
        ));
    }
    match result {
        Ok(report) => {
            certified(&certificates, ui);
            built(a, &plan, &report, base_registry.as_ref(), ui)
        }
        Err(e) => {
            ui.error(format!("{e:#}"));
            failure_code(&e)
        }
    }
}

/// Says the certificates a build ships, one line each with its end date, and sets them as the
/// result's `certificates`.
fn certified(certificates: &[crate::pki::Shipped], ui: &Ui) {
    for c in certificates {
        ui.say(format!(
            "certificate {:<16} expires {} ({}{})",
            c.name,
            c.not_after,
            c.action.word(),
            c.why
                .as_deref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        ));
    }
    ui.set("certificates", certificates);
}

/// Renders, adds the PKI material, validates when asked, seals secrets, then builds. Fills
/// `side` with the hosts whose secrets stay in clear and the certificates shipped.
fn build_images(
    a: &BuildArgs,
    plan: &Plan,
    base_registry: Option<&crate::bases::BaseRegistry>,
    side: (&mut Vec<String>, &mut Vec<crate::pki::Shipped>),
    ui: &Ui,
) -> anyhow::Result<crate::build::Report> {
    let (in_clear, certificates) = side;
    let progress = &ui.progress;
    progress.phase("render");
    let mut tree = render::plan(plan)?;
    let mut sealing = None;
    if let Some(first) = plan.hosts.first() {
        progress.phase("pki");
        let pki = crate::pki::Pki::open(
            &a.store.pki(plan, a.out),
            &first.pki.ca_cn,
            first.pki.ca_create,
        )?;
        let material = crate::pki::add_material(plan, &pki, &mut tree)?;
        // Every node trusts the CA (its node part's `infragen-ca.crt`).
        render::node::add_ca(plan, pki.ca(), &mut tree);
        for w in material.warnings {
            ui.warn(w);
        }
        *certificates = material.certificates;
        sealing = Some(pki.sealing_key());
    }
    if a.validate {
        progress.phase("validate");
        let report = validate::tree(plan, &tree)?;
        validated(&report, ui);
        if !report.ok(a.strict) {
            anyhow::bail!(
                "validation failed; nothing was written to {}",
                a.out.display()
            );
        }
    }
    super::content::checked(plan, &tree, (a.validate, a.strict), a.out, ui)?;
    // Secrets are encrypted after the validators ran on them in clear, before any is
    // written: the bundle holds only ciphertext for hosts with a key.
    if let Some(key) = &sealing {
        progress.phase("seal");
        let (sealed, clear) = crate::secrets::seal(plan, tree, key)?;
        tree = sealed;
        *in_clear = clear;
    }
    let opts = crate::build::Options {
        out: a.out.to_path_buf(),
        cache: a.store.cache(),
        lock: a.store.lock.clone(),
        repos: a.store.repos.clone(),
        bases: a.store.bases.clone(),
        base_registry: base_registry.cloned(),
        sign_key: a.sign_key.map(|(k, _)| k.to_path_buf()),
        sign_passphrase: match a.sign_key.and_then(|(_, p)| p) {
            Some(p) => Some(crate::sign::sealed::read_passphrase_file(p)?),
            None => None,
        },
        layers: crate::build::LayerOptions {
            jobs: a.layer.jobs,
            compression: a.layer.compression.into(),
        },
    };
    crate::build::build(plan, &tree, &opts, progress)
}

/// One image of `build --json`'s result.
#[derive(Serialize)]
struct BuiltImage<'a> {
    host: &'a str,
    component: &'a str,
    digest: &'a str,
    layers: usize,
    bytes: u64,
}

/// Prints (or sets as the result) what a build made; 1 when `--strict` and incomplete.
fn built(
    a: &BuildArgs,
    plan: &Plan,
    report: &crate::build::Report,
    base_registry: Option<&crate::bases::BaseRegistry>,
    ui: &Ui,
) -> i32 {
    let mut images = Vec::new();
    for (host, built) in &report.hosts {
        for (c, b) in built {
            ui.say(format!(
                "{host} infra-{c:<13} {} ({}, {} compressed)",
                b.digest,
                count(b.layers.len(), "layer"),
                crate::plural::bytes(b.compressed())
            ));
            images.push(BuiltImage {
                host,
                component: c,
                digest: &b.digest,
                layers: b.layers.len(),
                bytes: b.compressed(),
            });
        }
    }
    if report.base_blobs_fetched > 0 {
        if let Some(r) = base_registry {
            ui.say(format!(
                "fetched {} from `{}`",
                count(report.base_blobs_fetched, "base image blob"),
                r.base
            ));
        }
    }
    let mut incomplete = false;
    for (host, missing) in &report.incomplete {
        for (c, why) in missing {
            ui.warn(format!("{host}: infra-{c} not built: {why}"));
            incomplete = true;
        }
    }
    ui.say(format!(
        "built {} for {} and the bundles of {} into {} ({} built, the rest from the cache){}",
        count(images.len(), "image"),
        count(plan.hosts.len(), "infra host"),
        count(plan.nodes.len(), "node"),
        a.out.display(),
        count(report.layers_built, "layer"),
        if incomplete {
            "; INCOMPLETE, see warnings"
        } else {
            ""
        }
    ));
    ui.set("out", a.out.display().to_string());
    ui.set("images", images);
    ui.set("generations", &report.generations);
    ui.set("incomplete", &report.incomplete);
    ui.set("layers_built", report.layers_built);
    ui.set("compression", report.compression);
    ui.set("base_blobs_fetched", report.base_blobs_fetched);
    if incomplete && a.strict {
        ui.error("some images could not be built (--strict)");
        return 1;
    }
    0
}

/// What `infragen lock` was asked.
pub(super) struct LockArgs<'a> {
    pub store: &'a StoreArgs,
    pub base: &'a BaseArgs,
    pub only_bases: bool,
    pub profile: Option<&'a str>,
    pub allow_unsigned: bool,
    pub apt_dir: &'a Path,
    pub drop_source: &'a [String],
    pub apt_snapshot_at: Option<&'a str>,
}

pub(super) fn lock(a: &LockArgs, ui: &Ui) -> i32 {
    let registry = match a.base.registry(ui) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let clock = match apt_clock(a, ui) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The profile only says which upstream images to pin: an invalid one is invalid input.
    let chosen = match a.profile {
        Some(p) => match load_plan(
            &ProfileArgs {
                profile: p.to_owned(),
                address_map: Vec::new(),
            },
            ui,
        ) {
            Ok(plan) => Some((
                plan.upstream.clone(),
                plan.proxy_env.clone(),
                plugin_dir(&plan),
            )),
            Err(code) => return code,
        },
        None => None,
    };
    let proxies = crate::net::Proxies::from_env().with_profile(
        &chosen
            .as_ref()
            .map(|(_, p, _)| p.clone())
            .unwrap_or_default(),
    );
    match resolve_lock(
        a,
        chosen.as_ref().map(|(u, _, _)| u),
        match &chosen {
            None => crate::lock::PluginPins::Keep,
            Some((_, _, None)) => crate::lock::PluginPins::Nothing,
            Some((_, _, Some(d))) => crate::lock::PluginPins::Dir(d),
        },
        proxies,
        clock,
        registry.as_ref(),
    ) {
        Ok((lock, problems)) => {
            locked(&lock, ui);
            for p in &problems {
                ui.warn(p.clone());
            }
            for d in a.drop_source {
                ui.warn(format!(
                    "APT source `{d}` dropped (--drop-source): its packages were not considered"
                ));
            }
            ui.say(format!("wrote {}", a.store.lock.display()));
            ui.set("lock", a.store.lock.display().to_string());
            ui.set("source_date_epoch", lock.source_date_epoch);
            ui.set(
                "apt_snapshot_at",
                clock
                    .filter(|c| c.snapshot)
                    .map(|c| crate::pkg::apt::validity::rfc3339(c.at)),
            );
            ui.set("dropped_sources", a.drop_source);
            0
        }
        Err(e) => {
            ui.error(format!("{e:#}"));
            1
        }
    }
}

/// The time APT Release files are checked against (`None` with `--only-bases`, which reads no
/// source): the clock, or `--apt-snapshot-at`, announced as an override. Exit code 2 for a time that does not parse, or options `--only-bases` ignores.
fn apt_clock(a: &LockArgs, ui: &Ui) -> Result<Option<crate::pkg::apt::validity::Clock>, i32> {
    use crate::pkg::apt::validity::{rfc3339, Clock, SKEW};
    if a.only_bases {
        if a.apt_snapshot_at.is_some() || !a.drop_source.is_empty() {
            ui.error("--apt-snapshot-at and --drop-source choose how APT sources are read; --only-bases reads none");
            return Err(2);
        }
        return Ok(None);
    }
    let Some(text) = a.apt_snapshot_at else {
        return Ok(Some(Clock::now()));
    };
    match Clock::snapshot(text) {
        Ok(clock) => {
            ui.warn(format!(
                "APT Release files are checked against {} (--apt-snapshot-at), not this machine's clock: an expired or future-dated Release valid at that time (± {} minutes) is accepted",
                rfc3339(clock.at),
                SKEW / 60
            ));
            Ok(Some(clock))
        }
        Err(e) => {
            ui.error(format!("--apt-snapshot-at: {e}"));
            Err(2)
        }
    }
}

/// Resolves (or, with `--only-bases`, re-pins) the lock, pins the base images, and saves it.
fn resolve_lock(
    a: &LockArgs,
    chosen: Option<&BTreeMap<crate::plan::Component, crate::upstream::Upstream>>,
    plugins: crate::lock::PluginPins<'_>,
    proxies: crate::net::Proxies,
    clock: Option<crate::pkg::apt::validity::Clock>,
    registry: Option<&crate::bases::BaseRegistry>,
) -> anyhow::Result<(crate::lock::Lock, Vec<String>)> {
    let s = a.store;
    let recipes = crate::image::recipes()?;
    let upstream = chosen.map(|c| crate::upstream::lock_recipes(&recipes, c));
    let (mut lock, previous) = if a.only_bases {
        let previous = crate::lock::Lock::load(&s.lock)?;
        let lock = crate::lock::rebase(&recipes, &previous, s.bases.as_deref())?;
        (lock, Some(previous))
    } else {
        let checks = crate::pkg::fetch::Checks {
            trust: if a.allow_unsigned {
                crate::pkg::fetch::Trust::AllowUnsigned
            } else {
                crate::pkg::fetch::Trust::Signed
            },
            clock: clock.unwrap_or_else(crate::pkg::apt::validity::Clock::now),
        };
        let previous = crate::lock::Lock::load(&s.lock).ok();
        let lock = crate::lock::resolve(
            &recipes,
            &crate::pkg::fetch::AptConfig {
                etc: a.apt_dir.to_path_buf(),
                proxies,
            },
            "amd64",
            checks,
            a.drop_source,
            previous.as_ref(),
            s.bases.as_deref(),
        )?;
        (lock, previous)
    };
    crate::lock::set_upstream(
        &mut lock,
        upstream.as_ref(),
        previous.as_ref(),
        s.bases.as_deref(),
    )?;
    crate::lock::pin_plugins(&mut lock, plugins, previous.as_ref())?;
    let problems = match registry {
        Some(r) => crate::bases::pin(&mut lock, r),
        None => Vec::new(),
    };
    if let Some(dir) = s.bases.as_deref() {
        crate::bases::check_imported(&lock, dir)?;
    }
    lock.save(&s.lock)?;
    Ok((lock, problems))
}

/// The Grafana plugin directory of `plan` (`grafana_plugin_dir` of its first infra host with
/// Grafana), pinned by `infragen lock --profile`.
fn plugin_dir(plan: &crate::plan::Plan) -> Option<std::path::PathBuf> {
    plan.hosts
        .iter()
        .find_map(|h| h.grafana.as_ref()?.plugin_dir(&plan.source))
}

/// One line per locked image.
fn locked(lock: &crate::lock::Lock, ui: &Ui) {
    for (name, image) in &lock.images {
        match &image.base {
            Some(b) => ui.say(format!(
                "{name:<13} base {}:{} {}",
                b.name,
                b.tag,
                b.digest.as_deref().unwrap_or("(not pinned)")
            )),
            None => ui.say(format!(
                "{name:<13} {}, {} installed",
                count(image.packages.len(), "package"),
                crate::plural::bytes(image.packages.iter().map(|p| p.installed_size * 1024).sum())
            )),
        }
    }
}

pub(super) fn repo_sync(p: &ProfileArgs, s: &StoreArgs, dir: Option<&Path>, ui: &Ui) -> i32 {
    let plan = match load_plan(p, ui) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let dir = dir.map(Path::to_path_buf).or_else(|| {
        plan.hosts.iter().find_map(|h| {
            h.nginx
                .as_ref()
                .and_then(|n| n.repo.as_ref())
                .map(|(home, name)| PathBuf::from(home).join(name))
        })
    });
    let Some(dir) = dir else {
        ui.error(
            "no infra host of the profile serves a repository (`repo_enabled`)\nhint: pass --dir",
        );
        return 2;
    };
    match crate::repo::sync(&dir, &s.lock, &s.cache(), &s.repos) {
        Ok(n) => {
            ui.say(format!(
                "{}: {}, Packages index and repo_complete written",
                dir.display(),
                count(n, "package")
            ));
            0
        }
        Err(e) => {
            ui.error(format!("{e:#}"));
            1
        }
    }
}

/// The parameter reference as Markdown (also in docs/profiles.md).
pub fn params_reference() -> String {
    let mut s = String::from("| parameter | default | meaning |\n|---|---|---|\n");
    for p in params::PARAMS {
        let default = p.default.map_or_else(
            || "(required)".to_owned(),
            |d| {
                let d = d.split_whitespace().collect::<Vec<_>>().join(" ");
                if d.len() > 60 {
                    format!(
                        "`{}…`",
                        &d[..d.char_indices().nth(57).map_or(d.len(), |(i, _)| i)]
                    )
                } else {
                    format!("`{d}`")
                }
            },
        );
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            p.name,
            default.replace('|', "\\|"),
            p.doc,
        );
    }
    s
}
