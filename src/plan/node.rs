//! Every node's own services wired to the infra (issue 14, docs/nodes.md): the `/etc/hosts`
//! block, the resolver, the chrony client, the local APT source, read from Pigsty's NODE
//! parameters with the same defaults and precedence (host var > group var > global var).
//!
//! Owns reading and checking those parameters into a [`NodeSettings`] per host. It does not
//! own the files (`render::node`) or the manifest's node part and probes (`bundle::node`).
//! Hosts whose NODE parameters come from the same places share one [`NodeSettings`]: a
//! 100,000-host inventory written with global variables is read a handful of times.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::read::Reader;
use super::{check, components, HostPlan};
use crate::problem::Problem;
use crate::profile::Inventory;

/// The parameters a node's settings are read from (their key paths say whether two hosts
/// share settings).
const KEYS: &[&str] = &[
    "admin_ip",
    "version",
    "node_write_etc_hosts",
    "node_default_etc_hosts",
    "node_etc_hosts",
    "node_dns_method",
    "node_dns_servers",
    "node_dns_options",
    "node_ntp_enabled",
    "node_ntp_servers",
    "node_repo_modules",
];

/// The resolver configuration of a node (`node_dns_method` other than `none`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dns {
    /// `overwrite` (the whole configuration) rather than `add` (lines above the host's own).
    pub overwrite: bool,
    /// `node_dns_servers`, expanded; never empty.
    pub servers: Vec<IpAddr>,
    /// `node_dns_options`: `resolv.conf` lines before the servers.
    pub options: Vec<String>,
}

/// What a node's bundle configures, read from its variables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeSettings {
    /// `admin_ip`.
    pub admin_ip: IpAddr,
    /// `version` (the manifest's version string).
    pub version: String,
    /// The `/etc/hosts` block: `node_default_etc_hosts` + `node_etc_hosts`, expanded and
    /// normalised to `IP name...`; empty when `node_write_etc_hosts` is false.
    pub hosts: Vec<String>,
    /// The resolver, unless `node_dns_method: none` or no server.
    pub dns: Option<Dns>,
    /// chrony source lines (regular nodes with `node_ntp_enabled`; empty otherwise: an infra
    /// host runs infragen's own chrony component).
    pub ntp: Vec<String>,
    /// The local APT repository's URL (`http://<admin_ip>/<repo_name>/`), when
    /// `node_repo_modules` has `local` and the admin node serves one (`repo_enabled`).
    pub repo: Option<String>,
}

/// One node of the inventory.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// Its inventory address.
    pub ip: IpAddr,
    /// Whether it is an infra host (its node part goes into its infra bundle).
    pub infra: bool,
    /// Its settings (shared with every host whose NODE parameters come from the same places).
    pub settings: Arc<NodeSettings>,
}

/// Where a node's settings come from: the key path of each of [`KEYS`], whether it is an infra
/// host, whether it is the admin node. Hosts of one origin have the same settings (and the
/// same problems).
type Origin = (Vec<String>, bool, bool);

