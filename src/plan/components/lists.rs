//! Settings read entry by entry from profile lists and maps, each bad entry reported on its own
//! and left out: `pg_exporters` (the `pgrds` scrape targets of `VictoriaMetrics`), `dns_records`
//! (dnsmasq hosts files) and `node_ntp_servers`/`chrony_allow` (chrony).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{listen, Chrony, Dnsmasq};
use crate::plan::read::Reader;
use crate::plan::{check, TargetGroup};
use crate::profile::Inventory;

/// `pg_exporters` on this infra host: remote `PostgreSQL` monitored from here (`pgrds`).
pub(super) fn pgrds(r: &mut Reader, ip: IpAddr) -> BTreeMap<String, Vec<TargetGroup>> {
    let mut out: BTreeMap<String, Vec<TargetGroup>> = BTreeMap::new();
    let Some(var) = r.var("pg_exporters") else {
        return out;
    };
    let Some(map) = var.value.as_mapping() else {
        return out;
    };
    for (k, v) in map {
        let key = crate::keypath::join(
            &var.path,
            crate::yaml::to_string(k).unwrap_or_default().trim(),
        );
        let port = match k {
            crate::yaml::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|p| *p > 0),
            _ => None,
        };
        let Some(port) = port else {
            r.problem(&key, "`pg_exporters` keys must be local exporter ports");
            continue;
        };
        let get = |f: &str| {
            v.get(f).map(|x| {
                crate::yaml::to_string(x)
                    .unwrap_or_default()
                    .trim()
                    .trim_matches('\'')
                    .to_owned()
            })
        };
        let (Some(cls), Some(seq), Some(host)) = (get("pg_cluster"), get("pg_seq"), get("pg_host"))
        else {
            r.problem(
                &key,
                "a `pg_exporters` entry needs `pg_cluster`, `pg_seq` and `pg_host`",
            );
            continue;
        };
        // `pg_host` is the exporter's connection host and the targets' `ip` label: an address,
        // or a DNS name (a managed database's endpoint, Pigsty's RDS example).
        let host = match host.parse::<IpAddr>() {
            Ok(addr) => Ok(addr.to_string()),
            // A name whose last label is all digits is a mistyped address (`10.0.0.300`).
            Err(_)
                if host
                    .rsplit('.')
                    .next()
                    .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) =>
            {
                Err(format!("`pg_host` `{host}` is not an IP address"))
            }
            Err(_) => check::hostname(&host)
                .map(|()| host.clone())
                .map_err(|_| format!("`pg_host` `{host}` is neither an IP address nor a DNS name")),
        };
        let host = match check::hostname(&cls).and(host) {
            Ok(host) => host,
            Err(e) => {
                r.problem(&key, e);
                continue;
            }
        };
        let ins = format!("{cls}-{seq}");
        let mut labels = BTreeMap::new();
        labels.insert("cls".to_owned(), cls.clone());
        labels.insert("ins".to_owned(), ins);
        labels.insert("ip".to_owned(), host);
        out.entry(cls).or_default().push(TargetGroup {
            labels,
            targets: vec![listen(ip, port)],
        });
    }
    out
}

pub(super) fn dnsmasq(
    r: &mut Reader,
    ip: IpAddr,
    admin_ip: IpAddr,
    port: u16,
    shared: &BTreeMap<String, Vec<String>>,
) -> Dnsmasq {
    let mut listen = vec![ip];
    let loopback: IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    if !ip.is_loopback() {
        listen.insert(0, loopback);
    }
    let mut records = shared.clone();
    let mut lines = Vec::new();
    for (line, path) in r.strings("dns_records") {
        let line = line.replace("${admin_ip}", &admin_ip.to_string());
        let mut words = line.split_whitespace();
        let addr_ok = words.next().is_some_and(|a| a.parse::<IpAddr>().is_ok());
        let names: Vec<&str> = words.collect();
        if !addr_ok || names.is_empty() {
            r.problem(&path, format!("`{line}` is not a hosts line (`IP name…`)"));
            continue;
        }
        if let Some(e) = names.iter().find_map(|n| check::hostname(n).err()) {
            r.problem(&path, e);
            continue;
        }
        lines.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    records.insert("default".to_owned(), lines);
    Dnsmasq {
        listen,
        port,
        records,
    }
}

/// `node_ntp_servers` of host `ip`: chrony source lines, `${admin_ip}` expanded, a line naming
/// `${admin_ip}` dropped on the admin node itself (it never syncs from itself), as Pigsty's NODE
/// role does. Shared by infra hosts' chrony and the other nodes' chrony client.
pub(in crate::plan) fn ntp_sources(r: &mut Reader, ip: IpAddr, admin_ip: IpAddr) -> Vec<String> {
    let admin = admin_ip.to_string();
    let mut sources = Vec::new();
    for (line, path) in r.strings("node_ntp_servers") {
        if line.contains("${admin_ip}") && ip == admin_ip {
            continue; // never sync the admin node from itself
        }
        let line = line.replace("${admin_ip}", &admin);
        let words: Vec<&str> = line.split_whitespace().collect();
        let ok = words.len() >= 2
            && ["server", "pool", "peer"].contains(&words[0])
            && (words[1].parse::<IpAddr>().is_ok() || check::hostname(words[1]).is_ok())
            && words[2..].iter().all(|w| {
                w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            });
        if ok {
            sources.push(words.join(" "));
        } else {
            r.problem(
                &path,
                format!("`{line}` is not a chrony source (`server|pool|peer HOST [options]`)"),
            );
        }
    }
    sources
}

pub(super) fn chrony(
    r: &mut Reader,
    ip: IpAddr,
    admin_ip: IpAddr,
    inventory: &Inventory,
) -> Chrony {
    let sources = ntp_sources(r, ip, admin_ip);
    let mut allow = Vec::new();
    let explicit = r.strings("chrony_allow");
    if explicit.is_empty() {
        let mut nets: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        nets.insert("127.0.0.1/32".to_owned());
        for h in inventory.all_hosts() {
            if let Ok(IpAddr::V4(v4)) = h.parse::<IpAddr>() {
                let o = v4.octets();
                nets.insert(format!("{}.{}.{}.0/24", o[0], o[1], o[2]));
            }
        }
        allow.extend(nets);
    } else {
        for (net, path) in explicit {
            let (addr, prefix) = net.split_once('/').unwrap_or((&net, "32"));
            let max = match addr.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => 32,
                Ok(IpAddr::V6(_)) => 128,
                Err(_) => 0,
            };
            let ok = max > 0 && prefix.parse::<u8>().is_ok_and(|p| p <= max);
            if ok {
                allow.push(net.clone());
            } else {
                r.problem(
                    &path,
                    format!("`{net}` is not a network (`address/prefix`)"),
                );
            }
        }
    }
    Chrony {
        sources,
        allow,
        bind: ip,
        control_clock: r.bool("chrony_control_clock"),
    }
}
