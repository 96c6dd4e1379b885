//! Validation by the real programs: every built-in profile and every Pigsty fixture passes, and a
//! planted defect in each component's files is rejected by that component's own checker
//! (negative canaries: a validator that cannot fail proves nothing).
//!
//! These tests need the checkers installed (`.ci/run` installs them); a skipped checker fails.

mod common;

use infragen::plan::{self, Component, Plan};
use infragen::profile;
use infragen::render;
use infragen::tree::Tree;
use infragen::validate::{self, Outcome};

fn plan_of(name: &str) -> Plan {
    let inv = profile::load(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    plan::resolve(&inv).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn every_profile() -> Vec<String> {
    let mut names: Vec<String> = profile::BUILTIN
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    // our Pigsty-dialect fixtures, and Pigsty's own when ../shared is present
    for f in common::inventories() {
        names.push(f.display().to_string());
    }
    names
}

#[test]
fn every_profile_and_fixture_passes_every_checker() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    for name in every_profile() {
        let plan = plan_of(&name);
        let tree = render::plan(&plan).unwrap();
        let report = validate::tree(&plan, &tree).unwrap();
        assert!(report.ok(true), "{name}:\n{}", report.text());
        // every component of every infra host was checked (none are disabled in these profiles
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
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
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
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
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
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let o = canary(Component::Vmetrics, "etc/vmetrics/prometheus.yml", |t| {
        t.replacen("scrape_interval:", "scrape_intervall:", 1)
    });
    rejected(&o, "scrape_intervall");
}

#[test]
fn vmalert_rejects_a_broken_expression() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let o = canary(Component::Vmalert, "etc/vmalert/rules/agent.yml", |t| {
        t.replacen("up{job=\"etcd\"}", "sum(up{job=", 1)
    });
    rejected(&o, "agent.yml");
}

#[test]
fn amtool_rejects_an_unknown_receiver() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let o = canary(
        Component::Alertmanager,
        "etc/alertmanager/alertmanager.yml",
        |t| t.replacen("receiver: default", "receiver: nobody", 1),
    );
    rejected(&o, "nobody");
}

#[test]
fn blackbox_rejects_a_bad_timeout() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let o = canary(Component::Blackbox, "etc/blackbox/blackbox.yml", |t| {
        t.replacen("timeout: 5s", "timeout: 5 parsecs", 1)
    });
    rejected(&o, "5 parsecs");
}

#[test]
fn dnsmasq_rejects_an_unknown_option() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let o = canary(Component::Dnsmasq, "etc/dnsmasq.conf", |t| {
        format!("{t}no-such-option\n")
    });
    rejected(&o, "bad option at line 15 of /etc/dnsmasq.conf");
}

#[test]
fn chronyd_rejects_an_invalid_directive() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let o = canary(Component::Chrony, "etc/chrony/chrony.conf", |t| {
        format!("{t}allowx 0/0\n")
    });
    rejected(&o, "Invalid directive");
}

/// Basic-auth users, as a profile sets them: a plain password, one with spaces, `:`, `$` and
/// non-ASCII letters, and two users sharing a password.
const USERS: [(&str, &str); 3] = [
    ("admin", "pigsty"),
    ("ops", "Pâss wörd: $6$ 🔑"),
    ("viewer", "pigsty"),
];

/// The htpasswd file rendered for single-node with [`USERS`], as (user, `$6$…` hash) pairs.
fn htpasswd() -> Vec<(String, String)> {
    let users: String = USERS
        .iter()
        .map(|(u, p)| format!("      {u}: {p:?}\n"))
        .collect();
    let text = profile::BUILTIN
        .iter()
        .find(|(n, _)| *n == "single-node")
        .unwrap()
        .1
        .replacen(
            "\n  vars:\n",
            &format!("\n  vars:\n    nginx_users:\n{users}"),
            1,
        );
    let inv = profile::parse("users.yml", &text).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan::resolve(&inv).unwrap_or_else(|e| panic!("{e}"));
    let tree = render::plan(&plan).unwrap();
    let file = &tree.get("10.10.10.10/secrets/nginx/htpasswd").unwrap().data;
    let file = String::from_utf8(file.clone()).unwrap();
    for (_, password) in USERS {
        assert!(!file.contains(password), "a password in clear:\n{file}");
    }
    file.lines()
        .map(|l| {
            let (user, hash) = l.split_once(':').unwrap();
            (user.to_owned(), hash.to_owned())
        })
        .collect()
}

/// The hashes are exactly what OpenSSL computes for the same password and salt: SHA-512 crypt.
#[test]
fn htpasswd_hashes_are_what_openssl_computes() {
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");
    let lines = htpasswd();
    assert_eq!(lines.len(), USERS.len());
    for ((user, hash), (want_user, password)) in lines.iter().zip(USERS) {
        assert_eq!(user, want_user);
        let (salt, _) = hash
            .strip_prefix("$6$")
            .and_then(|h| h.split_once('$'))
            .unwrap_or_else(|| panic!("{user}: not a $6$ hash: {hash}"));
        assert_eq!(salt.len(), 16, "{hash}");
        let o = std::process::Command::new("openssl")
            .args(["passwd", "-6", "-salt", salt, password])
            .output()
            .expect("openssl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim_end(),
            hash,
            "{user}"
        );
    }
    assert_ne!(
        lines[0].1, lines[2].1,
        "one password, two users, two hashes"
    );
}

/// Base64 (RFC 4648) for a basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// nginx itself (through glibc's crypt) accepts each user's password and refuses a wrong one.
#[test]
fn nginx_checks_the_hashes() {
    use std::time::{Duration, Instant};
    common::tier::binary(common::tier::Tier::Integration, "tests/validators.rs");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let file: String = htpasswd()
        .iter()
        .map(|(u, h)| format!("{u}:{h}\n"))
        .collect();
    std::fs::write(dir.path().join("htpasswd"), file).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("{t}_temp_path {d}/{t};\n"))
        .collect();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 16; }}\n\
         http {{\n{temp}access_log off;\n\
         server {{ listen 127.0.0.1:{port}; auth_basic \"infragen\"; \
         auth_basic_user_file {d}/htpasswd; root {d}/www; }}\n}}\n"
    );
    // A file, not `return`: `return` answers in the rewrite phase, before basic auth runs.
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "ok\n").unwrap();
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let mut nginx = std::process::Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx)");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into();
    let status = |user: &str, password: &str| {
        let auth = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        match agent
            .get(&format!("http://127.0.0.1:{port}/"))
            .header("Authorization", &auth)
            .call()
        {
            Ok(r) => Some(r.status().as_u16()),
            Err(_) => None,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while status("admin", "pigsty").is_none() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let results: Vec<(&str, &str, Option<u16>)> = USERS
        .iter()
        .map(|(u, p)| (*u, *p, status(u, p)))
        .chain([
            ("admin", "pigsty!", status("admin", "pigsty!")),
            ("ops", "pigsty", status("ops", "pigsty")),
            ("nobody", "pigsty", status("nobody", "pigsty")),
        ])
        .collect();
    let _ = nginx.kill();
    let _ = nginx.wait();
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    let want = [200, 200, 200, 401, 401, 401];
    for ((user, password, got), want) in results.iter().zip(want) {
        assert_eq!(*got, Some(want), "{user}:{password}\n{log}");
    }
}
