//! Plan resolution, table-driven over small inline profiles.

use super::*;
use crate::profile::parse;

fn plan(text: &str) -> Result<Plan, Problems> {
    resolve(&parse("t.yml", text).expect("profile parses"))
}

const TWO: &str = "
all:
  children:
    infra:
      hosts:
        10.1.0.1: { infra_seq: 1 }
        10.1.0.2: { infra_seq: 2, vlogs_enabled: false }
    etcd: { hosts: { 10.1.0.1: { etcd_seq: 1 } }, vars: { etcd_cluster: etcd } }
    pg-meta:
      hosts: { 10.1.0.3: { pg_seq: 1, pg_role: primary } }
      vars: { pg_cluster: pg-meta }
  vars:
    admin_ip: 10.1.0.1
    node_ntp_servers: ['pool pool.ntp.org iburst', 'server ${admin_ip} iburst']
";

#[test]
fn resolves_two_hosts_with_peers() {
    let plan = plan(TWO).unwrap();
    assert_eq!(plan.hosts.len(), 2);
    let h1 = &plan.hosts[0];
    let h2 = &plan.hosts[1];
    assert!(h1.is_admin && !h2.is_admin);
    assert!(h2.vlogs.is_none());
    assert_eq!(
        h2.disabled,
        [(Component::Vlogs, "vlogs_enabled: false".to_owned())]
    );
    // Grafana on every host sees every host's datasources.
    let names: Vec<_> = h2
        .grafana
        .as_ref()
        .unwrap()
        .datasources
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert!(
        names.contains(&"vmetrics-1")
            && names.contains(&"vmetrics-2")
            && names.contains(&"vlogs-1")
    );
    assert!(!names.contains(&"vlogs-2"));
    // chrony: the admin node never syncs from itself.
    assert_eq!(
        h1.chrony.as_ref().unwrap().sources,
        ["pool pool.ntp.org iburst"]
    );
    assert_eq!(
        h2.chrony.as_ref().unwrap().sources,
        ["pool pool.ntp.org iburst", "server 10.1.0.1 iburst"]
    );
    // targets from the whole inventory
    assert!(plan.targets["pgsql"].contains_key("pg-meta-1"));
    assert!(plan.targets["etcd"].contains_key("etcd-1"));
    assert_eq!(plan.targets["node"].len(), 3);
    assert_eq!(plan.targets["infra"].len(), 2);
    // dns records
    let records = &h1.dnsmasq.as_ref().unwrap().records;
    assert_eq!(records["pg-meta"], ["10.1.0.3 pg-meta"]);
    assert_eq!(records["default"][0], "10.1.0.1 i.pigsty");
}

#[test]
fn collects_every_problem() {
    let err = plan(
        "all:\n  children:\n    infra:\n      hosts:\n        10.1.0.1: { infra_seq: 1, nginx_port: 70000 }\n        10.1.0.2: { infra_seq: 1 }\n        10.1.0.3: {}\n  vars: { admin_ip: 10.1.0.1, vmetrics_scrape_interval: soon }\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("port out of range"), "{text}");
    assert!(text.contains("duplicate `infra_seq` 1"), "{text}");
    assert!(text.contains("missing `infra_seq`"), "{text}");
    assert!(text.contains("`soon` is not a duration"), "{text}");
}

#[test]
fn warns_on_misspelt_parameter() {
    let plan = plan("all:\n  children:\n    infra: { hosts: { 10.1.0.1: { infra_seq: 1 } } }\n  vars: { admin_ip: 10.1.0.1, nginx_prot: 80 }\n").unwrap();
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(
        plan.warnings[0].to_string(),
        "all.vars.nginx_prot: unknown parameter `nginx_prot`; did you mean `nginx_port`?"
    );
}

#[test]
fn secrets_do_not_show_in_debug() {
    let plan = plan("all:\n  children:\n    infra: { hosts: { 10.1.0.1: { infra_seq: 1 } } }\n  vars: { admin_ip: 10.1.0.1, grafana_admin_password: Sup3rS3cret, nginx_users: { bob: Hunter2pw } }\n").unwrap();
    let debug = format!("{plan:?}");
    assert!(!debug.contains("Sup3rS3cret") && !debug.contains("Hunter2pw"));
}

#[test]
fn the_alertmanager_cluster_port_counts_only_in_a_cluster() {
    // Grafana's default port, 3000, given to Alertmanager's cluster port.
    let one = |clustered: bool| {
        format!(
            "all:\n  children:\n    infra:\n      hosts:\n        10.1.0.1: {{ infra_seq: 1 }}\n  \
             vars:\n    admin_ip: 10.1.0.1\n    alertmanager_cluster_port: 3000\n    \
             alertmanager_cluster: {clustered}\n"
        )
    };
    assert!(plan(&one(false)).is_ok());
    let e = plan(&one(true)).unwrap_err().to_string();
    assert!(
        e.contains(
            "port 3000 of `alertmanager_cluster_port` is already used by `grafana_port` on this host"
        ),
        "{e}"
    );
}

#[test]
fn proxy_env_is_read_as_strings_and_the_same_on_every_infra_host() {
    let p = plan("all:\n  children:\n    infra: { hosts: { 10.1.0.1: { infra_seq: 1 } } }\n  vars:\n    admin_ip: 10.1.0.1\n    proxy_env: { no_proxy: 'localhost,10.0.0.0/8', https_proxy: 'http://10.1.0.9:3128' }\n").unwrap();
    assert_eq!(
        p.proxy_env,
        BTreeMap::from([
            ("https_proxy".to_owned(), "http://10.1.0.9:3128".to_owned()),
            ("no_proxy".to_owned(), "localhost,10.0.0.0/8".to_owned()),
        ])
    );
    let text = plan("all:\n  children:\n    infra: { hosts: { 10.1.0.1: { infra_seq: 1, proxy_env: [x] }, 10.1.0.2: { infra_seq: 2, proxy_env: { https_proxy: [a] } } } }\n  vars: { admin_ip: 10.1.0.1 }\n")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("expected a mapping of variable names to values, found a list"),
        "{text}"
    );
    assert!(
        text.contains("proxy_env.https_proxy (host `10.1.0.2`): expected a string, found a list"),
        "{text}"
    );
    let text = plan("all:\n  children:\n    infra: { hosts: { 10.1.0.1: { infra_seq: 1 }, 10.1.0.2: { infra_seq: 2, proxy_env: { all_proxy: 'http://p:1' } } } }\n  vars: { admin_ip: 10.1.0.1 }\n")
        .unwrap_err()
        .to_string();
    assert!(text.contains("differs from host `10.1.0.1`'s"), "{text}");
}
