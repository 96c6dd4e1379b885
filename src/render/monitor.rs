//! The monitoring stack: Grafana, VictoriaMetrics/Logs/Traces, vmalert, Alertmanager, blackbox.

use anyhow::Result;
use serde_json::{json, Value};

use super::{credentials_dir, env_file, template, yaml, Head};
use crate::plan::{Component, HostPlan, Plan};
use crate::tree::Tree;

/// Directory of file-SD target files inside the vmetrics root.
const TARGETS: &str = "/etc/vmetrics/targets";

/// `grafana.ini`, datasource and dashboard provisioning.
pub fn grafana(plan: &Plan, h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let g = h.grafana.as_ref().expect("enabled");
    let creds = credentials_dir(Component::Grafana);
    t.add("etc/grafana/grafana.ini", 0o644, template("grafana.ini", &json!({
        "host": head.host, "source": head.source, "ip": h.ip.to_string(), "port": h.ports.grafana,
        "domain": g.domain, "pg_database": g.pg_database, "credentials": creds, "admin_user": g.admin_user,
        "language": g.language, "auth_proxy": g.auth_proxy,
        "plugin_dir": g.plugin_dir.as_ref().map(|_| crate::plan::PLUGINS),
    }))?);
    let datasources: Vec<Value> = g
        .datasources
        .iter()
        .map(|d| {
            let mut v = json!({"name": d.name, "type": d.kind, "access": "proxy", "orgId": 1});
            let o = v.as_object_mut().expect("object");
            if let Some(uid) = &d.uid {
                o.insert("uid".into(), json!(uid));
            }
            o.insert("url".into(), json!(d.url));
            if let Some(user) = &d.user {
                o.insert("user".into(), json!(user));
            }
            o.insert("isDefault".into(), json!(d.is_default));
            o.insert("editable".into(), json!(true));
            if !d.json.is_empty() {
                o.insert("jsonData".into(), json!(d.json));
            }
            if let Some(cred) = &d.password_credential {
                o.insert(
                    "secureJsonData".into(),
                    json!({"password": format!("$__file{{{creds}/{cred}}}")}),
                );
            }
            v
        })
        .collect();
    let mut datasources = datasources;
    datasources.push(
        json!({"name": "Static", "type": crate::plan::STATIC_DATASOURCE.1, "access": "proxy",
        "orgId": 1, "uid": crate::plan::STATIC_DATASOURCE.0, "isDefault": false, "editable": true}),
    );
    datasources.extend(plan.pg_datasources.iter().map(|d| pg_datasource(d, &creds)));
    let doc = json!({"apiVersion": 1, "prune": true, "datasources": datasources});
    t.add(
        "etc/grafana/provisioning/datasources/pigsty.yml",
        0o644,
        yaml(&format!("Grafana datasources for {}: local ones and every infra node's (rendered by infragen)", head.host), &doc)?,
    );
    let providers = json!({"apiVersion": 1, "providers": [{
        "name": "Pigsty", "orgId": 1, "type": "file", "disableDeletion": false,
        "updateIntervalSeconds": 8, "allowUiUpdates": true,
        "options": {"path": "/etc/dashboards", "foldersFromFilesStructure": true},
    }]});
    t.add(
        "etc/grafana/provisioning/dashboards/pigsty.yml",
        0o644,
        yaml(
            "Grafana dashboard provider (rendered by infragen)",
            &providers,
        )?,
    );
    for d in crate::content::dashboards(plan) {
        let text = serde_json::to_string_pretty(&*d.json)? + "\n";
        t.add(format!("etc/dashboards/{}", d.path), 0o644, text);
    }
    Ok(())
}

