//! One instance dashboard per infra component: the `VictoriaMetrics` family, Alertmanager, the
//! blackbox exporter, Grafana and nginx (through its exporter) report metrics of their own;
//! dnsmasq and chrony do not, and their dashboards show what the node exporter and the probes
//! see of them, saying so in each panel.

use super::model::Kind::{Stat, Table, Timeseries};
use super::model::{field, var, Board, Panel, Row};
use super::{component_vars, go_client_process_row, node_link, process_row, top_links, v};

/// The instance selector of an infra component's own scrape target.
const SEL: &str = r#"{job="infra", ins="$ins"}"#;

/// Every component dashboard.
pub fn boards() -> Vec<Board> {
    vec![
        vmetrics(),
        victoria("vlogs", "vlogs-instance", "Victoria Logs", logs_row()),
        victoria(
            "vtraces",
            "vtraces-instance",
            "Victoria Traces",
            traces_row(),
        ),
        vmalert(),
        alertmanager(),
        blackbox(),
        grafana(),
        nginx(),
        dnsmasq(),
        chrony(),
    ]
}

fn board(
    uid: &'static str,
    title: &'static str,
    description: &'static str,
    cls: &str,
    rows: Vec<Row>,
) -> Board {
    let mut links = top_links();
    links.push(node_link());
    Board {
        uid,
        title,
        folder: "infra",
        tags: &["infra", "instance"],
        description,
        vars: component_vars(cls),
        links,
        rows,
    }
}

/// The running version from a Go program's `<metric>{ins}` build info (its `version` label).
fn version(metric: &str) -> Panel {
    Panel::new(Stat, "Version", "none")
        .q(format!("{metric}{SEL}"), "{{version}}")
        .name()
        .size(6, 4)
        .desc(format!("The running version (`{metric}`)."))
}

/// Version and HTTP traffic of a `VictoriaMetrics`-family server (`vm_app_version`, `vm_http_*`).
fn vm_row() -> Row {
    Row {
        title: "Server",
        panels: vec![
            Panel::new(Stat, "Version", "none")
                .q(format!("vm_app_version{SEL}"), "{{short_version}}")
                .name()
                .size(6, 4)
                .desc("The running version (`vm_app_version`; Debian's build leaves its version labels empty)."),
            Panel::new(Timeseries, "HTTP requests", "reqps")
                .q(
                    format!("sum by (path) (rate(vm_http_requests_total{SEL}[$__rate_interval]))"),
                    "{{path}}",
                )
                .size(9, 8)
                .desc("Requests per second by path."),
            Panel::new(Timeseries, "HTTP errors", "reqps")
                .q(
                    format!("sum(rate(vm_http_request_errors_total{SEL}[$__rate_interval]))"),
                    "errors",
                )
                .size(9, 8)
                .desc("Failed requests per second, every path."),
        ],
    }
}

fn vmetrics() -> Board {
    let storage = Row {
        title: "Storage and scraping",
        panels: vec![
            Panel::new(Timeseries, "Ingestion", "rowsps")
                .q(
                    format!("sum by (type) (rate(vm_rows_inserted_total{SEL}[$__rate_interval]))"),
                    "{{type}}",
                )
                .desc(
                    "Samples inserted per second, by protocol (`promscrape` is our own scraping).",
                ),
            Panel::new(Timeseries, "Stored samples and new series", "short")
                .q(format!("sum(vm_rows{SEL})"), "samples stored")
                .q(
                    format!("sum(rate(vm_new_timeseries_created_total{SEL}[$__rate_interval]))"),
                    "new series/s",
                )
                .desc("Samples on disk; new series created per second (churn)."),
            Panel::new(Timeseries, "Disk", "bytes")
                .q(format!("sum(vm_data_size_bytes{SEL})"), "data")
                .q(format!("vm_free_disk_space_bytes{SEL}"), "free")
                .desc("Size of the stored data and free space on its file system."),
            Panel::new(Timeseries, "Scrapes", "short")
                .q(
                    format!("sum(rate(vm_promscrape_scrapes_total{SEL}[$__rate_interval]))"),
                    "scrapes/s",
                )
                .q(
                    format!("sum(rate(vm_promscrape_scrapes_failed_total{SEL}[$__rate_interval]))"),
                    "failed/s",
                )
                .size(12, 8)
                .desc("Scrapes of the file-SD targets per second and those that failed."),
            Panel::new(Timeseries, "Slow queries", "short")
                .q(
                    format!("rate(vm_slow_queries_total{SEL}[$__rate_interval])"),
                    "slow/s",
                )
                .size(12, 8)
                .desc("Queries slower than `-search.logSlowQueryDuration`, per second."),
        ],
    };
    board(
        "vmetrics-instance",
        "Victoria Metrics",
        "One VictoriaMetrics: version, ingestion, storage, scraping, queries, process.",
        "vmetrics",
        vec![vm_row(), storage, process_row(SEL)],
    )
}

