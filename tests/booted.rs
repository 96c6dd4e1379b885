//! Activation on a real systemd: Debian booted with `systemd-nspawn -b` (sharing this machine's
//! network), `single-node` built for 127.0.50.10 and activated inside it. Run alone with
//! `cargo test --test booted` (root; debootstrap, systemd-container; the Debian root is made
//! once with debootstrap from the machine's own APT mirror and cached).
//!
//! Checked from outside: every unit active and healthy; `/vmetrics/` through nginx; `up == 1` for
//! every infra target; dnsmasq answers `i.pigsty`; chrony answers NTP (run with `-x`: it never
//! steers this machine's clock); blackbox ICMP and HTTP probes succeed; the always-firing
//! watchdog alert reaches Alertmanager. Then: a one-parameter change reloads or restarts exactly
//! the affected units; the same bundle again restarts nothing; a component that cannot start and
//! one that starts but fails its probe are both rolled back automatically.

mod common;

use common::booted::Machine;
use common::registry::Registry;
use common::{dns_a, enrol, ntp, ok, root, signing_key};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The booted tier's gate: the tier chosen (else one SKIPPED line and the binary exits), then
/// root and the tools, or a failure naming them.
fn booted_tier() {
    common::tier::binary(common::tier::Tier::Booted, "tests/booted.rs");
    common::tier::require_root("tests/booted.rs");
    common::tier::require(
        "tests/booted.rs",
        &[
            ("systemd-nspawn", "systemd-container"),
            ("debootstrap", "debootstrap"),
        ],
    );
}

/// A Debian 12 root with systemd, made once and cached as a tarball (systemd-container: the
/// nspawn and portable runtimes are activated inside too).
fn debian_root(dest: &Path) {
    common::debian::root(
        dest,
        &["systemd", "systemd-sysv", "dbus", "systemd-container"],
        "debian-bookworm-systemd-container.tar",
    );
}

/// The components that run here (Grafana, VictoriaLogs and VictoriaTraces need base images that
/// cannot be fetched on this machine).
const RUNNING: [&str; 7] = [
    "nginx",
    "vmetrics",
    "vmalert",
    "alertmanager",
    "blackbox",
    "dnsmasq",
    "chrony",
];

/// A booted container (stopped when dropped) and the time of its last activation.
struct Booted {
    m: Machine,
    /// How long the last `infragen activate` inside took (copying the bundle in not counted).
    took: std::cell::Cell<Duration>,
}

impl std::ops::Deref for Booted {
    type Target = Machine;
    fn deref(&self) -> &Machine {
        &self.m
    }
}

impl Booted {
    fn boot(dir: &Path, name: &str) -> Self {
        Self {
            m: Machine::boot(dir, name, debian_root),
            took: std::cell::Cell::new(Duration::ZERO),
        }
    }

    /// Copies a bundle into the container and activates it.
    fn activate(&self, bundle: &Path, name: &str) -> Output {
        self.activate_with(bundle, name, "unit")
    }

    /// Copies a bundle into the container and activates it with `runtime`.
    fn activate_with(&self, bundle: &Path, name: &str, runtime: &str) -> Output {
        self.activate_env(bundle, name, runtime, &[])
    }

    /// `activate_with`, with `VAR=value` settings in the environment of `infragen`.
    fn activate_env(&self, bundle: &Path, name: &str, runtime: &str, env: &[&str]) -> Output {
        // Signing on: the host trusts the test key and knows its own name, as an enrolled host.
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
        enrol(&self.dir.join("root"), manifest["host"].as_str().unwrap());
        let inside = self.dir.join("root/root").join(name);
        let _ = fs::remove_dir_all(&inside);
        let o = Command::new("cp")
            .arg("-a")
            .arg(bundle)
            .arg(&inside)
            .output()
            .unwrap();
        ok(&o, "copy bundle");
        let path = format!("/root/{name}");
        let mut args = vec!["env"];
        args.extend_from_slice(env);
        args.extend([
            "infragen",
            "activate",
            &path,
            "--runtime",
            runtime,
            "--health-timeout",
            "20",
        ]);
        let started = Instant::now();
        let o = self.run(&args);
        self.took.set(started.elapsed());
        o
    }