/// A per-database `PostgreSQL` datasource as Pigsty's roles register it (`postgres` type, no
/// uid, `sslmode` require, small pools), its password read from a credential.
fn pg_datasource(d: &crate::plan::PgDatasource, creds: &str) -> Value {
    json!({
        "name": d.name, "type": "postgres", "access": "proxy", "orgId": 1, "url": d.url,
        "user": d.user, "database": d.database, "isDefault": false, "editable": true,
        "jsonData": {
            "database": d.database, "connMaxLifetime": 3600, "maxIdleConns": 1, "maxOpenConns": 8,
            "postgresVersion": d.postgres_version, "sslmode": "require", "tlsAuth": false,
            "tlsAuthWithCACert": false,
        },
        "secureJsonData": {"password": format!("$__file{{{creds}/{}}}", d.credential)},
    })
}

fn file_sd(dir: &str) -> Value {
    json!([{"files": [format!("{TARGETS}/{dir}/*.yml")]}])
}

fn job(name: &str, dir: &str, path: &str) -> Value {
    json!({"job_name": name, "metrics_path": path, "file_sd_configs": file_sd(dir)})
}

/// Flags, `prometheus.yml` and the whole file-SD target tree.
pub fn vmetrics(plan: &Plan, h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let v = h.vmetrics.as_ref().expect("enabled");
    env_file(t, head, Component::Vmetrics, &v.flags)?;
    let creds = credentials_dir(Component::Vmetrics);
    let tls = json!({"ca_file": "/etc/pki/ca.crt", "cert_file": "/etc/pki/infra.crt", "key_file": format!("{creds}/infra.key")});
    let mp = v.metrics_path.as_str();
    let mut jobs = vec![
        json!({
            "job_name": "ping", "metrics_path": "/probe", "params": {"module": ["icmp"]},
            "file_sd_configs": file_sd("ping"),
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": v.blackbox},
            ],
        }),
        job("infra", "infra", "/metrics"),
        job("node", "node", mp),
        json!({"job_name": "docker", "metrics_path": "/metrics", "file_sd_configs": file_sd("docker"),
               "relabel_configs": [{"target_label": "job", "replacement": "node"}]}),
        json!({"job_name": "etcd", "metrics_path": "/metrics", "scheme": "https", "tls_config": tls, "file_sd_configs": file_sd("etcd")}),
    ];
    let mut minio = json!({"job_name": "minio", "metrics_path": "/minio/metrics/v3", "file_sd_configs": file_sd("minio"),
        "metric_relabel_configs": [{"source_labels": ["bucket"], "regex": ".+", "action": "drop"}]});
    if v.minio_https {
        let o = minio.as_object_mut().expect("object");
        o.insert("scheme".into(), json!("https"));
        o.insert("tls_config".into(), tls.clone());
    }
    jobs.push(minio);
    jobs.push(job("pgsql", "pgsql", mp));
    if v.patroni_ssl {
        jobs.push(json!({"job_name": "pgsql-patroni", "metrics_path": "/metrics", "scheme": "https", "honor_labels": true,
            "tls_config": {"ca_file": "/etc/pki/ca.crt"}, "file_sd_configs": file_sd("patroni")}));
    }
    jobs.push(job("pgrds", "pgrds", mp));
    jobs.push(json!({
        "job_name": "redis", "metrics_path": "/scrape", "file_sd_configs": file_sd("redis"),
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "regex": "redis://(.*)", "target_label": "instance", "replacement": "$1"},
            {"source_labels": ["__param_target"], "regex": "redis://([^:]+):.*", "target_label": "ip", "replacement": "$1"},
            {"source_labels": ["__param_target"], "regex": "redis://([^:]+):.*", "target_label": "__address__",
             "replacement": format!("$1:{}", v.redis_exporter_port)},
        ],
    }));
    jobs.push(job("mysql", "mysql", mp));
    jobs.push(job("kafka", "kafka", mp));
    jobs.push(job("juice", "juice", "/metrics"));
    let doc = json!({
        "global": {"scrape_interval": v.scrape_interval, "scrape_timeout": v.scrape_timeout},
        "scrape_configs": jobs,
    });
    t.add(
        "etc/vmetrics/prometheus.yml",
        0o644,
        yaml(
            &format!(
                "VictoriaMetrics scrape config for {} (rendered by infragen)",
                head.host
            ),
            &doc,
        )?,
    );
    let mut dirs = plan.targets.clone();
    if !v.pgrds.is_empty() {
        dirs.insert("pgrds".into(), v.pgrds.clone());
    }
    for (dir, files) in &dirs {
        for (file, groups) in files {
            t.add(
                format!("etc/vmetrics/targets/{dir}/{file}.yml"),
                0o644,
                crate::yaml::to_string(groups)?,
            );
        }
    }
    Ok(())
}