/// Every node of the inventory with an address for a key, in address order; infra hosts
/// included. `hosts` are the infra hosts' plans (the admin node's repository).
pub(super) fn nodes(
    inventory: &Inventory,
    infra_hosts: &[&str],
    hosts: &[HostPlan],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Vec<NodePlan> {
    let mut seen: BTreeMap<Origin, (Arc<NodeSettings>, Vec<Problem>)> = BTreeMap::new();
    let mut out = Vec::new();
    let all = inventory.all_hosts();
    let members: std::collections::BTreeSet<&str> = all.iter().copied().collect();
    for host in all {
        let Ok(ip) = host.parse::<IpAddr>() else {
            continue; // reported where the inventory's hosts are checked
        };
        let infra = infra_hosts.contains(&host);
        let vars = inventory.resolve(host);
        let mut r = Reader::new(&vars, host, problems);
        let paths: Vec<String> = KEYS
            .iter()
            .map(|k| r.var(k).map(|v| v.path.clone()).unwrap_or_default())
            .collect();
        // The admin node's own settings differ (no `${admin_ip}` NTP source): part of the key.
        let admin_ip = admin_ip(&mut Reader::new(&vars, host, &mut Vec::new()), ip);
        let key = (paths, infra, ip == admin_ip);
        let settings = if let Some((s, found)) = seen.get(&key) {
            // The same problems, for this host too: a value wrong for several hosts is
            // reported once, without a host (`Problems::new`).
            r.problems
                .extend(found.iter().map(|p| p.clone().on_host(host)));
            Arc::clone(s)
        } else {
            let before = r.problems.len();
            let s = Arc::new(read(&mut r, ip, infra, hosts));
            warnings.extend(no_dnsmasq(&mut r, &s, &members, hosts));
            let found = r.problems[before..].to_vec();
            seen.insert(key, (Arc::clone(&s), found));
            s
        };
        out.push(NodePlan {
            ip,
            infra,
            settings,
        });
    }
    out
}

/// A warning for each name server that is a host of the inventory running no dnsmasq (an
/// admin node that is no infra host, as in `small-prod`): the nodes would ask it in vain.
fn no_dnsmasq(
    r: &mut Reader,
    s: &NodeSettings,
    members: &std::collections::BTreeSet<&str>,
    hosts: &[HostPlan],
) -> Vec<Problem> {
    let Some(dns) = &s.dns else {
        return Vec::new();
    };
    let path = r
        .var("node_dns_servers")
        .map(|v| v.path.clone())
        .unwrap_or_default();
    dns.servers
        .iter()
        .filter(|ip| {
            let text = ip.to_string();
            members.contains(text.as_str())
                && !hosts.iter().any(|h| h.ip == **ip && h.dnsmasq.is_some())
        })
        .map(|ip| {
            Problem::at(
                &path,
                format!("name server {ip} is a host of the inventory that runs no dnsmasq (not an infra host with `dns_enabled`); nodes would ask it in vain"),
            )
        })
        .collect()
}

/// `admin_ip`, or the host's own address after a problem.
fn admin_ip(r: &mut Reader, ip: IpAddr) -> IpAddr {
    r.ip("admin_ip").unwrap_or(ip)
}

/// One host's settings.
fn read(r: &mut Reader, ip: IpAddr, infra: bool, hosts: &[HostPlan]) -> NodeSettings {
    let admin_ip = admin_ip(r, ip);
    let version = r.string("version");
    if let Err(e) = check::name(&version) {
        let path = r.var("version").map(|v| v.path.clone()).unwrap_or_default();
        r.problem(&path, e);
    }
    let admin = admin_ip.to_string();
    let write_hosts = r.bool("node_write_etc_hosts");
    let mut lines = Vec::new();
    for key in ["node_default_etc_hosts", "node_etc_hosts"] {
        for (line, path) in r.strings(key) {
            if let Some(l) = hosts_line(r, &line.replace("${admin_ip}", &admin), &path) {
                lines.push(l);
            }
        }
    }
    let dns = dns(r, &admin);
    // Checked on every regular node, used when NTP is on (infra hosts read it for their chrony).
    let sources = if infra {
        Vec::new()
    } else {
        components::ntp_sources(r, ip, admin_ip)
    };
    let ntp = if r.bool("node_ntp_enabled") {
        sources
    } else {
        Vec::new()
    };
    let repo = repo(r, admin_ip, hosts);
    NodeSettings {
        admin_ip,
        version,
        hosts: if write_hosts { lines } else { Vec::new() },
        dns,
        ntp,
        repo,
    }
}

/// One `/etc/hosts` line `IP name...` (normalised to single spaces), or a problem at `path`.
fn hosts_line(r: &mut Reader, line: &str, path: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let addr_ok = words.first().is_some_and(|a| a.parse::<IpAddr>().is_ok());
    if !addr_ok || words.len() < 2 {
        r.problem(path, format!("`{line}` is not a hosts line (`IP name...`)"));
        return None;
    }
    if let Some(e) = words[1..].iter().find_map(|n| check::hostname(n).err()) {
        r.problem(path, e);
        return None;
    }
    Some(words.join(" "))
}

/// `node_dns_method`, `node_dns_servers` (addresses) and `node_dns_options`.
fn dns(r: &mut Reader, admin: &str) -> Option<Dns> {
    let method = r.choice("node_dns_method", &["add", "overwrite", "none"]);
    let mut servers = Vec::new();
    for (s, path) in r.strings("node_dns_servers") {
        let s = s.replace("${admin_ip}", admin);
        match s.trim().parse::<IpAddr>() {
            Ok(ip) => servers.push(ip),
            Err(_) => r.problem(
                &path,
                format!("`{s}` is not an IP address (a name server is an address)"),
            ),
        }
    }
    let mut options = Vec::new();
    for (line, path) in r.strings("node_dns_options") {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            Some(&("options" | "search" | "domain" | "sortlist")) if words.len() >= 2 => {
                options.push(words.join(" "));
            }
            _ => r.problem(
                &path,
                format!("`{line}` is not a resolver line (`options|search|domain|sortlist ...`)"),
            ),
        }
    }
    (method != "none" && !servers.is_empty()).then(|| Dns {
        overwrite: method == "overwrite",
        servers,
        options,
    })
}

