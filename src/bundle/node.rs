//! A bundle's node part (docs/nodes.md): the rendered node files copied to `node/<name>`, the
//! host path, place and condition of each, and the probes that say they work.
//!
//! Owns which host path each node file goes to and which probes a node gets. Not the files'
//! content (`render::node`) nor how activation places them (`activate`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::manifest::{HostFile, Node, NodeProbe, Place, When};
use crate::plan::{NodePlan, Plan, SslMode};
use crate::render::node as file;
use crate::tree::Tree;

/// Every node file name with its host path, place and condition, as `n` has it.
fn placements(n: &NodePlan) -> [(&'static str, &'static str, Place, When); 6] {
    let resolv = if n.settings.dns.as_ref().is_some_and(|d| d.overwrite) {
        Place::Whole
    } else {
        Place::Top
    };
    [
        (file::HOSTS, "/etc/hosts", Place::Block, When::Always),
        (file::RESOLV, "/etc/resolv.conf", resolv, When::NoResolved),
        (
            file::RESOLVED,
            "/etc/systemd/resolved.conf.d/infragen.conf",
            Place::Whole,
            When::Resolved,
        ),
        (
            file::CHRONY,
            "/etc/chrony/chrony.conf",
            Place::Whole,
            When::Always,
        ),
        (
            file::SOURCES,
            "/etc/apt/sources.list.d/infragen.sources",
            Place::Whole,
            When::Always,
        ),
        (
            file::CA,
            "/usr/local/share/ca-certificates/infragen-ca.crt",
            Place::Whole,
            When::Always,
        ),
    ]
}

/// Node `n`'s part: its files from `tree` (`<host>/node/<name>`) added to `out` as
/// `node/<name>`, and its probes; `None` when it has no file.
pub fn part(plan: &Plan, n: &NodePlan, tree: &Tree, out: &mut Tree) -> Option<Node> {
    let mut files = BTreeMap::new();
    for (name, path, place, when) in placements(n) {
        let Some(e) = tree.get(&format!("{}/node/{name}", n.ip)) else {
            continue;
        };
        let source = format!("node/{name}");
        out.add(source.clone(), 0o644, e.data.clone());
        files.insert(
            path.to_owned(),
            HostFile {
                source,
                place,
                mode: 0o644,
                when,
            },
        );
    }
    if files.is_empty() {
        return None;
    }
    let probes = probes(plan, n, files.contains_key(HOST_CA));
    Some(Node { files, probes })
}

const HOST_CA: &str = "/usr/local/share/ca-certificates/infragen-ca.crt";

/// The probes of node `n` (`ca`: its CA file is installed). An infra host gets only `hosts`:
/// the others need another host (the admin node's dnsmasq, chrony, nginx) that may not be
/// activated yet when this one is.
pub fn probes(plan: &Plan, n: &NodePlan, ca: bool) -> Vec<NodeProbe> {
    let s = &n.settings;
    let mut out = Vec::new();
    // The hosts block's first name, resolved by the system resolver.
    let first = s.hosts.first().and_then(|l| {
        let mut w = l.split_whitespace();
        Some((w.next()?.to_owned(), w.next()?.to_owned()))
    });
    if let Some((address, name)) = &first {
        out.push(NodeProbe::Hosts {
            name: name.clone(),
            address: address.clone(),
        });
    }
    if n.infra {
        return out;
    }
    let domain = crate::plan::home_domain(&plan.hosts, s.admin_ip);
    if let Some(server) = s.dns.as_ref().and_then(|d| d.servers.first()) {
        let at = std::net::SocketAddr::new(*server, 53).to_string();
        if serves_record(plan, *server, &domain, s.admin_ip) {
            out.push(NodeProbe::Dns {
                server: at,
                name: domain.clone(),
                address: s.admin_ip.to_string(),
            });
        } else {
            // Not an infra host's dnsmasq: it cannot be asked for the infra's names, but it
            // must answer (a resolver pointed where no server runs fails).
            out.push(NodeProbe::Answers { server: at });
        }
    }
    // The sources given by address (the infra nodes, as `server ${admin_ip} iburst`): a name
    // (`pool pool.ntp.org`) is listed by the addresses it resolves to, which no bundle knows.
    let sources: Vec<String> = s
        .ntp
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|h| h.parse::<IpAddr>().is_ok())
        .map(str::to_owned)
        .collect();
    if !sources.is_empty() {
        out.push(NodeProbe::Chrony { sources });
    }
    if s.repo.is_some() {
        out.push(NodeProbe::Apt {
            source: "/etc/apt/sources.list.d/infragen.sources".to_owned(),
        });
    }
    if ca {
        if let Some(url) = https_url(plan, n, &domain) {
            out.push(NodeProbe::Https { url });
        }
    }
    out
}

