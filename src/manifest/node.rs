//! The node part of a manifest: files of the host's own services (the hosts file, the
//! resolver, the clock, the package sources, the trust store) that a generation owns, and the
//! probes that say they work (issue 14, docs/nodes.md).
//!
//! A bundle can only name the host paths of [`MANAGED`], each placed the ways that table
//! allows; what activation runs after a change (`update-ca-certificates`, a restart of chrony
//! or systemd-resolved) follows from the path, never from the bundle.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// How a host file's content is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// The file is the content (what was there before is kept to restore).
    Whole,
    /// The content is a managed block at the end of the file; the rest is left as it is.
    Block,
    /// The content is a managed block at the top of the file (resolver lines that must come
    /// first); the rest is left as it is.
    Top,
}

/// When a host file applies, by what the host runs (decided on the host at activation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// On every host.
    Always,
    /// Only where systemd-resolved manages `/etc/resolv.conf` (a link into
    /// `/run/systemd/resolve/`).
    Resolved,
    /// Only where it does not.
    NoResolved,
}

/// One host file a generation owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// The bundle file holding the content (`node/<name>`); for a block, its lines.
    pub source: String,
    /// How it is placed.
    pub place: Place,
    /// The mode of a whole file (a block keeps the file's own).
    #[serde(with = "super::octal")]
    pub mode: u32,
    /// When it applies.
    pub when: When,
}

/// A probe of the node part, run after the switch on a host driven by systemd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum NodeProbe {
    /// The system resolver (`/etc/hosts` first, as `getent hosts`) gives `address` for `name`.
    Hosts {
        /// A host name.
        name: String,
        /// The address it must give.
        address: String,
    },
    /// A DNS query for `name` at `server` (`ip:port`) answers `address`.
    Dns {
        /// `ip:port`.
        server: String,
        /// A host name.
        name: String,
        /// The address it must answer.
        address: String,
    },
    /// A DNS server answers at `server` (`ip:port`): any reply, an error code included (a
    /// server that is not the infra's, which cannot be asked for the infra's names).
    Answers {
        /// `ip:port`.
        server: String,
    },
    /// `chronyc -n sources` lists every one of `sources`.
    Chrony {
        /// Addresses or names.
        sources: Vec<String>,
    },
    /// `apt-get update` reads `source` (a host file of this node part) alone, without error.
    Apt {
        /// The APT source's host path.
        source: String,
    },
    /// `curl` fetches `url` (`https://`) verifying it with the system trust store only.
    Https {
        /// The URL.
        url: String,
    },
}

/// The node part of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Host files by absolute path.
    pub files: BTreeMap<String, HostFile>,
    /// Probes, in order.
    pub probes: Vec<NodeProbe>,
}

/// The host paths a node part may own, and how each may be placed.
pub const MANAGED: &[(&str, &[Place])] = &[
    ("/etc/hosts", &[Place::Block]),
    ("/etc/resolv.conf", &[Place::Top, Place::Whole]),
    (
        "/etc/systemd/resolved.conf.d/infragen.conf",
        &[Place::Whole],
    ),
    ("/etc/chrony/chrony.conf", &[Place::Whole]),
    ("/etc/apt/sources.list.d/infragen.sources", &[Place::Whole]),
    (
        "/usr/local/share/ca-certificates/infragen-ca.crt",
        &[Place::Whole],
    ),
];

