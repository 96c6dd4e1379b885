//! Validation by the real programs: each component's own checker runs against the rendered files.
//!
//! Every component is laid out in a private sandbox directory as it will be in its root tree,
//! with absolute paths in its files rewritten into the sandbox, so that the checker reads the
//! files where the component will and nothing of this machine. Nothing binds a socket, nothing
//! talks to the network. Certificates that later stages issue are stood in for by a throwaway
//! self-signed pair. A checker that is not installed is reported as skipped. Each checker runs
//! confined to its component's files, its own program and libraries (`confine`: user, mount,
//! network and PID namespaces) when the machine allows it; otherwise they run anyway, the
//! report says so ([`Report::warnings`]) and `--strict` fails. Each checker is killed at its
//! time limit (a minute, `$INFRAGEN_CHECKER_TIMEOUT`) and reported as rejected: a hung checker
//! must not hang the build.
//!
//! The report types and [`tree`] live here; `scratch` holds a run's files and sweeps those of
//! runs that died, `sandbox` lays a component's files out and maps paths in and out of it,
//! `confine` builds the confined command, `checkers` runs each component's checker (with the
//! stand-in certificate), `grafana` checks Grafana's files in-process, and `content` runs the
//! monitoring content (rule files, dashboard queries) through `vmalert -dryRun`.

mod checkers;
mod confine;
mod content;
mod grafana;
mod sandbox;
mod scratch;

use std::fmt::Write as _;

use anyhow::Result;

use crate::plan::{Component, Plan};
use crate::tree::Tree;

use checkers::{check, throwaway_cert, Runner};
pub use content::content;
use sandbox::Sandbox;
use scratch::Scratch;

/// What one checker said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Accepted,
    /// Rejected, with the checker's output (sandbox paths mapped back).
    Rejected(String),
    /// Not run, and why.
    Skipped(String),
}

/// One checker run.
#[derive(Debug, Clone)]
pub struct Check {
    /// Infra host.
    pub host: String,
    /// Component.
    pub component: Component,
    /// What ran (for the report).
    pub checker: String,
    /// Its verdict.
    pub outcome: Outcome,
}

/// Every check of a validation run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Checks in host, component order.
    pub checks: Vec<Check>,
    /// Why the checkers ran without isolation (no private user, mount, network and PID
    /// namespaces), when they did: they could then read this machine's files, bind its
    /// addresses and reach its network.
    pub unisolated: Option<String>,
}

impl Report {
    /// True when nothing was rejected (and, with `strict`, nothing skipped and every checker
    /// isolated).
    pub fn ok(&self, strict: bool) -> bool {
        if strict && self.unisolated.is_some() {
            return false;
        }
        self.checks.iter().all(|c| match c.outcome {
            Outcome::Accepted => true,
            Outcome::Rejected(_) => false,
            Outcome::Skipped(_) => !strict,
        })
    }

    /// Warnings for people (the caller prints them as `warning: …`).
    pub fn warnings(&self) -> Vec<String> {
        self.unisolated
            .iter()
            .map(|why| {
                format!("checkers ran without isolation, able to read this machine's files: {why}\nhint: --strict refuses this; enable unprivileged user namespaces to isolate them")
            })
            .collect()
    }

    /// The report, one line per check, rejected output indented below.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let (mut ok, mut bad, mut skip) = (0, 0, 0);
        for c in &self.checks {
            let verdict = match &c.outcome {
                Outcome::Accepted => {
                    ok += 1;
                    "accepted".to_owned()
                }
                Outcome::Rejected(_) => {
                    bad += 1;
                    "REJECTED".to_owned()
                }
                Outcome::Skipped(why) => {
                    skip += 1;
                    format!("skipped: {why}")
                }
            };
            let _ = writeln!(
                s,
                "{:<15} {:<13} {:<44} {verdict}",
                c.host,
                c.component.name(),
                c.checker
            );
            if let Outcome::Rejected(out) = &c.outcome {
                for line in out.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        let _ = writeln!(s, "checks: {ok} accepted, {bad} rejected, {skip} skipped");
        s
    }
}

/// The directory under which every validation run of this user keeps its scratch
/// (`$TMPDIR/infragen-validate-<uid>`): one entry per live run, those of dead runs swept by the
/// next.
pub fn scratch_parent() -> std::path::PathBuf {
    scratch::parent()
}

/// Runs every checker over the rendered `tree` of `plan`.
pub fn tree(plan: &Plan, tree: &Tree) -> Result<Report> {
    let runner = Runner::new()?;
    let scratch = Scratch::create()?;
    let pair = throwaway_cert(scratch.path());
    let mut report = Report {
        unisolated: checkers::isolation().err(),
        ..Report::default()
    };
    for h in &plan.hosts {
        let host = h.ip.to_string();
        for c in h.enabled() {
            let sandbox = scratch.path().join(format!("{host}-{}", c.name()));
            let sb = Sandbox::lay_out(&sandbox, tree, &host, c, h)?;
            let (checker, outcome) = check(&sb, h, c, pair.as_ref(), &runner)?;
            report.checks.push(Check {
                host: host.clone(),
                component: c,
                checker,
                outcome,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unisolated_checkers_warn_and_fail_strict() {
        let report = Report {
            checks: Vec::new(),
            unisolated: Some("`unshare` is not installed".into()),
        };
        assert!(report.ok(false));
        assert!(!report.ok(true));
        assert_eq!(
            report.warnings(),
            ["checkers ran without isolation, able to read this machine's files: `unshare` is not installed\nhint: --strict refuses this; enable unprivileged user namespaces to isolate them"]
        );
        let isolated = Report::default();
        assert!(isolated.ok(true));
        assert!(isolated.warnings().is_empty());
    }
}
