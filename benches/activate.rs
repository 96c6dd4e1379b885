//! Benchmark (not a test): activating `single-node`'s bundle into a directory tree (`--root`).
//!
//! `cargo bench --bench activate` measures, in one run on one machine (median of 5 each):
//! - first activation into an empty root: verify every digest, import the blobs, materialise
//!   every root tree and the configuration, stage the generation, switch;
//! - the floor: what any installer of the same images must do at least — copy the blobs and
//!   unpack every layer with GNU tar (`tar -xzf`), once per root tree;
//! - activating the same bundle again (verify, plan, converge: nothing staged);
//! - activating after one parameter changed (`vmetrics_scrape_interval`): only configuration
//!   layers are new.
//!
//! Needs the lock at the repository root and Debian's mirror or a warm package cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use infragen::activate::{self, Options, Runtime};
use infragen::build::{self, Options as BuildOptions};
use infragen::pkg::fetch::Cache;
use infragen::{plan, profile, render};

fn build_bundle(text: &str, out: &Path) -> PathBuf {
    let inv = profile::parse("single-node.yml", text).unwrap();
    let plan = plan::resolve(&inv).unwrap();
    let tree = render::plan(&plan).unwrap();
    let opts = BuildOptions {
        out: out.to_path_buf(),
        cache: Cache::default_dir(),
        lock: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infragen.lock"),
        repos: Vec::new(),
        bases: None,
        base_registry: None,
        sign_key: None,
        sign_passphrase: None,
        layers: infragen::build::LayerOptions::default(),
    };
    build::build(&plan, &tree, &opts, &infragen::progress::Reporter::silent()).unwrap();
    out.join("10.10.10.10")
}

fn options(root: &Path) -> Options {
    Options {
        root: root.to_path_buf(),
        systemd: false,
        dry_run: false,
        allow_downgrade: false,
        health_timeout: Duration::from_secs(1),
        runtime: Runtime::Unit,
        allow_unsigned: true,
        host: Some("10.10.10.10".to_owned()),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The floor: copy every blob, then unpack each component's layers with GNU tar.
fn floor(bundle: &Path, dir: &Path) {
    let blobs = dir.join("blobs");
    fs::create_dir_all(&blobs).unwrap();
    for e in fs::read_dir(bundle.join("oci/blobs/sha256")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), blobs.join(e.file_name())).unwrap();
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let mut roots = std::collections::BTreeSet::new();
    for (c, m) in manifest["components"].as_object().unwrap() {
        let fresh = roots.insert(m["root"].as_str().unwrap().to_owned());
        let mut layers: Vec<&str> = Vec::new();
        if fresh {
            layers.extend(
                m["root_layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap()),
            );
        }
        layers.push(m["config_layer"].as_str().unwrap());
        let to = dir.join("roots").join(c);
        fs::create_dir_all(&to).unwrap();
        for l in layers {
            let blob = blobs.join(l.trim_start_matches("sha256:"));
            let o = Command::new("tar")
                .arg("-xzf")
                .arg(&blob)
                .arg("-C")
                .arg(&to)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

fn main() {
    let text = include_str!("../profiles/single-node.yml");
    let tmp = tempfile::tempdir().unwrap();
    let a = build_bundle(text, &tmp.path().join("a"));
    let b = build_bundle(
        &text.replace(
            "vmetrics_scrape_interval: 10s",
            "vmetrics_scrape_interval: 15s",
        ),
        &tmp.path().join("b"),
    );
    let files = walkdir::WalkDir::new(&a)
        .into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()));
    let bytes: u64 = files.map(|e| e.unwrap().metadata().unwrap().len()).sum();

    let (mut first, mut floors, mut again, mut change) = (vec![], vec![], vec![], vec![]);
    for i in 0..5 {
        let root = tmp.path().join(format!("root{i}"));
        first.push(timed(|| {
            activate::activate(&a, &options(&root), &infragen::progress::Reporter::silent())
                .unwrap();
        }));
        again.push(timed(|| {
            activate::activate(&a, &options(&root), &infragen::progress::Reporter::silent())
                .unwrap();
        }));
        change.push(timed(|| {
            activate::activate(&b, &options(&root), &infragen::progress::Reporter::silent())
                .unwrap();
        }));
        let f = tmp.path().join(format!("floor{i}"));
        floors.push(timed(|| floor(&a, &f)));
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&f).unwrap();
    }
    let (first, floor, again, change) =
        (median(first), median(floors), median(again), median(change));
    println!(
        "activate single-node into --root (bundle {:.1} MiB), median of 5:",
        f64::from(u32::try_from(bytes >> 10).unwrap_or(u32::MAX)) / 1024.0
    );
    println!("  floor (copy blobs + tar -xzf each root's layers): {floor:.2?}");
    println!(
        "  first activation: {first:.2?} ({:.2}x the floor)",
        first.as_secs_f64() / floor.as_secs_f64()
    );
    println!("  the same bundle again: {again:.2?}");
    println!("  after one parameter changed: {change:.2?}");
}