/// A host name as a probe may name one: letters, digits, `-`, `.`, `_`, starting with a letter
/// or digit (never read as an option).
fn plain_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl Node {
    /// Checks the paths against [`MANAGED`], the sources against the bundle's files, the
    /// probes' addresses and names. `has_file` says whether a bundle file is listed.
    pub fn check(&self, has_file: &dyn Fn(&str) -> bool) -> Result<()> {
        for (path, f) in &self.files {
            let Some((_, places)) = MANAGED.iter().find(|(p, _)| p == path) else {
                bail!(
                    "`node.files`: `{}` is not a host file infragen manages ({})",
                    path.escape_debug(),
                    MANAGED
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            if !places.contains(&f.place) {
                bail!(
                    "`node.files.{path}.place`: `{:?}` is not allowed here",
                    f.place
                );
            }
            if !f.source.starts_with("node/") || !has_file(&f.source) {
                bail!(
                    "`node.files.{path}.source`: `{}` is not a `node/` file among the bundle's files",
                    f.source.escape_debug()
                );
            }
            if f.mode & 0o022 != 0 {
                bail!(
                    "`node.files.{path}.mode`: {:04o} is group- or world-writable",
                    f.mode
                );
            }
        }
        for (i, p) in self.probes.iter().enumerate() {
            let at = format!("`node.probes[{i}]`");
            let ip = |a: &str| a.parse::<std::net::IpAddr>().is_ok();
            match p {
                NodeProbe::Hosts { name, address } => {
                    if !plain_name(name) || !ip(address) {
                        bail!("{at}: `{name}` → `{address}` is not a host name and an address");
                    }
                }
                NodeProbe::Dns {
                    server,
                    name,
                    address,
                } => {
                    if server.parse::<SocketAddr>().is_err() || !plain_name(name) || !ip(address) {
                        bail!("{at}: `{server}`, `{name}`, `{address}`: not an ip:port, a host name and an address");
                    }
                }
                NodeProbe::Answers { server } => {
                    if server.parse::<SocketAddr>().is_err() {
                        bail!("{at}: `{server}` is not an ip:port");
                    }
                }
                NodeProbe::Chrony { sources } => {
                    if sources.is_empty() || !sources.iter().all(|s| plain_name(s)) {
                        bail!("{at}: the sources are not host names or addresses");
                    }
                }
                NodeProbe::Apt { source } => {
                    if !self.files.contains_key(source) || !source.starts_with("/etc/apt/") {
                        bail!(
                            "{at}: `{}` is not an APT source of `node.files`",
                            source.escape_debug()
                        );
                    }
                }
                NodeProbe::Https { url } => {
                    let host = url
                        .strip_prefix("https://")
                        .map(|r| r.split('/').next().unwrap_or(""));
                    let ok = host.is_some_and(|h| {
                        let h = h.rsplit_once(':').map_or(h, |(h, port)| {
                            if port.parse::<u16>().is_ok() {
                                h
                            } else {
                                ""
                            }
                        });
                        plain_name(h)
                    }) && url.bytes().all(|b| b.is_ascii_graphic());
                    if !ok {
                        bail!("{at}: `{}` is not an https:// URL", url.escape_debug());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, place: Place, source: &str) -> Node {
        Node {
            files: [(
                path.to_owned(),
                HostFile {
                    source: source.to_owned(),
                    place,
                    mode: 0o644,
                    when: When::Always,
                },
            )]
            .into(),
            probes: vec![],
        }
    }

    #[test]
    fn a_node_part_names_only_the_paths_infragen_manages() {
        let listed = |f: &str| f == "node/hosts";
        node("/etc/hosts", Place::Block, "node/hosts")
            .check(&listed)
            .unwrap();
        for (path, place, source, why) in [
            (
                "/etc/shadow",
                Place::Whole,
                "node/hosts",
                "not a host file infragen manages",
            ),
            (
                "/etc/hosts/../shadow",
                Place::Block,
                "node/hosts",
                "not a host file infragen manages",
            ),
            (
                "/etc/hosts",
                Place::Whole,
                "node/hosts",
                "is not allowed here",
            ),
            (
                "/etc/hosts",
                Place::Block,
                "node/other",
                "not a `node/` file among the bundle's files",
            ),
            ("/etc/hosts", Place::Block, "units/x", "not a `node/` file"),
        ] {
            let e = node(path, place, source)
                .check(&listed)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{path} {place:?} {source}: {e}");
        }
        let mut n = node("/etc/hosts", Place::Block, "node/hosts");
        n.files.get_mut("/etc/hosts").unwrap().mode = 0o666;
        assert!(n
            .check(&listed)
            .unwrap_err()
            .to_string()
            .contains("world-writable"));
    }

    #[test]
    fn probes_name_addresses_and_host_names_only() {
        let listed = |_: &str| true;
        let with = |p: NodeProbe| Node {
            files: BTreeMap::new(),
            probes: vec![p],
        };
        let good = [
            NodeProbe::Hosts {
                name: "i.pigsty".into(),
                address: "10.10.10.10".into(),
            },
            NodeProbe::Dns {
                server: "10.10.10.10:53".into(),
                name: "i.pigsty".into(),
                address: "10.10.10.10".into(),
            },
            NodeProbe::Chrony {
                sources: vec!["10.10.10.10".into()],
            },
            NodeProbe::Https {
                url: "https://i.pigsty/".into(),
            },
            NodeProbe::Https {
                url: "https://i.pigsty:8443/x".into(),
            },
        ];
        for p in good {
            with(p.clone())
                .check(&listed)
                .unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
        let bad = [
            NodeProbe::Hosts {
                name: "i.pigsty;rm -rf /".into(),
                address: "10.10.10.10".into(),
            },
            NodeProbe::Hosts {
                name: "i.pigsty".into(),
                address: "ten".into(),
            },
            NodeProbe::Dns {
                server: "10.10.10.10".into(),
                name: "i.pigsty".into(),
                address: "10.10.10.10".into(),
            },
            NodeProbe::Chrony { sources: vec![] },
            NodeProbe::Chrony {
                sources: vec!["-a".into(), "x y".into()],
            },
            NodeProbe::Apt {
                source: "/etc/apt/sources.list.d/infragen.sources".into(),
            },
            NodeProbe::Https {
                url: "http://i.pigsty/".into(),
            },
            NodeProbe::Https {
                url: "https://i.pigsty/ -k".into(),
            },
            NodeProbe::Https {
                url: "https://-k/".into(),
            },
        ];
        for p in bad {
            assert!(with(p.clone()).check(&listed).is_err(), "{p:?}");
        }
    }
}
