//! Validation by the real programs: every built-in profile and every Pigsty fixture passes, and a
//! planted defect in each component's files is rejected by that component's own checker
//! (negative canaries: a validator that cannot fail proves nothing).
//!
//! These tests need the checkers installed (`.ci/run` installs them); a skipped checker fails.

use std::path::PathBuf;

use infragen::plan::{self, Component, Plan};
use infragen::profile;
use infragen::render;
use infragen::tree::Tree;
use infragen::validate::{self, Outcome};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/pigsty")
}

fn plan_of(name: &str) -> Plan {
    let inv = profile::load(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    plan::resolve(&inv).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn every_profile() -> Vec<String> {
    let mut names: Vec<String> = profile::BUILTIN
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    for f in [
        "meta.yml",
        "ha-trio.yml",
        "ha-full.yml",
        "ha-dual.yml",
        "infra.yml",
    ] {
        names.push(fixtures().join(f).display().to_string());
    }
    names
}

#[test]
fn every_profile_and_fixture_passes_every_checker() {
    for name in every_profile() {
        let plan = plan_of(&name);
        let tree = render::plan(&plan).unwrap();
        let report = validate::tree(&plan, &tree).unwrap();
        assert!(report.ok(true), "{name}:\n{}", report.text());
        // all ten components of every infra host were checked (none are disabled in these profiles
        // except where a host var says so)
        let expected: usize = plan.hosts.iter().map(|h| h.enabled().len()).sum();
        assert_eq!(report.checks.len(), expected, "{name}");
    }
}

/// Renders single-node, plants `defect` in one file, and returns the outcome for `component`.
fn canary(component: Component, path: &str, defect: impl Fn(&str) -> String) -> Outcome {
    let plan = plan_of("single-node");
    let mut tree: Tree = render::plan(&plan).unwrap();
    let full = format!("10.10.10.10/{}/{path}", component.name());
    let text = String::from_utf8(
        tree.get(&full)
            .unwrap_or_else(|| panic!("no {full}"))
            .data
            .clone(),
    )
    .unwrap();
    let planted = defect(&text);
    assert_ne!(planted, text, "the defect changed nothing in {path}");
    tree.set(&full, planted);
    let report = validate::tree(&plan, &tree).unwrap();
    let check = report
        .checks
        .iter()
        .find(|c| c.component == component)
        .unwrap();
    // every other component still passes: the defect is the only reason
    for other in report.checks.iter().filter(|c| c.component != component) {
        assert_eq!(
            other.outcome,
            Outcome::Accepted,
            "{}: {:?}",
            other.component,
            other.outcome
        );
    }
    check.outcome.clone()
}

fn rejected(outcome: &Outcome, needle: &str) {
    match outcome {
        Outcome::Rejected(text) => {
            assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn nginx_rejects_an_unknown_directive() {
    let o = canary(Component::Nginx, "etc/nginx/conf.d/home.conf", |t| {
        t.replacen("proxy_buffering off;", "proxy_bufering off;", 1)
    });
    rejected(
        &o,
        "unknown directive \"proxy_bufering\" in /etc/nginx/conf.d/home.conf",
    );
}

#[test]
fn grafana_rejects_an_undocumented_key() {
    let o = canary(Component::Grafana, "etc/grafana/grafana.ini", |t| {
        t.replace("http_port =", "http_prot =")
    });
    rejected(&o, "unknown key `http_prot` in [server]");
    let o = canary(
        Component::Grafana,
        "etc/grafana/provisioning/datasources/pigsty.yml",
        |t| t.replacen("isDefault:", "isDefualt:", 1),
    );
    rejected(&o, "unknown field `isDefualt`");
}

#[test]
fn victoria_metrics_rejects_a_bad_scrape_config() {
    let o = canary(Component::Vmetrics, "etc/vmetrics/prometheus.yml", |t| {
        t.replacen("scrape_interval:", "scrape_intervall:", 1)
    });
    rejected(&o, "scrape_intervall");
}

#[test]
fn vmalert_rejects_a_broken_expression() {
    let o = canary(Component::Vmalert, "etc/vmalert/rules/agent.yml", |t| {
        t.replacen("up{job=\"etcd\"}", "sum(up{job=", 1)
    });
    rejected(&o, "agent.yml");
}

#[test]
fn amtool_rejects_an_unknown_receiver() {
    let o = canary(
        Component::Alertmanager,
        "etc/alertmanager/alertmanager.yml",
        |t| t.replacen("receiver: default", "receiver: nobody", 1),
    );
    rejected(&o, "nobody");
}

#[test]
fn blackbox_rejects_a_bad_timeout() {
    let o = canary(Component::Blackbox, "etc/blackbox/blackbox.yml", |t| {
        t.replacen("timeout: 5s", "timeout: 5 parsecs", 1)
    });
    rejected(&o, "5 parsecs");
}

#[test]
fn dnsmasq_rejects_an_unknown_option() {
    let o = canary(Component::Dnsmasq, "etc/dnsmasq.conf", |t| {
        format!("{t}no-such-option\n")
    });
    rejected(&o, "bad option at line 12 of /etc/dnsmasq.conf");
}

#[test]
fn chronyd_rejects_an_invalid_directive() {
    let o = canary(Component::Chrony, "etc/chrony/chrony.conf", |t| {
        format!("{t}allowx 0/0\n")
    });
    rejected(&o, "Invalid directive");
}
