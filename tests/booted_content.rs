//! The monitoring content at work (issue 11's booted acceptance): Debian booted with
//! `systemd-nspawn -b` (sharing this machine's network), Debian's `prometheus-node-exporter`
//! started on the host's address and port 9100 as Pigsty's NODE module runs it, `single-node`
//! built for 127.0.58.10 and activated inside. Run alone with `cargo test --test booted_content`
//! (root; debootstrap, systemd-container).
//!
//! Grafana cannot run here, so the dashboards are the ones the same profile provisions with
//! Grafana enabled (`infragen render`), and Grafana's part is done by hand
//! (`booted_content/grafana.rs`, tested on its own in the fast `tests/dashboard_queries.rs`).
//! Checked from outside, generic over whatever the bundle holds:
//! - vmalert has loaded every rule of every rule file; every group is healthy (no rule with a
//!   `lastError`), every rule evaluated at least once, every alert's state known, the
//!   `InfragenWatchdog` firing, and Alertmanager holds it;
//! - every `PromQL` panel query of every dashboard about what runs here (infra, node, components;
//!   not PostgreSQL, etcd, `MinIO`, Redis, …) returns data from `VictoriaMetrics` with the
//!   dashboard's variables resolved against it as Grafana would, its built-in ones set;
//! - every `/ui/d/<uid>` link of the portal's home page names a provisioned dashboard.

mod common;
#[path = "booted_content/grafana.rs"]
mod grafana;

use common::booted::{self, Machine};
use common::{enrol, ok, root};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const FILE: &str = "tests/booted_content.rs";
/// The infra host.
const IP: &str = "127.0.58.10";

/// What this host does not run, as metric-name prefixes, label values and dashboard uid words:
/// a dashboard named by one is out of scope, and a query naming one may come back empty.
const ABSENT: &[&str] = &[
    "pg",
    "pgsql",
    "pgbouncer",
    "patroni",
    "pgbackrest",
    "pgrds",
    "pgcat",
    "pglog",
    "etcd",
    "minio",
    "redis",
    "kafka",
    "mysql",
    "juice",
    "juicefs",
    "mongo",
    "ferret",
    "haproxy",
    "vector",
    "keepalived",
    "vip",
    "docker",
    "grafana",
    "vlogs",
    "vl",
    "vtraces",
    "vt",
    "logs",
    "claude",
];

fn booted_tier() {
    common::tier::binary(common::tier::Tier::Booted, FILE);
    common::tier::require_root(FILE);
    common::tier::require(
        FILE,
        &[
            ("systemd-nspawn", "systemd-container"),
            ("debootstrap", "debootstrap"),
        ],
    );
}

/// single-node on 127.0.58.10 with what runs here: no `VictoriaLogs`/Traces (their base images
/// cannot be fetched), Grafana as `grafana`, a node with its exporter and nothing else.
fn profile(grafana: bool) -> String {
    let base = fs::read_to_string(root().join("profiles/single-node.yml"))
        .unwrap()
        .replace("10.10.10.", "127.0.58.");
    let text = base.replacen(
        "\n  vars:\n",
        &format!(
            "\n  vars:\n    grafana_enabled: {grafana}\n    vlogs_enabled: false\n    vtraces_enabled: false\n    chrony_control_clock: false\n    haproxy_enabled: false\n    vector_enabled: false\n"
        ),
        1,
    );
    assert_ne!(text, base);
    text
}

/// Builds the profile (signed by the test key); returns the host's bundle.
fn build(dir: &Path, text: &str) -> PathBuf {
    let profile = dir.join("profile.yml");
    fs::write(&profile, text).unwrap();
    let out = dir.join("out");
    common::build_signed(&profile, &out, &dir.join("pki"), "build");
    out.join(IP)
}

/// Renders `text` as `<name>.yml`; returns the host's rendered tree.
fn render(dir: &Path, name: &str, text: &str) -> PathBuf {
    let profile = dir.join(format!("{name}.yml"));
    fs::write(&profile, text).unwrap();
    let out = dir.join(name);
    let o = common::infragen()
        .arg("render")
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    ok(&o, &format!("render {name}"));
    out.join(IP)
}

