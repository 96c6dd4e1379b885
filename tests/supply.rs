//! Supply chain of infragen itself (docs/tests.md, integration tier): `cargo deny` checks every
//! crate in `Cargo.lock` against `deny.toml` — permissive licenses only, crates.io as the only
//! source, duplicate versions reported. It runs offline; its `advisories` check needs the
//! advisory database from GitHub, which CI cannot reach, and is not run here.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tier::{binary, Tier};

/// `cargo deny --offline --locked check licenses bans sources` in the crate, with `config`
/// (instead of `deny.toml`) when given;
/// fails the test, saying how to install it, when cargo-deny is missing.
fn deny(config: Option<&Path>) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["deny", "--offline", "--locked"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let o = cmd
        .args(["check", "licenses", "bans", "sources"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("no such command"),
        "cargo-deny is not installed\nhint: `cargo install --locked cargo-deny --version 0.20.2` \
         (`.ci/deps` does it), or leave the integration tier out with INFRAGEN_TIERS \
         (docs/tests.md)"
    );
    o
}

#[test]
fn every_dependency_is_from_crates_io_under_a_permissive_license() {
    binary(Tier::Integration, "tests/supply.rs");
    let o = deny(None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "cargo deny refused:\n{err}");
    // The summary comes on stdout, the diagnostics (duplicate versions: warnings) on stderr.
    let summary = String::from_utf8_lossy(&o.stdout);
    assert_eq!(summary.trim(), "bans ok, licenses ok, sources ok", "{err}");
}

#[test]
fn cargo_deny_refuses_a_license_outside_the_allowed_set() {
    // The canary: with Apache-2.0 struck from the allowed set, crates licensed under it alone
    // (and infragen's own dependencies have some) are refused by name.
    binary(Tier::Integration, "tests/supply.rs");
    let ours = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deny.toml"))
        .expect("deny.toml");
    let narrowed = ours.replace("    \"Apache-2.0\",\n", "");
    assert_ne!(
        narrowed, ours,
        "deny.toml allows Apache-2.0 on a line of its own"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deny.toml");
    std::fs::write(&config, narrowed).unwrap();
    let o = deny(Some(&config));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "not refused:\n{err}");
    assert!(err.contains("error[rejected]"), "{err}");
    assert!(
        err.contains("oci-spec v0.10.0"),
        "a crate under Apache-2.0 alone is named:\n{err}"
    );
    let summary = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        summary.trim(),
        "bans ok, licenses FAILED, sources ok",
        "{err}"
    );
}
