//! Scrape targets and DNS records computed from the whole inventory.
//!
//! Pigsty's producers push file-SD files and DNS records into every infra node (`delegate_to`,
//! docs/pigsty-infra.md §24.1). infragen computes the same end state from the inventory instead:
//! `targets/<dir>/<file>.yml` for `VictoriaMetrics` and hosts-file records for dnsmasq.

mod more;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::check;
use super::read::Reader;
use super::{Component, InfraNode};
use crate::problem::Problem;
use crate::profile::Resolved;

/// One file-SD group: labels and `host:port` targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    /// Identity labels (`cls`, `ins`, `ip`, …).
    pub labels: BTreeMap<String, String>,
    /// Targets.
    pub targets: Vec<String>,
}

/// Target files by directory (`node`, `pgsql`, …) and file stem.
pub type Targets = BTreeMap<String, BTreeMap<String, Vec<TargetGroup>>>;

/// Identity facts of one inventory host, as Pigsty's `node_id` derives them.
pub struct NodeFacts {
    /// `nodename`: set explicitly, or `<pg_cluster>-<pg_seq>`, or the address.
    pub nodename: String,
    /// `node_cluster`: set explicitly, or `pg_cluster`, or `nodes`.
    pub cluster: String,
}

fn group(labels: &[(&str, &str)], targets: Vec<String>) -> TargetGroup {
    TargetGroup {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        targets,
    }
}

fn at(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Every scrape target of the inventory (all but the per-host `pgrds` files).
pub fn compute<'a>(
    hosts: impl IntoIterator<Item = (&'a str, Resolved<'a>)>,
    infra: &[InfraNode],
    problems: &mut Vec<Problem>,
) -> Targets {
    let mut t = Targets::new();
    let mut put = |dir: &str, file: String, groups: Vec<TargetGroup>| {
        t.entry(dir.to_owned()).or_default().insert(file, groups);
    };
    for node in infra {
        put("infra", format!("infra-{}", node.seq), infra_groups(node));
    }
    let mut clusters = more::Clusters::default();
    for (host, vars) in hosts {
        let mut r = Reader::new(&vars, host, problems);
        let Ok(addr) = host.parse::<IpAddr>() else {
            continue;
        }; // reported by `plan::resolve`
        let ip = addr.to_string();
        node(&mut r, &ip, &mut put);
        if let Some((cls, seq)) = member(&mut r, "etcd_cluster", "etcd_seq", "etcd") {
            etcd(&mut r, &ip, &cls, &seq, &mut put);
        }
        if let Some((cls, seq)) = member(&mut r, "minio_cluster", "minio_seq", "minio") {
            minio(&mut r, &ip, &cls, &seq, &mut put);
        }
        if let Some((cls, seq)) = member(&mut r, "pg_cluster", "pg_seq", "") {
            pgsql(&mut r, &ip, &cls, &seq, &mut put);
        }
        if let Some((cls, node)) = member(&mut r, "redis_cluster", "redis_node", "") {
            redis(&mut r, &ip, &cls, &node, &mut put);
        }
        clusters.add(&mut r, &ip);
    }
    clusters.put(&mut put);
    t
}

/// The infra components an infra host runs, one group each (`infra/infra-<seq>`), in Pigsty's
/// order; nginx is scraped through its exporter (`nginx-<seq>`, `nginx_exporter_port`).
fn infra_groups(node: &InfraNode) -> Vec<TargetGroup> {
    let ip = node.ip.to_string();
    let seq = node.seq.to_string();
    let p = &node.ports;
    [
        (Component::NginxExporter, "nginx", p.nginx_exporter),
        (Component::Vmetrics, "vmetrics", p.vmetrics),
        (Component::Vlogs, "vlogs", p.vlogs),
        (Component::Vtraces, "vtraces", p.vtraces),
        (Component::Vmalert, "vmalert", p.vmalert),
        (Component::Alertmanager, "alertmanager", p.alertmanager),
        (Component::Blackbox, "blackbox", p.blackbox),
        (Component::Grafana, "grafana", p.grafana),
    ]
    .into_iter()
    .filter(|(c, _, _)| node.enabled.contains(c))
    .map(|(_, name, port)| {
        group(
            &[
                ("ip", &ip),
                ("ins", &format!("{name}-{seq}")),
                ("cls", name),
            ],
            vec![at(&ip, port)],
        )
    })
    .collect()
}

