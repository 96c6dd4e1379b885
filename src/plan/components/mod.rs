//! Per-host settings of every component except nginx (see `portal`).
//!
//! Each struct holds exactly what its templates need: listen address, flags, peers, data
//! paths. Flags are computed here, not in templates, so that `render` and the unit files of
//! later stages agree.
//!
//! This file holds the settings types and [`host`], which assembles a host's plan; `checks`
//! holds the host-wide parameter checks, `grafana` the Grafana settings and datasources,
//! `htpasswd` nginx's basic-auth file (hashes, never passwords), and `lists` the settings read
//! entry by entry from profile lists and maps (`pg_exporters`, `dns_records`, NTP sources,
//! `chrony_allow`).

mod checks;
mod grafana;
mod htpasswd;
mod lists;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::portal;
use super::read::Reader;
use super::{check, Component, HostPlan, InfraNode, Secret};
use crate::duration::{self, Duration, Unit};
use crate::profile::Inventory;
use checks::{check_ports, compatible};
use grafana::grafana;
use lists::{chrony, dnsmasq, pgrds};

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
    let ip = node.ip;
    let p = node.ports;
    let admin_ip = r.ip("admin_ip").unwrap_or(ip);
    let version = r.string("version");
    if let Err(e) = check::name(&version) {
        let path = r.var("version").map(|v| v.path).unwrap_or_default();
        r.problem(&path, e);
    }
    let infra_data = r.path("infra_data");
    compatible(r);
    let pki = super::PkiSettings {
        ca_cn: r.string("ca_cn"),
        ca_create: r.bool("ca_create"),
        cert_validity: r.duration_within("cert_validity", CERT_MIN, duration::MAX),
        nginx_cert_validity: r.duration_within("nginx_cert_validity", CERT_MIN, duration::MAX),
    };
    let mut disabled = Vec::new();
    for c in Component::ALL {
        if !node.enabled.contains(&c) {
            let why = if c == Component::Vmalert && r.bool("vmalert_enabled") {
                "vmetrics_enabled"
            } else {
                c.flag()
            };
            disabled.push((c, format!("{why}: false")));
        }
    }
    check_ports(r, &p, node);
    let on = |c: Component| node.enabled.contains(&c);
    let mut secrets = BTreeMap::new();

    let nginx = on(Component::Nginx).then(|| {
        let mut users = Vec::new();
        let n = portal::nginx(r, &admin_ip.to_string(), &mut users);
        if !users.is_empty() {
            let htpasswd = htpasswd::file(&ip.to_string(), &users);
            secrets.insert((Component::Nginx, "htpasswd".to_owned()), Secret(htpasswd));
        }
        n
    });
    let home_domain = nginx
        .as_ref()
        .and_then(|n| {
            n.portal
                .iter()
                .find(|p| p.name == "home")
                .map(|p| p.domain.clone())
        })
        .unwrap_or_else(|| "i.pigsty".to_owned());

    let grafana =
        on(Component::Grafana).then(|| grafana(r, node, infra, &home_domain, &mut secrets));

    let scrape_interval = r.duration("vmetrics_scrape_interval");
    let vmetrics = on(Component::Vmetrics).then(|| {
        let mut flags = vec![
            "-storageDataPath=/infra/metrics".to_owned(),
            format!("-httpListenAddr={}", listen(ip, p.vmetrics)),
            "-promscrape.config=/etc/vmetrics/prometheus.yml".to_owned(),
        ];
        flags.extend(r.flags("vmetrics_options"));
        let metrics_path = r.path("exporter_metrics_path");
        let scrape_timeout = r.duration("vmetrics_scrape_timeout");
        // Prometheus refuses such a config; vmagent would silently cut the timeout.
        if scrape_timeout.millis() > scrape_interval.millis() && scrape_interval.millis() != Some(0) {
            let path = r.var("vmetrics_scrape_timeout").map(|v| v.path).unwrap_or_default();
            r.problem(
                &path,
                format!("scrape timeout `{scrape_timeout}` is longer than the scrape interval `{scrape_interval}`"),
            );
        }
        Vmetrics {
            flags,
            scrape_interval,
            scrape_timeout,
            metrics_path,
            minio_https: r.bool("minio_https"),
            patroni_ssl: r.bool("patroni_ssl_enabled"),
            redis_exporter_port: r.port("redis_exporter_port"),
            blackbox: listen(ip, p.blackbox),
            pgrds: pgrds(r, ip),
        }
    });
    let victoria = |r: &mut Reader, c: Component, dir: &str, port: u16, options: &str| {
        on(c).then(|| {
            let mut flags = vec![
                format!("-storageDataPath=/infra/{dir}"),
                format!("-httpListenAddr={}", listen(ip, port)),
            ];
            flags.extend(r.flags(options));
            Victoria { flags }
        })
    };
    let vlogs = victoria(r, Component::Vlogs, "logs", p.vlogs, "vlogs_options");
    let vtraces = victoria(
        r,
        Component::Vtraces,
        "traces",
        p.vtraces,
        "vtraces_options",
    );

    let clustered = r.bool("alertmanager_cluster");
    let peers: Vec<&InfraNode> = infra
        .iter()
        .filter(|n| n.enabled.contains(&Component::Alertmanager))
        .collect();
    let vmalert = on(Component::Vmalert).then(|| {
        let vm = url(ip, p.vmetrics);
        let mut flags = vec![
            format!("-datasource.url={vm}"),
            format!("-remoteRead.url={vm}"),
            format!("-remoteWrite.url={vm}"),
        ];
        // Clustered: notify every peer. Otherwise the local Alertmanager, or, when this host runs
        // none, every infra host's (vmalert 1.79, Debian's, has no `-notifier.blackhole`).
        let local: Vec<&InfraNode> = peers.iter().copied().filter(|n| n.ip == ip).collect();
        let notify = if clustered || local.is_empty() { peers.clone() } else { local };
        if notify.is_empty() {
            let path = r.var("vmalert_enabled").map(|v| v.path).unwrap_or_default();
            r.problem(&path, "vmalert needs an Alertmanager: enable `alertmanager_enabled` on an infra host or disable vmalert");
        }
        flags.extend(notify.iter().map(|n| format!("-notifier.url={}", url(n.ip, n.ports.alertmanager))));
        flags.push(format!("-httpListenAddr={}", listen(ip, p.vmalert)));
        flags.push("-rule=/etc/vmalert/rules/*.yml".to_owned());
        flags.push(format!("-evaluationInterval={scrape_interval}"));
        flags.push(format!("-external.url=http://{home_domain}/vmalert"));
        flags.extend(r.flags("vmalert_options"));
        let mut agent_ports = Vec::new();
        for (record, param) in [
            ("node_up", "node_exporter_port"),
            ("haproxy_up", "haproxy_exporter_port"),
            ("keepalived_exporter_up", "vip_exporter_port"),
            ("docker_up", "docker_exporter_port"),
            ("vector_up", "vector_port"),
            ("pg_exporter_agent_up", "pg_exporter_port"),
            ("pgbouncer_exporter_agent_up", "pgbouncer_exporter_port"),
            ("pgbackrest_exporter_agent_up", "pgbackrest_exporter_port"),
            ("patroni_up", "patroni_port"),
        ] {
            agent_ports.push((record.to_owned(), r.port(param)));
        }
        Vmalert { flags, agent_ports }
    });

    let alertmanager = on(Component::Alertmanager).then(|| {
        let mut flags = vec![
            "--config.file=/etc/alertmanager/alertmanager.yml".to_owned(),
            format!("--web.listen-address={}", listen(ip, p.alertmanager)),
            "--storage.path=/infra/alertmgr".to_owned(),
            format!("--web.external-url=http://{home_domain}/alertmgr"),
            "--web.route-prefix=/".to_owned(),
        ];
        if clustered {
            flags.push(format!(
                "--cluster.listen-address={}",
                listen(ip, p.alertmanager_cluster)
            ));
            flags.push(format!(
                "--cluster.advertise-address={}",
                listen(ip, p.alertmanager_cluster)
            ));
            for peer in peers.iter().filter(|n| n.ip != ip) {
                flags.push(format!(
                    "--cluster.peer={}",
                    listen(peer.ip, peer.ports.alertmanager_cluster)
                ));
            }
        } else {
            flags.push("--cluster.listen-address=".to_owned());
        }
        flags.extend(r.flags("alertmanager_options"));
        Alertmanager { flags }
    });

    let blackbox = on(Component::Blackbox).then(|| {
        let mut flags = vec![
            "--config.file=/etc/blackbox/blackbox.yml".to_owned(),
            format!("--web.listen-address={}", listen(ip, p.blackbox)),
        ];
        flags.extend(r.flags("blackbox_options"));
        Blackbox { flags }
    });

    let dnsmasq = on(Component::Dnsmasq).then(|| dnsmasq(r, ip, admin_ip, p.dns, dns));
    let host_key = r.var("infragen_host_key").and_then(|v| {
        let s = r.string_value(&v.value, &v.path)?;
        recipient(r, &s, &v.path)
    });
    let recovery_keys = r
        .strings("infragen_recovery_keys")
        .into_iter()
        .filter_map(|(s, path)| recipient(r, &s, &path))
        .collect();
    let chrony = on(Component::Chrony).then(|| chrony(r, ip, admin_ip, inventory));

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
        disabled,
        secrets,
        pki,
        host_key,
        recovery_keys,
    }
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
