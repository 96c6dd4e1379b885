//! Benchmark (not a test): load, resolve and render a generated 1,000-host inventory.
//!
//! `cargo bench --bench render` prints the median of several runs for each stage, against a
//! floor measured in the same run on the same machine: parsing the same YAML text into a
//! generic value (work any tool must do) and writing the same bytes to disk.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use infragen::{plan, profile, render};

/// 3 infra hosts, 5 etcd, 4 minio and 988 PostgreSQL hosts in clusters of 4: 1,000 hosts.
fn inventory() -> String {
    let mut s = String::from("all:\n  children:\n    infra:\n      hosts:\n");
    for i in 1..=3 {
        let _ = writeln!(s, "        10.20.0.{i}: {{ infra_seq: {i} }}");
    }
    s.push_str("    etcd:\n      vars: { etcd_cluster: etcd }\n      hosts:\n");
    for i in 1..=5 {
        let _ = writeln!(s, "        10.20.1.{i}: {{ etcd_seq: {i} }}");
    }
    s.push_str("    minio:\n      vars: { minio_cluster: minio }\n      hosts:\n");
    for i in 1..=4 {
        let _ = writeln!(s, "        10.20.2.{i}: {{ minio_seq: {i} }}");
    }
    for c in 0..247 {
        let _ = writeln!(
            s,
            "    pg-c{c}:\n      vars: {{ pg_cluster: pg-c{c} }}\n      hosts:"
        );
        for m in 0..4 {
            let n = c * 4 + m;
            let role = if m == 0 { "primary" } else { "replica" };
            let _ = writeln!(
                s,
                "        10.21.{}.{}: {{ pg_seq: {}, pg_role: {role} }}",
                n / 250,
                n % 250 + 1,
                m + 1
            );
        }
    }
    s.push_str("  vars:\n    admin_ip: 10.20.0.1\n    alertmanager_cluster: true\n");
    s
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f());
        times.push(start.elapsed());
    }
    (median(times), last.expect("at least one run"))
}

fn main() {
    let text = inventory();
    let runs = 7;
    let (parse_floor, _) = time(runs, || infragen::yaml::from_str(&text).unwrap());
    let (load, inv) = time(runs, || profile::parse("bench", &text).unwrap());
    assert_eq!(inv.hosts.len(), 1000);
    let (resolve, plan) = time(runs, || plan::resolve(&inv).unwrap());
    let (rendered, tree) = time(runs, || render::plan(&plan).unwrap());
    let bytes: usize = tree.iter().map(|(_, e)| e.data.len()).sum();
    let tmp = tempfile::tempdir().unwrap();
    // Both writes go to a fresh directory each run, so neither pays for removing an old tree.
    let mut n = 0;
    let (write, ()) = time(runs, || {
        n += 1;
        tree.write_atomic(&tmp.path().join(format!("out-{n}")))
            .unwrap();
    });
    let (write_floor, ()) = time(runs, || {
        n += 1;
        let dir = tmp.path().join(format!("floor-{n}"));
        for (i, (_, e)) in tree.iter().enumerate() {
            let d = dir.join(format!("{}", i / 500));
            if i % 500 == 0 {
                std::fs::create_dir_all(&d).unwrap();
            }
            std::fs::write(d.join(i.to_string()), &e.data).unwrap();
        }
    });
    let total = load + resolve + rendered;
    println!(
        "inventory: 1000 hosts ({} bytes of YAML), 3 infra hosts, {} files, {} bytes rendered",
        text.len(),
        tree.len(),
        bytes
    );
    println!("median of {runs} runs:");
    println!(
        "  load (parse + structure)   {load:>10.2?}   floor: YAML parse alone {parse_floor:.2?}"
    );
    println!("  resolve (plan, all checks) {resolve:>10.2?}");
    println!("  render (in memory)         {rendered:>10.2?}");
    println!(
        "  load+resolve+render        {total:>10.2?}   ({:.1} µs per inventory host)",
        total.as_secs_f64() * 1e6 / 1000.0
    );
    println!("  write (atomic)             {write:>10.2?}   floor: plain writes of the same files {write_floor:.2?}");
}
