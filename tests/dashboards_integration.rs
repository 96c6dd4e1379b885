//! Every query of every built-in dashboard against a real `VictoriaMetrics` (integration tier).
//!
//! The test starts Debian's programs on 127.0.57.1, each on a free port: `victoria-metrics`
//! (scraping, under the labels the single-node plan gives its targets, itself, vmalert, Alertmanager, the
//! blackbox exporter, nginx's exporter, a node exporter and an ICMP probe of the address),
//! `vmalert` with the built-in rule files, `prometheus-alertmanager`,
//! `prometheus-blackbox-exporter`, `nginx` with `stub_status` and `prometheus-nginx-exporter`,
//! and `prometheus-node-exporter`. `VictoriaLogs`, `VictoriaTraces` and Grafana are not Debian
//! packages: their targets point at closed ports (so `up` is 0 for them) and their dashboards'
//! queries are checked for validity only, as are the PostgreSQL, etcd, `MinIO` and Redis ones;
//! the test prints which.
//!
//! For each dashboard, the variables are resolved as Grafana does (`label_values` through the
//! label-values API, first value in sort order), substituted, and every target is run as an
//! instant query: `VictoriaMetrics` refuses one that is not valid `MetricsQL` (HTTP 422), and a
//! query of a live dashboard must return at least one series. Two canaries (an invalid query, a
//! query of labels nobody sets) show the check can fail.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tier::{self, Tier};
use infragen::content::dashboards::{boards, model::Board};
use serde_json::Value;

const IP: &str = "127.0.57.1";

/// Dashboards whose every query must return data here.
const LIVE: &[&str] = &[
    "pigsty",
    "infra-overview",
    "node-overview",
    "node-instance",
    "vmetrics-instance",
    "vmalert-instance",
    "alertmanager-instance",
    "blackbox-instance",
    "nginx-instance",
    "dnsmasq-instance",
    "chrony-instance",
];

