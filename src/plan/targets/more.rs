//! The scrape targets of Pigsty's other modules that an inventory may hold beside PostgreSQL:
//! a node cluster's L2 VIP (keepalived's exporter and a ping of the address), `MySQL`, Kafka
//! and `JuiceFS`, with Pigsty's file names and label sets (docs/pigsty-infra.md §9.3).
//!
//! `MySQL`'s `topology` label and the hosts of Kafka's protocol exporter depend on the whole
//! cluster, so their members are collected first ([`Clusters`]) and written after every host
//! was read.

use std::collections::BTreeMap;

use super::super::check;
use super::super::read::Reader;
use super::{at, group, member, vip, TargetGroup};

/// `mysqld_exporter`'s port: fixed by Pigsty's `MySQL` role, not an inventory parameter.
const MYSQL_EXPORTER_PORT: u16 = 9104;
/// `JuiceFS`'s metrics port when an instance does not name one.
const JUICE_PORT: u16 = 9567;
/// How many broker-capable Kafka members (lowest `kafka_seq` first) run the protocol exporter.
const KAFKA_EXPORTERS: usize = 2;

/// Where a target file goes: directory, file stem, groups.
pub(super) type Put<'p> = dyn FnMut(&str, String, Vec<TargetGroup>) + 'p;

/// A node cluster's VIP on this host (`vip_enabled`, `vip_address`): keepalived's exporter,
/// returned as the second group of the node's own file, and the VIP's ping target
/// (`ping/<vip>---<ip>`, `job: node-vip`).
pub(super) fn node_vip(
    r: &mut Reader,
    ip: &str,
    ins: &str,
    cls: &str,
    put: &mut Put,
) -> Option<TargetGroup> {
    if !r.bool("vip_enabled") {
        return None;
    }
    let vip = node_vip_address(r)?;
    let port = r.port("vip_exporter_port");
    put(
        "ping",
        format!("{vip}---{ip}"),
        vec![group(
            &[
                ("ip", ip),
                ("vip", &vip),
                ("ins", ins),
                ("cls", cls),
                ("job", "node-vip"),
            ],
            vec![vip.clone()],
        )],
    );
    Some(group(
        &[("ip", ip), ("ins", ins), ("cls", cls), ("vip", &vip)],
        vec![at(ip, port)],
    ))
}

/// `vip_address` of a host with `vip_enabled`; a problem when it is missing or not an address.
pub(super) fn node_vip_address(r: &mut Reader) -> Option<String> {
    if r.var("vip_address").is_none() {
        let path = r
            .var("vip_enabled")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(&path, "`vip_enabled` is true but `vip_address` is not set");
        return None;
    }
    vip(r, "vip_address")
}

/// `JuiceFS` instances on this host (`juice_instances`: name → `{port, state}`), one group
/// each, `ins: <nodename>-<name>`, `cls: <name>`, in `juice/<ip>`; an instance whose `state` is
/// `absent` is being removed and has no target.
pub(super) fn juice(r: &mut Reader, ip: &str, nodename: &str, put: &mut Put) {
    let Some(var) = r.var("juice_instances") else {
        return;
    };
    if var.value.is_null() {
        return;
    }
    let Some(map) = var.value.as_mapping() else {
        r.problem(
            &var.path,
            "`juice_instances` must be a mapping of instance name to its settings",
        );
        return;
    };
    let mut groups = Vec::new();
    for (k, v) in map {
        let name = k.as_str().map(str::to_owned).unwrap_or_default();
        let path = crate::keypath::join(&var.path, &name);
        if let Err(e) = check::hostname(&name) {
            r.problem(&path, e);
            continue;
        }
        if v.get("state").and_then(|s| s.as_str()) == Some("absent") {
            continue;
        }
        let port = match v.get("port") {
            None => Some(JUICE_PORT),
            Some(p) => p
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0),
        };
        let Some(port) = port else {
            r.problem(
                &crate::keypath::join(&path, "port"),
                "port out of range (expected 1 to 65535)",
            );
            continue;
        };
        let ins = format!("{nodename}-{name}");
        groups.push(group(
            &[("ip", ip), ("ins", &ins), ("cls", &name)],
            vec![at(ip, port)],
        ));
    }
    if !groups.is_empty() {
        put("juice", ip.to_owned(), groups);
    }
}

