//! Per-database PostgreSQL datasources and the Static datasource (docs/content.md, "Datasources
//! and plugins"): for every inventory of `../shared/fixtures/pigsty/`, the names and databases
//! equal the reviewed lists under `tests/datasources/` (derived by reading each inventory as
//! Pigsty's roles do, see its README); inventories written here pin the rules one by one
//! (`pg_databases`, `state: absent`, `register_datasource: false`, `grafana_enabled`,
//! `pg_provision`, `pg_port`, the monitor user and password, `pg_exporters`), and the rendered
//! provisioning file says what Grafana reads. Fast tier: no tool.

mod common;

use infragen::plan::{self, Plan};
use infragen::profile;

fn plan_of_text(text: &str) -> Plan {
    let inv = profile::parse("test.yml", text).unwrap_or_else(|e| panic!("{e}"));
    plan::resolve(&inv).unwrap_or_else(|e| panic!("{e}"))
}

fn problems_of(text: &str) -> String {
    let inv = profile::parse("test.yml", text).unwrap_or_else(|e| panic!("{e}"));
    match plan::resolve(&inv) {
        Ok(_) => panic!("the profile was accepted"),
        Err(e) => e.to_string(),
    }
}

/// `name database` lines, sorted.
fn listed(plan: &Plan) -> Vec<String> {
    let mut v: Vec<String> = plan
        .pg_datasources
        .iter()
        .map(|d| format!("{} {}", d.name, d.database))
        .collect();
    v.sort();
    v
}

#[test]
fn every_pigsty_inventory_registers_the_datasources_pigsty_does() {
    let inventories = common::shared_inventories();
    if inventories.is_empty() {
        common::tier::loud(
            "SKIPPED datasources of Pigsty's inventories: ../shared/fixtures/pigsty is absent (a clone alone); the written inventories below still run",
        );
        return;
    }
    let dir = common::root().join("tests/datasources");
    for inv in inventories {
        let stem = inv.file_stem().unwrap().to_str().unwrap().to_owned();
        let golden = dir.join(format!("{stem}.txt"));
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\nhint: derive the list for {} by hand (tests/datasources/README.md) and commit it",
                golden.display(),
                inv.display()
            )
        });
        let expected: Vec<String> = expected.lines().map(str::to_owned).collect();
        let loaded = profile::load(inv.to_str().unwrap(), &[]).unwrap();
        let plan = plan::resolve(&loaded).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed(&plan), expected, "{}", inv.display());
    }
}

const CLUSTERS: &str = r"
all:
  children:
    infra:
      hosts:
        10.0.0.1: { infra_seq: 1 }
      vars:
        pg_exporters:
          20001:
            pg_cluster: pg-rds
            pg_seq: 1
            pg_host: 10.0.1.9
            pg_port: 6543
            pg_monitor_username: rds_monitor
            pg_monitor_password: Rds.Secret
            pg_databases: [ { name: sales }, { name: quiet, register_datasource: false }, plain ]
          20002: { pg_cluster: pg-none, pg_seq: 1, pg_host: 10.0.1.8 }
    pg-app:
      hosts:
        10.0.0.2: { pg_seq: 2, pg_role: primary }
        10.0.0.3: { pg_seq: 10, pg_role: replica, pg_port: 5433 }
      vars:
        pg_cluster: pg-app
        pg_monitor_username: mon
        pg_databases:
          - { name: app }
          - { name: gone, state: absent }
          - { name: hidden, register_datasource: false }
          - { name: later, register_datasource: 'yes' }
          - { name: postgres }
    pg-off:
      hosts: { 10.0.0.4: { pg_seq: 1 } }
      vars: { pg_cluster: pg-off, grafana_enabled: false, pg_databases: [ { name: x } ] }
    pg-new:
      hosts: { 10.0.0.5: { pg_seq: 1 } }
      vars: { pg_cluster: pg-new, pg_provision: false, pg_databases: [ { name: y } ] }
  vars:
    admin_ip: 10.0.0.1
    pg_monitor_password: Monitor.Pass
";

#[test]
fn instances_databases_and_exporters_follow_pigstys_rules() {
    let plan = plan_of_text(CLUSTERS);
    let got: Vec<String> = plan
        .pg_datasources
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {}",
                d.name, d.url, d.database, d.user, d.credential
            )
        })
        .collect();
    // Instances by cluster, then sequence as a number (2 before 10); `postgres` first and once;
    // the absent, unregistered, disabled and unprovisioned ones left out; exporters' databases
    // with their own port, user and password, and no implicit `postgres`.
    assert_eq!(
        got,
        [
            "pg-app-2.postgres 10.0.0.2:5432 postgres mon pg-monitor.pg-app-2",
            "pg-app-2.app 10.0.0.2:5432 app mon pg-monitor.pg-app-2",
            "pg-app-2.later 10.0.0.2:5432 later mon pg-monitor.pg-app-2",
            "pg-app-10.postgres 10.0.0.3:5433 postgres mon pg-monitor.pg-app-2",
            "pg-app-10.app 10.0.0.3:5433 app mon pg-monitor.pg-app-2",
            "pg-app-10.later 10.0.0.3:5433 later mon pg-monitor.pg-app-2",
            "pg-rds-1.sales 10.0.1.9:6543 sales rds_monitor pg-monitor.pg-rds-1",
            "pg-rds-1.plain 10.0.1.9:6543 plain rds_monitor pg-monitor.pg-rds-1",
        ]
    );
    assert!(plan
        .pg_datasources
        .iter()
        .all(|d| d.postgres_version == 1500));
    // One credential per distinct password, in the Grafana host's secrets.
    let h = &plan.hosts[0];
    let secret = |name: &str| {
        h.secrets
            .get(&(plan::Component::Grafana, name.to_owned()))
            .map(|s| s.0.clone())
    };
    assert_eq!(
        secret("pg-monitor.pg-app-2").as_deref(),
        Some("Monitor.Pass")
    );
    assert_eq!(secret("pg-monitor.pg-rds-1").as_deref(), Some("Rds.Secret"));
}

