//! The plan: a profile resolved and validated into typed, per-host component settings.
//!
//! Owns defaults, types, cross-host facts (peers, scrape targets, DNS records) and every check
//! of a value before it reaches a template. Pure data, no I/O. All problems of a profile are
//! collected and returned together; a plan exists only when there are none.

mod check;
mod components;
mod content;
mod flags;
mod node;
mod portal;
mod ports;
mod proxy;
mod read;
mod targets;
mod upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::problem::{Problem, Problems};
use crate::profile::Inventory;

pub use crate::component::{Component, PortParam};
pub use crate::profile::address_order;
pub use components::{
    Alertmanager, Blackbox, Chrony, Datasource, Dnsmasq, Grafana, NginxExporter, PgDatasource,
    PgDatasources, Victoria, Vmalert, Vmetrics, PLUGINS, STATIC_DATASOURCE,
};
pub use content::{ContentDirs, Imported, ImportedDashboard, ImportedRules};
pub use node::{home_domain, Dns, NodePlan, NodeSettings};
pub use portal::{nginx_lex, Card, Nginx, Portal, PortalKind, SslMode};
pub use targets::{TargetGroup, Targets};

use read::Reader;

/// The ports of one infra host (every port, enabled or not: peers need them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Ports {
    pub nginx: u16,
    pub nginx_ssl: u16,
    pub nginx_exporter: u16,
    pub grafana: u16,
    pub vmetrics: u16,
    pub vlogs: u16,
    pub vtraces: u16,
    pub vmalert: u16,
    pub alertmanager: u16,
    pub alertmanager_cluster: u16,
    pub blackbox: u16,
    pub dns: u16,
    pub code: u16,
    pub jupyter: u16,
}

/// What every host knows about each infra host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraNode {
    /// Inventory address.
    pub ip: IpAddr,
    /// `infra_seq`.
    pub seq: u32,
    /// Components enabled on it.
    pub enabled: BTreeSet<Component>,
    /// Its ports.
    pub ports: Ports,
}

/// A secret value; its `Debug` never shows it, so it cannot leak into a printed plan.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything rendered for one infra host.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// Inventory address; every service binds to it.
    pub ip: IpAddr,
    /// `infra_seq`.
    pub seq: u32,
    /// `admin_ip`.
    pub admin_ip: IpAddr,
    /// Whether this host is the admin node.
    pub is_admin: bool,
    /// `version`.
    pub version: String,
    /// `infra_data`: state root on the host.
    pub infra_data: String,
    /// Ports of this host.
    pub ports: Ports,
    /// nginx, when enabled.
    pub nginx: Option<Nginx>,
    /// Grafana, when enabled.
    pub grafana: Option<Grafana>,
    /// `VictoriaMetrics`, when enabled.
    pub vmetrics: Option<Vmetrics>,
    /// `VictoriaLogs`, when enabled.
    pub vlogs: Option<Victoria>,
    /// `VictoriaTraces`, when enabled.
    pub vtraces: Option<Victoria>,
    /// vmalert, when enabled (and vmetrics too).
    pub vmalert: Option<Vmalert>,
    /// Alertmanager, when enabled.
    pub alertmanager: Option<Alertmanager>,
    /// Blackbox exporter, when enabled.
    pub blackbox: Option<Blackbox>,
    /// dnsmasq, when enabled.
    pub dnsmasq: Option<Dnsmasq>,
    /// chrony, when enabled.
    pub chrony: Option<Chrony>,
    /// The nginx exporter, when enabled (and nginx too).
    pub nginx_exporter: Option<NginxExporter>,
    /// Components left out, with the parameter that disabled them.
    pub disabled: Vec<(Component, String)>,
    /// Secrets by `(component, credential name)`.
    pub secrets: BTreeMap<(Component, String), Secret>,
    /// Certificate settings.
    pub pki: PkiSettings,
    /// `infragen_host_key`: the host's age recipient; its secrets are encrypted to it.
    pub host_key: Option<crate::age::Recipient>,
    /// `infragen_recovery_keys`: operator recipients every sealed secret is encrypted to too.
    pub recovery_keys: Vec<crate::age::Recipient>,
}

/// What the PKI reads from the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiSettings {
    /// `ca_cn`.
    pub ca_cn: String,
    /// `ca_create`.
    pub ca_create: bool,
    /// `cert_validity`.
    pub cert_validity: crate::duration::Duration,
    /// `nginx_cert_validity`.
    pub nginx_cert_validity: crate::duration::Duration,
    /// `cert_renew_before`: a certificate this close to its `notAfter` is re-issued.
    pub renew_before: crate::duration::Duration,
}

