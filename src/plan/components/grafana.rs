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
    Grafana {
        admin_user,
        auth_proxy: r.bool("grafana_auth_proxy"),
        pg_database,
        language,
        domain: domain.to_owned(),
        datasources,
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
