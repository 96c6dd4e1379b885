//! The parameter catalogue: every INFRA parameter infragen reads, with its built-in default.
//!
//! Owns names, defaults and one-line docs (docs/profiles.md's parameter reference is printed
//! from here by `infragen params`). It does not own types or validation: `plan` reads each
//! parameter with the type it needs. Defaults follow Pigsty v4.5.0 (docs/pigsty-infra.md §3)
//! unless the description says `infragen:`.

/// One parameter: name, default as YAML text (`None`: required or computed), description.
pub struct Param {
    /// Parameter name as written in a profile.
    pub name: &'static str,
    /// Built-in default, as YAML; `None` when there is none.
    pub default: Option<&'static str>,
    /// What it does.
    pub doc: &'static str,
}

const fn p(name: &'static str, default: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        default: Some(default),
        doc,
    }
}

const fn required(name: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        default: None,
        doc,
    }
}

/// INFRA parameters (and those of other modules that INFRA consumes), in reference order.
pub const PARAMS: &[Param] = &[
    // META
    p("version", "v4.5.0", "version string shown on the portal"),
    p("admin_ip", "10.10.10.10", "admin node address; the value of `${admin_ip}`"),
    p("region", "default", "mirror region: default, china or europe"),
    p("language", "en", "en or zh: Grafana's default language"),
    p("proxy_env", "{}", "environment for package downloads (accepted, not used by rendering)"),
    // CA
    p("ca_create", "true", "create the CA when it is missing"),
    p("ca_cn", "pigsty-ca", "CA common name"),
    p("cert_validity", "7300d", "validity of certificates the CA signs"),
    p("cert_renew_before", "30d", "infragen: a certificate this close to its end (`notAfter`) is re-issued by the next build; shorter than `cert_validity` and `nginx_cert_validity`"),
    // INFRA_ID
    required("infra_seq", "integer identity of an infra host, unique, >= 0 (required on every infra host)"),
    p("infra_portal", "{ home: { domain: i.pigsty } }", "nginx servers: `home` plus domain-based path or endpoint entries"),
    p("infra_data", "/data/infra", "infra state root on the host (metrics, logs, traces, alertmanager, grafana)"),
    p(
        "infra_services",
        "[{name: Metrics, url: /vmetrics/vmui/, icon: metrics, desc: VictoriaMetrics query UI}, \
          {name: Logs, url: /vlogs/select/vmui/, icon: logs, desc: VictoriaLogs query UI}, \
          {name: Traces, url: /vtraces/select/vmui/, icon: traces, desc: VictoriaTraces query UI}, \
          {name: Monitor Targets, url: /vmetrics/targets, icon: target, desc: scrape targets}, \
          {name: Alert Rules, url: /vmalert/vmalert/groups, icon: alert, desc: vmalert rule groups}, \
          {name: Alert Manager, url: /alertmgr/#/alerts, icon: alertmgr, desc: active alerts}, \
          {name: CA Certificate, url: /ca.crt, icon: lock, desc: the self-signed CA}, \
          {name: Software Repo, url: /pigsty, icon: package, desc: local package repository}, \
          {name: Explain Visualizer, url: /pev, icon: search, desc: PostgreSQL explain visualizer}]",
        "service cards on the portal home page (replaces the list)",
    ),
    p("infra_extra_services", "[]", "service cards appended after `infra_services`"),
    p("infra_dashboards", "''", "infragen: a directory of Grafana dashboard JSON (folders kept as Grafana folders) served beside the built-in ones, relative to the profile file (a built-in profile: the working directory); a dashboard with a built-in `uid` replaces it (docs/content.md)"),
    p("infra_rules", "''", "infragen: a directory of vmalert rule files loaded beside the built-in ones, relative as `infra_dashboards`; a group with a built-in group's `name` replaces it (docs/content.md)"),
    // REPO
    p("repo_enabled", "true", "serve the local package repository on this infra host; on the admin node it also says whether a local repository exists for the nodes' APT source (`node_repo_modules`)"),
    p("repo_home", "/www", "repository parent directory"),
    p("repo_name", "pigsty", "repository directory name"),
    p("repo_endpoint", "http://${admin_ip}:80", "documented repository URL (accepted, unused, as in Pigsty)"),
    p("repo_remove", "true", "accepted for compatibility"),
    p("repo_modules", "infra,node,pgsql", "accepted for compatibility"),
    p("repo_upstream", "[]", "accepted for compatibility"),
    p("repo_packages", "[]", "accepted for compatibility"),
    p("repo_extra_packages", "[]", "accepted for compatibility"),
    p("repo_url_packages", "[]", "accepted for compatibility"),
    p("infra_packages", "[]", "accepted for compatibility; images declare their packages"),
    // NGINX
    p("nginx_enabled", "true", "run nginx on this infra host"),
    p("nginx_clean", "false", "accepted; every generation is complete, so stale server files never remain"),
    p("nginx_exporter_enabled", "true", "run the nginx exporter (needs `nginx_enabled`); nginx serves `stub_status` at `/nginx` to this host only"),
    p("nginx_exporter_port", "9113", "nginx exporter port"),
    p("nginx_sslmode", "enable", "disable, enable or enforce"),
    p("nginx_cert_validity", "397d", "validity of the nginx server certificate"),
    p("nginx_home", "/www", "web root (the local repository lives below it)"),
    p("nginx_data", "/data/nginx", "directory behind the web root on the host"),
    p("nginx_users", "{}", "basic-auth users `{name: password}` (secret; nginx gets SHA-512 crypt hashes)"),
    p("nginx_port", "80", "HTTP port"),
    p("nginx_ssl_port", "443", "HTTPS port"),
    p("certbot_sign", "false", "accepted; ACME signing is not done by infragen"),
    p("certbot_email", "your@email.com", "ACME account e-mail"),
    p("certbot_options", "''", "accepted for compatibility"),
    // DNS
    p("dns_enabled", "true", "run dnsmasq on this infra host"),
    p("dns_port", "53", "DNS port"),
    p(
        "dns_records",
        "['${admin_ip} i.pigsty', '${admin_ip} m.pigsty supa.pigsty api.pigsty adm.pigsty cli.pigsty ddl.pigsty']",
        "static records `IP name...`; `${admin_ip}` expanded",
    ),
    // VICTORIA
    p("vmetrics_enabled", "true", "run VictoriaMetrics"),
    p("vmetrics_clean", "false", "accepted for compatibility"),
    p("vmetrics_port", "8428", "VictoriaMetrics port"),
    p("vmetrics_scrape_interval", "10s", "global scrape interval; also vmalert's evaluation interval"),
    p("vmetrics_scrape_timeout", "8s", "global scrape timeout"),
    p("vmetrics_options", "-retentionPeriod=15d -promscrape.fileSDCheckInterval=5s", "extra flags"),
    p("vlogs_enabled", "true", "run VictoriaLogs"),
    p("vlogs_clean", "false", "accepted for compatibility"),
    p("vlogs_port", "9428", "VictoriaLogs port"),
    p(
        "vlogs_options",
        "-retentionPeriod=15d -retention.maxDiskSpaceUsageBytes=50GiB -insert.maxLineSizeBytes=1MB -search.maxQueryDuration=120s",
        "extra flags",
    ),
    p("vtraces_enabled", "true", "run VictoriaTraces"),
    p("vtraces_clean", "false", "accepted for compatibility"),
    p("vtraces_port", "10428", "VictoriaTraces port"),
    p("vtraces_options", "-retentionPeriod=15d -retention.maxDiskSpaceUsageBytes=50GiB", "extra flags"),
    p("vmalert_enabled", "true", "run vmalert (needs vmetrics_enabled)"),
    p("vmalert_port", "8880", "vmalert port"),
    p("vmalert_options", "''", "extra flags"),
    // PROMETHEUS
    p("blackbox_enabled", "true", "run the blackbox exporter"),
    p("blackbox_port", "9115", "blackbox exporter port"),
    p("blackbox_options", "''", "extra flags"),
    p("alertmanager_enabled", "true", "run Alertmanager"),
    p("alertmanager_port", "9059", "Alertmanager web port"),
    p("alertmanager_options", "''", "extra flags"),
    p("alertmanager_cluster", "false", "infragen: peer every infra host's Alertmanager into one cluster; vmalert notifies all"),
    p("alertmanager_cluster_port", "9094", "infragen: Alertmanager gossip port when clustered"),
    p("exporter_metrics_path", "/metrics", "metrics path of the node, pgsql, pgrds, mysql and kafka jobs"),
    // GRAFANA
    p("grafana_enabled", "true", "run Grafana"),
    p("grafana_port", "3000", "Grafana port"),
    p("grafana_clean", "false", "accepted for compatibility"),
    p("grafana_admin_username", "admin", "Grafana admin user"),
    p("grafana_admin_password", "pigsty", "Grafana admin password (secret)"),
    p("grafana_auth_proxy", "false", "enable Grafana's auth proxy (`X-WEBAUTH-USER`)"),
    p("grafana_pgurl", "''", "Grafana database URL (secret); empty: SQLite"),
    p("grafana_view_password", "DBUser.Viewer", "password of the Meta datasource user (secret)"),
    p("infragen_host_key", "''", "infragen: the host's age recipient (`age1…`, printed by `infragen host init` on the host); its secrets leave the build encrypted to it. Empty: secrets in clear, with a warning"),
    p("infragen_recovery_keys", "[]", "infragen: operator age recipients (`age1…`) every encrypted secret is encrypted to as well"),
    p("infragen_upstream_images", "{}", "infragen: components taken from their upstream image instead of Debian's package, `{component: name:tag}` (no registry host: `--base-registry`); only `vmetrics`; pinned in infragen.lock by `infragen lock --profile`"),
    // NODE parameters: every node's bundle (docs/nodes.md), and what INFRA consumes
    p("node_write_etc_hosts", "true", "write the `/etc/hosts` block of every node"),
    p("node_default_etc_hosts", "['${admin_ip} i.pigsty']", "`/etc/hosts` lines `IP name...` of every node; `${admin_ip}` expanded"),
    p("node_etc_hosts", "[]", "more `/etc/hosts` lines, after `node_default_etc_hosts`"),
    p("node_dns_method", "add", "add (resolver lines above the host's own), overwrite (the whole resolver configuration) or none"),
    p("node_dns_servers", "['${admin_ip}']", "name server addresses of every node; `${admin_ip}` expanded"),
    p("node_dns_options", "['options single-request-reopen timeout:1']", "`/etc/resolv.conf` lines before the name servers (not used under systemd-resolved)"),
    p("node_ntp_enabled", "true", "run chrony: infragen's chrony component on infra hosts, a chrony client configuration on other nodes"),
    p("node_ntp_servers", "['pool pool.ntp.org iburst']", "chrony source lines; one with `${admin_ip}` is dropped on the admin node"),
    p("node_repo_modules", "local", "APT sources of every node, comma-separated; `local`: the admin node's local repository, when its `repo_enabled` (other modules: accepted, not written)"),
    p("chrony_allow", "[]", "infragen: networks chrony serves; empty: every /24 of the inventory plus loopback"),
    p("chrony_control_clock", "true", "infragen: false runs chronyd with -x (serve time, never set the clock)"),
    p("node_exporter_port", "9100", "node_exporter port (targets, rules)"),
    p("node_exporter_enabled", "true", "node_exporter on every node (targets)"),
    p("haproxy_enabled", "true", "haproxy on every node (targets)"),
    p("haproxy_exporter_port", "9101", "haproxy exporter port"),
    p("vector_enabled", "true", "vector on every node (targets)"),
    p("vector_port", "9598", "vector port"),
    p("vip_exporter_port", "9650", "keepalived exporter port"),
    p("docker_exporter_port", "9323", "docker metrics port"),
    p("pg_exporter_enabled", "true", "pg_exporter on pgsql nodes (targets)"),
    p("pg_exporter_port", "9630", "pg_exporter port"),
    p("pgbouncer_exporter_enabled", "true", "pgbouncer exporter on pgsql nodes"),
    p("pgbouncer_exporter_port", "9631", "pgbouncer exporter port"),
    p("pgbackrest_exporter_enabled", "true", "pgbackrest exporter on pgsql nodes"),
    p("pgbackrest_exporter_port", "9854", "pgbackrest exporter port"),
    p("patroni_port", "8008", "patroni REST port"),
    p("patroni_ssl_enabled", "false", "patroni REST over TLS (adds the `pgsql-patroni` job)"),
    p("redis_exporter_port", "9121", "redis exporter port"),
    p("minio_https", "true", "scrape MinIO over TLS"),
    p("minio_port", "9000", "MinIO port"),
    p("etcd_port", "2379", "etcd client port"),
    // Other modules' targets and records (node VIP, MinIO engine, MySQL, Kafka, JuiceFS)
    p("vip_enabled", "false", "node cluster L2 VIP (keepalived): its exporter and a ping of the VIP (targets), `<node_cluster>.vip` (DNS)"),
    p("vip_dns_suffix", "''", "suffix of the node VIP's DNS name `<node_cluster><suffix>`"),
    p("minio_type", "silo", "object-storage engine, the MinIO targets' `flavor` label (`silo`, `minio`, `rustfs`)"),
    p("mysql_exporter_enabled", "true", "mysqld_exporter on MySQL members (targets, port 9104)"),
    p("kafka_role", "combined", "Kafka member role: combined, broker or controller (targets)"),
    p("kafka_jmx_exporter_enabled", "true", "Kafka JMX exporter (targets)"),
    p("kafka_jmx_exporter_port", "9404", "Kafka JMX exporter port"),
    p("kafka_exporter_port", "9308", "Kafka protocol exporter port (first two broker-capable members)"),
    p("juice_instances", "{}", "JuiceFS instances of a node, `{name: {port, state}}` (targets; port 9567 by default)"),
    p("pg_version", "18", "PostgreSQL major version (Meta datasource)"),
    // Per-database PostgreSQL datasources (docs/content.md, "Datasources and plugins")
    p("pg_monitor_username", "dbuser_monitor", "monitor user of the per-database PostgreSQL datasources"),
    p("pg_monitor_password", "DBUser.Monitor", "its password (secret, a Grafana credential)"),
    p("grafana_plugin_dir", "''", "infragen: a directory of Grafana plugin archives (`*.zip` as Grafana's catalogue ships them), relative to the profile file or absolute; pinned by `infragen lock --profile`, unpacked into the grafana image's plugin layer. Empty: no plugin layer"),
    p("code_port", "8443", "code-server port proxied at `/code/`"),
    p("jupyter_port", "8888", "Jupyter port proxied at `/jupyter/`"),
];

