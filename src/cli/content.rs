//! The monitoring content on the command line: the operator's directories read after the
//! profile resolves, and the content checks' report shown after rendering.

use std::path::Path;

use super::Ui;
use crate::content::check;
use crate::plan::Plan;
use crate::plural::count;
use crate::tree::Tree;

/// Reads `infra_dashboards` and `infra_rules` into `plan`; on failure prints the error and
/// returns 2 (invalid input).
pub(super) fn import(plan: &mut Plan, ui: &Ui) -> Result<(), i32> {
    crate::content::import::load(plan).map_err(|e| {
        ui.error(format!("{}: {e:#}", plan.source));
        2
    })
}

/// Runs the content checks over `plan`'s merged content and the rendered `tree` (through
/// `vmalert -dryRun` too with `validate`), shows each problem as a warning and the summary;
/// with `strict`, problems (or vmalert not run under `validate`) are an error naming `out`.
pub(super) fn checked(
    plan: &Plan,
    tree: &Tree,
    (validate, strict): (bool, bool),
    out: &Path,
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut report = check::run(plan, tree);
    if report.dashboards + report.rule_files == 0 {
        return Ok(());
    }
    if validate {
        crate::validate::content(plan, tree, &mut report)?;
    }
    for f in &report.findings {
        ui.warn(format!("content: {f}"));
    }
    let text = report.text();
    ui.say(text.lines().last().unwrap_or_default());
    let unrun = matches!(report.vmalert, Some(Err(_)));
    if strict && (!report.findings.is_empty() || unrun) {
        anyhow::bail!(
            "{} in the monitoring content{} (--strict); nothing was written to {}",
            count(report.findings.len(), "problem"),
            if unrun {
                ", and `vmalert` did not check it"
            } else {
                ""
            },
            out.display()
        );
    }
    Ok(())
}