/// Every host's node-level targets: its exporters (`node`, with keepalived's when the node
/// cluster has a VIP), its address (`ping`, and the VIP's), Docker's exporter when Docker is on
/// (`docker`) and its `JuiceFS` instances (`juice`).
fn node(r: &mut Reader, ip: &str, put: &mut impl FnMut(&str, String, Vec<TargetGroup>)) {
    let facts = facts(r, ip);
    let (ins, cls) = (facts.nodename.as_str(), facts.cluster.as_str());
    let labels = [("ip", ip), ("ins", ins), ("cls", cls)];
    let mut node_targets = Vec::new();
    for (flag, port) in [
        ("node_exporter_enabled", "node_exporter_port"),
        ("haproxy_enabled", "haproxy_exporter_port"),
        ("vector_enabled", "vector_port"),
    ] {
        if r.bool(flag) {
            node_targets.push(at(ip, r.port(port)));
        }
    }
    let mut groups = vec![group(&labels, node_targets)];
    groups.extend(more::node_vip(r, ip, ins, cls, put));
    put("node", ip.to_owned(), groups);
    more::juice(r, ip, ins, put);
    put(
        "ping",
        ip.to_owned(),
        vec![group(&labels, vec![ip.to_owned()])],
    );
    if r.is_set("docker_enabled") && r.bool("docker_enabled") {
        let port = r.port("docker_exporter_port");
        put(
            "docker",
            ip.to_owned(),
            vec![group(&labels, vec![at(ip, port)])],
        );
    }
}

/// An etcd member `<cls>-<seq>`.
fn etcd(
    r: &mut Reader,
    ip: &str,
    cls: &str,
    seq: &str,
    put: &mut impl FnMut(&str, String, Vec<TargetGroup>),
) {
    let name = format!("{cls}-{seq}");
    let port = r.port("etcd_port");
    put(
        "etcd",
        name.clone(),
        vec![group(
            &[("ip", ip), ("ins", &name), ("cls", cls)],
            vec![at(ip, port)],
        )],
    );
}

/// A `MinIO` member `<cls>-<seq>`, labelled with its instance address and engine (`flavor`).
fn minio(
    r: &mut Reader,
    ip: &str,
    cls: &str,
    seq: &str,
    put: &mut impl FnMut(&str, String, Vec<TargetGroup>),
) {
    let name = format!("{cls}-{seq}");
    let port = r.port("minio_port");
    let instance = at(ip, port);
    // `minio_type`: the object-storage engine (`silo`, `minio`, `rustfs`), Pigsty's `flavor`.
    let flavor = r.string("minio_type");
    if let Err(e) = check::name(&flavor) {
        let path = r
            .var("minio_type")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(&path, e);
    }
    put(
        "minio",
        name.clone(),
        vec![group(
            &[
                ("ip", ip),
                ("ins", &name),
                ("cls", cls),
                ("instance", &instance),
                ("flavor", &flavor),
            ],
            vec![instance.clone()],
        )],
    );
}