/// Copies `bundle` into `m` and activates it.
fn activate(m: &Machine, bundle: &Path) -> Output {
    enrol(&m.root(), IP);
    let inside = m.root().join("root/bundle");
    let _ = fs::remove_dir_all(&inside);
    ok(
        &Command::new("cp")
            .arg("-a")
            .arg(bundle)
            .arg(&inside)
            .output()
            .unwrap(),
        "copy bundle",
    );
    m.run(&[
        "infragen",
        "activate",
        "/root/bundle",
        "--health-timeout",
        "20",
    ])
}

/// A provisioned dashboard: its path below `/etc/dashboards` and its model.
struct Dashboard {
    path: String,
    json: Value,
}

impl Dashboard {
    fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or("")
    }

    /// About something this host runs: neither its folder nor a word of its uid is absent here.
    fn in_scope(&self) -> bool {
        let folder = self.path.split('/').next().unwrap_or("");
        !std::iter::once(folder)
            .chain(self.uid().split(['-', '_']))
            .any(|w| ABSENT.contains(&w.to_lowercase().as_str()))
    }
}

/// Every dashboard JSON under `dir` (folders kept), sorted by path.
fn dashboards(dir: &Path) -> Vec<Dashboard> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let path = e.path().strip_prefix(dir).unwrap().display().to_string();
            let json = serde_json::from_slice(&fs::read(e.path()).unwrap())
                .unwrap_or_else(|err| panic!("{path}: {err}"));
            out.push(Dashboard { path, json });
        }
    }
    out
}

/// `(group, rule)` of every rule in the rule files under `dir`.
fn rule_names(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let text = fs::read_to_string(&p).unwrap();
        let doc: Value = infragen::yaml::from_str_as(&text)
            .unwrap_or_else(|err| panic!("{}: {err:#}", p.display()));
        for g in doc["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                let name = r["alert"].as_str().or(r["record"].as_str()).unwrap();
                out.insert((g["name"].as_str().unwrap().to_owned(), name.to_owned()));
            }
        }
    }
    out
}

/// An HTTP client for the host's APIs: answers with their status and body, errors as text.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

/// `GET url?params`: the JSON body of a 200 answer, else what went wrong.
fn get_json(url: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let mut req = agent().get(url);
    for (k, v) in params {
        req = req.query(*k, *v);
    }
    let mut r = req.call().map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let body = r
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: {status}: {}", body.trim()));
    }
    serde_json::from_str(&body).map_err(|e| format!("{url}: {e}: {body}"))
}

