//! Pigsty parity items as rendered (fast tier): where each service listens (the loopback
//! decision, docs/profiles.md), the nginx exporter's wiring, chronyd's command socket in a
//! directory bound from the host, dnsmasq's drop-in directory kept by every generation. The
//! same items run by the real programs: `tests/parity_integration.rs`.

mod common;

use std::net::IpAddr;

use infragen::plan::{self, Component, HostPlan, Plan};
use infragen::tree::Tree;

fn plan_of(name: &str) -> Plan {
    let inv = infragen::profile::load(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    plan::resolve(&inv).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(tree: &Tree, path: &str) -> String {
    let f = tree.get(path).unwrap_or_else(|| panic!("no {path}"));
    String::from_utf8(f.data.clone()).unwrap()
}

/// Every listening address a host's rendered files and flags name that is not the host's own
/// address: flags naming a listen address, nginx `listen` lines and dnsmasq `listen-address`
/// lines (dnsmasq's 127.0.0.1 is the documented exception, and returned like any other).
fn foreign_listeners(h: &HostPlan, tree: &Tree) -> Vec<String> {
    let own = |v: &str| v.contains(&h.ip.to_string());
    let mut out = Vec::new();
    for c in h.enabled() {
        for f in h.own_flags(c).unwrap_or_default() {
            let lower = f.to_ascii_lowercase();
            let Some((name, value)) = lower.split_once('=') else {
                continue;
            };
            if (name.contains("listen") || name.ends_with("addr"))
                && !value.is_empty()
                && !own(value)
            {
                out.push(format!("{c}: {f}"));
            }
        }
    }
    let prefix = format!("{}/", h.ip);
    for (path, file) in tree.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        let body = String::from_utf8_lossy(&file.data);
        for line in body.lines().map(str::trim) {
            let value = line
                .strip_prefix("listen ")
                .or_else(|| line.strip_prefix("listen-address="));
            if let Some(v) = value.filter(|v| !own(v)) {
                out.push(format!("{path}: {v}"));
            }
        }
    }
    out
}

#[test]
fn no_service_listens_on_loopback_or_on_every_address() {
    for name in ["single-node", "three-node", "small-prod"] {
        let plan = plan_of(name);
        let tree = infragen::render::plan(&plan).unwrap();
        for h in &plan.hosts {
            let foreign = foreign_listeners(h, &tree);
            let expected = vec![format!("{}/dnsmasq/etc/dnsmasq.conf: 127.0.0.1", h.ip)];
            assert_eq!(foreign, expected, "{name} {}", h.ip);
        }
    }
    // The check can fail: a loopback listener is found.
    let plan = plan_of("single-node");
    let tree = infragen::render::plan(&plan).unwrap();
    let mut h = plan.hosts[0].clone();
    h.nginx_exporter.as_mut().unwrap().flags[1] = "-web.listen-address=127.0.0.1:9113".to_owned();
    assert!(foreign_listeners(&h, &tree)
        .contains(&"nginxexporter: -web.listen-address=127.0.0.1:9113".to_owned()));
}

#[test]
fn the_nginx_exporter_reads_a_status_page_only_its_host_may_read() {
    let plan = plan_of("single-node");
    let tree = infragen::render::plan(&plan).unwrap();
    let h = &plan.hosts[0];
    let env = text(&tree, "10.10.10.10/nginxexporter/etc/default/nginxexporter");
    assert!(
        env.contains(
            "NGINXEXPORTER_OPTS=\"-nginx.scrape-uri=http://10.10.10.10:80/nginx \
         -web.listen-address=10.10.10.10:9113"
        ),
        "{env}"
    );
    let home = text(&tree, "10.10.10.10/nginx/etc/nginx/conf.d/home.conf");
    let from = home.find("location = /nginx {").unwrap();
    let block = &home[from..from + home[from..].find('}').unwrap()];
    for line in [
        "stub_status on;",
        "allow 127.0.0.0/8;",
        "allow ::1;",
        "allow 10.10.10.10;",
        "deny all;",
    ] {
        assert!(block.contains(line), "{line} in {block}");
    }
    // Its unit starts after nginx; its probe is its metrics page on its own address.
    let recipes = infragen::image::recipes().unwrap();
    let r = &recipes[&Component::NginxExporter];
    let probe = infragen::bundle::probe(h, r).unwrap();
    assert_eq!(
        format!("{probe:?}"),
        "Http { address: \"10.10.10.10:9113\", path: \"/metrics\" }"
    );
    assert_eq!(r.packages[0], "prometheus-nginx-exporter");
}

#[test]
fn chronyc_and_dnsmasq_drop_ins_live_in_directories_the_host_binds_in() {
    let plan = plan_of("single-node");
    let tree = infragen::render::plan(&plan).unwrap();
    let h = &plan.hosts[0];
    let recipes = infragen::image::recipes().unwrap();
    let host_dir = |c: Component, inside: &str| {
        infragen::bundle::volumes(h, c, &recipes[&c])
            .into_iter()
            .find(|v| v.path == inside)
            .map(|v| (v.host, v.read_only))
    };
    // chronyd: no command port, its socket inside the state volume.
    let chrony = text(&tree, "10.10.10.10/chrony/etc/chrony/chrony.conf");
    assert!(
        chrony.contains("\ncmdport 0\nbindcmdaddress /var/lib/chrony/cmd/chronyd.sock\n"),
        "{chrony}"
    );
    assert_eq!(
        host_dir(Component::Chrony, "/var/lib/chrony"),
        Some(("/data/infra/chrony/var/lib/chrony".to_owned(), false))
    );
    // dnsmasq: `*.conf` drop-ins from a state volume, present (empty) in the image.
    let dnsmasq = text(&tree, "10.10.10.10/dnsmasq/etc/dnsmasq.conf");
    assert!(
        dnsmasq.contains("\nconf-dir=/etc/dnsmasq.d/local/,*.conf\n"),
        "{dnsmasq}"
    );
    assert!(tree
        .get("10.10.10.10/dnsmasq/etc/dnsmasq.d/local/README")
        .is_some());
    assert_eq!(
        host_dir(Component::Dnsmasq, "/etc/dnsmasq.d/local"),
        Some(("/data/infra/dnsmasq/etc/dnsmasq.d/local".to_owned(), false))
    );
    let ip: IpAddr = "10.10.10.10".parse().unwrap();
    assert_eq!(h.ip, ip);
}
