//! The built-in vmalert rules run by the real programs (integration tier: Debian's
//! `victoria-metrics` package, which holds `vmalert` too):
//!
//! - `vmalert -dryRun` accepts every built-in rule file, alone and all together as a host loads
//!   them, and refuses a planted syntax error (the canary);
//! - thresholds for real: samples written into a VictoriaMetrics the test starts on
//!   127.0.56.21:8428, the rules evaluated over them by vmalert's replay mode (recording rules
//!   first, their results written back, then the alerts), and the firing alerts read back from
//!   `ALERTS`: each representative alert fires for the series just past its threshold and not
//!   for the one just short of it, a breach shorter than `for` stays pending, and nothing else
//!   fires.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tier::{self, Tier};
use serde_json::{json, Value};

const TOOLS: &[(&str, &str)] = &[
    ("vmalert", "victoria-metrics"),
    ("victoria-metrics", "victoria-metrics"),
];

/// The test's VictoriaMetrics (docs/tests.md lists the loopback addresses tests use).
const ADDR: &str = "127.0.56.21:8428";

/// 2025-06-01T00:00:00Z: the samples are history, kept by a 100-year retention.
const T0: u64 = 1_748_736_000;
/// 30 minutes of 15 s scrapes.
const STEPS: u64 = 120;
const FROM: &str = "2025-06-01T00:00:00Z";
const TO: &str = "2025-06-01T00:30:00Z";

fn dry_run(rule: &str) -> std::process::Output {
    Command::new("vmalert")
        .arg("-dryRun")
        .arg(format!("-rule={rule}"))
        .output()
        .expect("vmalert runs")
}

#[test]
fn vmalert_accepts_every_built_in_rule_file_and_refuses_a_planted_error() {
    tier::binary(Tier::Integration, "tests/alerts_integration.rs");
    tier::require("alerts_integration", TOOLS);
    let dir = tempfile::tempdir().unwrap();
    for f in infragen::content::rules::every() {
        let path = dir.path().join(&f.name);
        std::fs::write(&path, &f.text).unwrap();
        let out = dry_run(&path.to_string_lossy());
        assert!(
            out.status.success(),
            "vmalert -dryRun refuses {}:\n{}",
            f.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all = dry_run(&format!("{}/*.yml", dir.path().display()));
    assert!(
        all.status.success(),
        "vmalert -dryRun refuses the set as a host loads it:\n{}",
        String::from_utf8_lossy(&all.stderr)
    );
    // the canary: one comparison left without its number
    let node = std::fs::read_to_string(dir.path().join("node.yml")).unwrap();
    let broken = node.replace("node:ins:stdload1 > 1\n", "node:ins:stdload1 >\n");
    assert_ne!(broken, node, "the canary's edit applies");
    let bad = dir.path().join("bad").join("node.yml");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, broken).unwrap();
    let out = dry_run(&bad.to_string_lossy());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("NodeLoadHigh"),
        "vmalert -dryRun must refuse the planted error, naming the rule:\n{stderr}"
    );
}

/// A VictoriaMetrics of the test's own, stopped (by its process id) when dropped.
struct Vm {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .proxy(None)
        .build()
        .into()
}

fn start_vm() -> Vm {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.path().display()))
        .arg(format!("-httpListenAddr={ADDR}"))
        .arg("-retentionPeriod=100y")
        .arg("-search.disableCache")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .spawn()
        .expect("victoria-metrics runs");
    let vm = Vm { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent().get(format!("http://{ADDR}/health")).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "victoria-metrics did not answer on {ADDR} within 20 s (is the address taken?)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    vm
}

/// One series sampled every 15 s from `T0` on; `value(step)` gives each sample, `None` none.
fn series(out: &mut String, metric: &str, value: impl Fn(u64) -> Option<f64>) {
    for i in 0..STEPS {
        if let Some(v) = value(i) {
            writeln!(out, "{metric} {v} {}", (T0 + 15 * i) * 1000).unwrap();
        }
    }
}

fn constant(out: &mut String, metric: &str, v: f64) {
    series(out, metric, |_| Some(v));
}

/// A counter growing by `per_second` each second.
fn counter(out: &mut String, metric: &str, per_second: f64) {
    #[allow(clippy::cast_precision_loss)] // steps are below 2^52
    series(out, metric, |i| Some((15 * i) as f64 * per_second));
}

