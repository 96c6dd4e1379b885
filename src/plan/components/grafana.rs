//! Grafana settings: the admin user and the credentials it needs as secrets, and the
//! provisioned datasources (this host's Metrics, Meta, Logs and Traces, and one per
//! `VictoriaMetrics`, `VictoriaLogs` and `VictoriaTraces` of every infra host).

use std::collections::BTreeMap;

use super::{listen, url, Datasource, Grafana};
use crate::plan::read::Reader;
use crate::plan::{check, Component, InfraNode, Secret};

/// Grafana on `node`: its admin user and credentials (into `secrets`), language and datasources;
/// `domain` is the portal's home domain.
pub(super) fn grafana(
    r: &mut Reader,
    node: &InfraNode,
    infra: &[InfraNode],
    domain: &str,
    secrets: &mut BTreeMap<(Component, String), Secret>,
) -> Grafana {
    let (admin_user, pg_database) = credentials(r, secrets);
    let language = if r.choice("language", &["en", "zh"]) == "zh" {
        "zh-Hans"
    } else {
        "en-US"
    }
    .to_owned();
    let pg_version = r.uint("pg_version").unwrap_or(18);
    let mut datasources = local_datasources(node, pg_version);
    datasources.extend(infra.iter().flat_map(peer_datasources));
    let plugin_dir = Some(r.string("grafana_plugin_dir")).filter(|d| !d.is_empty());
    Grafana {
        admin_user,
        auth_proxy: r.bool("grafana_auth_proxy"),
        pg_database,
        language,
        domain: domain.to_owned(),
        datasources,
        plugin_dir,
    }
}

/// Where the grafana image holds the plugins of `grafana_plugin_dir` (`[paths] plugins` when it
/// is set). Not below `/var/lib/grafana`: that is the state volume bound from the host, which
/// would hide what the image holds there.
pub const PLUGINS: &str = "/usr/share/grafana/plugins-infragen";

impl Grafana {
    /// `grafana_plugin_dir` as a path: absolute as written, else relative to the directory of
    /// the profile file `source` (to the working directory for a built-in profile).
    pub fn plugin_dir(&self, source: &str) -> Option<std::path::PathBuf> {
        let dir = std::path::Path::new(self.plugin_dir.as_deref()?);
        if dir.is_absolute() || source.starts_with("builtin:") {
            return Some(dir.to_path_buf());
        }
        let base = std::path::Path::new(source)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        Some(base.join(dir))
    }
}

/// The admin user's name; its password, the database URL (when Grafana keeps its state in
/// PostgreSQL: the returned flag) and the Meta datasource's password go to `secrets`.
fn credentials(
    r: &mut Reader,
    secrets: &mut BTreeMap<(Component, String), Secret>,
) -> (String, bool) {
    let admin_user = r.string("grafana_admin_username");
    if let Err(e) = check::name(&admin_user) {
        let path = r
            .var("grafana_admin_username")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(&path, e);
    }
    let password = r.string("grafana_admin_password");
    if password.is_empty() {
        let path = r
            .var("grafana_admin_password")
            .map(|v| v.path.clone())
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
    (admin_user, pg_database)
}

/// A datasource's `jsonData`.
fn json(pairs: &[(&str, serde_json::Value)]) -> BTreeMap<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// This host's own datasources: Metrics (the default, when it runs `VictoriaMetrics`), Meta (the
/// CMDB in PostgreSQL `pg_version`), Logs and Traces.
fn local_datasources(node: &InfraNode, pg_version: u64) -> Vec<Datasource> {
    let (ip, p) = (node.ip, node.ports);
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
    ds
}

/// One datasource per `VictoriaMetrics`, `VictoriaLogs` and `VictoriaTraces` of infra host `n`.
fn peer_datasources(n: &InfraNode) -> Vec<Datasource> {
    let mut ds = Vec::new();
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
    ds
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

/// The Static datasource every Grafana provisions (Pigsty's uid, the static-datasource plugin).
pub const STATIC_DATASOURCE: (&str, &str) = ("ds-static", "marcusolsson-static-datasource");

/// One PostgreSQL datasource per database, as Pigsty's `pg_monitor` and `pg_exporters` roles
/// register them: `<pg_cluster>-<pg_seq>.<db>` on every infra host's Grafana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgDatasource {
    /// `<pg_cluster>-<pg_seq>.<db>`.
    pub name: String,
    /// `host:port` (an instance's address, or an exporter entry's `pg_host`, which may be a
    /// DNS name).
    pub url: String,
    /// The database.
    pub database: String,
    /// The monitor user (`pg_monitor_username`).
    pub user: String,
    /// `postgresVersion`: 1500 from `pg_version` 15 on, else `pg_version` × 100.
    pub postgres_version: u64,
    /// The Grafana credential holding the monitor user's password.
    pub credential: String,
}

/// The per-database datasources of the whole inventory and the monitor passwords they read
/// (credential name → password; one credential per distinct password, named after the first
/// instance that uses it).
#[derive(Debug, Clone, Default)]
pub struct PgDatasources {
    /// In order: instances by cluster and sequence, databases as listed (`postgres` first),
    /// then `pg_exporters` entries the same way; one per name.
    pub datasources: Vec<PgDatasource>,
    /// Credential name → password.
    pub passwords: BTreeMap<String, Secret>,
}

/// One database to register, before credentials are named.
struct Candidate {
    order: (String, u64, u8, usize),
    ds: PgDatasource,
    password: String,
}

/// Every per-database datasource of the inventory: for each host with `pg_cluster` and
/// `pg_seq` (gated by its `grafana_enabled` and `pg_provision`), `postgres` and each
/// `pg_databases` entry; for each `pg_exporters` entry of an infra host, its own
/// `pg_databases`. An entry with `register_datasource: false` (and, for instances,
/// `state: absent`) is left out.
pub(in crate::plan) fn pg_datasources<'a>(
    hosts: impl IntoIterator<Item = (&'a str, crate::profile::Resolved<'a>)>,
    infra_hosts: &[&str],
    problems: &mut Vec<crate::problem::Problem>,
) -> PgDatasources {
    let mut all = Vec::new();
    for (host, vars) in hosts {
        let mut r = Reader::new(&vars, host, problems);
        instance(&mut r, &mut all);
        if infra_hosts.contains(&host) {
            exporters(&mut r, &mut all);
        }
    }
    all.sort_by(|a, b| a.order.cmp(&b.order));
    let mut out = PgDatasources::default();
    let mut by_password: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for mut c in all {
        if !seen.insert(c.ds.name.clone()) {
            continue;
        }
        let credential = by_password
            .entry(c.password.clone())
            .or_insert_with(|| format!("pg-monitor.{}-{}", c.order.0, c.order.1))
            .clone();
        out.passwords
            .insert(credential.clone(), Secret(c.password.clone()));
        c.ds.credential = credential;
        out.datasources.push(c.ds);
    }
    out
}