/// A PostgreSQL member `<cls>-<seq>`: its exporters and Patroni (`pgsql`, or `patroni` when
/// Patroni speaks TLS), and its VIP when it has one (`ping`).
fn pgsql(
    r: &mut Reader,
    ip: &str,
    cls: &str,
    seq: &str,
    put: &mut impl FnMut(&str, String, Vec<TargetGroup>),
) {
    let name = format!("{cls}-{seq}");
    let patroni_ssl = r.bool("patroni_ssl_enabled");
    let mut targets = Vec::new();
    for (flag, port) in [
        ("pg_exporter_enabled", "pg_exporter_port"),
        ("pgbouncer_exporter_enabled", "pgbouncer_exporter_port"),
    ] {
        if r.bool(flag) {
            targets.push(at(ip, r.port(port)));
        }
    }
    if !patroni_ssl {
        targets.push(at(ip, r.port("patroni_port")));
    }
    if r.bool("pgbackrest_exporter_enabled") {
        targets.push(at(ip, r.port("pgbackrest_exporter_port")));
    }
    let labels = [("ip", ip), ("ins", name.as_str()), ("cls", cls)];
    put("pgsql", name.clone(), vec![group(&labels, targets)]);
    if patroni_ssl {
        let port = r.port("patroni_port");
        put(
            "patroni",
            name.clone(),
            vec![group(
                &[("job", "pgsql"), ("ip", ip), ("ins", &name), ("cls", cls)],
                vec![at(ip, port)],
            )],
        );
    }
    if r.bool("pg_vip_enabled") {
        if let Some(vip) = vip(r, "pg_vip_address") {
            put(
                "ping",
                format!("{vip}---{ip}"),
                vec![group(
                    &[
                        ("ip", ip),
                        ("vip", &vip),
                        ("ins", &name),
                        ("cls", cls),
                        ("job", "pgsql-vip"),
                    ],
                    vec![vip.clone()],
                )],
            );
        }
    }
}