impl HostPlan {
    /// Components enabled on this host, in render order.
    pub fn enabled(&self) -> Vec<Component> {
        Component::ALL
            .into_iter()
            .filter(|c| !self.disabled.iter().any(|(d, _)| d == c))
            .collect()
    }
}

/// The name in artifacts of every profile read from a file (see [`Plan::name`]).
pub const FILE_PROFILE: &str = "file";

/// A resolved, validated profile.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the profile came from (a path as given, for messages).
    pub source: String,
    /// The profile's name in artifacts: `builtin:<name>`, or `file` for any profile read from
    /// a file — neither its path nor its file name enters an artifact, so moving or renaming it
    /// changes no byte (the manifest's profile digest says which text it was).
    pub name: String,
    /// sha256 of the profile text.
    pub digest: String,
    /// Every infra host, by `infra_seq`.
    pub infra: Vec<InfraNode>,
    /// Per-host plans, in `infra_seq` order.
    pub hosts: Vec<HostPlan>,
    /// Scrape targets shared by every infra host (computed from the whole inventory).
    pub targets: Targets,
    /// Number of hosts in the inventory.
    pub inventory_hosts: usize,
    /// Likely mistakes that do not stop the build (misspelt parameters).
    pub warnings: Vec<Problem>,
    /// `infragen_upstream_images`: components taken from their upstream image, the same on
    /// every infra host.
    pub upstream: BTreeMap<Component, crate::upstream::Upstream>,
    /// `proxy_env`: the proxies package downloads go through (`net::Proxies::with_profile`),
    /// the same on every infra host.
    pub proxy_env: BTreeMap<String, String>,
    /// Every node of the inventory (infra hosts too), in address order: what its node part
    /// configures (docs/nodes.md).
    pub nodes: Vec<NodePlan>,
    /// The per-database `PostgreSQL` datasources every infra host's Grafana provisions (their
    /// passwords are in each such host's `secrets`).
    pub pg_datasources: Vec<PgDatasource>,
    /// `infra_dashboards` and `infra_rules`, resolved (the same on every infra host).
    pub content: ContentDirs,
    /// What those directories held, once `content::import::load` read them (empty before).
    pub imported: Imported,
}

impl Plan {
    /// The nodes that are not infra hosts: their bundles hold only a node part.
    pub fn regular_nodes(&self) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(|n| !n.infra)
    }

    /// The node plan of address `ip`.
    pub fn node(&self, ip: IpAddr) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.ip == ip)
    }
}

/// `builtin:<name>`, or [`FILE_PROFILE`] for a profile read from a file.
fn stable_name(source: &str) -> String {
    if source.starts_with("builtin:") {
        source.to_owned()
    } else {
        FILE_PROFILE.to_owned()
    }
}

/// Resolves and validates `inventory` into a plan, or returns every problem found.
pub fn resolve(inventory: &Inventory) -> Result<Plan, Problems> {
    let mut problems = Vec::new();
    let infra_hosts = inventory.members("infra");
    if infra_hosts.is_empty() {
        problems.push(Problem::at(
            "all.children.infra",
            "the profile has no `infra` group with hosts; there is nothing to build",
        ));
        return Err(Problems::new(&inventory.source, problems).located(&inventory.positions));
    }
    // First pass: identity and ports of every infra host (peers need them).
    let infra = infra_nodes(inventory, &infra_hosts, &mut problems);
    for host in inventory.all_hosts() {
        if host.parse::<IpAddr>().is_err() && !infra_hosts.contains(&host) {
            problems.push(Problem::at(
                format!("inventory host {}", crate::keypath::join("", host)),
                format!("host key `{host}` is not an IP address (Pigsty names hosts by address)"),
            ));
        }
    }
    // Every host's variables, resolved as each pass reaches it (borrowed, so resolving twice
    // is cheaper than keeping 100,000 hosts' resolutions at once).
    let all_hosts = inventory.all_hosts();
    let resolved = || all_hosts.iter().map(|h| (*h, inventory.resolve(h)));
    let targets = targets::compute(resolved(), &infra, &mut problems);
    let dns = targets::dns_records(resolved(), &mut problems);
    let mut shared = host_plans(inventory, &infra_hosts, &infra, &dns, &mut problems);
    let pg = components::pg_datasources(resolved(), &infra_hosts, &mut problems);
    for h in shared.hosts.iter_mut().filter(|h| h.grafana.is_some()) {
        for (name, password) in &pg.passwords {
            h.secrets
                .insert((Component::Grafana, name.clone()), password.clone());
        }
    }
    let mut node_warnings = Vec::new();
    let nodes = node::nodes(
        inventory,
        &infra_hosts,
        &shared.hosts,
        &mut problems,
        &mut node_warnings,
    );

    let mut warnings = misspellings(inventory);
    // Hosts with different settings may share a name server: one warning each.
    node_warnings.sort();
    node_warnings.dedup();
    warnings.extend(node_warnings);
    if problems.is_empty() {
        Ok(Plan {
            source: inventory.source.clone(),
            name: stable_name(&inventory.source),
            digest: inventory.digest.clone(),
            infra,
            hosts: shared.hosts,
            targets,
            inventory_hosts: inventory.hosts.len(),
            warnings,
            upstream: shared.upstream,
            proxy_env: shared.proxy_env,
            nodes,
            pg_datasources: pg.datasources,
            content: shared.content,
            imported: Imported::default(),
        })
    } else {
        Err(Problems::new(&inventory.source, problems).located(&inventory.positions))
    }
}