struct Stack {
    children: Vec<Child>,
    dir: tempfile::TempDir,
    vm: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((IP, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(dir: &std::path::Path, name: &str, cmd: &mut Command) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    cmd.stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The labels the single-node profile's plan gives its scrape targets (`plan::targets`): the
/// test scrapes local processes under exactly those labels, so a dashboard that expects other
/// labels than our scrape configuration sets finds no data.
struct Labels {
    infra: Vec<BTreeMap<String, String>>,
    node: BTreeMap<String, String>,
    ping: BTreeMap<String, String>,
}

fn plan_labels() -> Labels {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("profiles/single-node.yml")).unwrap();
    let inventory = infragen::profile::parse("single-node.yml", &text).unwrap();
    let plan = infragen::plan::resolve(&inventory).unwrap();
    let only = |dir: &str| {
        let files = &plan.targets[dir];
        assert_eq!(files.len(), 1, "single-node has one `{dir}` target file");
        files.values().next().unwrap().clone()
    };
    Labels {
        infra: only("infra").into_iter().map(|g| g.labels).collect(),
        node: only("node").remove(0).labels,
        ping: only("ping").remove(0).labels,
    }
}

/// A `static_configs` entry: one local target under `labels` (a JSON map is YAML too).
fn entry(target: &str, labels: &BTreeMap<String, String>) -> String {
    format!(
        "      - targets: ['{target}']\n        labels: {}\n",
        serde_json::to_string(labels).unwrap()
    )
}

fn scrape_config(p: &Ports, l: &Labels) -> String {
    let mut s = String::from("global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n  - job_name: infra\n    static_configs:\n");
    let mut infra = l.infra.clone();
    if !infra.iter().any(|g| g["cls"] == "nginx") {
        // Until the nginx exporter is a component of the plan, label it as the others are.
        let mut g = infra[0].clone();
        let seq = g["ins"].rsplit('-').next().unwrap().to_owned();
        g.insert("cls".into(), "nginx".into());
        g.insert("ins".into(), format!("nginx-{seq}"));
        tier::loud("dashboards_integration: the plan has no nginx exporter target; labelled as the other infra targets");
        infra.push(g);
    }
    for g in &infra {
        let port = match g["cls"].as_str() {
            "vmetrics" => p.vm,
            "vmalert" => p.vmalert,
            "alertmanager" => p.am,
            "blackbox" => p.bb,
            "nginx" => p.nginx_exporter,
            _ => p.closed, // VictoriaLogs, VictoriaTraces, Grafana: not Debian packages
        };
        s.push_str(&entry(&format!("{IP}:{port}"), g));
    }
    s.push_str("  - job_name: node\n    static_configs:\n");
    s.push_str(&entry(&format!("{IP}:{}", p.node), &l.node));
    s.push_str("  - job_name: ping\n    metrics_path: /probe\n    params: {module: [icmp]}\n    static_configs:\n");
    // The probe goes to this machine's loopback address, under the inventory node's labels.
    s.push_str(&entry(IP, &l.ping));
    let _ = write!(
        s,
        "    relabel_configs:\n      - {{source_labels: [__address__], target_label: __param_target}}\n      - {{source_labels: [__param_target], target_label: instance}}\n      - {{target_label: __address__, replacement: '{IP}:{}'}}\n",
        p.bb
    );
    s
}

struct Ports {
    vm: u16,
    vmalert: u16,
    am: u16,
    bb: u16,
    nginx: u16,
    nginx_exporter: u16,
    node: u16,
    closed: u16,
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path.to_str().unwrap().to_owned()
}

fn start() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = Ports {
        vm: free_port(),
        vmalert: free_port(),
        am: free_port(),
        bb: free_port(),
        nginx: free_port(),
        nginx_exporter: free_port(),
        node: free_port(),
        closed: free_port(),
    };
    let at = |port: u16| format!("{IP}:{port}");
    let vm = format!("http://{}", at(p.vm));
    let mut children = Vec::new();
    let scrape = write(d, "prometheus.yml", &scrape_config(&p, &plan_labels()));
    children.push(spawn(
        d,
        "victoria-metrics",
        Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr={}", at(p.vm)))
            .arg(format!("-storageDataPath={}", d.join("vm").display()))
            .arg(format!("-promscrape.config={scrape}")),
    ));
    let rules = d.join("rules");
    std::fs::create_dir(&rules).unwrap();
    for r in infragen::content::rules::builtin() {
        write(&rules, &r.name, &r.text);
    }
    children.push(spawn(
        d,
        "vmalert",
        Command::new("vmalert")
            .arg(format!("-httpListenAddr={}", at(p.vmalert)))
            .arg(format!("-rule={}/*.yml", rules.display()))
            .arg(format!("-datasource.url={vm}"))
            .arg(format!("-remoteWrite.url={vm}"))
            .arg(format!("-notifier.url=http://{}", at(p.am)))
            .arg("-evaluationInterval=2s"),
    ));
    let am = write(
        d,
        "alertmanager.yml",
        "route: {receiver: default}\nreceivers: [{name: default}]\n",
    );
    children.push(spawn(
        d,
        "alertmanager",
        Command::new("prometheus-alertmanager")
            .arg(format!("--web.listen-address={}", at(p.am)))
            .arg("--cluster.listen-address=")
            .arg(format!("--storage.path={}", d.join("am").display()))
            .arg(format!("--config.file={am}")),
    ));
    let bb = write(d, "blackbox.yml", "modules:\n  icmp: {prober: icmp}\n");
    children.push(spawn(
        d,
        "blackbox",
        Command::new("prometheus-blackbox-exporter")
            .arg(format!("--web.listen-address={}", at(p.bb)))
            .arg(format!("--config.file={bb}")),
    ));
    let ngx = write(d, "nginx.conf", &format!(
        "daemon off;\npid {0}/nginx.pid;\nerror_log {0}/nginx.err;\nevents {{}}\nhttp {{ access_log off; server {{ listen {1}; location /stub_status {{ stub_status; }} }} }}\n",
        d.display(), at(p.nginx)));
    children.push(spawn(d, "nginx", Command::new("nginx").arg("-c").arg(ngx)));
    children.push(spawn(
        d,
        "nginx-exporter",
        Command::new("prometheus-nginx-exporter")
            .arg(format!(
                "-nginx.scrape-uri=http://{}/stub_status",
                at(p.nginx)
            ))
            .arg(format!("-web.listen-address={}", at(p.nginx_exporter)))
            // It exits when nginx does not answer at its start; nginx starts beside it.
            .args(["-nginx.retries=20", "-nginx.retry-interval=250ms"]),
    ));
    children.push(spawn(
        d,
        "node-exporter",
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address={}", at(p.node))),
    ));
    Stack { children, dir, vm }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into()
}

/// The result of an instant query, or VictoriaMetrics' error.
fn query(a: &ureq::Agent, vm: &str, expr: &str) -> Result<Vec<Value>, String> {
    let mut resp = a
        .get(&format!("{vm}/api/v1/query"))
        .query("query", expr)
        .call()
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("HTTP {status}: {e}"))?;
    let body: Value =
        serde_json::from_str(&text).map_err(|e| format!("HTTP {status}: {e}: {text}"))?;
    if status != 200 || body["status"] != "success" {
        return Err(format!("HTTP {status}: {}", body["error"]));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Grafana's `label_values(<selector>, <label>)`.
fn label_values(a: &ureq::Agent, vm: &str, selector: &str, label: &str) -> Vec<String> {
    let mut resp = a
        .get(&format!("{vm}/api/v1/label/{label}/values"))
        .query("match[]", selector)
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let mut v: Vec<String> = body["data"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// `expr` with the dashboard's variables and `$__rate_interval` substituted.
fn substitute(expr: &str, values: &[(&str, String)]) -> String {
    let mut e = expr.replace("$__rate_interval", "10s");
    // Longest names first, so `$ins` does not eat the start of `$instance`.
    let mut sorted: Vec<&(&str, String)> = values.iter().collect();
    sorted.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, value) in sorted {
        e = e
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    e
}

/// Every query problem of one dashboard: invalid, or (when `live`) empty.
fn check(a: &ureq::Agent, vm: &str, b: &Board, live: bool) -> (usize, Vec<String>) {
    let mut values: Vec<(&str, String)> = Vec::new();
    let mut problems = Vec::new();
    for var in &b.vars {
        let selector = substitute(&var.selector, &values);
        let found = label_values(a, vm, &selector, var.label_name);
        if live && found.is_empty() {
            problems.push(format!(
                "{}: variable `{}` ({selector}) has no value",
                b.uid, var.name
            ));
        }
        values.push((
            var.name,
            found.into_iter().next().unwrap_or_else(|| "sample".into()),
        ));
    }
    let mut n = 0;
    for p in b.panels() {
        for t in &p.targets {
            n += 1;
            let expr = substitute(&t.expr, &values);
            match query(a, vm, &expr) {
                Err(e) => problems.push(format!("{} / {}: `{expr}`: {e}", b.uid, p.title)),
                Ok(r) if live && r.is_empty() => {
                    problems.push(format!(
                        "{} / {}: `{expr}` returned no data",
                        b.uid, p.title
                    ));
                }
                Ok(_) => {}
            }
        }
    }
    (n, problems)
}

#[test]
fn every_panel_query_is_valid_and_the_live_dashboards_return_data() {
    tier::binary(Tier::Integration, file!());
    tier::require(
        "dashboards_integration",
        &[
            ("victoria-metrics", "victoria-metrics"),
            ("vmalert", "victoria-metrics"),
            ("prometheus-alertmanager", "prometheus-alertmanager"),
            (
                "prometheus-blackbox-exporter",
                "prometheus-blackbox-exporter",
            ),
            ("prometheus-nginx-exporter", "prometheus-nginx-exporter"),
            ("prometheus-node-exporter", "prometheus-node-exporter"),
            ("nginx", "nginx-light"),
        ],
    );
    tier::require_root("dashboards_integration (ICMP probes)");
    let stack = start();
    let a = agent();
    wait_for_data(&a, &stack);
    let mut problems = Vec::new();
    let mut total = 0;
    let mut validity_only = Vec::new();
    for b in boards() {
        let live = LIVE.contains(&b.uid);
        if !live {
            validity_only.push(b.uid);
        }
        let (n, p) = check(&a, &stack.vm, &b, live);
        total += n;
        problems.extend(p);
    }
    tier::loud(&format!(
        "dashboards_integration: {total} queries run; checked for validity only (no exporter \
         for them here): {}",
        validity_only.join(", ")
    ));
    assert!(total > 150, "{total}");
    // Canaries: the check can fail, for an invalid query and for a query of labels nobody sets.
    let mut canary = boards()
        .into_iter()
        .find(|b| b.uid == "node-instance")
        .unwrap();
    canary.rows[0].panels[0].targets[0].expr = "rate(up[".into();
    canary.rows[0].panels[1].targets[0].expr = r#"up{job="node", cls="no-such-cluster"}"#.into();
    let (_, found) = check(&a, &stack.vm, &canary, true);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("HTTP 422"), "{found:?}");
    assert!(found[1].ends_with("returned no data"), "{found:?}");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Waits until every target has been scraped a few times (so rates have samples), vmalert has
/// evaluated its groups, the probe ran and nginx's exporter reads nginx; on time-out, names the
/// conditions not met and shows the programs' logs.
fn wait_for_data(a: &ureq::Agent, stack: &Stack) {
    const READY: &[&str] = &[
        "count(count_over_time(up[15s]) >= 5) >= 10",
        "count(vmalert_iteration_total) > 0",
        "count(probe_success) > 0",
        "count(nginx_up == 1) > 0",
    ];
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let missing: Vec<&str> = READY
            .iter()
            .copied()
            .filter(|q| query(a, &stack.vm, q).map_or(true, |r| r.is_empty()))
            .collect();
        if missing.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let mut logs = String::new();
            for e in std::fs::read_dir(stack.dir.path()).unwrap().flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    let _ = writeln!(logs, "{}:\n  {}", e.path().display(), tail.join("\n  "));
                }
            }
            panic!("after 150 s, still not true: {missing:?}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