/// A value as Ansible's `|bool` reads it (`false`, `no`, `off`, `0`: false).
fn truthy(v: &crate::yaml::Value) -> bool {
    match v {
        crate::yaml::Value::Bool(b) => *b,
        crate::yaml::Value::Number(n) => n.to_string() != "0",
        crate::yaml::Value::String(s) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0" | "n" | ""
        ),
        _ => false,
    }
}

/// A scalar as text (numbers too), or `None`.
fn text(v: &crate::yaml::Value) -> Option<String> {
    match v {
        crate::yaml::Value::String(s) => Some(s.clone()),
        crate::yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `postgresVersion` for `pg_version` (Pigsty: 15 and later read as 15).
fn postgres_version(v: u64) -> u64 {
    v.min(15) * 100
}

/// `postgres` and the host's `pg_databases`, when it is a `PostgreSQL` instance that registers.
fn instance(r: &mut Reader, out: &mut Vec<Candidate>) {
    // Identity problems are reported by the scrape targets (`targets::member`): read quietly.
    let (Some(cls), Some(seq)) = (
        r.var("pg_cluster")
            .filter(|_| r.is_set("pg_cluster"))
            .and_then(|v| text(&v.value)),
        r.var("pg_seq")
            .and_then(|v| text(&v.value)?.parse::<u64>().ok()),
    ) else {
        return;
    };
    if check::hostname(&cls).is_err() || !r.bool("grafana_enabled") {
        return;
    }
    if r.var("pg_provision").is_some_and(|v| !truthy(&v.value)) {
        return;
    }
    let Ok(ip) = r.host().parse::<std::net::IpAddr>() else {
        return;
    };
    let port = quiet_port(r, "pg_port");
    let (user, password) = monitor(r, None);
    let version = postgres_version(r.uint("pg_version").unwrap_or(10));
    let mut dbs = vec![("postgres".to_owned(), true)];
    if let Some(var) = r.var("pg_databases") {
        dbs.extend(databases(r, &var.value, &var.path, true));
    }
    for (i, (db, register)) in dbs.into_iter().enumerate() {
        if !register {
            continue;
        }
        out.push(Candidate {
            order: (cls.clone(), seq, 0, i),
            ds: PgDatasource {
                name: format!("{cls}-{seq}.{db}"),
                url: listen(ip, port),
                database: db,
                user: user.clone(),
                postgres_version: version,
                credential: String::new(),
            },
            password: password.clone(),
        });
    }
}

/// A port read without reporting (5432 when unset or not a port).
fn quiet_port(r: &Reader, name: &str) -> u16 {
    r.var(name)
        .and_then(|v| text(&v.value)?.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(5432)
}

/// The monitor user and password: an exporter entry's own, else the host's, else Pigsty's
/// defaults.
fn monitor(r: &mut Reader, entry: Option<&crate::yaml::Value>) -> (String, String) {
    let own = |k: &str| entry.and_then(|e| e.get(k)).and_then(text);
    let user = own("pg_monitor_username").unwrap_or_else(|| r.string("pg_monitor_username"));
    let password = own("pg_monitor_password").unwrap_or_else(|| r.string("pg_monitor_password"));
    (user, password)
}

/// The databases of a `pg_databases` list at `path`: name and whether it registers. An entry
/// is a mapping with `name` or a plain name; `state: absent` counts only for instances
/// (`absent_counts`), as in Pigsty.
fn databases(
    r: &mut Reader,
    list: &crate::yaml::Value,
    path: &str,
    absent_counts: bool,
) -> Vec<(String, bool)> {
    let Some(items) = list.as_sequence() else {
        r.problem(path, "`pg_databases` must be a list of databases");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = crate::keypath::index(path, i);
        let (name, register) = if let Some(name) = text(item) {
            (name, true)
        } else if item.as_mapping().is_some() {
            let Some(name) = item.get("name").and_then(text) else {
                r.problem(&at, "a database needs a `name`");
                continue;
            };
            let register = item.get("register_datasource").is_none_or(truthy)
                && !(absent_counts
                    && item.get("state").and_then(text).as_deref() == Some("absent"));
            (name, register)
        } else {
            r.problem(&at, "a database is a name or a mapping with `name`");
            continue;
        };
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == '/') {
            r.problem(
                &crate::keypath::join(&at, "name"),
                format!(
                    "`{}` is not a database name Grafana can be given",
                    name.escape_debug()
                ),
            );
            continue;
        }
        out.push((name, register));
    }
    out
}

/// The databases of every `pg_exporters` entry of an infra host (remote instances monitored
/// from it). Malformed entries are reported by the scrape targets (`lists::pgrds`): skipped.
fn exporters(r: &mut Reader, out: &mut Vec<Candidate>) {
    let Some(var) = r.var("pg_exporters") else {
        return;
    };
    let Some(map) = var.value.as_mapping() else {
        return;
    };
    let version = postgres_version(r.uint("pg_version").unwrap_or(10));
    let host_port = quiet_port(r, "pg_port");
    for (k, entry) in map {
        let key = crate::keypath::join(&var.path, &text(k).unwrap_or_default());
        let get = |f: &str| entry.get(f).and_then(text);
        let (Some(cls), Some(seq), Some(host)) = (
            get("pg_cluster"),
            get("pg_seq").and_then(|s| s.parse::<u64>().ok()),
            get("pg_host"),
        ) else {
            continue;
        };
        if check::hostname(&cls).is_err() || host_address(&host).is_none() {
            continue;
        }
        let port = get("pg_port")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(host_port);
        let (user, password) = monitor(r, Some(entry));
        let Some(list) = entry.get("pg_databases") else {
            continue;
        };
        let dbs = databases(r, list, &crate::keypath::join(&key, "pg_databases"), false);
        for (i, (db, register)) in dbs.into_iter().enumerate() {
            if !register {
                continue;
            }
            out.push(Candidate {
                order: (cls.clone(), seq, 1, i),
                ds: PgDatasource {
                    name: format!("{cls}-{seq}.{db}"),
                    url: host_address(&host)
                        .map(|h| format!("{h}:{port}"))
                        .unwrap_or_default(),
                    database: db,
                    user: user.clone(),
                    postgres_version: version,
                    credential: String::new(),
                },
                password: password.clone(),
            });
        }
    }
}

/// `pg_host` as an address in a URL: an IP (IPv6 in brackets) or a DNS name.
fn host_address(host: &str) -> Option<String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(match ip {
            std::net::IpAddr::V4(_) => ip.to_string(),
            std::net::IpAddr::V6(_) => format!("[{ip}]"),
        });
    }
    check::domain(host).ok().map(|()| host.to_owned())
}

