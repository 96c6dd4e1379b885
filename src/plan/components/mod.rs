//! Per-host settings of every component except nginx (see `portal`).
//!
//! Each struct holds exactly what its templates need: listen address, flags, peers, data
//! paths. Flags are computed here, not in templates, so that `render` and the unit files of
//! later stages agree.
//!
//! This file holds the settings types and [`host`], which assembles a host's plan; `checks`
//! holds the host-wide parameter checks, `grafana` the Grafana settings and datasources,
//! `htpasswd` nginx's basic-auth file (hashes, never passwords), `monitor` the command lines of
//! the monitoring components, and `lists` the settings read
//! entry by entry from profile lists and maps (`pg_exporters`, `dns_records`, NTP sources,
//! `chrony_allow`).

mod checks;
mod grafana;
mod htpasswd;
mod lists;
mod monitor;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::portal;
use super::read::Reader;
use super::{check, Component, HostPlan, InfraNode, Secret};
use crate::duration::{self, Duration, Unit};
use crate::profile::Inventory;
use checks::{check_ports, compatible};
use grafana::grafana;
pub(super) use grafana::pg_datasources;
pub use grafana::{PgDatasource, PgDatasources, PLUGINS, STATIC_DATASOURCE};
pub(super) use lists::ntp_sources;
use lists::{chrony, dnsmasq};

/// The shortest certificate validity: certificates are state reused across builds and
/// activated later, so one that expires within a day would be served expired.
const CERT_MIN: Duration = Duration::new(1, Unit::Days);

/// `VictoriaMetrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmetrics {
    /// Command-line flags.
    pub flags: Vec<String>,
    /// Global scrape interval.
    pub scrape_interval: Duration,
    /// Global scrape timeout.
    pub scrape_timeout: Duration,
    /// `exporter_metrics_path`.
    pub metrics_path: String,
    /// Scrape `MinIO` over TLS.
    pub minio_https: bool,
    /// Add the `pgsql-patroni` job.
    pub patroni_ssl: bool,
    /// Redis exporter port (the `redis` job rewrites addresses to it).
    pub redis_exporter_port: u16,
    /// Blackbox exporter address for the `ping` job.
    pub blackbox: String,
    /// `pgrds` targets of exporters running on this host.
    pub pgrds: BTreeMap<String, Vec<super::TargetGroup>>,
}

/// `VictoriaLogs` or `VictoriaTraces`: flags only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victoria {
    /// Command-line flags.
    pub flags: Vec<String>,
}

/// vmalert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmalert {
    /// Command-line flags.
    pub flags: Vec<String>,
    /// Exporter ports for the rendered `agent.yml` recording rules: `(record, port)`.
    pub agent_ports: Vec<(String, u16)>,
}

/// Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alertmanager {
    /// Command-line flags.
    pub flags: Vec<String>,
}

/// Blackbox exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackbox {
    /// Command-line flags.
    pub flags: Vec<String>,
}

/// The nginx exporter: flags only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxExporter {
    /// Command-line flags.
    pub flags: Vec<String>,
}

/// dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnsmasq {
    /// Listen addresses.
    pub listen: Vec<IpAddr>,
    /// Port.
    pub port: u16,
    /// Hosts files under the records directory: name → lines.
    pub records: BTreeMap<String, Vec<String>>,
}

/// chrony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chrony {
    /// Source lines (`pool …`, `server …`).
    pub sources: Vec<String>,
    /// Networks allowed to query.
    pub allow: Vec<String>,
    /// Address the NTP server binds.
    pub bind: IpAddr,
    /// Whether chronyd may set the clock (false: `-x`).
    pub control_clock: bool,
}

/// A Grafana datasource (provisioning file entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datasource {
    /// Name.
    pub name: String,
    /// uid (local datasources only).
    pub uid: Option<String>,
    /// Plugin type.
    pub kind: String,
    /// URL.
    pub url: String,
    /// The default datasource.
    pub is_default: bool,
    /// Database user (postgres).
    pub user: Option<String>,
    /// `jsonData`, sorted.
    pub json: BTreeMap<String, serde_json::Value>,
    /// Credential file holding the password (`secureJsonData.password`).
    pub password_credential: Option<String>,
}

