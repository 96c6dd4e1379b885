//! The built-in Grafana dashboards, written by us as typed values ([`model`]) and serialised to
//! Grafana's JSON: the home dashboard `pigsty`, the infra overview and one instance dashboard per
//! infra component, node, PostgreSQL, etcd, `MinIO` and Redis dashboards. Uids, folders and URL
//! variables follow Pigsty's where a dashboard plays the same role, so bookmarks and links of
//! imported Pigsty dashboards keep working. Every query reads `VictoriaMetrics` (`ds-prometheus`)
//! with the labels our scrape configuration sets (`plan::targets`, `render::monitor`).

mod components;
mod data;
mod home;
mod infra;
pub mod model;
mod node;

use super::Dashboard;
use model::{var, Board, Link, Panel, Row, Var};

/// Every built-in dashboard as a typed value, sorted by uid.
pub fn boards() -> Vec<Board> {
    let mut all = vec![infra::overview()];
    all.extend(components::boards());
    all.extend(node::boards());
    all.extend(data::boards());
    let others: Vec<(&'static str, &'static str)> = all.iter().map(|b| (b.uid, b.title)).collect();
    all.push(home::board(&others));
    all.sort_by(|a, b| a.uid.cmp(b.uid));
    all
}

/// Every built-in dashboard. They depend on nothing but this code, so they are made once per
/// process (a build renders them for every infra host, and checks them).
pub fn builtin() -> Vec<Dashboard> {
    static BUILTIN: std::sync::OnceLock<Vec<Dashboard>> = std::sync::OnceLock::new();
    BUILTIN
        .get_or_init(|| {
            boards()
                .iter()
                .map(|b| Dashboard {
                    path: b.path(),
                    json: std::sync::Arc::new(b.to_json()),
                })
                .collect()
        })
        .clone()
}

/// The dashboards the portal's home page links to, in this order, when the set holds them: the
/// home dashboard and the overviews, the entry points of every drill-down.
pub const PORTAL: &[&str] = &[
    "pigsty",
    "infra-overview",
    "node-overview",
    "pgsql-cluster",
    "etcd-overview",
    "minio-overview",
    "redis-overview",
];

/// The portal's dashboard cards: uid, title and description of each [`PORTAL`] dashboard that
/// `set` holds (an imported dashboard with the same uid gives its own title).
pub fn portal(set: &[Dashboard]) -> Vec<serde_json::Value> {
    PORTAL
        .iter()
        .filter_map(|uid| {
            let d = set.iter().find(|d| d.json["uid"] == *uid)?;
            // Backticks mark code in the README; on the page they would show as they are.
            let text = |k: &str| d.json[k].as_str().unwrap_or_default().replace('`', "");
            Some(serde_json::json!({"uid": uid, "title": text("title"), "description": text("description")}))
        })
        .collect()
}

/// The links at the top of every dashboard but the home one: home and the infra overview.
fn top_links() -> Vec<Link> {
    vec![
        Link::to("Home", "pigsty", &[]),
        Link::to("Infra Overview", "infra-overview", &[]),
    ]
}

/// A variable `label_values(<selector>, <label>)`.
fn v(name: &'static str, label: &'static str, selector: &str, label_name: &'static str) -> Var {
    Var {
        name,
        label,
        selector: selector.to_owned(),
        label_name,
    }
}

/// `ins` and `ip` of one infra component (`cls`), as the infra scrape job labels them.
fn component_vars(cls: &str) -> Vec<Var> {
    vec![
        v(
            "ins",
            "Instance",
            &format!(r#"up{{job="infra", cls="{cls}"}}"#),
            "ins",
        ),
        v("ip", "IP", r#"up{job="infra", ins="$ins"}"#, "ip"),
    ]
}

/// A link to the node dashboard of the infra node the component runs on.
fn node_link() -> Link {
    Link::to("Node", "node-instance", &[("id", &var("ip"))])
}

/// Up, uptime and memory of one scraped process (`sel` is its selector), and its CPU and
/// memory over time: what every Go exporter and server reports about itself.
fn process_row(sel: &str) -> Row {
    use model::Kind::Stat;
    let uptime = Panel::new(Stat, "Uptime", "s")
        .q(
            format!("time() - process_start_time_seconds{sel}"),
            "{{ins}}",
        )
        .size(4, 4)
        .thresholds(&[])
        .desc("Time since the process started.");
    process_row_with(sel, uptime)
}

/// [`process_row`] for a program built with the Prometheus Go client: under the units'
/// `ProcSubset=pid` it cannot read the boot time in `/proc/stat`, so it exports no
/// `process_start_time_seconds`; its goroutine count takes the uptime's place.
fn go_client_process_row(sel: &str) -> Row {
    let goroutines = Panel::new(model::Kind::Stat, "Goroutines", "none")
        .q(format!("go_goroutines{sel}"), "{{ins}}")
        .size(4, 4)
        .thresholds(&[])
        .desc("Goroutines of the process (no uptime: the Go client reads the boot time from /proc/stat, which the unit's ProcSubset=pid hides).");
    process_row_with(sel, goroutines)
}

fn process_row_with(sel: &str, second: Panel) -> Row {
    use model::Kind::{Stat, Timeseries};
    Row {
        title: "Process",
        panels: vec![
            Panel::new(Stat, "Up", "none")
                .q(format!("up{sel}"), "{{ins}}")
                .up_down()
                .size(4, 4)
                .desc("Whether the last scrape of the instance succeeded."),
            second,
            Panel::new(Stat, "Resident memory", "bytes")
                .q(format!("process_resident_memory_bytes{sel}"), "{{ins}}")
                .size(4, 4)
                .desc("Resident set size of the process."),
            Panel::new(Timeseries, "CPU", "percentunit")
                .q(
                    format!("rate(process_cpu_seconds_total{sel}[$__rate_interval])"),
                    "{{ins}}",
                )
                .size(6, 4)
                .desc("CPU time used per second (1 = one core)."),
            Panel::new(Timeseries, "Open files", "none")
                .q(format!("process_open_fds{sel}"), "open")
                .q(format!("process_max_fds{sel}"), "limit")
                .size(6, 4)
                .desc("Open file descriptors and the process's limit."),
        ],
    }
}