#[cfg(test)]
mod tests {
    /// An exporter's `pg_host` may be a DNS name (Pigsty's RDS example): it is the datasource's
    /// host. Called directly, since whether the scrape targets accept it is their own rule.
    #[test]
    fn an_exporter_on_a_dns_name_connects_to_that_name() {
        let text = "all:\n  children:\n    infra:\n      hosts:\n        10.0.0.1: { infra_seq: 1 }\n      vars:\n        pg_exporters:\n          20001: { pg_cluster: pg-rds, pg_seq: 1, pg_host: rds.example.com, pg_databases: [ { name: app } ] }\n          20002: { pg_cluster: pg-bad, pg_seq: 1, pg_host: 'not a host', pg_databases: [ x ] }\n";
        let inv = crate::profile::parse("t.yml", text).unwrap();
        let hosts = inv.all_hosts();
        let mut problems = Vec::new();
        let got = super::pg_datasources(
            hosts.iter().map(|h| (*h, inv.resolve(h))),
            &["10.0.0.1"],
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let ds: Vec<(&str, &str)> = got
            .datasources
            .iter()
            .map(|d| (d.name.as_str(), d.url.as_str()))
            .collect();
        assert_eq!(ds, [("pg-rds-1.app", "rds.example.com:5432")]);
    }
}
