//! The build side of the command line: check, render, build, lock, repo sync, params.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{BaseArgs, ProfileArgs, StoreArgs};
use crate::plan::{self, Plan};
use crate::plural::count;
use crate::problem::Problems;
use crate::profile::{self, LoadError};
use crate::{params, render, validate};

/// Loads and resolves a profile, printing warnings; on failure prints the error and returns 2.
pub(super) fn load_plan(p: &ProfileArgs) -> Result<Plan, i32> {
    let inventory = profile::load(&p.profile, &p.address_map).map_err(|e: LoadError| {
        eprintln!("error: {e}");
        2
    })?;
    let plan = plan::resolve(&inventory).map_err(|e: Problems| {
        eprintln!("error: {e}");
        2
    })?;
    for w in &plan.warnings {
        eprintln!("warning: {}: {w}", plan.source);
    }
    Ok(plan)
}

/// Refuses an output directory infragen may not replace, before any work is done.
fn check_out(out: &std::path::Path) -> Result<(), i32> {
    crate::tree::check_out(out).map_err(|e| {
        eprintln!("error: {e}");
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

pub(super) fn check(p: &ProfileArgs) -> i32 {
    let plan = match load_plan(p) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    println!(
        "{}: {} of {} in the inventory",
        plan.source,
        count(plan.hosts.len(), "infra host"),
        plan.inventory_hosts
    );
    for h in &plan.hosts {
        let on: Vec<&str> = h.enabled().iter().map(|c| c.name()).collect();
        println!(
            "  {} infra-{}{}: {}",
            h.ip,
            h.seq,
            if h.is_admin { " (admin)" } else { "" },
            on.join(" ")
        );
        for (c, why) in &h.disabled {
            println!("    {c} disabled by {why}");
        }
    }
    0
}

pub(super) fn render(
    p: &ProfileArgs,
    out: &std::path::Path,
    run_validators: bool,
    strict: bool,
) -> i32 {
    if let Err(code) = check_out(out) {
        return code;
    }
    let plan = match load_plan(p) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let tree = match render::plan(&plan) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    if run_validators {
        match validate::tree(&plan, &tree) {
            Ok(report) => {
                print!("{}", report.text());
                for w in report.warnings() {
                    eprintln!("warning: {w}");
                }
                if !report.ok(strict) {
                    eprintln!(
                        "error: validation failed; nothing was written to {}",
                        out.display()
                    );
                    return 1;
                }
            }
            Err(e) => {
                eprintln!("error: validation could not run: {e:#}");
                return 1;
            }
        }
    }
    if let Err(e) = tree.write_atomic(out) {
        eprintln!("error: {e:#}");
        return failure_code(&e);
    }
    println!(
        "rendered {} for {} into {}",
        count(tree.len(), "file"),
        count(plan.hosts.len(), "infra host"),
        out.display()
    );
    0
}

pub(super) fn build(
    p: &ProfileArgs,
    s: &StoreArgs,
    b: &BaseArgs,
    out: &std::path::Path,
    run_validators: bool,
    strict: bool,
    sign_key: Option<(&std::path::Path, Option<&std::path::Path>)>,
) -> i32 {
    if let Err(code) = check_out(out) {
        return code;
    }
    let plan = match load_plan(p) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let base_registry = match b.registry() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Hosts whose secrets stay in clear: said once the build succeeded, not before an error.
    let mut in_clear = Vec::new();
    let result = (|| -> anyhow::Result<crate::build::Report> {
        let mut tree = render::plan(&plan)?;
        let mut sealing = None;
        if let Some(first) = plan.hosts.first() {
            let pki = crate::pki::Pki::open(&s.pki(&plan), &first.pki.ca_cn, first.pki.ca_create)?;
            crate::pki::add_material(&plan, &pki, &mut tree)?;
            sealing = Some(pki.sealing_key());
        }
        if run_validators {
            let report = validate::tree(&plan, &tree)?;
            print!("{}", report.text());
            for w in report.warnings() {
                eprintln!("warning: {w}");
            }
            if !report.ok(strict) {
                anyhow::bail!(
                    "validation failed; nothing was written to {}",
                    out.display()
                );
            }
        }
        // Secrets are encrypted after the validators ran on them in clear, before any is
        // written: the bundle holds only ciphertext for hosts with a key.
        if let Some(key) = &sealing {
            let (sealed, clear) = crate::secrets::seal(&plan, &tree, key)?;
            tree = sealed;
            in_clear = clear;
        }
        let opts = crate::build::Options {
            out: out.to_path_buf(),
            cache: s.cache(),
            lock: s.lock.clone(),
            repos: s.repos.clone(),
            bases: s.bases.clone(),
            base_registry: base_registry.clone(),
            sign_key: sign_key.map(|(k, _)| k.to_path_buf()),
            sign_passphrase: match sign_key.and_then(|(_, p)| p) {
                Some(p) => Some(crate::sign::sealed::read_passphrase_file(p)?),
                None => None,
            },
        };
        crate::build::build(&plan, &tree, &opts)
    })();
    if result.is_ok() && !in_clear.is_empty() {
        eprintln!(
            "warning: secrets in clear for {} without `infragen_host_key`: {}",
            count(in_clear.len(), "host"),
            in_clear.join(", ")
        );
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return failure_code(&e);
        }
    };
    for (host, images) in &report.hosts {
        for (c, b) in images {
            println!(
                "{host} infra-{c:<13} {} ({}, {:.1} MiB compressed)",
                b.digest,
                count(b.layers.len(), "layer"),
                mib(b.compressed())
            );
        }
    }
    if report.base_blobs_fetched > 0 {
        if let Some(r) = &base_registry {
            println!(
                "fetched {} from `{}`",
                count(report.base_blobs_fetched, "base image blob"),
                r.base
            );
        }
    }
    let mut incomplete = false;
    for (host, missing) in &report.incomplete {
        for (c, why) in missing {
            eprintln!("warning: {host}: infra-{c} not built: {why}");
            incomplete = true;
        }
    }
    println!(
        "built {} for {} into {} ({} built, the rest from the cache){}",
        count(
            report
                .hosts
                .values()
                .map(std::collections::BTreeMap::len)
                .sum::<usize>(),
            "image"
        ),
        count(plan.hosts.len(), "host"),
        out.display(),
        count(report.layers_built, "layer"),
        if incomplete {
            "; INCOMPLETE, see warnings"
        } else {
            ""
        }
    );
    if incomplete && strict {
        eprintln!("error: some images could not be built (--strict)");
        return 1;
    }
    0
}

#[allow(clippy::cast_precision_loss)]
fn mib(n: u64) -> f64 {
    n as f64 / 1_048_576.0
}

pub(super) fn lock(
    s: &StoreArgs,
    b: &BaseArgs,
    only_bases: bool,
    profile: Option<&str>,
    allow_unsigned: bool,
    apt_dir: &std::path::Path,
) -> i32 {
    let trust = if allow_unsigned {
        crate::pkg::fetch::Trust::AllowUnsigned
    } else {
        crate::pkg::fetch::Trust::Signed
    };
    let registry = match b.registry() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // The profile only says which upstream images to pin: an invalid one is invalid input.
    let chosen = match profile {
        Some(p) => match load_plan(&ProfileArgs {
            profile: p.to_owned(),
            address_map: Vec::new(),
        }) {
            Ok(plan) => Some(plan.upstream),
            Err(code) => return code,
        },
        None => None,
    };
    let result = (|| -> anyhow::Result<(crate::lock::Lock, Vec<String>)> {
        let recipes = crate::image::recipes()?;
        let upstream = chosen
            .as_ref()
            .map(|c| crate::upstream::lock_recipes(&recipes, c));
        let mut lock = if only_bases {
            let previous = crate::lock::Lock::load(&s.lock)?;
            let mut lock = crate::lock::rebase(&recipes, &previous, s.bases.as_deref())?;
            crate::lock::set_upstream(
                &mut lock,
                upstream.as_ref(),
                Some(&previous),
                s.bases.as_deref(),
            )?;
            lock
        } else {
            let previous = crate::lock::Lock::load(&s.lock).ok();
            let mut lock = crate::lock::resolve(
                &recipes,
                &crate::pkg::fetch::AptConfig {
                    etc: apt_dir.to_path_buf(),
                },
                "amd64",
                trust,
                previous.as_ref(),
                s.bases.as_deref(),
            )?;
            crate::lock::set_upstream(
                &mut lock,
                upstream.as_ref(),
                previous.as_ref(),
                s.bases.as_deref(),
            )?;
            lock
        };
        let problems = match &registry {
            Some(r) => crate::bases::pin(&mut lock, r),
            None => Vec::new(),
        };
        lock.save(&s.lock)?;
        Ok((lock, problems))
    })();
    match result {
        Ok((lock, problems)) => {
            for (name, image) in &lock.images {
                match &image.base {
                    Some(b) => println!(
                        "{name:<13} base {}:{} {}",
                        b.name,
                        b.tag,
                        b.digest.as_deref().unwrap_or("(not pinned)")
                    ),
                    None => println!(
                        "{name:<13} {}, {:.1} MiB installed",
                        count(image.packages.len(), "package"),
                        mib(image.packages.iter().map(|p| p.installed_size * 1024).sum())
                    ),
                }
            }
            for p in &problems {
                eprintln!("warning: {p}");
            }
            println!("wrote {}", s.lock.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

pub(super) fn repo_sync(p: &ProfileArgs, s: &StoreArgs, dir: Option<&std::path::Path>) -> i32 {
    let plan = match load_plan(p) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let dir = dir.map(std::path::Path::to_path_buf).or_else(|| {
        plan.hosts.iter().find_map(|h| {
            h.nginx
                .as_ref()
                .and_then(|n| n.repo.as_ref())
                .map(|(home, name)| PathBuf::from(home).join(name))
        })
    });
    let Some(dir) = dir else {
        eprintln!("error: no infra host of the profile serves a repository (`repo_enabled`)\nhint: pass --dir");
        return 2;
    };
    let result = crate::repo::sync(&dir, &s.lock, &s.cache(), &s.repos);
    match result {
        Ok(n) => {
            println!(
                "{}: {}, Packages index and repo_complete written",
                dir.display(),
                count(n, "package")
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
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
