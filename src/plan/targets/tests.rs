//! Scrape targets and DNS records of small inline inventories: every target kind with Pigsty's
//! file name and label set, and the refusals with their key paths.

use crate::plan::{resolve, Plan, TargetGroup};
use crate::problem::Problems;
use crate::profile::parse;

fn plan(text: &str) -> Result<Plan, Problems> {
    resolve(&parse("t.yml", text).expect("profile parses"))
}

/// The groups of `dir/file` as `(labels as k=v, targets)`, sorted labels.
fn groups(plan: &Plan, dir: &str, file: &str) -> Vec<(String, Vec<String>)> {
    let g: &Vec<TargetGroup> = plan
        .targets
        .get(dir)
        .and_then(|d| d.get(file))
        .unwrap_or_else(|| panic!("no target file {dir}/{file}: {:?}", plan.targets.get(dir)));
    g.iter()
        .map(|g| {
            let labels: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (labels.join(","), g.targets.clone())
        })
        .collect()
}

fn records(plan: &Plan, file: &str) -> Option<Vec<String>> {
    plan.hosts[0].dnsmasq.as_ref()?.records.get(file).cloned()
}

const MODULES: &str = "
all:
  children:
    infra: { hosts: { 10.1.0.1: { infra_seq: 1 } } }
    web:
      hosts:
        10.1.0.5: { vip_role: master }
        10.1.0.6: { juice_instances: { jfs: {}, pgfs: { port: 9568 }, old: { state: absent } } }
      vars: { node_cluster: web, vip_enabled: true, vip_address: 10.1.0.9, vip_dns_suffix: .vip.example }
    my-solo: { hosts: { 10.1.0.7: { mysql_seq: 1 } }, vars: { mysql_cluster: my-solo } }
    my-ha:
      hosts:
        10.1.0.11: { mysql_seq: 1 }
        10.1.0.12: { mysql_seq: 2, mysql_exporter_enabled: false }
      vars: { mysql_cluster: my-ha }
    kf:
      hosts:
        10.1.0.21: { kafka_seq: 3, kafka_role: controller }
        10.1.0.22: { kafka_seq: 2, kafka_role: broker }
        10.1.0.23: { kafka_seq: 1, kafka_role: broker, kafka_jmx_exporter_enabled: false }
        10.1.0.24: { kafka_seq: 4, kafka_role: broker }
      vars: { kafka_cluster: kf }
    minio: { hosts: { 10.1.0.31: { minio_seq: 1 } }, vars: { minio_cluster: minio, minio_type: rustfs } }
  vars: { admin_ip: 10.1.0.1 }
";

#[test]
fn nginx_is_scraped_through_its_exporter_first_and_only_when_it_runs() {
    let p = plan(MODULES).unwrap();
    let infra = groups(&p, "infra", "infra-1");
    assert_eq!(
        infra[0],
        (
            "cls=nginx,ins=nginx-1,ip=10.1.0.1".to_owned(),
            vec!["10.1.0.1:9113".to_owned()]
        )
    );
    for off in ["nginx_exporter_enabled: false", "nginx_enabled: false"] {
        let text = MODULES.replace("infra_seq: 1 }", &format!("infra_seq: 1, {off} }}"));
        let p = plan(&text).unwrap();
        let infra = groups(&p, "infra", "infra-1");
        assert!(
            infra.iter().all(|(l, _)| !l.contains("nginx")),
            "{off}: {infra:?}"
        );
        assert!(p.hosts[0].nginx_exporter.is_none(), "{off}");
        let why = off.split(':').next().unwrap();
        assert!(
            p.hosts[0].disabled.contains(&(
                crate::plan::Component::NginxExporter,
                format!("{why}: false")
            )),
            "{off}: {:?}",
            p.hosts[0].disabled
        );
    }
}

