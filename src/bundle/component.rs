//! What one component needs on its host, whatever the runtime: its command line, state
//! volumes, health probe and sandbox class (docs/reliability.md budgets).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::image::Recipe;
use crate::manifest::{Probe, Volume};
use crate::plan::{Component, HostPlan, Plan};

/// Quotes one argument for an `ExecStart=` line (systemd.service(5) "Command lines"):
/// `%` and `$` are doubled, and a word with anything but safe characters is double-quoted.
pub fn systemd_arg(a: &str) -> String {
    let a = a.replace('%', "%%").replace('$', "$$");
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c))
    {
        a
    } else {
        format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// State directories of a component: `/infra/<x>` maps to `<infra_data>/<x>` (Pigsty's layout),
/// the web root to `nginx_home`, anything else to `<infra_data>/<component><path>`.
pub fn volumes(h: &HostPlan, c: Component, r: &Recipe) -> Vec<Volume> {
    r.volumes
        .iter()
        .map(|v| {
            let (host, read_only) = if let Some(rest) = v.strip_prefix("/infra/") {
                (format!("{}/{rest}", h.infra_data), false)
            } else if v == "/www" {
                (
                    h.nginx
                        .as_ref()
                        .map_or_else(|| "/www".to_owned(), |n| n.home.clone()),
                    true,
                )
            } else {
                (format!("{}/{}{v}", h.infra_data, c.name()), false)
            };
            Volume {
                host,
                path: v.clone(),
                uid: r.user.uid,
                gid: r.user.gid,
                read_only,
            }
        })
        .collect()
}

fn addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

/// The probe of a component on a host.
pub fn probe(h: &HostPlan, r: &Recipe) -> Option<Probe> {
    // `recipes()` refuses an `http` or `dns` probe without a port.
    let port = r.health.port.map(|p| h.ports.get(p));
    if let Some(path) = &r.health.http {
        return Some(Probe::Http {
            address: addr(h.ip, port?),
            path: path.clone(),
        });
    }
    if r.health.dns.is_some() {
        let name = h
            .dnsmasq
            .as_ref()
            .and_then(|d| d.records.get("default"))
            .and_then(|l| l.first())
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("localhost")
            .to_owned();
        return Some(Probe::Dns {
            address: addr(h.ip, port?),
            name,
        });
    }
    r.health.ntp.filter(|n| *n).map(|_| Probe::Ntp {
        address: addr(h.ip, 123),
    })
}

/// The hardening class of a component (docs/reliability.md budgets).
pub(super) struct Sandbox {
    pub caps: &'static str,
    pub families: &'static str,
    pub private_users: bool,
    pub loopback: bool,
    pub clock: bool,
}

pub(super) fn sandbox(c: Component, steers_clock: bool) -> Sandbox {
    let backend = Sandbox {
        caps: "",
        families: "AF_INET AF_INET6",
        private_users: true,
        loopback: true,
        clock: false,
    };
    match c {
        Component::Nginx => Sandbox {
            caps: "CAP_NET_BIND_SERVICE",
            private_users: false,
            loopback: false,
            ..backend
        },
        Component::Dnsmasq => Sandbox {
            caps: "CAP_NET_BIND_SERVICE",
            families: "AF_INET AF_INET6 AF_NETLINK",
            private_users: false,
            loopback: false,
            clock: false,
        },
        // chronyd's only command socket is a Unix socket in its state directory (`cmdport 0`,
        // `bindcmdaddress /var/lib/chrony/cmd/chronyd.sock`): AF_UNIX, no command port.
        Component::Chrony if steers_clock => Sandbox {
            caps: "CAP_NET_BIND_SERVICE CAP_SYS_TIME",
            families: "AF_INET AF_INET6 AF_UNIX",
            private_users: false,
            loopback: false,
            clock: true,
        },
        Component::Chrony => Sandbox {
            caps: "CAP_NET_BIND_SERVICE",
            families: "AF_INET AF_INET6 AF_UNIX",
            private_users: false,
            loopback: false,
            clock: false,
        },
        Component::Blackbox => Sandbox {
            caps: "CAP_NET_RAW",
            private_users: false,
            loopback: false,
            ..backend
        },
        _ => backend,
    }
}

/// Networks a loopback-only backend may talk to: loopback and the inventory's /24s.
pub(super) fn allow_list(plan: &Plan) -> String {
    let mut nets: BTreeSet<String> = BTreeSet::new();
    nets.insert("localhost".to_owned());
    for h in &plan.hosts {
        if let Some(c) = &h.chrony {
            nets.extend(c.allow.iter().cloned());
        }
        match h.ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                nets.insert(format!("{}.{}.{}.0/24", o[0], o[1], o[2]));
            }
            IpAddr::V6(v6) => {
                nets.insert(format!("{v6}/64"));
            }
        }
    }
    nets.into_iter().collect::<Vec<_>>().join(" ")
}

/// The entrypoint and arguments of a component on a host.
pub fn image_args(h: &HostPlan, c: Component, r: &Recipe) -> Vec<String> {
    let mut args = r.entrypoint.clone();
    args.extend(h.flags(c, r));
    args
}
