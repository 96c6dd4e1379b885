//! A 50 MB profile loads: `infragen check` of a generated inventory of 100,012 hosts in Pigsty's
//! shape (25,000 PostgreSQL clusters of four, each with its users, databases, HBA rules,
//! services and VIP: `tests/common/big_profile.rs`) succeeds, and its peak memory stays under
//! a stated bound. How fast is a benchmark's claim, not a test's: `benches/big_profile.rs`.
//!
//! Integration tier: it needs no tool, but the debug build takes a minute or more for it, past
//! the fast tier's seconds.

mod common;

use std::io::Read as _;
use std::process::Stdio;
use std::time::Duration;

/// The bound on `check`'s peak resident memory for the 50 MB profile: 1.25 GiB, about 25 times
/// the text (docs/yaml.md says where it goes).
const PEAK_RSS_KIB: u64 = 1280 * 1024;

/// The child's high-water mark of resident memory (`VmHWM`), in KiB, while it still runs.
fn high_water(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_50_mb_profile_loads_within_its_memory_bound() {
    common::tier::binary(common::tier::Tier::Integration, "tests/big_profile.rs");
    let text = common::big_profile::text(25_000);
    assert!(
        (48_000_000..56_000_000).contains(&text.len()),
        "{} bytes",
        text.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yml");
    std::fs::write(&path, &text).unwrap();
    drop(text);

    let mut child = common::infragen()
        .args(["check", "--profile"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `VmHWM` only grows; the last reading before the child exits is its peak, short of what
    // it might take in the last few milliseconds (it frees, then exits).
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = high_water(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}\n{stdout}{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("big.yml: 3 infra hosts of 100012 in the inventory"),
        "{stdout}{stderr}"
    );
    assert!(peak > 0, "no VmHWM read from /proc");
    eprintln!("check of the 50 MB profile: peak RSS {} MiB", peak / 1024);
    assert!(
        peak < PEAK_RSS_KIB,
        "peak RSS {peak} KiB, bound {PEAK_RSS_KIB} KiB"
    );
}
