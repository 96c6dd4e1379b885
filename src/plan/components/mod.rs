//! Per-host settings of every component except nginx (see `portal`).
//!
//! Each struct holds exactly what its templates need: listen address, flags, peers, data
//! paths. Flags are computed here, not in templates, so that `render` and the unit files of
//! later stages agree.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::portal;
use super::read::Reader;
use super::{check, Component, HostPlan, InfraNode, Ports, Secret};
use crate::profile::Inventory;

/// `VictoriaMetrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmetrics {
    /// Command-line flags.
    pub flags: Vec<String>,
    /// Global scrape interval.
    pub scrape_interval: String,
    /// Global scrape timeout.
    pub scrape_timeout: String,
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
        cert_validity: r.duration("cert_validity"),
        nginx_cert_validity: r.duration("nginx_cert_validity"),
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
            let htpasswd: String = users
                .iter()
                .map(|(u, pw)| format!("{u}:{{PLAIN}}{pw}\n"))
                .collect();
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
        Vmetrics {
            flags,
            scrape_interval: scrape_interval.clone(),
            scrape_timeout: r.duration("vmetrics_scrape_timeout"),
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
    }
}

/// Parameters infragen accepts for compatibility (or uses in later stages) are still typed, so a
/// bad value is reported now rather than ignored.
fn compatible(r: &mut Reader) {
    for name in [
        "ca_create",
        "repo_remove",
        "nginx_clean",
        "certbot_sign",
        "vmetrics_clean",
        "vlogs_clean",
        "vtraces_clean",
        "grafana_clean",
    ] {
        r.bool(name);
    }
    for name in ["cert_validity", "nginx_cert_validity"] {
        r.duration(name);
    }
    for name in ["nginx_data", "repo_home"] {
        r.path(name);
    }
    r.choice("region", &["default", "china", "europe"]);
    let cn = r.string("ca_cn");
    if let Err(e) = check::nginx_quoted(&cn).and_then(|()| {
        if cn.is_empty() {
            Err("empty".into())
        } else {
            Ok(())
        }
    }) {
        let path = r.var("ca_cn").map(|v| v.path).unwrap_or_default();
        r.problem(&path, format!("`ca_cn`: {e}"));
    }
    let email = r.string("certbot_email");
    let ok = email
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && check::domain(domain).is_ok())
        && !email.chars().any(char::is_whitespace);
    if !ok {
        let path = r.var("certbot_email").map(|v| v.path).unwrap_or_default();
        r.problem(&path, format!("`{email}` is not an e-mail address"));
    }
}

/// Two enabled components of one host may not share a port.
fn check_ports(r: &mut Reader, p: &Ports, node: &InfraNode) {
    let on = |c: Component| node.enabled.contains(&c);
    let mut used: Vec<(u16, &str)> = Vec::new();
    let clustered = r.bool("alertmanager_cluster");
    let list = [
        (on(Component::Nginx), p.nginx, "nginx_port"),
        (on(Component::Nginx), p.nginx_ssl, "nginx_ssl_port"),
        (on(Component::Grafana), p.grafana, "grafana_port"),
        (on(Component::Vmetrics), p.vmetrics, "vmetrics_port"),
        (on(Component::Vlogs), p.vlogs, "vlogs_port"),
        (on(Component::Vtraces), p.vtraces, "vtraces_port"),
        (on(Component::Vmalert), p.vmalert, "vmalert_port"),
        (
            on(Component::Alertmanager),
            p.alertmanager,
            "alertmanager_port",
        ),
        (
            on(Component::Alertmanager) && clustered,
            p.alertmanager_cluster,
            "alertmanager_cluster_port",
        ),
        (on(Component::Blackbox), p.blackbox, "blackbox_port"),
        (on(Component::Dnsmasq), p.dns, "dns_port"),
    ];
    for (enabled, port, name) in list {
        if !enabled || port == 0 {
            continue;
        }
        if let Some((_, other)) = used.iter().find(|(q, _)| *q == port) {
            // Blame the one the profile sets (a default is never the mistake).
            let (blamed, with) = if r.is_set(name) || !r.is_set(other) {
                (name, *other)
            } else {
                (*other, name)
            };
            let path = r.var(blamed).map(|v| v.path).unwrap_or_default();
            r.problem(
                &path,
                format!("port {port} of `{blamed}` is already used by `{with}` on this host"),
            );
        }
        used.push((port, name));
    }
}