    /// `infragen host init` inside: the host's secrets key; returns its public key.
    fn init(&self) -> String {
        let o = self.run(&["infragen", "host", "init"]);
        let out = ok(&o, "host init");
        out.lines()
            .find(|l| l.starts_with("age1"))
            .unwrap_or_else(|| panic!("host init printed no key:\n{out}"))
            .to_owned()
    }

    /// Activates the host's bundle from a registry reference (plain HTTP), enrolled as `name`.
    fn activate_from(&self, reference: &str, name: &str) -> Output {
        enrol(&self.dir.join("root"), name);
        self.run(&[
            "infragen",
            "activate",
            reference,
            "--plain-http",
            "--health-timeout",
            "20",
        ])
    }

    /// Main PIDs of every infra unit.
    fn pids(&self) -> Vec<(String, String)> {
        self.pids_of("infra-")
    }

    /// Main PIDs of every infra unit, named `<prefix><component>.service`.
    fn pids_of(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in RUNNING {
            let o = self.run(&[
                "systemctl",
                "show",
                "-p",
                "MainPID",
                "--value",
                &format!("{prefix}{c}.service"),
            ]);
            out.push((
                c.to_owned(),
                String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            ));
        }
        out
    }
}

fn build(dir: &Path, name: &str, text: &str) -> PathBuf {
    build_hosts(dir, name, text)
        .into_iter()
        .next()
        .expect("one host")
}

/// Builds a profile; returns every host's bundle, in address order.
fn build_hosts(dir: &Path, name: &str, text: &str) -> Vec<PathBuf> {
    let pdir = dir.join(name);
    fs::create_dir_all(&pdir).unwrap();
    let profile = pdir.join("profile.yml");
    fs::write(&profile, text).unwrap();
    let out = pdir.join("out");
    common::build_signed(&profile, &out, &dir.join("pki"), &format!("build {name}"));
    // The infra hosts' bundles (the other nodes' hold a node part alone, no image).
    let mut hosts: Vec<PathBuf> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("oci").is_dir())
        .collect();
    hosts.sort();
    hosts
}

/// `text` with `infragen_host_key: key` on host `ip`.
fn with_host_key(text: &str, ip: &str, key: &str) -> String {
    let from = format!("{ip}: {{ infra_seq: ");
    let out = text.replacen(
        &from,
        &format!("{ip}: {{ infragen_host_key: {key}, infra_seq: "),
        1,
    );
    assert_ne!(out, text, "no `{from}` in the profile");
    out
}

/// Pushes a build's output (signed with the test key) to `repo` over plain HTTP.
fn push(host_bundle: &Path, repo: &str) -> Output {
    common::infragen()
        .arg("push")
        .arg(host_bundle.parent().unwrap())
        .args([repo, "--plain-http", "--sign-key"])
        .arg(&signing_key().0)
        .output()
        .unwrap()
}