#[test]
fn node_vip_adds_keepalived_a_ping_and_a_dns_record() {
    let p = plan(MODULES).unwrap();
    assert_eq!(
        groups(&p, "node", "10.1.0.5"),
        [
            (
                "cls=web,ins=10.1.0.5,ip=10.1.0.5".to_owned(),
                vec![
                    "10.1.0.5:9100".to_owned(),
                    "10.1.0.5:9101".to_owned(),
                    "10.1.0.5:9598".to_owned()
                ]
            ),
            (
                "cls=web,ins=10.1.0.5,ip=10.1.0.5,vip=10.1.0.9".to_owned(),
                vec!["10.1.0.5:9650".to_owned()]
            ),
        ]
    );
    assert_eq!(
        groups(&p, "ping", "10.1.0.9---10.1.0.5"),
        [(
            "cls=web,ins=10.1.0.5,ip=10.1.0.5,job=node-vip,vip=10.1.0.9".to_owned(),
            vec!["10.1.0.9".to_owned()]
        )]
    );
    assert_eq!(
        records(&p, "web.vip").unwrap(),
        ["10.1.0.9 web.vip.example"]
    );
    // A host without a VIP has one group and no VIP ping.
    assert_eq!(groups(&p, "node", "10.1.0.7").len(), 1);
    assert!(!p.targets["ping"].keys().any(|k| k.ends_with("---10.1.0.7")));
}

#[test]
fn mysql_members_carry_their_topology_and_an_empty_list_when_the_exporter_is_off() {
    let p = plan(MODULES).unwrap();
    let solo = groups(&p, "mysql", "my-solo-1");
    assert_eq!(
        solo,
        [(
            "cls=my-solo,ins=my-solo-1,ip=10.1.0.7,topology=standalone".to_owned(),
            vec!["10.1.0.7:9104".to_owned()]
        )]
    );
    assert_eq!(
        groups(&p, "mysql", "my-ha-1"),
        [(
            "cls=my-ha,ins=my-ha-1,ip=10.1.0.11,topology=innodb_cluster".to_owned(),
            vec!["10.1.0.11:9104".to_owned()]
        )]
    );
    assert_eq!(groups(&p, "mysql", "my-ha-2")[0].1, Vec::<String>::new());
}

#[test]
fn kafka_jmx_on_every_member_and_the_protocol_exporter_on_the_two_lowest_brokers() {
    let p = plan(MODULES).unwrap();
    let jmx = |ip: &str, seq: u32, role: &str| {
        (
            format!("cls=kf,ins=kf-{seq},instance={ip}:9404,ip={ip},node_id={seq},role={role}"),
            vec![format!("{ip}:9404")],
        )
    };
    let exporter = |ip: &str, seq: u32| {
        (
            format!("cls=kf,ins=kf-{seq},instance={ip}:9308,ip={ip}"),
            vec![format!("{ip}:9308")],
        )
    };
    // seq 1 (no JMX) and 2 are the lowest brokers; 3 is a controller; 4 a third broker.
    assert_eq!(groups(&p, "kafka", "kf-1"), [exporter("10.1.0.23", 1)]);
    assert_eq!(
        groups(&p, "kafka", "kf-2"),
        [jmx("10.1.0.22", 2, "broker"), exporter("10.1.0.22", 2)]
    );
    assert_eq!(
        groups(&p, "kafka", "kf-3"),
        [jmx("10.1.0.21", 3, "controller")]
    );
    assert_eq!(groups(&p, "kafka", "kf-4"), [jmx("10.1.0.24", 4, "broker")]);
}

