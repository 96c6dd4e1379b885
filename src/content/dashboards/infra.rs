//! `infra-overview`: every infra component of every infra node, up or down, with its version
//! and uptime where its exporter gives them, the health of every scrape job, and a link to each
//! instance dashboard.

use super::model::Kind::{Stat, Table, Timeseries};
use super::model::{cell, field, Board, Link, Panel, Row};
use super::top_links;

/// The infra components with metrics of their own: `cls` label and instance dashboard uid.
pub const COMPONENTS: &[(&str, &str, &str)] = &[
    ("nginx", "Nginx", "nginx-instance"),
    ("grafana", "Grafana", "grafana-instance"),
    ("vmetrics", "VictoriaMetrics", "vmetrics-instance"),
    ("vlogs", "VictoriaLogs", "vlogs-instance"),
    ("vtraces", "VictoriaTraces", "vtraces-instance"),
    ("vmalert", "vmalert", "vmalert-instance"),
    ("alertmanager", "Alertmanager", "alertmanager-instance"),
    ("blackbox", "Blackbox", "blackbox-instance"),
];

/// The version of every infra component whose exporter reports one.
const VERSIONS: &str = r#"max by (cls, ins, ip, version) (label_replace(vm_app_version{job="infra"}, "version", "$1", "short_version", "(.*)") or alertmanager_build_info{job="infra"} or blackbox_exporter_build_info{job="infra"} or grafana_build_info{job="infra"} or nginxexporter_build_info{job="infra"})"#;

fn component_stats() -> Row {
    let panels = COMPONENTS
        .iter()
        .map(|(cls, name, uid)| {
            Panel::new(Stat, name, "none")
                .q(format!(r#"up{{job="infra", cls="{cls}"}}"#), "{{ins}}")
                .up_down()
                .link(Link::to(format!("{name} instance"), uid, &[("ins", &field("ins"))]))
                .size(3, 4)
                .desc("Scrape status of each instance (infra-<seq> per node); click for its dashboard.")
        })
        .collect();
    Row {
        title: "Components",
        panels,
    }
}

/// The infra overview dashboard.
pub fn overview() -> Board {
    let table = Row {
        title: "Instances",
        panels: vec![
            Panel::new(Table, "Infra components", "none")
                .q(r#"up{job="infra"}"#, "up")
                .q(r#"time() - max by (cls, ins, ip) (process_start_time_seconds{job="infra"})"#, "uptime (s)")
                .link(Link::to("Node", "node-instance", &[("id", &cell("ip"))]))
                .size(14, 10)
                .desc("Every scraped infra component of every infra node, up (1) or down (0), and its uptime where the exporter reports the process; click a row for its node. nginx's uptime is not reported by its exporter; dnsmasq and chrony have no exporter (see their dashboards)."),
            Panel::new(Table, "Versions", "none")
                .q(VERSIONS, "instances")
                .size(10, 10)
                .desc("The version each component reports (`vm_app_version`, `*_build_info`)."),
        ],
    };
    let nodes = Row {
        title: "Infra nodes and scraping",
        panels: vec![
            Panel::new(Table, "Infra nodes", "none")
                .q(
                    r#"max by (ip) (up{job="node"}) and on (ip) max by (ip) (up{job="infra"})"#,
                    "node exporter",
                )
                .q(r#"sum by (ip) (up{job="infra"})"#, "components up")
                .q(r#"count by (ip) (up{job="infra"})"#, "components")
                .link(Link::to("Node", "node-instance", &[("id", &cell("ip"))]))
                .size(12, 8)
                .desc("Each infra node: its node exporter, and how many of its components are up."),
            Panel::new(Table, "Scrape jobs", "none")
                .q("count by (job) (up)", "targets")
                .q("sum by (job) (1 - up)", "down")
                .size(12, 8)
                .desc("Every scrape job of VictoriaMetrics: targets and how many are down now."),
            Panel::new(Timeseries, "Scrape duration", "s")
                .q("max by (job) (scrape_duration_seconds)", "{{job}}")
                .size(12, 8)
                .desc("The slowest scrape per job."),
            Panel::new(Timeseries, "Firing alerts", "none")
                .q(
                    r#"sum by (group) (vmalert_alerts_firing{job="infra"})"#,
                    "{{group}}",
                )
                .link(Link::to("vmalert", "vmalert-instance", &[]))
                .size(12, 8)
                .desc("Alerts firing per rule group, as vmalert counts them."),
        ],
    };
    Board {
        uid: "infra-overview",
        title: "Infra Overview",
        folder: "infra",
        tags: &["infra", "overview"],
        description: "Every infra component of every infra node: up or down, version, uptime, scrape health, firing alerts; links to each instance dashboard.",
        vars: Vec::new(),
        links: {
            let mut links = top_links();
            links.push(Link::to("Dnsmasq", "dnsmasq-instance", &[]));
            links.push(Link::to("Chrony", "chrony-instance", &[]));
            links
        },
        rows: vec![component_stats(), table, nodes],
    }
}
