//! The command line: parses arguments, runs one command, prints errors once, returns the exit code.
//!
//! Exit codes: 0 success, 1 a failure while doing the work (I/O, a validator rejecting a
//! file), 2 invalid input (usage, a profile that does not load or resolve).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::{self, Plan};
use crate::problem::Problems;
use crate::profile::{self, LoadError};
use crate::{params, render, validate};

const EXAMPLES: &str = "\
Examples:
  infragen check --profile three-node
  infragen render --profile three-node --out out --validate
  infragen render --profile ./pigsty.yml --address-map 10.10.10.=127.0.10. --out /tmp/r
  infragen params";

/// Compile a Pigsty-style INFRA inventory into immutable, validated, per-host artifacts.
#[derive(Parser)]
#[command(name = "infragen", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a profile and print its infra hosts and their components
    #[command(after_help = "Example:\n  infragen check --profile three-node")]
    Check(ProfileArgs),
    /// Render every infra host's configuration files under DIR/<host>/<component>/
    #[command(
        after_help = "Example:\n  infragen render --profile single-node --out out --validate"
    )]
    Render {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory (replaced as a whole, atomically)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Run each component's own checker (nginx -t, amtool, vmalert -dryRun, …) on the result
        #[arg(long)]
        validate: bool,
        /// With --validate: a checker that is not installed is an error, not a skip
        #[arg(long, requires = "validate")]
        strict: bool,
    },
    /// Print the parameter reference: every INFRA parameter and its default
    Params,
}

#[derive(Args)]
struct ProfileArgs {
    /// A built-in profile (single-node, three-node, small-prod, large-prod) or a path
    #[arg(long, short, value_name = "PROFILE", default_value = "single-node")]
    profile: String,
    /// Rewrite address prefixes in the profile text first, like Pigsty's configure (FROM=TO)
    #[arg(long, value_name = "FROM=TO", value_parser = parse_map)]
    address_map: Vec<(String, String)>,
}

fn parse_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() => Ok((a.to_owned(), b.to_owned())),
        _ => Err(format!("`{s}` is not FROM=TO")),
    }
}

/// Runs the command line `args` and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Check(p) => check(&p),
        Command::Render {
            profile,
            out,
            validate,
            strict,
        } => render(&profile, &out, validate, strict),
        Command::Params => {
            print!("{}", params_reference());
            0
        }
    }
}

/// Loads and resolves a profile, printing warnings; on failure prints the error and returns 2.
fn load_plan(p: &ProfileArgs) -> Result<Plan, i32> {
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

fn check(p: &ProfileArgs) -> i32 {
    let plan = match load_plan(p) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    println!(
        "{}: {} infra host{} of {} in the inventory",
        plan.source,
        plan.hosts.len(),
        if plan.hosts.len() == 1 { "" } else { "s" },
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

fn render(p: &ProfileArgs, out: &std::path::Path, run_validators: bool, strict: bool) -> i32 {
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
        return 1;
    }
    println!(
        "rendered {} files for {} infra host{} into {}",
        tree.len(),
        plan.hosts.len(),
        if plan.hosts.len() == 1 { "" } else { "s" },
        out.display()
    );
    0
}

/// The parameter reference as Markdown (also in the README).
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
