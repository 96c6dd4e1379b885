//! The home dashboard `pigsty` (Grafana's home through `default_home_dashboard_path`): the
//! state of the whole deployment in four numbers, each a way in, and a link to every other
//! built-in dashboard.

use super::model::Kind::Stat;
use super::model::{Board, Link, Panel, Row};

/// The home dashboard, linking to each of `others` (uid, title).
pub fn board(others: &[(&'static str, &'static str)]) -> Board {
    let stat = |title, expr: &str, uid| {
        Panel::new(Stat, title, "none")
            .q(expr, title)
            .link(Link::to(title, uid, &[]))
            .size(6, 5)
    };
    let panels = vec![
        stat("Infra components up", r#"sum(up{job="infra"})"#, "infra-overview")
            .desc("Infra components whose last scrape succeeded, every infra node; click for the infra overview."),
        stat("Infra components down", r#"sum(1 - up{job="infra"})"#, "infra-overview")
            .thresholds(&[(1.0, "red")])
            .desc("Infra components whose last scrape failed, every infra node."),
        stat("Nodes up", r#"sum(up{job="node"})"#, "node-overview")
            .desc("Nodes whose node exporter answered; click for the node overview."),
        stat("Firing alerts", r#"sum(vmalert_alerts_firing{job="infra"})"#, "vmalert-instance")
            .thresholds(&[(1.0, "red")])
            .desc("Alerts firing now, as vmalert counts them."),
    ];
    Board {
        uid: "pigsty",
        title: "Pigsty",
        folder: "",
        tags: &["home"],
        description: "Home: infra components and nodes up, firing alerts, and a link to every built-in dashboard.",
        vars: Vec::new(),
        links: others.iter().map(|(uid, title)| Link::to(*title, uid, &[])).collect(),
        rows: vec![Row { title: "Deployment", panels }],
    }
}
