//! The files of a node part (docs/nodes.md): `node/<name>` under each host of the tree, one
//! per host file it configures. Each holds exactly what activation places: the lines of a
//! block (activation adds the markers), or a whole file.
//!
//! Owns the files' content. The host paths, places and probes they go with are the manifest's
//! node part (`bundle::node`); the CA certificate comes from the PKI ([`add_ca`]).

use std::fmt::Write as _;

use crate::plan::{NodePlan, Plan};
use crate::tree::Tree;

/// The `/etc/hosts` block's lines.
pub const HOSTS: &str = "hosts";
/// `/etc/resolv.conf` (a block at the top for `add`, the whole file for `overwrite`).
pub const RESOLV: &str = "resolv.conf";
/// The systemd-resolved drop-in.
pub const RESOLVED: &str = "resolved.conf";
/// The chrony client configuration.
pub const CHRONY: &str = "chrony.conf";
/// The deb822 APT source of the local repository.
pub const SOURCES: &str = "infragen.sources";
/// The CA certificate for the system trust store.
pub const CA: &str = "infragen-ca.crt";

/// chrony's settings after the sources: its drift file, a step of the clock only while it is
/// more than a second off in the first three updates, its log directory. Nothing opens chrony
/// to the network (no `allow`): a node is a client only.
const CHRONY_TAIL: &str =
    "driftfile /var/lib/chrony/chrony.drift\nmakestep 1 3\nlogdir /var/log/chrony\n";

/// The node files of every node of `plan`: `<host>/node/<name>`.
pub fn plan(plan: &Plan, tree: &mut Tree) {
    for n in &plan.nodes {
        tree.graft(&format!("{}/node", n.ip), node(n));
    }
}

/// The node files of one node: `<name>` (the CA apart).
pub fn node(n: &NodePlan) -> Tree {
    let s = &n.settings;
    let mut t = Tree::default();
    if !s.hosts.is_empty() {
        t.add(HOSTS.to_owned(), 0o644, lines(&s.hosts));
    }
    if let Some(dns) = &s.dns {
        let mut resolv = lines(&dns.options);
        for server in &dns.servers {
            let _ = writeln!(resolv, "nameserver {server}");
        }
        t.add(RESOLV.to_owned(), 0o644, resolv);
        let servers: Vec<String> = dns.servers.iter().map(ToString::to_string).collect();
        let mut resolved = format!("[Resolve]\nDNS={}\n", servers.join(" "));
        if dns.overwrite {
            // Every query goes to these servers, not only those of no other link's domain.
            resolved.push_str("Domains=~.\n");
        }
        t.add(RESOLVED.to_owned(), 0o644, resolved);
    }
    if !s.ntp.is_empty() {
        t.add(
            CHRONY.to_owned(),
            0o644,
            format!("{}{CHRONY_TAIL}", lines(&s.ntp)),
        );
    }
    if let Some(url) = &s.repo {
        // A flat repository as `infragen repo sync` writes it (`Packages` beside the `.deb`
        // files, no `Release`): suite `./`, no component, unsigned so trusted
        // (https://manpages.debian.org/bookworm/apt/sources.list.5.en.html, deb822 style).
        t.add(
            SOURCES.to_owned(),
            0o644,
            format!("Types: deb\nURIs: {url}\nSuites: ./\nTrusted: yes\n"),
        );
    }
    t
}

/// The profile's CA certificate (PEM) as every node's `<host>/node/infragen-ca.crt`.
pub fn add_ca(plan: &Plan, ca_pem: &str, tree: &mut Tree) {
    for n in &plan.nodes {
        tree.add(format!("{}/node/{CA}", n.ip), 0o644, ca_pem);
    }
}

/// Each line followed by `\n`.
fn lines(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}