#[test]
fn juice_instances_and_the_minio_flavor() {
    let p = plan(MODULES).unwrap();
    assert_eq!(
        groups(&p, "juice", "10.1.0.6"),
        [
            (
                "cls=jfs,ins=10.1.0.6-jfs,ip=10.1.0.6".to_owned(),
                vec!["10.1.0.6:9567".to_owned()]
            ),
            (
                "cls=pgfs,ins=10.1.0.6-pgfs,ip=10.1.0.6".to_owned(),
                vec!["10.1.0.6:9568".to_owned()]
            ),
        ]
    );
    assert!(!p.targets["juice"].contains_key("10.1.0.5"));
    assert_eq!(
        groups(&p, "minio", "minio-1")[0].0,
        "cls=minio,flavor=rustfs,ins=minio-1,instance=10.1.0.31:9000,ip=10.1.0.31"
    );
    // Pigsty's default engine.
    let p = plan(&MODULES.replace(", minio_type: rustfs", "")).unwrap();
    assert!(groups(&p, "minio", "minio-1")[0].0.contains("flavor=silo"));
}

#[test]
fn pg_exporters_take_an_address_or_a_dns_name_as_pg_host() {
    let text = |host: &str| {
        format!(
            "
all:
  children:
    infra:
      hosts:
        10.1.0.1:
          infra_seq: 1
          pg_exporters:
            20001: {{ pg_cluster: pg-rds, pg_seq: 1, pg_host: {host} }}
  vars: {{ admin_ip: 10.1.0.1 }}
"
        )
    };
    for (host, label) in [
        ("pg-rds.example.com", "pg-rds.example.com"),
        ("10.1.0.40", "10.1.0.40"),
        ("'::1'", "::1"),
    ] {
        let p = plan(&text(host)).unwrap_or_else(|e| panic!("{host}: {e}"));
        let g = &p.hosts[0].vmetrics.as_ref().unwrap().pgrds["pg-rds"][0];
        assert_eq!(g.labels["ip"], label, "{host}");
        assert_eq!(g.targets, ["10.1.0.1:20001"], "{host}");
    }
    for (host, message) in [
        ("10.1.0.300", "`pg_host` `10.1.0.300` is not an IP address"),
        (
            "'a;b.example'",
            "`pg_host` `a;b.example` is neither an IP address nor a DNS name",
        ),
        (
            "'*.example'",
            "`pg_host` `*.example` is neither an IP address nor a DNS name",
        ),
    ] {
        let e = plan(&text(host)).unwrap_err().to_string();
        assert!(
            e.contains("all.children.infra.hosts.\"10.1.0.1\".pg_exporters.20001")
                && e.contains(message),
            "{host}: {e}"
        );
    }
}

#[test]
fn bad_module_values_are_refused_at_their_key_paths() {
    let cases = [
        (
            MODULES.replace(
                "vip_enabled: true, vip_address: 10.1.0.9,",
                "vip_enabled: true,",
            ),
            "all.children.web.vars.vip_enabled",
            "`vip_enabled` is true but `vip_address` is not set",
        ),
        (
            MODULES.replace("vip_address: 10.1.0.9", "vip_address: ten"),
            "all.children.web.vars.vip_address",
            "`ten` is not an address",
        ),
        (
            MODULES.replace("vip_dns_suffix: .vip.example", "vip_dns_suffix: ' x'"),
            "all.children.web.vars.vip_dns_suffix",
            "`web x` is not a valid domain name",
        ),
        (
            MODULES.replace("kafka_role: controller", "kafka_role: leader"),
            "all.children.kf.hosts.\"10.1.0.21\".kafka_role",
            "`leader` is not one of `combined`, `broker`, `controller`",
        ),
        (
            MODULES.replace("pgfs: { port: 9568 }", "pgfs: { port: 70000 }"),
            "pgfs.port",
            "port out of range",
        ),
        (
            MODULES.replace("pgfs: {", "'pg fs': {"),
            "juice_instances",
            "`pg fs` is not a valid domain name",
        ),
        (
            MODULES.replace("minio_type: rustfs", "minio_type: 'a/b'"),
            "all.children.minio.vars.minio_type",
            "`a/b` is not a valid name",
        ),
    ];
    for (text, path, message) in cases {
        let e = plan(&text).unwrap_err().to_string();
        assert!(e.contains(path) && e.contains(message), "{path}: {e}");
    }
}
