//! `node-overview` (every node) and `node-instance` (one node, chosen by address as Pigsty's
//! `var-id`), from the node exporter (`job="node"`).

use super::model::Kind::{Gauge, Stat, Table, Timeseries};
use super::model::{cell, field, Board, Link, Panel, Row};
use super::{top_links, v};

/// Both node dashboards.
pub fn boards() -> Vec<Board> {
    vec![overview(), instance()]
}

/// CPU busy ratio per node.
const CPU: &str = r#"1 - avg by (ins, ip) (rate(node_cpu_seconds_total{job="node", mode="idle"}[$__rate_interval]))"#;
/// Memory in use ratio per node.
const MEM: &str =
    r#"1 - node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"}"#;
/// The fullest real file system per node.
const FS: &str = r#"max by (ins, ip) (1 - node_filesystem_avail_bytes{job="node", fstype!~"tmpfs|overlay|squashfs|ramfs"} / node_filesystem_size_bytes{job="node", fstype!~"tmpfs|overlay|squashfs|ramfs"})"#;

fn to_node(value: &str) -> Link {
    Link::to("Node instance", "node-instance", &[("id", value)])
}

fn overview() -> Board {
    let table = Panel::new(Table, "Nodes", "none")
        .q(r#"up{job="node"}"#, "up")
        .q(CPU, "cpu")
        .q(format!("max by (ins, ip) ({MEM})"), "memory")
        .q(r#"max by (ins, ip) (node_load1{job="node"})"#, "load1")
        .q(FS, "fullest fs")
        .link(to_node(&cell("ip")))
        .size(24, 10)
        .desc("Every node with a node exporter: scrape status, CPU and memory in use, load, the fullest file system. Click a row for the node.");
    let graphs = Row {
        title: "Over time",
        panels: vec![
            Panel::new(Timeseries, "CPU", "percentunit").q(CPU, "{{ins}}").link(to_node(&field("ip"))).range(0.0, 1.0)
                .desc("Share of CPU time not idle, per node."),
            Panel::new(Timeseries, "Memory", "percentunit").q(format!("max by (ins, ip) ({MEM})"), "{{ins}}").link(to_node(&field("ip"))).range(0.0, 1.0)
                .desc("Share of memory not available, per node."),
            Panel::new(Timeseries, "Network", "Bps")
                .q(r#"sum by (ins, ip) (rate(node_network_receive_bytes_total{job="node", device!="lo"}[$__rate_interval]))"#, "{{ins}} in")
                .q(r#"sum by (ins, ip) (rate(node_network_transmit_bytes_total{job="node", device!="lo"}[$__rate_interval]))"#, "{{ins}} out")
                .link(to_node(&field("ip")))
                .desc("Bytes received and sent per second per node, every interface but loopback."),
        ],
    };
    Board {
        uid: "node-overview",
        title: "Node Overview",
        folder: "node",
        tags: &["node", "overview"],
        description: "Every node: up, CPU, memory, load, file systems, network; drills down to node-instance.",
        vars: Vec::new(),
        links: top_links(),
        rows: vec![Row { title: "Nodes", panels: vec![table] }, graphs],
    }
}

fn instance() -> Board {
    let sel = r#"job="node", ip="$id""#;
    let summary = Row {
        title: "Summary",
        panels: vec![
            Panel::new(Stat, "Up", "none")
                .q(format!("up{{{sel}}}"), "{{ins}}")
                .up_down()
                .size(4, 4)
                .desc("Whether the node exporter answered the last scrape."),
            Panel::new(Stat, "Kernel", "none")
                .q(format!("node_uname_info{{{sel}}}"), "{{release}}")
                .name()
                .size(6, 4)
                .desc("Kernel release (`node_uname_info`)."),
            Panel::new(Stat, "Uptime", "s")
                .q(
                    format!("time() - node_boot_time_seconds{{{sel}}}"),
                    "{{ins}}",
                )
                .size(4, 4)
                .desc("Time since boot."),
            Panel::new(Stat, "CPUs", "none")
                .q(
                    format!(r#"count(node_cpu_seconds_total{{{sel}, mode="idle"}})"#),
                    "cpus",
                )
                .size(4, 4)
                .desc("Logical CPUs."),
            Panel::new(Stat, "Memory", "bytes")
                .q(format!("node_memory_MemTotal_bytes{{{sel}}}"), "total")
                .size(6, 4)
                .desc("Physical memory."),
        ],
    };
    let usage = Row {
        title: "Usage",
        panels: vec![
            Panel::new(Timeseries, "CPU by mode", "percentunit")
                .q(format!(r#"avg by (mode) (rate(node_cpu_seconds_total{{{sel}, mode!="idle"}}[$__rate_interval]))"#), "{{mode}}")
                .desc("Share of CPU time per mode, idle left out."),
            Panel::new(Timeseries, "Load", "none")
                .q(format!("node_load1{{{sel}}}"), "load1")
                .q(format!("node_load5{{{sel}}}"), "load5")
                .q(format!("node_load15{{{sel}}}"), "load15")
                .desc("Load averages over 1, 5 and 15 minutes."),
            Panel::new(Timeseries, "Memory", "bytes")
                .q(format!("node_memory_MemTotal_bytes{{{sel}}} - node_memory_MemAvailable_bytes{{{sel}}}"), "used")
                .q(format!("node_memory_MemAvailable_bytes{{{sel}}}"), "available")
                .desc("Memory in use and available."),
            Panel::new(Gauge, "File systems", "percentunit")
                .q(format!(r#"1 - node_filesystem_avail_bytes{{{sel}, fstype!~"tmpfs|overlay|squashfs|ramfs"}} / node_filesystem_size_bytes{{{sel}, fstype!~"tmpfs|overlay|squashfs|ramfs"}}"#), "{{mountpoint}}")
                .range(0.0, 1.0)
                .thresholds(&[(0.8, "orange"), (0.9, "red")])
                .desc("Space used per mounted file system (memory-backed ones left out)."),
            Panel::new(Timeseries, "Disk throughput", "Bps")
                .q(format!("sum(rate(node_disk_read_bytes_total{{{sel}}}[$__rate_interval]))"), "read")
                .q(format!("sum(rate(node_disk_written_bytes_total{{{sel}}}[$__rate_interval]))"), "write")
                .desc("Bytes read and written per second, every disk."),
            Panel::new(Timeseries, "Network", "Bps")
                .q(format!(r#"sum by (device) (rate(node_network_receive_bytes_total{{{sel}, device!="lo"}}[$__rate_interval]))"#), "{{device}} in")
                .q(format!(r#"sum by (device) (rate(node_network_transmit_bytes_total{{{sel}, device!="lo"}}[$__rate_interval]))"#), "{{device}} out")
                .desc("Bytes per second per interface, loopback left out."),
            Panel::new(Timeseries, "TCP", "none")
                .q(format!("node_netstat_Tcp_CurrEstab{{{sel}}}"), "established")
                .q(format!("node_sockstat_TCP_inuse{{{sel}}}"), "in use")
                .size(12, 8)
                .desc("Established TCP connections and TCP sockets in use."),
            Panel::new(Timeseries, "Ping", "s")
                .q(r#"probe_icmp_duration_seconds{job="ping", ip="$id", vip="", phase="rtt"}"#, "round trip")
                .size(12, 8)
                .desc("ICMP round trip to the node from the infra node's blackbox exporter."),
        ],
    };
    let mut links = top_links();
    links.push(Link::to("Node Overview", "node-overview", &[]));
    Board {
        uid: "node-instance",
        title: "Node Instance",
        folder: "node",
        tags: &["node", "instance"],
        description: "One node, chosen by address (`var-id`): kernel, uptime, CPU, load, memory, file systems, disks, network, TCP, ping.",
        vars: vec![
            v("id", "Address", r#"up{job="node"}"#, "ip"),
            v("ins", "Node", r#"up{job="node", ip="$id"}"#, "ins"),
        ],
        links,
        rows: vec![summary, usage],
    }
}