#[test]
fn the_provisioning_file_has_static_and_every_database_with_its_credential() {
    let plan = plan_of_text(CLUSTERS);
    let tree = infragen::render::plan(&plan).unwrap();
    let file = tree
        .get("10.0.0.1/grafana/etc/grafana/provisioning/datasources/pigsty.yml")
        .expect("provisioning file");
    let text = String::from_utf8(file.data.clone()).unwrap();
    let doc: serde_json::Value =
        serde_json::to_value(infragen::yaml::from_str(&text).unwrap()).unwrap();
    let all = doc["datasources"].as_array().unwrap();
    let by_name = |n: &str| {
        all.iter()
            .find(|d| d["name"] == n)
            .unwrap_or_else(|| panic!("no datasource `{n}` in\n{text}"))
    };
    let s = by_name("Static");
    assert_eq!(s["uid"], "ds-static");
    assert_eq!(s["type"], "marcusolsson-static-datasource");
    let d = by_name("pg-app-10.app");
    assert_eq!(d["type"], "postgres");
    assert_eq!(d["url"], "10.0.0.3:5433");
    assert_eq!(d["user"], "mon");
    assert_eq!(d["jsonData"]["database"], "app");
    assert_eq!(d["jsonData"]["sslmode"], "require");
    assert_eq!(d["jsonData"]["postgresVersion"], 1500);
    assert!(d.get("uid").is_none(), "Pigsty sets no uid: {d}");
    assert_eq!(
        d["secureJsonData"]["password"],
        "$__file{/run/credentials/infra-grafana.service/pg-monitor.pg-app-2}"
    );
    // The password is the credential's content, never in the provisioning file.
    assert!(!text.contains("Monitor.Pass"), "{text}");
    let cred = tree
        .get("10.0.0.1/secrets/grafana/pg-monitor.pg-app-2")
        .expect("credential");
    assert_eq!(cred.data, b"Monitor.Pass");
    assert_eq!(cred.mode, 0o600);
    // Order: local datasources, Static, then the databases in the plan's order.
    let names: Vec<&str> = all.iter().map(|d| d["name"].as_str().unwrap()).collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(at("Metrics") < at("Static") && at("Static") < at("pg-app-2.postgres"));
    assert!(at("pg-app-2.later") < at("pg-app-10.postgres"), "{names:?}");
}

#[test]
fn an_older_pg_version_sets_its_own_postgres_version() {
    let plan = plan_of_text(&CLUSTERS.replace(
        "pg_monitor_password: Monitor.Pass",
        "pg_monitor_password: Monitor.Pass\n    pg_version: 13",
    ));
    assert!(plan
        .pg_datasources
        .iter()
        .all(|d| d.postgres_version == 1300));
}

#[test]
fn a_bad_database_entry_is_named_by_its_key_path() {
    let text = CLUSTERS.replace("- { name: app }", "- { comment: no name }");
    let e = problems_of(&text);
    assert!(
        e.contains("all.children.pg-app.vars.pg_databases[0]")
            && e.contains("a database needs a `name`"),
        "{e}"
    );
    let text = CLUSTERS.replace("- { name: app }", "- [ app ]");
    let e = problems_of(&text);
    assert!(
        e.contains("pg_databases[0]")
            && e.contains("a database is a name or a mapping with `name`"),
        "{e}"
    );
}

#[test]
fn no_postgres_instance_means_no_database_datasource_but_static_stays() {
    let plan = plan_of_text(
        "all:\n  children:\n    infra:\n      hosts:\n        10.0.0.1: { infra_seq: 1 }\n  vars:\n    admin_ip: 10.0.0.1\n",
    );
    assert!(plan.pg_datasources.is_empty());
    assert!(!plan.hosts[0]
        .secrets
        .keys()
        .any(|(_, n)| n.starts_with("pg-monitor")));
    let tree = infragen::render::plan(&plan).unwrap();
    let file = tree
        .get("10.0.0.1/grafana/etc/grafana/provisioning/datasources/pigsty.yml")
        .unwrap();
    assert!(String::from_utf8_lossy(&file.data).contains("uid: ds-static"));
}