/// Retries `f` every 2 s until it gives `Ok` or `secs` have passed; then its last `Err`, saying
/// what was waited for.
fn try_until<T>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "{what}: not within {secs} s:
{e}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// [`try_until`], failing the test on its error.
fn until<T>(what: &str, secs: u64, f: impl FnMut() -> Result<T, String>) -> T {
    try_until(what, secs, f).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn monitoring_content_on_a_booted_single_node() {
    booted_tier();
    let dir = tempfile::Builder::new()
        .prefix("infragen-booted-content-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = dir.path();
    let bundle = build(dir, &profile(false));
    // What the activated vmalert reads, and what Grafana would provision (it cannot run here).
    let as_built = render(dir, "as-built", &profile(false));
    let rendered = render(dir, "with-grafana", &profile(true));
    let dashboards = dashboards(&rendered.join("grafana/etc/dashboards"));
    assert!(
        !dashboards.is_empty(),
        "the bundle provisions no dashboard: nothing to check"
    );
    let rules = rule_names(&as_built.join("vmalert/etc/vmalert/rules"));
    assert!(!rules.is_empty(), "the bundle holds no vmalert rule");

    let m = Machine::boot(
        dir,
        "infragen-test-content",
        booted::root_with_node_exporter,
    );
    ok(&m.node_exporter(IP, 9100), "start the node exporter");
    ok(&activate(&m, &bundle), "activate");
    until("the node exporter scraped", 60, || {
        let v = query("up{job=\"node\"} == 1", true)?;
        (v == 1)
            .then_some(())
            .ok_or_else(|| format!("{v} node targets up"))
    });
    // Every check runs and reports, so that one boot says everything that is wrong.
    let problems = [
        rules_healthy(&rules),
        alerts_delivered(),
        portal_links_resolve(&dashboards, &rendered),
        every_panel_query_returns_data(&dashboards),
    ]
    .concat();
    assert!(
        problems.is_empty(),
        "{} problem(s) with the monitoring content:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The number of series `expr` gives now (instant) or over the last 10 minutes (range).
fn query(expr: &str, instant: bool) -> Result<usize, String> {
    let (start, end) = window();
    let v = if instant {
        get_json(
            &format!("http://{IP}:8428/api/v1/query"),
            &[("query", expr)],
        )?
    } else {
        get_json(
            &format!("http://{IP}:8428/api/v1/query_range"),
            &[
                ("query", expr),
                ("start", &start),
                ("end", &end),
                ("step", "20"),
            ],
        )?
    };
    let data = &v["data"];
    Ok(match data["resultType"].as_str() {
        Some("scalar" | "string") => 1,
        _ => data["result"].as_array().map_or(0, |r| {
            r.iter()
                .filter(|s| s["values"].as_array().is_none_or(|v| !v.is_empty()))
                .count()
        }),
    })
}

/// The rules vmalert reports, with their group's name.
fn reported(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for g in v["data"]["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            out.push((g["name"].as_str().unwrap_or("").to_owned(), r.clone()));
        }
    }
    out
}

/// What is wrong with vmalert's rules now: a rule of the files not loaded, one never evaluated,
/// one with an error, an alert in no known state, the watchdog not firing.
fn rule_problems(v: &Value, files: &BTreeSet<(String, String)>) -> Vec<String> {
    let rules = reported(v);
    let loaded: BTreeSet<(String, String)> = rules
        .iter()
        .map(|(g, r)| (g.clone(), r["name"].as_str().unwrap_or("").to_owned()))
        .collect();
    let mut out: Vec<String> = files
        .difference(&loaded)
        .map(|(g, r)| format!("group `{g}` rule `{r}`: in the rule files, not loaded by vmalert"))
        .collect();
    for (g, r) in &rules {
        let name = format!("group `{g}` rule `{}`", r["name"].as_str().unwrap_or(""));
        let error = r["lastError"].as_str().unwrap_or("");
        if !error.is_empty() || r["health"] == "err" {
            out.push(format!("{name}: {error}"));
        }
        if r["lastEvaluation"]
            .as_str()
            .is_none_or(|t| t.starts_with("0001-"))
        {
            out.push(format!("{name}: never evaluated"));
        }
        let state = r["state"].as_str().unwrap_or("");
        if r["type"] == "alerting" && !["inactive", "pending", "firing"].contains(&state) {
            out.push(format!("{name}: alert state `{state}`"));
        }
    }
    let watchdog = rules.iter().find(|(_, r)| r["name"] == "InfragenWatchdog");
    if watchdog.is_none_or(|(_, r)| r["state"] != "firing") {
        out.push("`InfragenWatchdog` is not firing".to_owned());
    }
    out
}

/// vmalert has loaded every rule of `files`; every group is healthy, every rule evaluated,
/// every alert's state known and the watchdog firing.
fn rules_healthy(files: &BTreeSet<(String, String)>) -> Vec<String> {
    let v = try_until(
        "vmalert: every rule loaded, evaluated, without error",
        120,
        || {
            let v = get_json(&format!("http://{IP}:8880/api/v1/rules"), &[])?;
            let problems = rule_problems(&v, files);
            problems
                .is_empty()
                .then_some(v)
                .ok_or_else(|| problems.join("\n"))
        },
    );
    let v = match v {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let rules = reported(&v);
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &rules {
        let kind = r["type"].as_str().unwrap_or("").to_owned();
        let state = r["state"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map_or(kind, |s| format!("alerting {s}"));
        *states.entry(state).or_default() += 1;
    }
    common::tier::loud(&format!(
        "{FILE}: vmalert: {} rules of the files loaded and evaluated, none with an error: {states:?}",
        rules.len()
    ));
    Vec::new()
}

/// The watchdog is among vmalert's firing alerts and reaches Alertmanager.
fn alerts_delivered() -> Vec<String> {
    let mut out = Vec::new();
    let firing = try_until("the watchdog among vmalert's firing alerts", 30, || {
        let v = get_json(&format!("http://{IP}:8880/api/v1/alerts"), &[])?;
        let firing = v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["name"] == "InfragenWatchdog" && a["state"] == "firing");
        firing.then_some(()).ok_or_else(|| format!("{v:#}"))
    });
    out.extend(firing.err());
    let delivered = try_until("the watchdog alert in Alertmanager", 90, || {
        let v = get_json(&format!("http://{IP}:9059/api/v2/alerts"), &[])?;
        let there = v
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == "InfragenWatchdog");
        there.then_some(()).ok_or_else(|| format!("{v:#}"))
    });
    out.extend(delivered.err());
    out
}

/// The first thing `text` names that this host does not run ([`grafana::first_named`]).
fn absent_in(text: &str) -> Option<String> {
    grafana::first_named(text, ABSENT)
}

/// The last 10 minutes, as `start`/`end` parameters.
fn window() -> (String, String) {
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    ((now - 600).to_string(), now.to_string())
}

/// The values of `label` over the last 10 minutes, of the series `selector` matches.
fn label_values(label: &str, selector: Option<&str>) -> Result<Vec<String>, String> {
    let (start, end) = window();
    let mut params = vec![("start", start.as_str()), ("end", end.as_str())];
    if let Some(s) = selector {
        params.push(("match[]", s));
    }
    let url = if label.is_empty() {
        format!("http://{IP}:8428/api/v1/labels")
    } else {
        format!("http://{IP}:8428/api/v1/label/{label}/values")
    };
    let v = get_json(&url, &params)?;
    Ok(v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect())
}

/// Grafana's `query_result(expr)`: each series as `name{k="v",…} value timestamp`.
fn query_result(expr: &str) -> Result<Vec<String>, String> {
    let v = get_json(
        &format!("http://{IP}:8428/api/v1/query"),
        &[("query", expr)],
    )?;
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        let m = s["metric"].as_object().cloned().unwrap_or_default();
        let labels: Vec<String> = m
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
        let (ts, value) = (&s["value"][0], s["value"][1].as_str().unwrap_or(""));
        out.push(format!(
            "{name}{{{}}} {value} {}",
            labels.join(","),
            ts.as_f64().unwrap_or(0.0) * 1000.0
        ));
    }
    Ok(out)
}

/// Each variable's chosen values, by name.
type Scope = BTreeMap<String, grafana::Chosen>;

/// A dashboard's variables, resolved in order against `VictoriaMetrics` as Grafana resolves them on
/// a first load; and those that came out empty because what they ask about is absent here.
fn resolve(dash: &Value) -> Result<(Scope, BTreeMap<String, String>), String> {
    use grafana::Source;
    let (mut scope, mut empty) = (BTreeMap::new(), BTreeMap::new());
    for v in grafana::variables(dash) {
        let options = match grafana::source(&v)? {
            Source::LabelValues { selector, label } => label_values(
                &label,
                selector
                    .map(|s| grafana::interpolate(&s, &scope))
                    .as_deref(),
            )?,
            Source::QueryResult(q) => query_result(&grafana::interpolate(&q, &scope))?,
            Source::Names { metrics } => label_values(if metrics { "__name__" } else { "" }, None)?,
            Source::Fixed(list) => list,
            Source::Datasource(kind) if grafana::PROM_TYPES.contains(&kind.as_str()) => {
                vec!["ds-prometheus".to_owned()]
            }
            Source::Datasource(kind) => vec![kind],
            Source::Adhoc => continue,
        };
        let options = grafana::sort(&v, grafana::filter(&v, options)?);
        if options.is_empty() {
            if let Some(word) = absent_in(&v.query) {
                empty.insert(v.name.clone(), word);
            }
        }
        scope.insert(v.name.clone(), grafana::choose(&v, options));
    }
    Ok((scope, empty))
}

/// What one pass over the dashboards found.
#[derive(Default)]
struct Verdict {
    /// Queries (instant or range) that returned data.
    data: usize,
    /// Empty answers to queries about what does not run here, with why.
    excused: Vec<String>,
    /// Queries that failed or returned nothing, naming dashboard, panel and query.
    failed: Vec<String>,
    /// Targets of other datasources (SQL, `LogsQL`, static), not queried here.
    other: Vec<String>,
}

/// Every `PromQL` target of `d` queried as its panel draws it, with its variables resolved.
fn check_dashboard(d: &Dashboard, out: &mut Verdict) {
    let name = format!("dashboard `{}` ({})", d.uid(), d.path);
    let (scope, empty) = match resolve(&d.json) {
        Ok(r) => r,
        Err(e) => return out.failed.push(format!("{name}: {e}")),
    };
    let (targets, other) = grafana::targets(&d.json);
    out.other.extend(
        other
            .into_iter()
            .map(|o| format!("{name}, panel `{}`: {}", o.panel, o.datasource)),
    );
    for t in targets {
        let expr = grafana::interpolate(&t.expr, &scope);
        let kinds = [(true, t.instant), (false, t.range)];
        for (instant, _) in kinds.into_iter().filter(|(_, drawn)| *drawn) {
            let kind = if instant { "instant" } else { "range" };
            let what = format!(
                "{name}, panel `{}`: `{}`\n    queried ({kind}) as `{expr}`",
                t.panel, t.expr
            );
            let why = grafana::referenced(&t.expr).into_iter().find_map(|v| {
                empty
                    .get(&v)
                    .map(|w| format!("variable `{v}` (about `{w}`) is empty here"))
            });
            match query(&expr, instant) {
                Ok(n) if n > 0 => out.data += 1,
                Ok(_) => match absent_in(&t.expr)
                    .map(|w| format!("it names `{w}`"))
                    .or(why)
                {
                    Some(why) => out.excused.push(format!(
                        "{what}\n    empty: {why}, which this host does not run"
                    )),
                    None => out.failed.push(format!("{what}\n    no data")),
                },
                Err(e) => out.failed.push(format!("{what}\n    {e}")),
            }
        }
    }
}

/// Every `PromQL` panel query of every in-scope dashboard returns data (waiting for rates and
/// recording rules to have some); the rest is said out loud.
fn every_panel_query_returns_data(dashboards: &[Dashboard]) -> Vec<String> {
    let (scope, out): (Vec<&Dashboard>, Vec<&Dashboard>) =
        dashboards.iter().partition(|d| d.in_scope());
    let uids = |ds: &[&Dashboard]| {
        let list: Vec<&str> = ds.iter().map(|d| d.uid()).collect();
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(" ")
        }
    };
    common::tier::loud(&format!("{FILE}: dashboards checked: {}", uids(&scope)));
    common::tier::loud(&format!(
        "{FILE}: SKIPPED dashboards about what this host does not run: {}",
        uids(&out)
    ));
    if scope.is_empty() {
        return vec!["no dashboard of the bundle is about what runs here".to_owned()];
    }
    let verdict = try_until("every panel query returns data", 180, || {
        let mut v = Verdict::default();
        for d in &scope {
            check_dashboard(d, &mut v);
        }
        if v.failed.is_empty() {
            Ok(v)
        } else {
            let n = v.failed.len();
            Err(format!("{n} queries failed:\n{}", v.failed.join("\n")))
        }
    });
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    for e in &verdict.excused {
        eprintln!("excused: {e}");
    }
    for o in &verdict.other {
        eprintln!("not PromQL: {o}");
    }
    common::tier::loud(&format!(
        "{FILE}: {} panel queries returned data; SKIPPED {} empty ones naming what this host does not run and {} targets of other datasources (listed with --nocapture)",
        verdict.data, verdict.excused.len(), verdict.other.len()
    ));
    if verdict.data == 0 {
        return vec!["no panel query was run".to_owned()];
    }
    Vec::new()
}

/// Every dashboard link of the portal's home page (served here, and as rendered with Grafana on)
/// names a provisioned dashboard; there is at least one.
fn portal_links_resolve(dashboards: &[Dashboard], rendered: &Path) -> Vec<String> {
    let uids: BTreeSet<&str> = dashboards.iter().map(Dashboard::uid).collect();
    let mut r = agent()
        .get(&format!("http://{IP}/"))
        .call()
        .expect("the portal");
    assert_eq!(r.status(), 200);
    let live = r.body_mut().read_to_string().unwrap();
    let with_grafana =
        fs::read_to_string(rendered.join("nginx/etc/nginx/html/index.html")).unwrap();
    let (mut all, mut out) = (BTreeSet::new(), Vec::new());
    for (page, html) in [
        (format!("http://{IP}/"), live),
        (
            "the home page rendered with Grafana on".to_owned(),
            with_grafana,
        ),
    ] {
        let links = grafana::dashboard_links(&html);
        let dangling: Vec<&String> = links
            .iter()
            .filter(|u| !uids.contains(u.as_str()))
            .collect();
        if !dangling.is_empty() {
            out.push(format!(
                "{page}: links to dashboards not provisioned: {dangling:?} (provisioned: {uids:?})"
            ));
        }
        all.extend(links);
    }
    if all.is_empty() {
        out.push("the portal's home page links to no dashboard (`/ui/d/<uid>`)".to_owned());
    }
    common::tier::loud(&format!(
        "{FILE}: the home page has {} dashboard link(s), {} not provisioned",
        all.len(),
        all.iter().filter(|u| !uids.contains(u.as_str())).count()
    ));
    out
}