fn logs_row() -> Row {
    Row {
        title: "Ingestion",
        panels: vec![Panel::new(Timeseries, "Log rows ingested", "rowsps")
            .q(
                format!("sum by (type) (rate(vl_rows_ingested_total{SEL}[$__rate_interval]))"),
                "{{type}}",
            )
            .size(24, 8)
            .desc("Log entries ingested per second, by protocol (`vl_rows_ingested_total`).")],
    }
}

fn traces_row() -> Row {
    Row {
        title: "Ingestion",
        panels: vec![Panel::new(Timeseries, "Trace requests", "reqps")
            .q(r#"sum(rate(vm_http_requests_total{job="infra", ins="$ins", path=~"/insert/.*"}[$__rate_interval]))"#, "insert")
            .q(r#"sum(rate(vm_http_requests_total{job="infra", ins="$ins", path=~"/select/.*"}[$__rate_interval]))"#, "select")
            .size(24, 8)
            .desc("Insert and select requests per second, from the server's HTTP counters.")],
    }
}

fn victoria(cls: &str, uid: &'static str, title: &'static str, extra: Row) -> Board {
    let description = if cls == "vlogs" {
        "One VictoriaLogs: version, ingestion, HTTP traffic, process."
    } else {
        "One VictoriaTraces: version, insert and select traffic, process."
    };
    board(
        uid,
        title,
        description,
        cls,
        vec![vm_row(), extra, process_row(SEL)],
    )
}

fn vmalert() -> Board {
    let rules = Row {
        title: "Rules",
        panels: vec![
            Panel::new(Stat, "Config reload", "none")
                .q(format!("vmalert_config_last_reload_successful{SEL}"), "{{ins}}")
                .up_down()
                .size(4, 8)
                .desc("Whether the last reload of the rule files succeeded (1) or failed (0)."),
            Panel::new(Stat, "Firing alerts", "none")
                .q(format!("sum(vmalert_alerts_firing{SEL})"), "firing")
                .thresholds(&[(1.0, "red")])
                .size(4, 8)
                .desc("Alerts firing now, every group."),
            Panel::new(Table, "Rules in error", "none")
                .q(r#"sum by (group) ({__name__=~"vmalert_(alerting|recording)_rules_error", job="infra", ins="$ins"})"#, "rules in error")
                .size(8, 8)
                .desc("Rules whose last evaluation failed, per group (0 everywhere when healthy)."),
            Panel::new(Timeseries, "Group evaluations", "short")
                .q(format!("sum by (group) (rate(vmalert_iteration_total{SEL}[$__rate_interval]))"), "{{group}}")
                .size(8, 8)
                .desc("Evaluations per second, by group."),
            Panel::new(Timeseries, "Notifications", "short")
                .q(format!("rate(vmalert_alerts_sent_total{SEL}[$__rate_interval])"), "sent/s")
                .q(format!("rate(vmalert_alerts_send_errors_total{SEL}[$__rate_interval])"), "errors/s")
                .q(format!("rate(vmalert_remotewrite_errors_total{SEL}[$__rate_interval])"), "remote-write errors/s")
                .size(12, 8)
                .desc("Alerts sent to Alertmanager, send errors, and errors writing recorded series back."),
            Panel::new(Timeseries, "Missed iterations", "short")
                .q(format!("sum by (group) (increase(vmalert_iteration_missed_total{SEL}[$__rate_interval]))"), "{{group}}")
                .size(12, 8)
                .desc("Evaluations skipped because the previous one overran, by group."),
        ],
    };
    board(
        "vmalert-instance",
        "Victoria Alert",
        "One vmalert: rule reloads, rule errors, evaluations, firing alerts, notifications.",
        "vmalert",
        vec![rules, vm_row(), process_row(SEL)],
    )
}

fn alertmanager() -> Board {
    let am = Row {
        title: "Alertmanager",
        panels: vec![
            version("alertmanager_build_info"),
            Panel::new(Stat, "Config reload", "none")
                .q(format!("alertmanager_config_last_reload_successful{SEL}"), "{{ins}}")
                .up_down()
                .size(6, 4)
                .desc("Whether the last configuration load succeeded."),
            Panel::new(Timeseries, "Alerts", "none")
                .q(format!("sum by (state) (alertmanager_alerts{SEL})"), "{{state}}")
                .desc("Alerts held, by state (active, suppressed, unprocessed)."),
            Panel::new(Timeseries, "Notifications", "short")
                .q(format!("sum by (integration) (rate(alertmanager_notifications_total{SEL}[$__rate_interval]))"), "{{integration}}")
                .q(format!("sum(rate(alertmanager_notifications_failed_total{SEL}[$__rate_interval]))"), "failed")
                .desc("Notifications sent per second by integration, and failures."),
            Panel::new(Timeseries, "Silences", "none")
                .q(format!("sum by (state) (alertmanager_silences{SEL})"), "{{state}}")
                .desc("Silences by state."),
        ],
    };
    board(
        "alertmanager-instance",
        "Alert Manager",
        "One Alertmanager: version, configuration, alerts, notifications, silences.",
        "alertmanager",
        vec![am, go_client_process_row(SEL)],
    )
}

fn blackbox() -> Board {
    let probes = Row {
        title: "Probes",
        panels: vec![
            version("blackbox_exporter_build_info"),
            Panel::new(Stat, "Config reload", "none")
                .q(format!("blackbox_exporter_config_last_reload_successful{SEL}"), "{{ins}}")
                .up_down()
                .size(6, 4)
                .desc("Whether the probe modules loaded."),
            Panel::new(Stat, "Failing ping probes", "none")
                .q(r#"sum(1 - probe_success{job="ping"})"#, "failing")
                .thresholds(&[(1.0, "red")])
                .size(6, 4)
                .desc("Addresses of the inventory (nodes and VIPs) that do not answer ICMP now."),
            Panel::new(Table, "Ping targets", "none")
                .q(r#"probe_success{job="ping"}"#, "success")
                .size(24, 8)
                .desc("Every ICMP probe of the `ping` job (each inventory node, each PostgreSQL VIP); 1 = answered."),
            Panel::new(Timeseries, "Round trip", "s")
                .q(r#"probe_icmp_duration_seconds{job="ping", phase="rtt"}"#, "{{instance}}")
                .link(super::model::Link::to("Node", "node-instance", &[("id", &field("ip"))]))
                .size(24, 8)
                .desc("ICMP round-trip time per target; click a series for its node."),
        ],
    };
    board(
        "blackbox-instance",
        "Blackbox Exporter",
        "The blackbox exporter and its probes: every ICMP target's success and round trip.",
        "blackbox",
        vec![probes, go_client_process_row(SEL)],
    )
}

fn grafana() -> Board {
    let g = Row {
        title: "Grafana",
        panels: vec![
            version("grafana_build_info"),
            Panel::new(Stat, "Dashboards", "none")
                .q(format!("grafana_stat_totals_dashboard{SEL}"), "dashboards")
                .size(6, 4)
                .desc("Dashboards Grafana holds (provisioned and saved)."),
            Panel::new(Timeseries, "HTTP requests", "reqps")
                .q(format!("sum by (status_code) (rate(grafana_http_request_duration_seconds_count{SEL}[$__rate_interval]))"), "{{status_code}}")
                .size(12, 8)
                .desc("Requests per second by status code."),
            Panel::new(Timeseries, "Datasource requests", "reqps")
                .q(format!("sum by (datasource) (rate(grafana_datasource_request_total{SEL}[$__rate_interval]))"), "{{datasource}}")
                .size(12, 8)
                .desc("Queries Grafana sent to each datasource per second."),
        ],
    };
    board(
        "grafana-instance",
        "Grafana Instance",
        "One Grafana: version, dashboards, HTTP traffic, datasource queries, process.",
        "grafana",
        vec![g, go_client_process_row(SEL)],
    )
}

fn nginx() -> Board {
    let n = Row {
        title: "Nginx",
        panels: vec![
            Panel::new(Stat, "Nginx", "none")
                .q(format!("nginx_up{SEL}"), "{{ins}}")
                .up_down()
                .size(4, 4)
                .desc("Whether the exporter could read nginx's `stub_status`."),
            Panel::new(Stat, "Exporter version", "none")
                .q(format!("nginxexporter_build_info{SEL}"), "{{version}}")
                .name()
                .size(6, 4)
                .desc("The nginx exporter's version (`nginxexporter_build_info`)."),
            Panel::new(Stat, "Active connections", "none")
                .q(format!("nginx_connections_active{SEL}"), "active")
                .size(4, 4)
                .desc("Client connections open now."),
            Panel::new(Timeseries, "Requests", "reqps")
                .q(format!("rate(nginx_http_requests_total{SEL}[$__rate_interval])"), "requests/s")
                .size(10, 8)
                .desc("HTTP requests served per second (all virtual hosts: portal, proxy, repository)."),
            Panel::new(Timeseries, "Connections", "none")
                .q(format!("nginx_connections_reading{SEL}"), "reading")
                .q(format!("nginx_connections_writing{SEL}"), "writing")
                .q(format!("nginx_connections_waiting{SEL}"), "waiting")
                .size(12, 8)
                .desc("Connections by state, from `stub_status`."),
            Panel::new(Timeseries, "Accepted and handled", "short")
                .q(format!("rate(nginx_connections_accepted{SEL}[$__rate_interval])"), "accepted/s")
                .q(format!("rate(nginx_connections_handled{SEL}[$__rate_interval])"), "handled/s")
                .size(12, 8)
                .desc("Connections accepted and handled per second; a gap means dropped connections."),
        ],
    };
    board(
        "nginx-instance",
        "Nginx Instance",
        "One nginx through its exporter: up, connections, requests.",
        "nginx",
        vec![n],
    )
}

/// Node-level panels for a component without metrics: the infra node's exporter and its probe.
fn host_vars() -> Vec<super::model::Var> {
    vec![v("ip", "Infra node", r#"up{job="infra"}"#, "ip")]
}

fn host_board(
    uid: &'static str,
    title: &'static str,
    description: &'static str,
    rows: Vec<Row>,
) -> Board {
    let mut links = top_links();
    links.push(super::model::Link::to(
        "Node",
        "node-instance",
        &[("id", &var("ip"))],
    ));
    Board {
        uid,
        title,
        folder: "infra",
        tags: &["infra", "instance"],
        description,
        vars: host_vars(),
        links,
        rows,
    }
}

fn host_row() -> Row {
    Row {
        title: "Infra node",
        panels: vec![
            Panel::new(Stat, "Node exporter", "none")
                .q(r#"up{job="node", ip="$ip"}"#, "{{ins}}")
                .up_down()
                .size(6, 4)
                .desc("The node exporter of the infra node this runs on: the source of every panel below."),
            Panel::new(Stat, "Ping", "none")
                .q(r#"probe_success{job="ping", ip="$ip", vip=""}"#, "{{ins}}")
                .up_down()
                .size(6, 4)
                .desc("Whether the infra node answers ICMP (blackbox probe)."),
        ],
    }
}

fn dnsmasq() -> Board {
    let dns = Row {
        title: "DNS traffic (host-wide)",
        panels: vec![
            Panel::new(Timeseries, "UDP datagrams", "short")
                .q(r#"rate(node_netstat_Udp_InDatagrams{job="node", ip="$ip"}[$__rate_interval])"#, "in/s")
                .q(r#"rate(node_netstat_Udp_OutDatagrams{job="node", ip="$ip"}[$__rate_interval])"#, "out/s")
                .size(12, 8)
                .desc("dnsmasq exports no metrics: this is the whole node's UDP traffic (DNS is most of it on an infra node), from the node exporter."),
            Panel::new(Timeseries, "UDP errors", "short")
                .q(r#"rate(node_netstat_Udp_InErrors{job="node", ip="$ip"}[$__rate_interval])"#, "in errors/s")
                .q(r#"rate(node_netstat_Udp_RcvbufErrors{job="node", ip="$ip"}[$__rate_interval])"#, "receive buffer errors/s")
                .q(r#"rate(node_netstat_Udp_NoPorts{job="node", ip="$ip"}[$__rate_interval])"#, "no port/s")
                .size(12, 8)
                .desc("dnsmasq exports no metrics: host-wide UDP errors from the node exporter; `no port` rises when queries reach a port nothing listens on (dnsmasq down)."),
        ],
    };
    host_board("dnsmasq-instance", "Dnsmasq Instance", "dnsmasq on one infra node, which exports no metrics: the node's UDP traffic and errors, its exporter and its probe.", vec![host_row(), dns])
}

fn chrony() -> Board {
    let time = Row {
        title: "Clock (kernel, disciplined by chrony)",
        panels: vec![
            Panel::new(Stat, "Synchronised", "none")
                .q(r#"node_timex_sync_status{job="node", ip="$ip"}"#, "{{ins}}")
                .mappings_sync()
                .size(6, 4)
                .desc("chrony exports no metrics: the kernel's clock-synchronised flag, which chrony sets, read by the node exporter."),
            Panel::new(Stat, "Offset", "s")
                .q(r#"node_timex_offset_seconds{job="node", ip="$ip"}"#, "{{ins}}")
                .thresholds(&[(0.05, "orange"), (0.1, "red")])
                .size(6, 4)
                .desc("The kernel's current clock offset as chrony steers it (node exporter, timex)."),
            Panel::new(Timeseries, "Offset and error", "s")
                .q(r#"node_timex_offset_seconds{job="node", ip="$ip"}"#, "offset")
                .q(r#"node_timex_estimated_error_seconds{job="node", ip="$ip"}"#, "estimated error")
                .q(r#"node_timex_maxerror_seconds{job="node", ip="$ip"}"#, "maximum error")
                .size(12, 8)
                .desc("Offset, estimated and maximum error of the kernel clock (node exporter, timex)."),
            Panel::new(Timeseries, "Clock against VictoriaMetrics", "s")
                .q(r#"node_time_seconds{job="node", ip="$ip"} - timestamp(node_time_seconds{job="node", ip="$ip"})"#, "{{ins}}")
                .size(12, 8)
                .desc("The node's clock minus the scrape time: how far it is from VictoriaMetrics' clock (plus scrape latency)."),
            Panel::new(Timeseries, "Frequency adjustment", "none")
                .q(r#"node_timex_frequency_adjustment_ratio{job="node", ip="$ip"}"#, "{{ins}}")
                .size(12, 8)
                .desc("The frequency correction chrony applies to the kernel clock."),
        ],
    };
    host_board("chrony-instance", "Chrony Instance", "chrony on one infra node, which exports no metrics: the kernel clock it disciplines (offset, error, sync), from the node exporter.", vec![host_row(), time])
}
