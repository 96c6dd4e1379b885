//! Test tiers (docs/tests.md): which tests run here, and a loud line for every one that does not.
//!
//! - **fast**: no root, no network, no tool beyond the Rust toolchain and a POSIX shell; seconds.
//! - **integration**: the real checkers and tools (nginx, VictoriaMetrics, skopeo, umoci, runc,
//!   docker-registry, age, pyspdxtools, systemd-analyze, …), Debian's mirror for packages, root
//!   for some.
//! - **booted**: root, `systemd-nspawn` and `debootstrap`: Debian booted in a container.
//!
//! `INFRAGEN_TIERS` (comma-separated, or `all`) chooses them; unset, it is every tier as root
//! and `fast` otherwise. A test of a chosen tier whose tool is missing fails, naming the
//! package; a test of a tier not chosen prints `SKIPPED <tier>: …` and is not run. Skip lines
//! are written to the process's standard error directly, past the test harness's capture, so
//! that `cargo test` shows them.
//!
//! A test binary whose tests all belong to one tier calls [`binary`] first in each test: when
//! its tier is not chosen, the binary prints one line and exits before any test reports `ok`, so
//! a skipped tier is never counted as passed. A test that needs a tool lives in a binary of its
//! tier (`tests/<name>_integration.rs` beside a fast `tests/<name>.rs`), never in a fast binary
//! returning early: libtest would report it `ok`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

/// A test tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// No root, no network, no tools.
    Fast,
    /// The real checkers and tools, Debian's mirror.
    Integration,
    /// Root, systemd-nspawn, debootstrap.
    Booted,
}

impl Tier {
    /// Every tier, in order.
    pub const ALL: [Tier; 3] = [Tier::Fast, Tier::Integration, Tier::Booted];

    /// The tier's name, as `INFRAGEN_TIERS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Fast => "fast",
            Tier::Integration => "integration",
            Tier::Booted => "booted",
        }
    }

    /// What the tier needs, for messages.
    pub fn needs(self) -> &'static str {
        match self {
            Tier::Fast => "nothing but the Rust toolchain",
            Tier::Integration => {
                "the checkers and tools (`./test` installs them on Debian 12) and Debian's mirror"
            }
            Tier::Booted => "root, systemd-nspawn and debootstrap",
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether `tier` runs; otherwise why not.
pub fn chosen(tier: Tier) -> Result<(), String> {
    match std::env::var("INFRAGEN_TIERS") {
        Ok(list) if !list.trim().is_empty() => {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            for n in &names {
                assert!(
                    *n == "all" || Tier::ALL.iter().any(|t| t.name() == *n),
                    "INFRAGEN_TIERS={list}: unknown tier `{n}` (fast, integration, booted, all)"
                );
            }
            if names.contains(&"all") || names.contains(&tier.name()) {
                Ok(())
            } else {
                Err(format!("not in INFRAGEN_TIERS={list}"))
            }
        }
        _ if tier == Tier::Fast || is_root() => Ok(()),
        _ => Err(format!(
            "not root, and INFRAGEN_TIERS is unset; it needs {}: run `./test` as root, or \
             INFRAGEN_TIERS=fast,{} cargo test",
            tier.needs(),
            tier.name()
        )),
    }
}

/// Writes `line` to standard error past the test harness's output capture.
pub fn loud(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "======== {line} ========");
}

/// The gate of a test binary whose every test is of `tier`: returns when the tier runs;
/// otherwise prints one `SKIPPED` line naming the binary and exits the binary with success
/// before any of its tests is reported (call it first in every test).
pub fn binary(tier: Tier, file: &str) {
    static ONCE: Mutex<()> = Mutex::new(());
    if let Err(why) = chosen(tier) {
        let _only = ONCE.lock();
        loud(&format!(
            "SKIPPED {}: every test of {file} not run: {why}",
            tier.name()
        ));
        std::process::exit(0);
    }
}

/// Whether the registry tests are skipped on purpose (`INFRAGEN_SKIP_REGISTRY=1`, inside the
/// integration tier); prints a loud line when they are.
pub fn registry_skipped(test: &str) -> bool {
    if std::env::var("INFRAGEN_SKIP_REGISTRY").as_deref() == Ok("1") {
        loud(&format!(
            "SKIPPED integration (registry) {test}: INFRAGEN_SKIP_REGISTRY=1"
        ));
        return true;
    }
    false
}

/// Whether `bin` is on `PATH` (or is an existing absolute path).
pub fn on_path(bin: &str) -> bool {
    if bin.starts_with('/') {
        return Path::new(bin).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// The tools `tools` (binary, Debian package) a test of a chosen tier needs: a missing one fails
/// the test naming its package.
pub fn require(test: &str, tools: &[(&str, &str)]) {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(bin, _)| !on_path(bin))
        .map(|(bin, pkg)| format!("`{bin}` (Debian package `{pkg}`)"))
        .collect();
    assert!(
        missing.is_empty(),
        "{test} needs {}\nhint: `./test` installs every tool on Debian 12 (as root); or leave its \
         tier out with INFRAGEN_TIERS (docs/tests.md)",
        missing.join(", ")
    );
}

/// The tier gate for root: a test of a chosen tier that needs root fails when not root.
pub fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} needs root; run it as root, or leave its tier out with INFRAGEN_TIERS (docs/tests.md)"
    );
}