/// The admin node's repository URL, when `node_repo_modules` names `local` and the admin node
/// (the infra host at `admin_ip`) serves one.
fn repo(r: &mut Reader, admin_ip: IpAddr, hosts: &[HostPlan]) -> Option<String> {
    let mut local = false;
    for (s, path) in r.strings("node_repo_modules") {
        for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if m == "local" {
                local = true;
            } else if check::name(m).is_err() {
                r.problem(&path, format!("`{m}` is not a repository module name"));
            }
        }
    }
    if !local {
        return None;
    }
    let admin = hosts.iter().find(|h| h.ip == admin_ip)?;
    let (_, name) = admin.nginx.as_ref()?.repo.as_ref()?;
    let host = match admin_ip {
        IpAddr::V4(_) => admin_ip.to_string(),
        IpAddr::V6(_) => format!("[{admin_ip}]"),
    };
    let port = match admin.ports.nginx {
        80 => String::new(),
        p => format!(":{p}"),
    };
    Some(format!("http://{host}{port}/{name}/"))
}

/// The portal's home domain as the admin node serves it (`i.pigsty` when it serves none).
pub fn home_domain(hosts: &[HostPlan], admin_ip: IpAddr) -> String {
    components::home_domain(
        hosts
            .iter()
            .find(|h| h.ip == admin_ip)
            .and_then(|h| h.nginx.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use super::super::resolve;
    use crate::problem::Problems;
    use crate::profile::parse;

    fn plan(text: &str) -> Result<super::super::Plan, Problems> {
        resolve(&parse("t.yml", text).expect("profile parses"))
    }

    /// An infra admin node, a second infra node without the repository, and a pgsql node with
    /// `extra` added to `all.vars`.
    fn profile(extra: &str) -> String {
        format!(
            "
all:
  children:
    infra:
      hosts:
        10.1.0.1: {{ infra_seq: 1 }}
        10.1.0.2: {{ infra_seq: 2, repo_enabled: false }}
    pg-meta:
      hosts: {{ 10.1.0.3: {{ pg_seq: 1, pg_role: primary, node_etc_hosts: ['10.1.0.9 own.pigsty'] }} }}
      vars: {{ pg_cluster: pg-meta }}
  vars:
    admin_ip: 10.1.0.1
    node_ntp_servers: ['pool pool.ntp.org iburst', 'server ${{admin_ip}} iburst']
{extra}"
        )
    }

    #[test]
    fn every_node_with_defaults_expanded_and_host_vars_first() {
        let p = plan(&profile("")).unwrap();
        let ips: Vec<String> = p.nodes.iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
        let infra: Vec<bool> = p.nodes.iter().map(|n| n.infra).collect();
        assert_eq!(infra, [true, true, false]);
        let pg = &p.nodes[2].settings;
        // node_default_etc_hosts, then the host's own node_etc_hosts.
        assert_eq!(pg.hosts, ["10.1.0.1 i.pigsty", "10.1.0.9 own.pigsty"]);
        let dns = pg.dns.as_ref().unwrap();
        assert!(!dns.overwrite);
        assert_eq!(
            dns.servers,
            ["10.1.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(dns.options, ["options single-request-reopen timeout:1"]);
        assert_eq!(
            pg.ntp,
            ["pool pool.ntp.org iburst", "server 10.1.0.1 iburst"]
        );
        assert_eq!(pg.repo.as_deref(), Some("http://10.1.0.1/pigsty/"));
        // Infra hosts run infragen's chrony component: no client configuration.
        assert!(p.nodes[0].settings.ntp.is_empty());
        assert_eq!(p.nodes[1].settings.hosts, ["10.1.0.1 i.pigsty"]);
    }

    #[test]
    fn the_admin_node_drops_its_own_ntp_source() {
        // A regular admin node (a controller that is no infra host), as in `small-prod`.
        let text = profile("").replace("admin_ip: 10.1.0.1", "admin_ip: 10.1.0.3");
        let p = plan(&text).unwrap();
        assert_eq!(p.nodes[2].settings.ntp, ["pool pool.ntp.org iburst"]);
        // No infra host at admin_ip serves a repository: no local APT source.
        assert_eq!(p.nodes[2].settings.repo, None);
        // Its resolver would be asked in vain: one warning, at the key that names it.
        let w: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            w,
            ["default:node_dns_servers: name server 10.1.0.3 is a host of the inventory that runs no dnsmasq (not an infra host with `dns_enabled`); nodes would ask it in vain"]
        );
        // An infra host with dnsmasq, or an address outside the inventory: no warning.
        for servers in ["['10.1.0.2']", "['192.0.2.53']"] {
            let p = plan(&format!("{text}    node_dns_servers: {servers}\n")).unwrap();
            assert!(p.warnings.is_empty(), "{servers}: {:?}", p.warnings);
        }
    }

    /// What a case expects of the pgsql node's settings.
    type Check = dyn Fn(&super::NodeSettings) -> bool;

    #[test]
    fn methods_switches_and_the_admin_repository() {
        let cases: &[(&str, &Check)] = &[
            ("    node_dns_method: none\n", &|s| s.dns.is_none()),
            ("    node_dns_method: overwrite\n", &|s| {
                s.dns.as_ref().is_some_and(|d| d.overwrite)
            }),
            ("    node_dns_servers: []\n", &|s| s.dns.is_none()),
            ("    node_write_etc_hosts: false\n", &|s| s.hosts.is_empty()),
            ("    node_ntp_enabled: false\n", &|s| s.ntp.is_empty()),
            ("    node_repo_modules: node,infra,pgsql\n", &|s| {
                s.repo.is_none()
            }),
            ("    node_repo_modules: 'node, local'\n", &|s| {
                s.repo.is_some()
            }),
            ("    repo_enabled: false\n", &|s| s.repo.is_none()),
            ("    nginx_port: 8080\n", &|s| {
                s.repo.as_deref() == Some("http://10.1.0.1:8080/pigsty/")
            }),
            ("    repo_name: local\n", &|s| {
                s.repo.as_deref() == Some("http://10.1.0.1/local/")
            }),
        ];
        for (extra, ok) in cases {
            let p = plan(&profile(extra)).unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert!(
                ok(&p.nodes[2].settings),
                "{extra}: {:?}",
                p.nodes[2].settings
            );
        }
    }

    #[test]
    fn bad_values_name_their_key_path() {
        let cases = [
            (
                "    node_dns_method: bogus\n",
                "all.vars.node_dns_method: `bogus` is not one of `add`, `overwrite`, `none`",
            ),
            (
                "    node_dns_servers: ['${admin_ip}', 'dns.example']\n",
                "all.vars.node_dns_servers[1]: `dns.example` is not an IP address (a name server is an address)",
            ),
            (
                "    node_etc_hosts: { a: b }\n",
                "expected a list of strings, found a mapping",
            ),
            (
                "    node_default_etc_hosts: ['i.pigsty ${admin_ip}']\n",
                "all.vars.node_default_etc_hosts[0]: `i.pigsty 10.1.0.1` is not a hosts line (`IP name...`)",
            ),
            (
                "    node_dns_options: ['nameserver 1.1.1.1']\n",
                "all.vars.node_dns_options[0]: `nameserver 1.1.1.1` is not a resolver line",
            ),
            (
                "    node_write_etc_hosts: maybe\n",
                "all.vars.node_write_etc_hosts: expected a boolean, found `maybe`",
            ),
        ];
        for (extra, want) in cases {
            let e = plan(&profile(extra)).expect_err(extra).to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        // A non-list `node_etc_hosts` on a host is reported at that host's key.
        let text = profile("").replace(
            "node_etc_hosts: ['10.1.0.9 own.pigsty']",
            "node_etc_hosts: { own: 10.1.0.9 }",
        );
        let e = plan(&text).expect_err("a mapping").to_string();
        assert!(
            e.contains(r#"all.children.pg-meta.hosts."10.1.0.3".node_etc_hosts (host `10.1.0.3`): expected a list of strings, found a mapping"#),
            "{e}"
        );
    }

    #[test]
    fn a_group_value_wrong_for_every_member_is_reported_once_without_a_host() {
        let text = "
all:
  children:
    infra: { hosts: { 10.1.0.1: { infra_seq: 1 } } }
    pg:
      hosts: { 10.1.0.2: { pg_seq: 1 }, 10.1.0.3: { pg_seq: 2 } }
      vars: { pg_cluster: pg, node_dns_servers: [nope] }
  vars: { admin_ip: 10.1.0.1 }
";
        let e = plan(text).expect_err("not an address").to_string();
        assert_eq!(
            e,
            "t.yml: 1 problem in profile\n  t.yml:7:50: all.children.pg.vars.node_dns_servers[0]: `nope` is not an IP address (a name server is an address)"
        );
    }

    #[test]
    fn hosts_reading_the_same_places_share_settings() {
        let text = profile("").replace(
            "    pg-meta:",
            "    etcd: { hosts: { 10.1.0.4: { etcd_seq: 1 }, 10.1.0.5: { etcd_seq: 2 } }, vars: { etcd_cluster: etcd } }\n    pg-meta:",
        );
        let p = plan(&text).unwrap();
        let (a, b, pg) = (&p.nodes[3], &p.nodes[4], &p.nodes[2]);
        assert_eq!(
            (a.ip.to_string(), b.ip.to_string()),
            ("10.1.0.4".into(), "10.1.0.5".into())
        );
        assert!(std::sync::Arc::ptr_eq(&a.settings, &b.settings));
        // The pgsql node has its own `node_etc_hosts`: its own settings.
        assert!(!std::sync::Arc::ptr_eq(&a.settings, &pg.settings));
        assert_eq!(a.settings.hosts, ["10.1.0.1 i.pigsty"]);
    }
}