/// Grafana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grafana {
    /// `admin_user`.
    pub admin_user: String,
    /// `[auth.proxy]`.
    pub auth_proxy: bool,
    /// Database in `PostgreSQL` (`grafana_pgurl` as a credential).
    pub pg_database: bool,
    /// `en-US` or `zh-Hans`.
    pub language: String,
    /// Portal home domain (root URL, CSRF origins).
    pub domain: String,
    /// Provisioned datasources.
    pub datasources: Vec<Datasource>,
    /// `grafana_plugin_dir` as written (relative to the profile file, or absolute): the
    /// directory of plugin archives unpacked into the image ([`Grafana::plugin_dir`]).
    pub plugin_dir: Option<String>,
}

fn listen(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

fn url(ip: IpAddr, port: u16) -> String {
    format!("http://{}", listen(ip, port))
}

/// The whole plan of one infra host.
pub fn host(
    r: &mut Reader,
    node: &InfraNode,
    infra: &[InfraNode],
    inventory: &Inventory,
    dns: &BTreeMap<String, Vec<String>>,
) -> HostPlan {
    let (ip, p) = (node.ip, node.ports);
    let admin_ip = r.ip("admin_ip").unwrap_or(ip);
    let version = r.string("version");
    if let Err(e) = check::name(&version) {
        let path = r.var("version").map(|v| v.path.clone()).unwrap_or_default();
        r.problem(&path, e);
    }
    let infra_data = r.path("infra_data");
    compatible(r);
    let pki = pki(r);
    let disabled = disabled(r, node);
    check_ports(r, &p, node);
    let on = |c: Component| node.enabled.contains(&c);
    let mut secrets = BTreeMap::new();

    let nginx = on(Component::Nginx).then(|| nginx(r, ip, admin_ip, &mut secrets));
    let home_domain = home_domain(nginx.as_ref());
    let grafana =
        on(Component::Grafana).then(|| grafana(r, node, infra, &home_domain, &mut secrets));
    let scrape_interval = r.duration("vmetrics_scrape_interval");
    let vmetrics = on(Component::Vmetrics).then(|| monitor::vmetrics(r, node, scrape_interval));
    let vlogs =
        on(Component::Vlogs).then(|| monitor::victoria(r, ip, "logs", p.vlogs, "vlogs_options"));
    let vtraces = on(Component::Vtraces)
        .then(|| monitor::victoria(r, ip, "traces", p.vtraces, "vtraces_options"));
    let alerting = monitor::alerting(r, infra);
    let vmalert = on(Component::Vmalert)
        .then(|| monitor::vmalert(r, node, &alerting, scrape_interval, &home_domain));
    let alertmanager = on(Component::Alertmanager)
        .then(|| monitor::alertmanager(r, node, &alerting, &home_domain));
    let blackbox = on(Component::Blackbox).then(|| monitor::blackbox(r, node));
    let dnsmasq = on(Component::Dnsmasq).then(|| dnsmasq(r, ip, admin_ip, p.dns, dns));
    let (host_key, recovery_keys) = keys(r);
    let chrony = on(Component::Chrony).then(|| chrony(r, ip, admin_ip, inventory));
    let nginx_exporter = on(Component::NginxExporter).then(|| monitor::nginx_exporter(node));

    HostPlan {
        ip,
        seq: node.seq,
        admin_ip,
        is_admin: ip == admin_ip,
        version,
        infra_data,
        ports: p,
        nginx,
        grafana,
        vmetrics,
        vlogs,
        vtraces,
        vmalert,
        alertmanager,
        blackbox,
        dnsmasq,
        chrony,
        nginx_exporter,
        disabled,
        secrets,
        pki,
        host_key,
        recovery_keys,
    }
}

/// The PKI parameters of a host. The renewal window must be shorter than both validities: a
/// certificate issued inside its own window would be re-issued by every build.
fn pki(r: &mut Reader) -> super::PkiSettings {
    let cert_validity = r.duration_within("cert_validity", CERT_MIN, duration::MAX);
    let nginx_cert_validity = r.duration_within("nginx_cert_validity", CERT_MIN, duration::MAX);
    let renew_before = r.duration("cert_renew_before");
    for (name, validity) in [
        ("cert_validity", cert_validity),
        ("nginx_cert_validity", nginx_cert_validity),
    ] {
        // A validity already refused reads as 0: one problem is enough.
        if validity.millis() != Some(0) && renew_before.millis() >= validity.millis() {
            // The key the profile sets: the window, or the validity under the default window.
            let key = if r.is_set("cert_renew_before") {
                "cert_renew_before"
            } else {
                name
            };
            let path = r.var(key).map(|v| v.path.clone()).unwrap_or_default();
            r.problem(
                &path,
                format!(
                    "renewal window `{renew_before}` is not shorter than `{name}` \
                     `{validity}`: every build would re-issue the certificate"
                ),
            );
        }
    }
    super::PkiSettings {
        ca_cn: r.string("ca_cn"),
        ca_create: r.bool("ca_create"),
        cert_validity,
        nginx_cert_validity,
        renew_before,
    }
}

/// The components `node` does not run, each with the setting that turns it off.
fn disabled(r: &mut Reader, node: &InfraNode) -> Vec<(Component, String)> {
    let mut disabled = Vec::new();
    for c in Component::ALL {
        if !node.enabled.contains(&c) {
            let why = if c == Component::Vmalert && r.bool("vmalert_enabled") {
                "vmetrics_enabled"
            } else if c == Component::NginxExporter && r.bool("nginx_exporter_enabled") {
                "nginx_enabled"
            } else {
                c.flag()
            };
            disabled.push((c, format!("{why}: false")));
        }
    }
    disabled
}

/// nginx and its portal; the basic-auth file of its users goes to `secrets`.
fn nginx(
    r: &mut Reader,
    ip: IpAddr,
    admin_ip: IpAddr,
    secrets: &mut BTreeMap<(Component, String), Secret>,
) -> portal::Nginx {
    let mut users = Vec::new();
    let n = portal::nginx(r, &admin_ip.to_string(), &mut users);
    if !users.is_empty() {
        let htpasswd = htpasswd::file(&ip.to_string(), &users);
        secrets.insert((Component::Nginx, "htpasswd".to_owned()), Secret(htpasswd));
    }
    n
}

/// The portal's home domain (Grafana's root URL, the external URLs of vmalert and Alertmanager).
pub(super) fn home_domain(nginx: Option<&portal::Nginx>) -> String {
    nginx
        .and_then(|n| {
            n.portal
                .iter()
                .find(|p| p.name == "home")
                .map(|p| p.domain.clone())
        })
        .unwrap_or_else(|| "i.pigsty".to_owned())
}

/// The host's own age key and the recovery keys its secrets are also sealed to.
fn keys(r: &mut Reader) -> (Option<crate::age::Recipient>, Vec<crate::age::Recipient>) {
    let host_key = r.var("infragen_host_key").and_then(|v| {
        let s = r.string_value(&v.value, &v.path)?;
        recipient(r, &s, &v.path)
    });
    let recovery_keys = r
        .strings("infragen_recovery_keys")
        .into_iter()
        .filter_map(|(s, path)| recipient(r, &s, &path))
        .collect();
    (host_key, recovery_keys)
}

/// An age recipient at `path` (empty: none); a problem there when it does not parse.
fn recipient(r: &mut Reader, s: &str, path: &str) -> Option<crate::age::Recipient> {
    if s.is_empty() {
        return None;
    }
    match crate::age::Recipient::parse(s) {
        Ok(k) => Some(k),
        Err(e) => {
            r.problem(path, e.to_string());
            None
        }
    }
}