/// Whether the infra host at `server` runs dnsmasq on port 53 with the record `name` →
/// `address`.
fn serves_record(plan: &Plan, server: IpAddr, name: &str, address: IpAddr) -> bool {
    let Some(d) = plan
        .hosts
        .iter()
        .find(|h| h.ip == server)
        .and_then(|h| h.dnsmasq.as_ref())
    else {
        return false;
    };
    d.port == 53
        && d.records.values().flatten().any(|line| {
            let mut w = line.split_whitespace();
            w.next().and_then(|a| a.parse::<IpAddr>().ok()) == Some(address) && w.any(|x| x == name)
        })
}

/// `https://<home domain>/` when the hosts block resolves the home domain to an infra host
/// whose nginx serves HTTPS.
fn https_url(plan: &Plan, n: &NodePlan, domain: &str) -> Option<String> {
    let address: IpAddr = n.settings.hosts.iter().find_map(|l| {
        let mut w = l.split_whitespace();
        let a = w.next()?;
        w.any(|x| x == domain).then(|| a.parse().ok())?
    })?;
    let h = plan.hosts.iter().find(|h| h.ip == address)?;
    let nginx = h.nginx.as_ref()?;
    if nginx.sslmode == SslMode::Disable {
        return None;
    }
    let port = match h.ports.nginx_ssl {
        443 => String::new(),
        p => format!(":{p}"),
    };
    Some(format!("https://{domain}{port}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probes of node `ip` of a profile of one infra admin node and one pgsql node, with
    /// `extra` in `all.vars` (the CA installed).
    fn probes_of(extra: &str, ip: &str) -> Vec<NodeProbe> {
        let text = format!(
            "
all:
  children:
    infra: {{ hosts: {{ 10.1.0.1: {{ infra_seq: 1 }} }} }}
    pg: {{ hosts: {{ 10.1.0.2: {{ pg_seq: 1, pg_role: primary }} }}, vars: {{ pg_cluster: pg }} }}
  vars:
    admin_ip: 10.1.0.1
{extra}"
        );
        let plan = crate::plan::resolve(&crate::profile::parse("t.yml", &text).unwrap()).unwrap();
        let n = plan.node(ip.parse().unwrap()).unwrap();
        probes(&plan, n, true)
    }

    fn kinds(p: &[NodeProbe]) -> Vec<&'static str> {
        p.iter()
            .map(|p| match p {
                NodeProbe::Hosts { .. } => "hosts",
                NodeProbe::Dns { .. } => "dns",
                NodeProbe::Answers { .. } => "answers",
                NodeProbe::Chrony { .. } => "chrony",
                NodeProbe::Apt { .. } => "apt",
                NodeProbe::Https { .. } => "https",
            })
            .collect()
    }

    #[test]
    fn each_probe_only_where_it_can_pass() {
        let ntp = "    node_ntp_servers: ['server ${admin_ip} iburst']\n";
        let cases: &[(&str, &str, &[&str])] = &[
            // Defaults: the pools are names, so no chrony probe.
            ("", "10.1.0.2", &["hosts", "dns", "apt", "https"]),
            (ntp, "10.1.0.2", &["hosts", "dns", "chrony", "apt", "https"]),
            // An infra host: the hosts probe alone.
            (ntp, "10.1.0.1", &["hosts"]),
            (
                "    node_dns_method: none\n",
                "10.1.0.2",
                &["hosts", "apt", "https"],
            ),
            // The first server runs no dnsmasq: it must answer, nothing more.
            (
                "    node_dns_servers: ['10.1.0.2']\n",
                "10.1.0.2",
                &["hosts", "answers", "apt", "https"],
            ),
            // dnsmasq has no record of the home domain.
            (
                "    dns_records: []\n",
                "10.1.0.2",
                &["hosts", "answers", "apt", "https"],
            ),
            (
                "    nginx_sslmode: disable\n",
                "10.1.0.2",
                &["hosts", "dns", "apt"],
            ),
            (
                "    repo_enabled: false\n",
                "10.1.0.2",
                &["hosts", "dns", "https"],
            ),
            (
                "    node_write_etc_hosts: false\n",
                "10.1.0.2",
                &["dns", "apt"],
            ),
        ];
        for (extra, ip, want) in cases {
            assert_eq!(kinds(&probes_of(extra, ip)), *want, "{extra}");
        }
        let p = probes_of("    nginx_ssl_port: 8443\n", "10.1.0.2");
        assert_eq!(
            p.last(),
            Some(&NodeProbe::Https {
                url: "https://i.pigsty:8443/".into()
            })
        );
    }
}