/// Every infra host's identity and ports, by `infra_seq`; a duplicate sequence number or
/// address is a problem.
fn infra_nodes(
    inventory: &Inventory,
    infra_hosts: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<InfraNode> {
    let mut infra = Vec::new();
    let mut seqs: BTreeMap<u32, String> = BTreeMap::new();
    let mut addresses: BTreeMap<IpAddr, String> = BTreeMap::new();
    for host in infra_hosts {
        let vars = inventory.resolve(host);
        let mut r = Reader::new(&vars, host, problems);
        let Some(node) = infra_node(&mut r) else {
            continue;
        };
        let seq_path = vars
            .get("infra_seq")
            .map_or_else(String::new, |v| v.path.clone());
        if let Some(other) = seqs.insert(node.seq, (*host).to_owned()) {
            problems.push(
                Problem::at(
                    seq_path,
                    format!(
                        "duplicate `infra_seq` {}: host `{other}` has it too",
                        node.seq
                    ),
                )
                .on_host(host),
            );
        }
        if let Some(other) = addresses.insert(node.ip, (*host).to_owned()) {
            let path = crate::keypath::join("all.children.infra.hosts", host);
            problems.push(
                Problem::at(
                    path,
                    format!("`{host}` and `{other}` are the same address {}", node.ip),
                )
                .on_host(host),
            );
            continue;
        }
        infra.push(node);
    }
    infra.sort_by_key(|n| n.seq);
    infra
}

/// What [`host_plans`] reads: every infra host's plan, and what must be the same on all of them.
struct HostPlans {
    hosts: Vec<HostPlan>,
    /// The upstream images every infra host takes.
    upstream: BTreeMap<Component, crate::upstream::Upstream>,
    /// `proxy_env`, the same on every infra host.
    proxy_env: BTreeMap<String, String>,
    /// The content directories, the same on every infra host.
    content: ContentDirs,
}

/// Every infra host's plan, and the upstream images and proxies they all take (the same on
/// every host, or a problem).
fn host_plans(
    inventory: &Inventory,
    infra_hosts: &[&str],
    infra: &[InfraNode],
    dns: &BTreeMap<String, Vec<String>>,
    problems: &mut Vec<Problem>,
) -> HostPlans {
    let mut hosts = Vec::new();
    let mut upstream: Option<(String, BTreeMap<Component, crate::upstream::Upstream>)> = None;
    let mut proxy_env: Option<(String, BTreeMap<String, String>)> = None;
    let mut content: Option<(String, ContentDirs)> = None;
    let base = content::base_of(&inventory.source);
    for node in infra {
        let host = node.ip.to_string();
        let key = infra_hosts
            .iter()
            .find(|h| h.parse::<IpAddr>().ok() == Some(node.ip))
            .copied()
            .unwrap_or(&host);
        let vars = inventory.resolve(key);
        let mut r = Reader::new(&vars, key, problems);
        hosts.push(components::host(&mut r, node, infra, inventory, dns));
        let chosen = upstream::read(&mut r);
        match &upstream {
            None => upstream = Some((key.to_owned(), chosen)),
            Some((first, before)) if *before != chosen => {
                let path = r
                    .var(crate::upstream::PARAM)
                    .map(|v| v.path.clone())
                    .unwrap_or_default();
                r.problem(
                    &path,
                    format!("differs from host `{first}`'s: an image is shared by every infra host, so every host takes the same upstream images"),
                );
            }
            Some(_) => {}
        }
        let proxies = proxy::read(&mut r);
        match &proxy_env {
            None => proxy_env = Some((key.to_owned(), proxies)),
            Some((first, before)) if *before != proxies => {
                let path = r
                    .var(proxy::PARAM)
                    .map(|v| v.path.clone())
                    .unwrap_or_default();
                r.problem(
                    &path,
                    format!("differs from host `{first}`'s: images are built once for every infra host, so every host downloads packages the same way"),
                );
            }
            Some(_) => {}
        }
        let dirs = content::read(&mut r, &base);
        same_content(&mut r, &mut content, dirs);
    }
    HostPlans {
        hosts,
        upstream: upstream.map(|(_, u)| u).unwrap_or_default(),
        proxy_env: proxy_env.map(|(_, p)| p).unwrap_or_default(),
        content: content.map(|(_, c)| c).unwrap_or_default(),
    }
}

/// Keeps the first host's content directories; another host's that differ are a problem (the
/// content is built into images every infra host shares).
fn same_content(r: &mut Reader, first: &mut Option<(String, ContentDirs)>, dirs: ContentDirs) {
    match first {
        None => *first = Some((r.host().to_owned(), dirs)),
        Some((host, before)) if before.paths() != dirs.paths() => {
            let host = host.clone();
            for (mine, theirs) in [
                (&dirs.dashboards, &before.dashboards),
                (&dirs.rules, &before.rules),
            ] {
                if mine.as_ref().map(|m| &m.0) != theirs.as_ref().map(|t| &t.0) {
                    let path = mine
                        .as_ref()
                        .or(theirs.as_ref())
                        .map(|m| m.1.clone())
                        .unwrap_or_default();
                    r.problem(&path, format!("differs from host `{host}`'s: every infra host serves the same monitoring content"));
                }
            }
        }
        Some(_) => {}
    }
}

/// Identity, ports and enabled set of one infra host.
fn infra_node(r: &mut Reader) -> Option<InfraNode> {
    let host = r.host().to_owned();
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_none() {
        let path = crate::keypath::join("all.children.infra.hosts", &host);
        r.problem(
            &path,
            format!("infra host key `{host}` is not an IP address (Pigsty names hosts by address)"),
        );
    }
    let seq = if r.var("infra_seq").is_some() {
        r.uint("infra_seq").and_then(|n| {
            u32::try_from(n).ok().or_else(|| {
                let path = r
                    .var("infra_seq")
                    .map(|v| v.path.clone())
                    .unwrap_or_default();
                r.problem(&path, "`infra_seq` is too large");
                None
            })
        })
    } else {
        let path = crate::keypath::join(
            &crate::keypath::join("all.children.infra.hosts", &host),
            "infra_seq",
        );
        r.problem(
            &path,
            "missing `infra_seq`: every infra host needs a unique integer identity",
        );
        None
    };
    let ports = ports::read(r);
    let mut enabled = BTreeSet::new();
    for c in Component::ALL {
        if r.bool(c.flag()) {
            enabled.insert(c);
        }
    }
    if !enabled.contains(&Component::Vmetrics) {
        enabled.remove(&Component::Vmalert);
    }
    // The exporter reads nginx's status page: without nginx it has nothing to export.
    if !enabled.contains(&Component::Nginx) {
        enabled.remove(&Component::NginxExporter);
    }
    Some(InfraNode {
        ip: ip?,
        seq: seq?,
        enabled,
        ports,
    })
}

/// Warnings for variables that look like a misspelt INFRA parameter. Each distinct name is
/// compared with the catalogue once (a large inventory writes the same few names many times).
fn misspellings(inventory: &Inventory) -> Vec<Problem> {
    let mut suggestions: BTreeMap<&str, Option<&'static str>> = BTreeMap::new();
    let mut out: Vec<Problem> = inventory
        .every_var()
        .filter_map(|(name, var)| {
            let s = (*suggestions
                .entry(name)
                .or_insert_with(|| crate::params::suggest(name)))?;
            Some(Problem::at(
                &var.path,
                format!("unknown parameter `{name}`; did you mean `{s}`?"),
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
