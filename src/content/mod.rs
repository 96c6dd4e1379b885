//! Monitoring content: the Grafana dashboards and vmalert rule files an infra host serves,
//! built in (written by us) and, later, imported from an operator's directories.

pub mod dashboards;
pub mod rules;

use crate::plan::Plan;

/// One dashboard file under Grafana's provisioned dashboard directory (`/etc/dashboards`).
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Path below `/etc/dashboards`, folder first: `infra/infra-overview.json`. The folder is
    /// the Grafana folder (`foldersFromFilesStructure`).
    pub path: String,
    /// The dashboard model; its `uid` is stable and unique in the set.
    pub json: serde_json::Value,
}

/// One vmalert rule file under `/etc/vmalert/rules`.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// File name: `node.yml`.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// The dashboards every Grafana of `plan` provisions.
pub fn dashboards(_plan: &Plan) -> Vec<Dashboard> {
    dashboards::builtin()
}

/// The static rule files every vmalert of `plan` loads (beside the rendered `agent.yml`): the
/// core files, and `kafka.yml` and `mysql.yml` when the inventory has those modules.
pub fn rules(plan: &Plan) -> Vec<RuleFile> {
    rules::for_targets(&plan.targets)
}