/// The blob names of a bundle.
fn blob_names(bundle: &Path) -> std::collections::BTreeSet<String> {
    fs::read_dir(bundle.join("oci/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The number of blobs a pull fetched, from its summary line.
fn fetched(o: &Output) -> usize {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("pulled "))
        .unwrap_or_else(|| panic!("no pull summary:\n{err}"));
    line.split_once(": ")
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn get(url: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .proxy(None)
        .build()
        .into();
    agent
        .get(url)
        .call()
        .ok()
        .filter(|r| r.status() == 200)
        .and_then(|mut r| r.body_mut().read_to_string().ok())
}

fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Builds `text` with one more global `setting`, activates it with `runtime`, and expects
/// `component` to fail its probe and the host to be rolled back, with `url` answering again.
#[allow(clippy::too_many_arguments)]
fn assert_rolled_back(
    host: &Booted,
    runtime: &str,
    dir: &Path,
    text: &str,
    name: &str,
    setting: &str,
    component: &str,
    url: &str,
) {
    let bundle = build(
        dir,
        name,
        &text.replace("\n  vars:\n", &format!("\n  vars:\n    {setting}\n")),
    );
    let o = host.activate_with(&bundle, name, runtime);
    let took = host.took.get();
    assert_eq!(o.status.code(), Some(1));
    // docs/reliability.md: rolled back within the health timeout (20 s here) + 10 s
    eprintln!("{name}: {component} failed and was rolled back in {took:.1?}");
    assert!(
        took <= Duration::from_secs(30),
        "{name}: the rollback took {took:.1?}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("component `{component}` failed its health probe"))
            && err.contains("rolled back"),
        "{err}"
    );
    eventually(&format!("{component} back"), 20, || get(url));
}

/// What a single-node host at `ip` serves, checked from outside: the portal, VictoriaMetrics
/// through nginx with every infra target up, dnsmasq answering `i.pigsty` with `ip` (the
/// `admin_ip`), chrony answering NTP.
fn serves_single_node(ip: &str) {
    let portal = eventually("portal", 10, || get(&format!("http://{ip}/")));
    assert!(portal.contains("<h1>i.pigsty</h1>"));
    eventually("vmetrics via nginx", 10, || {
        get(&format!("http://{ip}/vmetrics/health"))
    });
    eventually("up == 1 for every infra target", 60, || {
        let body = get(&format!(
            "http://{ip}/vmetrics/api/v1/query?query=up%7Bjob%3D%22infra%22%7D"
        ))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let results = v["data"]["result"].as_array()?;
        // nginx's exporter, VictoriaMetrics, vmalert, Alertmanager, blackbox
        (results.len() == 5 && results.iter().all(|r| r["value"][1] == "1")).then_some(body)
    });
    assert_eq!(
        eventually("dnsmasq", 10, || dns_a(&format!("{ip}:53"), "i.pigsty")),
        ip
    );
    eventually("chrony", 10, || ntp(&format!("{ip}:123")).then(String::new));
}

/// The single-node profile on `prefix`.10 with the components that can run here: Grafana,
/// VictoriaLogs and VictoriaTraces need base images that cannot be fetched here; chrony serves
/// time without steering this machine's clock.
fn single_node_text(prefix: &str) -> String {
    let base = fs::read_to_string(root().join("profiles/single-node.yml"))
        .unwrap()
        .replace("10.10.10.", prefix);
    let text = base.replacen(
        "\n  vars:\n",
        "\n  vars:\n    grafana_enabled: false\n    vlogs_enabled: false\n    vtraces_enabled: false\n    chrony_control_clock: false\n",
        1,
    );
    assert_ne!(text, base);
    text
}

/// Asserts that exactly the components in `restarted` have a new main PID.
fn assert_restarted_only(
    before: &[(String, String)],
    after: &[(String, String)],
    restarted: &[&str],
) {
    for ((c, p0), (_, p1)) in before.iter().zip(after) {
        if restarted.contains(&c.as_str()) {
            assert_ne!(p0, p1, "{c} restarted");
        } else {
            assert_eq!(p0, p1, "{c} kept its process");
        }
    }
}

#[test]
fn single_node_on_a_booted_systemd() {
    booted_tier();
    let dir = tempfile::Builder::new()
        .prefix("infragen-booted-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let host = Booted::boot(dir.path(), "infragen-test-single");
    // The host makes its secrets key; the profile names it, so that secrets travel encrypted.
    let text = with_host_key(&single_node_text("127.0.50."), "127.0.50.10", &host.init());
    let a = build(dir.path(), "a", &text);
    // Shipped through a registry: pushed signed, activated on the host from its reference.
    let registry = Registry::start(5);
    let repo = format!("{}/infra", registry.addr);
    ok(&push(&a, &repo), "push A");
    let out = host.activate_from(&format!("{repo}/bundle"), "127.0.50.10");
    let stdout = ok(&out, "activate A from the registry");
    let a_blobs = blob_names(&a);
    assert_eq!(fetched(&out), a_blobs.len(), "every blob fetched once");
    assert!(stdout.contains("start   infra-nginx.service"), "{stdout}");
    for (c, pid) in host.pids() {
        assert!(pid != "0" && !pid.is_empty(), "infra-{c} is not running");
    }
    serves_single_node("127.0.50.10");
    for target in [
        "module=icmp&target=127.0.50.10",
        "module=http_2xx&target=http://127.0.50.10:8428/health",
    ] {
        let body = eventually("blackbox", 10, || {
            get(&format!("http://127.0.50.10:9115/probe?{target}"))
        });
        assert!(body.contains("probe_success 1"), "{target}:\n{body}");
    }
    eventually("the watchdog alert in Alertmanager", 90, || {
        get("http://127.0.50.10:9059/api/v2/alerts")
            .filter(|b| b.contains("\"alertname\":\"InfragenWatchdog\""))
    });

    // One parameter changes: exactly the affected units are reloaded or restarted.
    let before = host.pids();
    let b = build(
        dir.path(),
        "b",
        &text.replace(
            "vmetrics_scrape_interval: 10s",
            "vmetrics_scrape_interval: 15s",
        ),
    );
    ok(&push(&b, &repo), "push B");
    let out = host.activate_from(&format!("{repo}/bundle"), "127.0.50.10");
    let stdout = ok(&out, "activate B from the registry");
    // Only the blobs that changed travel: the changed config layers and their images' manifests.
    let changed = blob_names(&b).difference(&a_blobs).count();
    assert_eq!(fetched(&out), changed, "only the changed blobs");
    eprintln!(
        "one parameter through the registry: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.starts_with("pulled "))
            .unwrap_or("")
    );
    drop(registry);
    assert!(
        stdout.contains("reload  infra-vmetrics.service")
            && stdout.contains("restart infra-vmalert.service"),
        "{stdout}"
    );
    let after = host.pids();
    assert_restarted_only(&before, &after, &["vmalert"]);
    // The same bundle again: nothing restarts.
    let stdout = ok(&host.activate(&b, "b-again"), "activate B again");
    assert!(
        !stdout.contains("restart") && !stdout.contains("reload"),
        "{stdout}"
    );
    assert_eq!(host.pids(), after);

    // A component that cannot start: rolled back, the previous services active again.
    let changed = text.replace(
        "vmetrics_scrape_interval: 10s",
        "vmetrics_scrape_interval: 15s",
    );
    assert_rolled_back(
        &host,
        "unit",
        dir.path(),
        &changed,
        "c",
        "vmetrics_options: '-noSuchFlag=1'",
        "vmetrics",
        "http://127.0.50.10:8428/health",
    );
    let generations =
        String::from_utf8_lossy(&host.run(&["infragen", "generations"]).stdout).into_owned();
    let b_gen: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("manifest.json")).unwrap()).unwrap();
    assert!(
        generations.contains(&format!(
            "{} (current)",
            b_gen["generation"].as_str().unwrap()
        )),
        "{generations}"
    );

    // One that starts but fails its probe (vmalert listening elsewhere): rolled back too.
    assert_rolled_back(
        &host,
        "unit",
        dir.path(),
        &changed,
        "d",
        "vmalert_options: '-httpListenAddr=127.0.50.10:18880'",
        "vmalert",
        "http://127.0.50.10:8880/-/healthy",
    );
    for (c, pid) in host.pids() {
        assert!(
            pid != "0" && !pid.is_empty(),
            "infra-{c} is not running after the rollback"
        );
    }
}

#[test]
fn three_node_on_three_booted_systemds() {
    booted_tier();
    let dir = tempfile::Builder::new()
        .prefix("infragen-booted3-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let base = fs::read_to_string(root().join("profiles/three-node.yml"))
        .unwrap()
        .replace("10.10.10.", "127.0.51.");
    let text = base.replacen(
        "\n  vars:\n",
        "\n  vars:\n    grafana_enabled: false\n    vlogs_enabled: false\n    vtraces_enabled: false\n    chrony_control_clock: false\n",
        1,
    );
    assert_ne!(text, base);
    let addresses = ["127.0.51.10", "127.0.51.11", "127.0.51.12"];
    let mut hosts = Vec::new();
    let mut text = text;
    for (i, ip) in addresses.iter().enumerate() {
        let hdir = dir.path().join(format!("host{i}"));
        fs::create_dir_all(&hdir).unwrap();
        let host = Booted::boot(&hdir, &format!("infragen-test-three-{i}"));
        text = with_host_key(&text, ip, &host.init());
        hosts.push(host);
    }
    let bundles = build_hosts(dir.path(), "three", &text);
    assert_eq!(bundles.len(), 3);
    // The infra node 127.0.51.10 from its directory bundle; then it serves every host's images
    // and bundle from the static registry tree beside its package repository, and the other two
    // activate from there, with no other registry running.
    ok(
        &hosts[0].activate(&bundles[0], "bundle"),
        &format!("activate {}", bundles[0].display()),
    );
    let o = common::infragen()
        .args(["repo", "images", "--profile"])
        .arg(dir.path().join("three/profile.yml"))
        .arg("--images")
        .arg(bundles[0].parent().unwrap())
        .arg("--registry-dir")
        .arg(dir.path().join("host0/root/www/registry"))
        .arg("--sign-key")
        .arg(&signing_key().0)
        .output()
        .unwrap();
    ok(&o, "repo images into the infra node's /www/registry");
    for (i, host) in hosts.iter().enumerate().skip(1) {
        let o = host.activate_from("127.0.51.10/infragen/bundle", addresses[i]);
        ok(
            &o,
            &format!("activate {} from the infra node", addresses[i]),
        );
        assert_eq!(fetched(&o), blob_names(&bundles[i]).len());
    }
    for ip in addresses {
        // Each VictoriaMetrics scrapes every infra node's components: 3 hosts × 5 components.
        eventually(
            &format!("{ip}: up == 1 for all 15 infra targets"),
            90,
            || {
                let body = get(&format!(
                    "http://{ip}/vmetrics/api/v1/query?query=up%7Bjob%3D%22infra%22%7D"
                ))?;
                let v: serde_json::Value = serde_json::from_str(&body).ok()?;
                let results = v["data"]["result"].as_array()?;
                let everywhere = addresses
                    .iter()
                    .all(|a| results.iter().any(|r| r["metric"]["ip"] == *a));
                (results.len() == 15 && everywhere && results.iter().all(|r| r["value"][1] == "1"))
                    .then_some(body)
            },
        );
        assert_eq!(
            eventually("dnsmasq", 10, || dns_a(&format!("{ip}:53"), "i.pigsty")),
            "127.0.51.10",
            "admin_ip"
        );
    }
    // Grafana cannot run here (its base image cannot be fetched), so its datasources are checked
    // in the rendered configuration of the same profile with Grafana enabled.
    let with_grafana = dir.path().join("with-grafana.yml");
    fs::write(
        &with_grafana,
        text.replace("    grafana_enabled: false\n", ""),
    )
    .unwrap();
    let rendered = dir.path().join("rendered");
    let o = common::infragen()
        .args([
            "render",
            "--profile",
            with_grafana.to_str().unwrap(),
            "--out",
            rendered.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    ok(&o, "render with grafana");
    for host in addresses {
        let ds = fs::read_to_string(
            rendered
                .join(host)
                .join("grafana/etc/grafana/provisioning/datasources/pigsty.yml"),
        )
        .unwrap();
        for (seq, ip) in addresses.iter().enumerate() {
            let needle = format!("- name: vmetrics-{}\n  type: prometheus\n  access: proxy\n  orgId: 1\n  url: http://{ip}:8428\n", seq + 1);
            assert!(ds.contains(&needle), "{host}: {needle}\n{ds}");
        }
    }
    drop(hosts);
}

/// The nspawn and portable runtimes on a booted systemd (single-node on 127.0.53.10): services
/// healthy under each, a configuration change restarts a container (nspawn cannot reload) but
/// reloads a portable service, a runtime switch moves every component, a failing generation is
/// rolled back under the runtime it ran with, and the podman runtime is refused without Quadlet.
#[test]
fn nspawn_and_portable_runtimes_on_a_booted_systemd() {
    booted_tier();
    let dir = tempfile::Builder::new()
        .prefix("infragen-booted-rt-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let text = single_node_text("127.0.53.");
    let changed = text.replace(
        "vmetrics_scrape_interval: 10s",
        "vmetrics_scrape_interval: 15s",
    );
    let a = build(dir.path(), "a", &text);
    let b = build(dir.path(), "b", &changed);
    let host = Booted::boot(dir.path(), "infragen-test-runtimes");

    // nspawn: every component in its own container from the shared root tree
    let out = ok(
        &host.activate_with(&a, "a", "nspawn"),
        "activate A (nspawn)",
    );
    assert!(
        out.contains("start   systemd-nspawn@infra-nginx.service (new)"),
        "{out}"
    );
    let running = |prefix: &str| {
        for (c, pid) in host.pids_of(prefix) {
            assert!(pid != "0" && !pid.is_empty(), "{prefix}{c} is not running");
        }
    };
    running("systemd-nspawn@infra-");
    serves_single_node("127.0.53.10");
    let machines = host.run(&["machinectl", "list", "--no-legend"]);
    assert!(
        String::from_utf8_lossy(&machines.stdout).contains("infra-vmetrics"),
        "{}",
        String::from_utf8_lossy(&machines.stdout)
    );
    let before = host.pids_of("systemd-nspawn@infra-");
    let out = ok(
        &host.activate_with(&b, "b", "nspawn"),
        "activate B (nspawn)",
    );
    assert!(
        out.contains("restart systemd-nspawn@infra-vmetrics.service")
            && out.contains("restart systemd-nspawn@infra-vmalert.service"),
        "{out}"
    );
    assert_restarted_only(
        &before,
        &host.pids_of("systemd-nspawn@infra-"),
        &["vmetrics", "vmalert"],
    );

    // portable: a runtime switch stops every container and attaches every image
    let out = ok(
        &host.activate_with(&b, "b", "portable"),
        "activate B (portable)",
    );
    assert!(
        out.contains("start   infra-nginx.service (runtime nspawn → portable)"),
        "{out}"
    );
    running("infra-");
    let listed = String::from_utf8_lossy(&host.run(&["portablectl", "list", "--no-legend"]).stdout)
        .into_owned();
    for c in RUNNING {
        assert!(listed.contains(&format!("infra-{c}_")), "{c}:\n{listed}");
        let nspawn = host.run(&[
            "systemctl",
            "is-active",
            &format!("systemd-nspawn@infra-{c}.service"),
        ]);
        assert_ne!(
            String::from_utf8_lossy(&nspawn.stdout).trim(),
            "active",
            "{c}'s container still runs"
        );
    }
    serves_single_node("127.0.53.10");
    // a configuration-only change reloads a portable service in place
    let before = host.pids();
    let out = ok(
        &host.activate_with(&a, "a", "portable"),
        "activate A (portable)",
    );
    assert!(
        out.contains("reload  infra-vmetrics.service")
            && out.contains("restart infra-vmalert.service"),
        "{out}"
    );
    assert_restarted_only(&before, &host.pids(), &["vmalert"]);
    // a component that cannot start is rolled back, under the portable runtime
    assert_rolled_back(
        &host,
        "portable",
        dir.path(),
        &text,
        "c",
        "vmetrics_options: '-noSuchFlag=1'",
        "vmetrics",
        "http://127.0.53.10:8428/health",
    );
    running("infra-");

    // A component removed, the activation killed right after stopping it: the re-run finds it
    // stopped and detached already, and converges.
    let without = build(
        dir.path(),
        "e",
        &text.replace("\n  vars:\n", "\n  vars:\n    blackbox_enabled: false\n"),
    );
    let o = host.activate_env(
        &without,
        "e",
        "portable",
        &["INFRAGEN_FAILPOINT=after-stop"],
    );
    assert!(!o.status.success(), "the fail point did not stop it");
    ok(&host.activate_with(&without, "e", "portable"), "re-run E");
    let blackbox = host.run(&["systemctl", "is-active", "infra-blackbox.service"]);
    assert_ne!(String::from_utf8_lossy(&blackbox.stdout).trim(), "active");
    let listed = String::from_utf8_lossy(&host.run(&["portablectl", "list", "--no-legend"]).stdout)
        .into_owned();
    assert!(!listed.contains("infra-blackbox_"), "{listed}");
    for (c, pid) in host.pids() {
        if c != "blackbox" {
            assert!(pid != "0" && !pid.is_empty(), "infra-{c} is not running");
        }
    }
    ok(&host.activate_with(&a, "a", "portable"), "back to A");
    running("infra-");

    // podman: Debian 12's podman has no Quadlet (4.4+); refused before anything is touched
    let o = host.activate_with(&b, "b", "podman");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the podman runtime needs") && err.contains("nothing was changed"),
        "{err}"
    );
    let status = String::from_utf8_lossy(&host.run(&["infragen", "status"]).stdout).into_owned();
    assert!(status.contains("portable runtime"), "{status}");
    running("infra-");
}