/// One `MySQL` member: its address and whether its exporter runs.
struct Mysql {
    seq: String,
    ip: String,
    exporter: bool,
}

/// One Kafka member.
struct Kafka {
    seq: u64,
    ip: String,
    role: String,
    jmx: Option<u16>,
    exporter_port: u16,
}

/// Members of the `MySQL` and Kafka clusters of the inventory, by cluster name.
#[derive(Default)]
pub(super) struct Clusters {
    mysql: BTreeMap<String, Vec<Mysql>>,
    kafka: BTreeMap<String, Vec<Kafka>>,
}

impl Clusters {
    /// Records this host's `MySQL` and Kafka membership.
    pub(super) fn add(&mut self, r: &mut Reader, ip: &str) {
        if let Some((cls, seq)) = member(r, "mysql_cluster", "mysql_seq", "") {
            let exporter = r.bool("mysql_exporter_enabled");
            self.mysql.entry(cls).or_default().push(Mysql {
                seq,
                ip: ip.to_owned(),
                exporter,
            });
        }
        if let Some((cls, seq)) = member(r, "kafka_cluster", "kafka_seq", "") {
            let role = r.choice("kafka_role", &["combined", "broker", "controller"]);
            let jmx = r
                .bool("kafka_jmx_exporter_enabled")
                .then(|| r.port("kafka_jmx_exporter_port"));
            let exporter_port = r.port("kafka_exporter_port");
            self.kafka.entry(cls).or_default().push(Kafka {
                seq: seq.parse().unwrap_or_default(),
                ip: ip.to_owned(),
                role,
                jmx,
                exporter_port,
            });
        }
    }

    /// Writes `mysql/<cls>-<seq>` (labels `cls, ins, ip, topology`; no target when the
    /// exporter is off) and `kafka/<cls>-<seq>` (the JMX exporter with `role` and `node_id`,
    /// and the protocol exporter on the first two broker-capable members).
    pub(super) fn put(self, put: &mut Put) {
        for (cls, members) in &self.mysql {
            let topology = if members.len() == 1 {
                "standalone"
            } else {
                "innodb_cluster"
            };
            for m in members {
                let ins = format!("{cls}-{}", m.seq);
                let targets = if m.exporter {
                    vec![at(&m.ip, MYSQL_EXPORTER_PORT)]
                } else {
                    Vec::new()
                };
                let labels = [
                    ("cls", cls.as_str()),
                    ("ins", &ins),
                    ("ip", &m.ip),
                    ("topology", topology),
                ];
                put("mysql", ins.clone(), vec![group(&labels, targets)]);
            }
        }
        for (cls, members) in self.kafka {
            kafka(&cls, members, put);
        }
    }
}

/// The target files of one Kafka cluster.
fn kafka(cls: &str, mut members: Vec<Kafka>, put: &mut Put) {
    members.sort_by_key(|m| m.seq);
    let exporters: Vec<u64> = members
        .iter()
        .filter(|m| m.role != "controller")
        .take(KAFKA_EXPORTERS)
        .map(|m| m.seq)
        .collect();
    for m in &members {
        let ins = format!("{cls}-{}", m.seq);
        let node_id = m.seq.to_string();
        let mut groups = Vec::new();
        if let Some(port) = m.jmx {
            let instance = at(&m.ip, port);
            groups.push(group(
                &[
                    ("ip", &m.ip),
                    ("ins", &ins),
                    ("cls", cls),
                    ("role", &m.role),
                    ("node_id", &node_id),
                    ("instance", &instance),
                ],
                vec![instance.clone()],
            ));
        }
        if exporters.contains(&m.seq) {
            let instance = at(&m.ip, m.exporter_port);
            groups.push(group(
                &[
                    ("ip", &m.ip),
                    ("ins", &ins),
                    ("cls", cls),
                    ("instance", &instance),
                ],
                vec![instance.clone()],
            ));
        }
        put("kafka", ins, groups);
    }
}