/// `VictoriaLogs` or `VictoriaTraces`: flags.
pub fn victoria(h: &HostPlan, c: Component, head: &Head, t: &mut Tree) -> Result<()> {
    let v = if c == Component::Vlogs {
        &h.vlogs
    } else {
        &h.vtraces
    };
    env_file(t, head, c, &v.as_ref().expect("enabled").flags)
}

/// Flags, static rules and the rendered `agent.yml`.
pub fn vmalert(plan: &Plan, h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let v = h.vmalert.as_ref().expect("enabled");
    env_file(t, head, Component::Vmalert, &v.flags)?;
    for r in crate::content::rules(plan) {
        t.add(format!("etc/vmalert/rules/{}", r.name), 0o644, r.text);
    }
    let mut rules: Vec<Value> = v
        .agent_ports
        .iter()
        .map(|(record, port)| json!({"record": record, "expr": format!("up{{instance=~\".*:{port}\"}}")}))
        .collect();
    for (record, job) in [
        ("etcd_up", "etcd"),
        ("minio_up", "minio"),
        ("mysql_exporter_up", "mysql"),
    ] {
        rules.push(json!({"record": record, "expr": format!("up{{job=\"{job}\"}}")}));
    }
    rules.push(json!({"record": "kafka_up", "expr": "up{job=\"kafka\", role!=\"\"}"}));
    rules.push(json!({"record": "kafka_exporter_up", "expr": "up{job=\"kafka\", role=\"\"}"}));
    let doc = json!({"groups": [{"name": "agent-rules", "rules": rules}]});
    t.add(
        "etc/vmalert/rules/agent.yml",
        0o644,
        yaml(
            "agent liveness by exporter port (rendered by infragen from the profile's ports)",
            &doc,
        )?,
    );
    Ok(())
}

/// `alertmanager.yml` and flags.
pub fn alertmanager(h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let a = h.alertmanager.as_ref().expect("enabled");
    env_file(t, head, Component::Alertmanager, &a.flags)?;
    let doc = json!({
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": "default", "group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"},
        "receivers": [{"name": "default"}],
        "inhibit_rules": [{"source_matchers": ["alertname=\"NodeDown\""], "target_matchers": ["category=\"node\""], "equal": ["ip"]}],
    });
    t.add("etc/alertmanager/alertmanager.yml", 0o644, yaml("Alertmanager routing (rendered by infragen); add receivers in the profile's image overrides", &doc)?);
    Ok(())
}

/// Probe modules and flags.
pub fn blackbox(h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let b = h.blackbox.as_ref().expect("enabled");
    env_file(t, head, Component::Blackbox, &b.flags)?;
    let doc = json!({"modules": {
        "icmp": {"prober": "icmp"},
        "icmp_ttl5": {"prober": "icmp", "timeout": "5s", "icmp": {"ttl": 5}},
        "http_2xx": {"prober": "http"},
        "http_post_2xx": {"prober": "http", "http": {"method": "POST"}},
        "tcp_connect": {"prober": "tcp"},
    }});
    t.add(
        "etc/blackbox/blackbox.yml",
        0o644,
        yaml(
            "blackbox exporter probe modules (rendered by infragen)",
            &doc,
        )?,
    );
    Ok(())
}
