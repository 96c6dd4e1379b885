//! Benchmark (not a test): `infragen check` of a generated 50 MB profile against a floor.
//!
//! `cargo bench --bench big_profile` writes the inventory of `tests/common/big_profile.rs`
//! (25,000 PostgreSQL clusters of four hosts: 100,012 hosts, about 50 MB), then runs, ROUNDS
//! times interleaved (A B A B …, so a busy machine slows both alike):
//!
//! - A: `infragen check --profile big.yml` (the release binary: parse, inventory structure,
//!   plan of every host, every check), its wall time and peak RSS (`/usr/bin/time -f %M`);
//! - B, the floor: reading the same file and walking every event of `saphyr-parser` (the
//!   parser infragen uses), building nothing, in this process.
//!
//! It prints the median and range of A/B and both medians. `ROUNDS` (environment) sets the
//! number of rounds (default 5); `-- --write FILE` only writes the profile.

#[path = "../tests/common/big_profile.rs"]
mod big_profile;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_infragen");

/// The floor: read the file, and walk its parser events.
fn floor(path: &Path) -> (Duration, usize) {
    let start = Instant::now();
    let text = std::fs::read_to_string(path).expect("read the profile");
    let mut events = 0;
    for e in saphyr_parser::Parser::new_from_str(&text) {
        e.expect("the profile parses");
        events += 1;
    }
    (start.elapsed(), events)
}

/// `infragen check`: wall time and peak RSS in KiB.
fn check(path: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss %M"])
        .arg(BIN)
        .args(["check", "-q", "--profile"])
        .arg(path)
        .output()
        .expect("run /usr/bin/time (Debian's `time`)");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check failed: {stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss line in: {stderr}"));
    (took, rss)
}

fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = big_profile::text(25_000);
    if let Some(i) = args.iter().position(|a| a == "--write") {
        std::fs::write(&args[i + 1], &text).expect("write the profile");
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let path = tmp.path().join("big.yml");
    std::fs::write(&path, &text).expect("write the profile");
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let (mut a, mut b, mut ratio, mut rss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut events = 0;
    for _ in 0..rounds {
        let (ta, kib) = check(&path);
        let (tb, n) = floor(&path);
        events = n;
        a.push(ta.as_secs_f64());
        b.push(tb.as_secs_f64());
        ratio.push(ta.as_secs_f64() / tb.as_secs_f64());
        rss.push(kib);
    }
    let range = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        format!("{lo:.2}–{hi:.2}")
    };
    println!(
        "profile: {} bytes, 100,012 hosts, {events} parser events; {rounds} rounds, A B interleaved",
        text.len()
    );
    println!(
        "A: infragen check   median {:.2} s (range {} s), peak RSS median {} MiB (max {} MiB)",
        median(&a),
        range(&a),
        median(&rss) / 1024,
        rss.iter().max().copied().unwrap_or(0) / 1024
    );
    println!(
        "B: floor (read + saphyr-parser events)   median {:.2} s (range {} s)",
        median(&b),
        range(&b)
    );
    println!("A/B median {:.2} (range {})", median(&ratio), range(&ratio));
}
