//! Benchmark (not a test): building `three-node`'s images.
//!
//! `cargo bench --bench build` measures, in one run on one machine:
//! - cold build: empty layer cache and store, warm package cache (`.deb` files present);
//! - the floor: gzip (level 6, as the build) and sha256 of the same unique layer bytes, once;
//! - a rebuild with nothing changed (median of 5);
//! - a rebuild after one parameter changes (`vmetrics_scrape_interval`), with the layers it built.
//!
//! Needs the lock at the repository root and Debian's mirror or a warm cache.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use infragen::build::{self, Options, Report};
use infragen::pkg::fetch::Cache;
use infragen::{plan, profile, render};

fn build_profile(text: &str, out: &Path, cache: &Path) -> (Duration, Report) {
    let inv = profile::parse("three-node.yml", text).unwrap();
    let plan = plan::resolve(&inv).unwrap();
    let start = Instant::now();
    let tree = render::plan(&plan).unwrap();
    let opts = Options {
        out: out.to_path_buf(),
        cache: cache.to_path_buf(),
        lock: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infragen.lock"),
        repos: Vec::new(),
        bases: None,
        base_registry: None,
        sign_key: None,
        sign_passphrase: None,
        layers: infragen::build::LayerOptions::default(),
    };
    let report =
        build::build(&plan, &tree, &opts, &infragen::progress::Reporter::silent()).unwrap();
    (start.elapsed(), report)
}

fn main() {
    let text = include_str!("../profiles/three-node.yml");
    let tmp = tempfile::tempdir().unwrap();
    // Warm the package cache once (downloads what is missing), then share it read-only.
    let warm = Cache::default_dir();
    build_profile(text, &tmp.path().join("warmup"), &warm);
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(warm.join("debs"), cache.join("debs")).unwrap();

    let out = tmp.path().join("out");
    let (cold, report) = build_profile(text, &out, &cache);

    // Floor: compress and hash every unique layer's bytes once, as the build must.
    let mut unique: Vec<String> = report
        .hosts
        .values()
        .flat_map(|m| m.values())
        .flat_map(|b| b.layers.iter().map(|l| l.digest.clone()))
        .collect();
    unique.sort();
    unique.dedup();
    let store = cache.join("store/blobs/sha256");
    let tars: Vec<Vec<u8>> = unique
        .iter()
        .map(|d| {
            let gz = std::fs::read(store.join(d.trim_start_matches("sha256:"))).unwrap();
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut tar)
                .unwrap();
            tar
        })
        .collect();
    let bytes: usize = tars.iter().map(Vec::len).sum();
    let start = Instant::now();
    for tar in &tars {
        use sha2::Digest;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(tar).unwrap();
        let gz = enc.finish().unwrap();
        std::hint::black_box((sha2::Sha256::digest(tar), sha2::Sha256::digest(&gz)));
    }
    let floor = start.elapsed();

    let mut nochange = Vec::new();
    let mut rebuilt = 0;
    for _ in 0..5 {
        let (t, r) = build_profile(text, &out, &cache);
        nochange.push(t);
        rebuilt = r.layers_built;
    }
    nochange.sort();

    let changed = text.replace(
        "vmetrics_scrape_interval: 10s",
        "vmetrics_scrape_interval: 15s",
    );
    assert_ne!(
        changed, text,
        "three-node sets vmetrics_scrape_interval: 10s"
    );
    let (one, r1) = build_profile(&changed, &out, &cache);

    println!(
        "three-node: {} images on {} hosts, {} unique layers, {:.1} MiB uncompressed",
        report
            .hosts
            .values()
            .map(std::collections::BTreeMap::len)
            .sum::<usize>(),
        report.hosts.len(),
        unique.len(),
        mib(bytes)
    );
    println!(
        "cold build (warm package cache)   {cold:>10.2?}   {:.2}x the floor",
        cold.as_secs_f64() / floor.as_secs_f64()
    );
    println!("floor: gzip -6 + sha256, once     {floor:>10.2?}");
    println!(
        "rebuild, nothing changed          {:>10.2?}   (median of 5; {rebuilt} layers built)",
        nochange[2]
    );
    println!("rebuild, one parameter changed    {one:>10.2?}   ({} layers built: the affected config layers)", r1.layers_built);
}

#[allow(clippy::cast_precision_loss)]
fn mib(n: usize) -> f64 {
    n as f64 / 1_048_576.0
}