/// The parameter named `name`.
pub fn get(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

/// Parameters of other Pigsty modules whose names are close to an INFRA parameter: never
/// reported as misspellings.
const NEAR_MISSES: &[&str] = &[
    "etcd_seq",
    "pg_seq",
    "minio_seq",
    "redis_node",
    "node_repo_remove",
    "pg_port",
    "node_tune",
    "repo_extra_packages",
    "pg_packages",
    "node_packages",
    "minio_users",
    "minio_data",
    "minio_cluster",
    "etcd_cluster",
    "pg_cluster",
    "redis_cluster",
    "vip_enabled",
    "vip_address",
    "vip_vrid",
    "vip_role",
    "pg_role",
    "nodename",
    "nodename_overwrite",
    "docker_enabled",
    "haproxy_services",
    "pg_vip_enabled",
    "pg_vip_address",
    "pg_dns_suffix",
    "pg_dns_target",
    "vip_dns_suffix",
    "minio_endpoint",
    "minio_domain",
    "minio_seq",
    "infra_services",
    "pg_exporters",
    "redis_exporter_enabled",
    "minio_node",
    "pgbackrest_repo",
    "pgbackrest_method",
    "pg_users",
    "pg_databases",
];

/// The closest INFRA parameter to an unknown name, when it is a likely misspelling.
pub fn suggest(name: &str) -> Option<&'static str> {
    if get(name).is_some() || NEAR_MISSES.contains(&name) {
        return None;
    }
    let limit = if name.len() <= 8 { 1 } else { 2 };
    PARAMS
        .iter()
        .map(|p| (distance(name, p.name), p.name))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, n)| n)
}

/// Damerau-style edit distance (insert, delete, substitute, swap neighbours).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        for p in PARAMS {
            if let Some(d) = p.default {
                crate::yaml::from_str(d).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            }
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = PARAMS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("nginx_prot"), Some("nginx_port"));
        assert_eq!(
            suggest("vmetrics_scrape_intervall"),
            Some("vmetrics_scrape_interval")
        );
        assert_eq!(
            suggest("grafana_admin_pasword"),
            Some("grafana_admin_password")
        );
        assert_eq!(suggest("pg_cluster"), None);
        assert_eq!(suggest("nginx_port"), None);
        assert_eq!(suggest("something_else_entirely"), None);
    }
}