fn redis(
    r: &mut Reader,
    ip: &str,
    cls: &str,
    node: &str,
    put: &mut impl FnMut(&str, String, Vec<TargetGroup>),
) {
    let Some(var) = r.var("redis_instances") else {
        return;
    };
    let Some(map) = var.value.as_mapping() else {
        return;
    };
    let exporter = r.port("redis_exporter_port");
    let _ = exporter; // the job rewrites the address to the exporter; targets stay redis:// URLs
    let mut groups = Vec::new();
    for (k, _) in map {
        let port = match k {
            crate::yaml::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            crate::yaml::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let Some(port) = port.filter(|p| *p > 0) else {
            r.problem(&var.path, "redis instance keys must be ports");
            continue;
        };
        let ins = format!("{cls}-{node}-{port}");
        let instance = at(ip, port);
        groups.push(group(
            &[
                ("cls", cls),
                ("ins", &ins),
                ("ip", ip),
                ("instance", &instance),
            ],
            vec![format!("redis://{instance}")],
        ));
    }
    put("redis", format!("{cls}-{node}"), groups);
}

/// `(cluster, seq)` when the host is a member of a cluster of that module.
fn member(
    r: &mut Reader,
    cluster_key: &str,
    seq_key: &str,
    default_cluster: &str,
) -> Option<(String, String)> {
    r.var(seq_key)?;
    let seq = r.uint(seq_key)?.to_string();
    let cls = if r.is_set(cluster_key) {
        r.string(cluster_key)
    } else {
        default_cluster.to_owned()
    };
    if cls.is_empty() {
        let path = r.var(seq_key).map(|v| v.path.clone()).unwrap_or_default();
        r.problem(
            &path,
            format!("`{seq_key}` is set but `{cluster_key}` is not"),
        );
        return None;
    }
    if let Err(e) = check::hostname(&cls) {
        let path = r
            .var(cluster_key)
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(&path, e);
        return None;
    }
    Some((cls, seq))
}

fn vip(r: &mut Reader, key: &str) -> Option<String> {
    let var = r.var(key)?;
    let s = r.string(key);
    let addr = s.split('/').next().unwrap_or_default();
    if let Ok(ip) = addr.parse::<IpAddr>() {
        Some(ip.to_string())
    } else {
        r.problem(
            &var.path,
            format!("`{s}` is not an address (expected `ip/prefix`)"),
        );
        None
    }
}

/// Identity facts of one host.
pub fn facts(r: &mut Reader, ip: &str) -> NodeFacts {
    let pg = if r.is_set("pg_cluster") && r.is_set("pg_seq") {
        Some((r.string("pg_cluster"), r.uint("pg_seq").unwrap_or(0)))
    } else {
        None
    };
    let nodename = if r.is_set("nodename") {
        r.string("nodename")
    } else if let Some((cls, seq)) = &pg {
        format!("{cls}-{seq}")
    } else {
        ip.to_owned()
    };
    let cluster = if r.is_set("node_cluster") {
        r.string("node_cluster")
    } else if let Some((cls, _)) = &pg {
        cls.clone()
    } else {
        "nodes".to_owned()
    };
    // Derived values are checked where they come from (`pg_cluster` in `member`).
    for key in ["nodename", "node_cluster"] {
        if let Some(var) = r.is_set(key).then(|| r.var(key)).flatten() {
            let value = if key == "nodename" {
                &nodename
            } else {
                &cluster
            };
            if let Err(e) = check::hostname(value) {
                r.problem(&var.path, e);
            }
        }
    }
    NodeFacts { nodename, cluster }
}

/// dnsmasq records computed from the inventory: file name → lines.
pub fn dns_records<'a>(
    hosts: impl IntoIterator<Item = (&'a str, Resolved<'a>)>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Vec<String>> {
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut primaries: BTreeMap<String, (Option<String>, Option<String>, String)> = BTreeMap::new();
    for (host, vars) in hosts {
        let Ok(addr) = host.parse::<IpAddr>() else {
            continue;
        };
        let ip = addr.to_string();
        let mut r = Reader::new(&vars, host, problems);
        if let Some((cls, seq)) = member(&mut r, "pg_cluster", "pg_seq", "") {
            files.insert(format!("{cls}-{seq}"), vec![format!("{ip} {cls}-{seq}")]);
            let entry = primaries
                .entry(cls.clone())
                .or_insert((None, None, String::new()));
            if r.is_set("pg_role") && r.string("pg_role") == "primary" {
                entry.0 = Some(ip.clone());
            }
            if r.bool("pg_vip_enabled") {
                entry.1 = vip(&mut r, "pg_vip_address");
            }
            if r.is_set("pg_dns_suffix") {
                let suffix = r.string("pg_dns_suffix");
                entry.2.clone_from(&suffix);
            }
        }
        if let Some((cls, seq)) = member(&mut r, "minio_cluster", "minio_seq", "minio") {
            files.insert(format!("{cls}-{seq}"), vec![format!("{ip} {cls}-{seq}")]);
        }
        if r.bool("vip_enabled") {
            node_vip_record(&mut r, &mut files);
        }
    }
    for (cls, (primary, vip, suffix)) in primaries {
        if let Some(target) = vip.or(primary) {
            let name = format!("{cls}{suffix}");
            if check::hostname(&name).is_ok() {
                files.insert(cls, vec![format!("{target} {name}")]);
            }
        }
    }
    files
}

/// `<node_cluster>.vip`: `<vip_address> <node_cluster><vip_dns_suffix>` (Pigsty's NODE VIP
/// record). Problems with the address are reported by [`compute`]; a suffix that makes the name
/// invalid is reported here.
fn node_vip_record(r: &mut Reader, files: &mut BTreeMap<String, Vec<String>>) {
    let Some(vip) = r.var("vip_address").and_then(|v| {
        let s = r.string_value(&v.value, &v.path)?;
        let addr = s.split('/').next()?.parse::<IpAddr>().ok()?;
        Some(addr.to_string())
    }) else {
        return;
    };
    let cls = node_cluster(r);
    if check::hostname(&cls).is_err() {
        return; // reported by `facts`
    }
    let name = format!("{cls}{}", r.string("vip_dns_suffix"));
    if let Err(e) = check::hostname(&name) {
        let path = r
            .var("vip_dns_suffix")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(&path, e);
        return;
    }
    files.insert(format!("{cls}.vip"), vec![format!("{vip} {name}")]);
}

/// `node_cluster` as Pigsty derives it: set explicitly, or `pg_cluster`, or `nodes`.
fn node_cluster(r: &mut Reader) -> String {
    if r.is_set("node_cluster") {
        r.string("node_cluster")
    } else if r.is_set("pg_cluster") && r.is_set("pg_seq") {
        r.string("pg_cluster")
    } else {
        "nodes".to_owned()
    }
}