/// The samples of every scenario: for each alert, one series just past its threshold and one
/// just short of it (names say which).
fn samples() -> String {
    let mut s = String::new();
    let pg = |ins: &str| format!(r#"job="pgsql",cls="pg-test",ins="{ins}",ip="10.0.0.1""#);
    constant(&mut s, &format!("pg_up{{{}}}", pg("pg-down-1")), 0.0);
    constant(&mut s, &format!("pg_up{{{}}}", pg("pg-up-1")), 1.0);
    let fs = |ins: &str| {
        format!(
            r#"job="node",cls="nodes",ins="{ins}",ip="10.0.0.2",mountpoint="/",device="sda1",fstype="ext4""#
        )
    };
    for (ins, avail) in [("node-full", 99.0), ("node-roomy", 101.0)] {
        constant(
            &mut s,
            &format!("node_filesystem_size_bytes{{{}}}", fs(ins)),
            1000.0,
        );
        constant(
            &mut s,
            &format!("node_filesystem_avail_bytes{{{}}}", fs(ins)),
            avail,
        );
    }
    // past the threshold for 45 s only: pending, never firing (`for: 1m`)
    constant(
        &mut s,
        &format!("node_filesystem_size_bytes{{{}}}", fs("node-blip")),
        1000.0,
    );
    series(
        &mut s,
        &format!("node_filesystem_avail_bytes{{{}}}", fs("node-blip")),
        |i| Some(if (40..44).contains(&i) { 50.0 } else { 500.0 }),
    );
    let repl = |app: &str| format!(r#"{},appname="{app}""#, pg("pg-prim-1"));
    for (app, bytes, secs) in [
        ("pg-lag-b", 1_048_577.0, 0.5),
        ("pg-lag-s", 0.0, 1.001),
        ("pg-lag-ok", 1_048_575.0, 0.999),
    ] {
        constant(
            &mut s,
            &format!("pg_repl_replay_diff{{{}}}", repl(app)),
            bytes,
        );
        constant(
            &mut s,
            &format!("pg_repl_replay_lag{{{}}}", repl(app)),
            secs,
        );
    }
    let etcd = |ins: &str| format!(r#"job="etcd",cls="etcd",ins="{ins}",ip="10.0.0.3""#);
    for (ins, size) in [("etcd-full", 901.0), ("etcd-roomy", 899.0)] {
        constant(
            &mut s,
            &format!("etcd_server_quota_backend_bytes{{{}}}", etcd(ins)),
            1000.0,
        );
        constant(
            &mut s,
            &format!("etcd_mvcc_db_total_size_in_bytes{{{}}}", etcd(ins)),
            size,
        );
    }
    constant(
        &mut s,
        &format!("etcd_server_has_leader{{{}}}", etcd("etcd-lost")),
        0.0,
    );
    constant(
        &mut s,
        &format!("etcd_server_has_leader{{{}}}", etcd("etcd-led")),
        1.0,
    );
    let cpu = |ins: &str| {
        format!(r#"job="node",cls="nodes",ins="{ins}",ip="10.0.0.4",cpu="0",mode="idle""#)
    };
    counter(
        &mut s,
        &format!("node_cpu_seconds_total{{{}}}", cpu("node-busy")),
        0.29,
    );
    counter(
        &mut s,
        &format!("node_cpu_seconds_total{{{}}}", cpu("node-calm")),
        0.31,
    );
    let horizon = 2_147_483_648.0;
    constant(
        &mut s,
        &format!(r#"pg_db_age{{{},datname="app"}}"#, pg("pg-old-1")),
        0.81 * horizon,
    );
    constant(
        &mut s,
        &format!(r#"pg_db_age{{{},datname="app"}}"#, pg("pg-young-1")),
        0.79 * horizon,
    );
    replication_samples(&mut s, &pg);
    let redis =
        |ins: &str| format!(r#"job="redis",cls="redis-test",ins="{ins}",ip="10.0.0.5",cmd="get""#);
    for (ins, rt) in [("redis-slow", 0.000_17), ("redis-fast", 0.000_15)] {
        counter(
            &mut s,
            &format!("redis_commands_total{{{}}}", redis(ins)),
            1000.0,
        );
        counter(
            &mut s,
            &format!("redis_commands_duration_seconds_total{{{}}}", redis(ins)),
            1000.0 * rt,
        );
    }
    s
}

/// Streaming replicas: one instance loses one of two at minute 15, one loses its only one
/// (the series ends), one keeps both.
fn replication_samples(s: &mut String, pg: &dyn Fn(&str) -> String) {
    let down = |ins: &str| format!(r#"pg_downstream_count{{{},state="streaming"}}"#, pg(ins));
    for ins in ["pg-break-1", "pg-lost-1", "pg-steady-1"] {
        constant(s, &format!("pg_up{{{}}}", pg(ins)), 1.0);
    }
    series(s, &down("pg-break-1"), |i| {
        Some(if i < 60 { 2.0 } else { 1.0 })
    });
    series(s, &down("pg-lost-1"), |i| (i < 60).then_some(1.0));
    constant(s, &down("pg-steady-1"), 2.0);
}

/// The built-in set split in two rule files: every recording group, then every other group
/// (alerts). Replay evaluates a file's rules in order over the whole range; written back in
/// two passes, the recorded series are all stored before any alert reads them.
fn split_rules(dir: &Path) -> (String, String) {
    let (mut records, mut alerts) = (Vec::new(), Vec::new());
    for f in infragen::content::rules::every() {
        let doc: Value = infragen::yaml::from_str_as(&f.text).unwrap();
        for g in doc["groups"].as_array().unwrap() {
            let recording = g["rules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("record").is_some());
            if recording {
                records.push(g.clone());
            } else {
                alerts.push(g.clone());
            }
        }
    }
    let write = |name: &str, groups: Vec<Value>| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            infragen::yaml::to_string(&json!({"groups": groups})).unwrap(),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    (write("records.yml", records), write("alerts.yml", alerts))
}

fn replay(rule: &str) {
    let out = Command::new("vmalert")
        .arg(format!("-rule={rule}"))
        .arg(format!("-datasource.url=http://{ADDR}"))
        .arg(format!("-remoteWrite.url=http://{ADDR}"))
        .arg(format!("-replay.timeFrom={FROM}"))
        .arg(format!("-replay.timeTo={TO}"))
        .args(["-replay.disableProgressBar", "-replay.rulesDelay=0s"])
        .args([
            "-remoteWrite.flushInterval=100ms",
            "-evaluationInterval=15s",
        ])
        // the step of replay's range queries: one evaluation per scrape, so that `for` counts
        .arg("-datasource.queryStep=15s")
        .arg("-loggerLevel=ERROR")
        .output()
        .expect("vmalert runs");
    assert!(
        out.status.success(),
        "vmalert replay of {rule} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names and labels of the series matching `selector` in the replayed range.
fn series_of(selector: &str) -> Vec<BTreeMap<String, String>> {
    let _ = agent()
        .get(format!("http://{ADDR}/internal/force_flush"))
        .call();
    let mut r = agent()
        .get(format!("http://{ADDR}/api/v1/series"))
        .query("match[]", selector)
        .query("start", FROM)
        .query("end", "2025-06-01T01:00:00Z")
        .call()
        .expect("series query");
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    serde_json::from_value(v["data"].clone()).unwrap()
}

/// `alertname` → the `ins` of each firing alert, once `until` holds or after 30 s.
fn firing(
    until: impl Fn(&BTreeMap<String, BTreeSet<String>>) -> bool,
) -> BTreeMap<String, BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for labels in series_of(r#"ALERTS{alertstate="firing"}"#) {
            let ins = labels.get("ins").cloned().unwrap_or_default();
            got.entry(labels["alertname"].clone())
                .or_default()
                .insert(ins);
        }
        if until(&got) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn expected() -> BTreeMap<String, BTreeSet<String>> {
    [
        ("EtcdNoLeader", &["etcd-lost"][..]),
        ("EtcdQuotaFull", &["etcd-full"]),
        ("InfragenWatchdog", &[""]),
        ("NodeCpuHigh", &["node-busy"]),
        ("NodeFsSpaceFull", &["node-full"]),
        ("PostgresDown", &["pg-down-1"]),
        ("PostgresReplicationBreak", &["pg-break-1", "pg-lost-1"]),
        ("PostgresReplicationLag", &["pg-lag-b", "pg-lag-s"]),
        ("PostgresXidWarpAround", &["pg-old-1"]),
        ("RedisRTHigh", &["redis-slow"]),
    ]
    .into_iter()
    .map(|(a, ins)| (a.to_owned(), ins.iter().map(|i| (*i).to_owned()).collect()))
    .collect()
}

#[test]
fn alerts_fire_just_past_their_thresholds_and_not_short_of_them() {
    tier::binary(Tier::Integration, "tests/alerts_integration.rs");
    tier::require("alerts_integration", TOOLS);
    let _vm = start_vm();
    agent()
        .post(format!("http://{ADDR}/api/v1/import/prometheus"))
        .send(samples())
        .expect("samples imported");
    let dir = tempfile::tempdir().unwrap();
    let (records, alerts) = split_rules(dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while series_of(r#"{__name__=~"pg_up|node_cpu_seconds_total"}"#).len() < 7 {
        assert!(
            Instant::now() < deadline,
            "the samples are not searchable within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    replay(&records);
    let needed = "node:fs:space_usage|node:ins:cpu_usage_1m|etcd:ins:quota_usage|pg:ins:lag_bytes|\
                  pg:ins:lag_seconds|pg:db:age_usage|pg:ins:downstream_streaming|redis:ins:rt";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names: BTreeSet<String> = series_of(&format!(r#"{{__name__=~"{needed}"}}"#))
            .into_iter()
            .map(|l| l["__name__"].clone())
            .collect();
        if names.len() == needed.split('|').count() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recorded series not written back within 30 s: have {names:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    replay(&alerts);
    let want = expected();
    let got = firing(|got| {
        want.iter()
            .all(|(a, ins)| got.get(a).is_some_and(|g| g.is_superset(ins)))
    });
    std::thread::sleep(Duration::from_secs(1));
    let got = if got == want { firing(|_| true) } else { got };
    assert_eq!(
        got, want,
        "firing alerts (alertname → ins) over the replayed half hour"
    );
    let pending: BTreeSet<String> =
        series_of(r#"ALERTS{alertname="NodeFsSpaceFull",alertstate="pending"}"#)
            .into_iter()
            .map(|l| l["ins"].clone())
            .collect();
    assert!(
        pending.contains("node-blip"),
        "a 45 s breach is pending under `for: 1m`: {pending:?}"
    );
}