fn grafana(
    r: &mut Reader,
    node: &InfraNode,
    infra: &[InfraNode],
    domain: &str,
    secrets: &mut BTreeMap<(Component, String), Secret>,
) -> Grafana {
    let ip = node.ip;
    let p = node.ports;
    let admin_user = r.string("grafana_admin_username");
    if let Err(e) = check::name(&admin_user) {
        let path = r
            .var("grafana_admin_username")
            .map(|v| v.path)
            .unwrap_or_default();
        r.problem(&path, e);
    }
    let password = r.string("grafana_admin_password");
    if password.is_empty() {
        let path = r
            .var("grafana_admin_password")
            .map(|v| v.path)
            .unwrap_or_default();
        r.problem(&path, "the Grafana admin password may not be empty");
    }
    secrets.insert(
        (Component::Grafana, "admin-password".to_owned()),
        Secret(password),
    );
    let pgurl = r.string("grafana_pgurl");
    let pg_database = !pgurl.is_empty();
    if pg_database {
        secrets.insert(
            (Component::Grafana, "database-url".to_owned()),
            Secret(pgurl),
        );
    }
    secrets.insert(
        (Component::Grafana, "meta-password".to_owned()),
        Secret(r.string("grafana_view_password")),
    );
    let language = if r.choice("language", &["en", "zh"]) == "zh" {
        "zh-Hans"
    } else {
        "en-US"
    }
    .to_owned();
    let pg_version = r.uint("pg_version").unwrap_or(18);
    let json = |pairs: &[(&str, serde_json::Value)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let on = |c: Component| node.enabled.contains(&c);
    let mut ds = Vec::new();
    if on(Component::Vmetrics) {
        ds.push(Datasource {
            name: "Metrics".into(),
            uid: Some("ds-prometheus".into()),
            kind: "prometheus".into(),
            url: url(ip, p.vmetrics),
            is_default: true,
            user: None,
            json: json(&[
                ("timeInterval", "2s".into()),
                ("queryTimeout", "60s".into()),
            ]),
            password_credential: None,
        });
    }
    ds.push(Datasource {
        name: "Meta".into(),
        uid: Some("ds-meta".into()),
        kind: "postgres".into(),
        url: listen(ip, 5432),
        is_default: !on(Component::Vmetrics),
        user: Some("dbuser_view".into()),
        json: json(&[
            ("database", "meta".into()),
            ("sslmode", "require".into()),
            (
                "postgresVersion",
                (if pg_version >= 15 {
                    1500
                } else {
                    pg_version * 100
                })
                .into(),
            ),
            ("connMaxLifetime", 14400.into()),
            ("maxIdleConns", 10.into()),
            ("maxOpenConns", 64.into()),
        ]),
        password_credential: Some("meta-password".into()),
    });
    if on(Component::Vlogs) {
        ds.push(simple(
            "Logs",
            Some("ds-vlogs"),
            "victoriametrics-logs-datasource",
            url(ip, p.vlogs),
        ));
    }
    if on(Component::Vtraces) {
        ds.push(simple(
            "Traces",
            Some("ds-vtraces"),
            "jaeger",
            format!("{}/select/jaeger", url(ip, p.vtraces)),
        ));
    }
    for n in infra {
        if n.enabled.contains(&Component::Vmetrics) {
            let mut d = simple(
                &format!("vmetrics-{}", n.seq),
                None,
                "prometheus",
                url(n.ip, n.ports.vmetrics),
            );
            d.json = json(&[
                ("timeInterval", "2s".into()),
                ("queryTimeout", "60s".into()),
                ("tlsAuth", false.into()),
            ]);
            ds.push(d);
        }
        if n.enabled.contains(&Component::Vlogs) {
            ds.push(simple(
                &format!("vlogs-{}", n.seq),
                None,
                "victoriametrics-logs-datasource",
                url(n.ip, n.ports.vlogs),
            ));
        }
        if n.enabled.contains(&Component::Vtraces) {
            ds.push(simple(
                &format!("vtraces-{}", n.seq),
                None,
                "jaeger",
                format!("{}/select/jaeger", url(n.ip, n.ports.vtraces)),
            ));
        }
    }
    Grafana {
        admin_user,
        auth_proxy: r.bool("grafana_auth_proxy"),
        pg_database,
        language,
        domain: domain.to_owned(),
        datasources: ds,
    }
}

fn simple(name: &str, uid: Option<&str>, kind: &str, url: String) -> Datasource {
    Datasource {
        name: name.to_owned(),
        uid: uid.map(str::to_owned),
        kind: kind.to_owned(),
        url,
        is_default: false,
        user: None,
        json: BTreeMap::new(),
        password_credential: None,
    }
}

/// `pg_exporters` on this infra host: remote `PostgreSQL` monitored from here (`pgrds`).
fn pgrds(r: &mut Reader, ip: IpAddr) -> BTreeMap<String, Vec<super::TargetGroup>> {
    let mut out: BTreeMap<String, Vec<super::TargetGroup>> = BTreeMap::new();
    let Some(var) = r.var("pg_exporters") else {
        return out;
    };
    let Some(map) = var.value.as_mapping() else {
        return out;
    };
    for (k, v) in map {
        let key = crate::keypath::join(
            &var.path,
            serde_yaml::to_string(k).unwrap_or_default().trim(),
        );
        let port = match k {
            serde_yaml::Value::Number(n) => n
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
                serde_yaml::to_string(x)
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
        if let Err(e) = check::hostname(&cls).and_then(|()| {
            host.parse::<IpAddr>()
                .map(|_| ())
                .map_err(|_| format!("`{host}` is not an IP address"))
        }) {
            r.problem(&key, e);
            continue;
        }
        let ins = format!("{cls}-{seq}");
        let mut labels = BTreeMap::new();
        labels.insert("cls".to_owned(), cls.clone());
        labels.insert("ins".to_owned(), ins);
        labels.insert("ip".to_owned(), host);
        out.entry(cls).or_default().push(super::TargetGroup {
            labels,
            targets: vec![listen(ip, port)],
        });
    }
    out
}

fn dnsmasq(
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

fn chrony(r: &mut Reader, ip: IpAddr, admin_ip: IpAddr, inventory: &Inventory) -> Chrony {
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
