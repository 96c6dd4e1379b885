//! Golden trees: the rendered files of `three-node`, of our meta-style inventory
//! (`tests/fixtures/pigsty/meta.yml`, case `meta`) and, when `../shared` is present, of Pigsty's
//! own default inventory (`../shared/fixtures/pigsty/meta.yml`, case `pigsty-meta`) are committed
//! under `tests/cases/<case>/expected/` as plain files, with their modes in
//! `tests/cases/<case>/modes`. Any change to rendering shows up as a reviewable diff.
//!
//! To accept a change: `INFRAGEN_BLESS=1 cargo test --test golden`, then review `git diff`.

mod common;

use common::root;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Every file below `dir`: relative path → (mode, bytes).
fn read_tree(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("below dir")
                .to_string_lossy()
                .into_owned();
            let mode = e.metadata().expect("metadata").permissions().mode() & 0o7777;
            (rel, (mode, fs::read(e.path()).expect("read")))
        })
        .collect()
}

/// Renders `profile` into a fresh directory with the given shell prelude (umask, env).
fn render(
    profile: &str,
    prelude: &str,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, BTreeMap<String, (u32, Vec<u8>)>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    let script = format!("{prelude}; exec \"$0\" render --profile \"$1\" --out \"$2\"");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_infragen"))
        .arg(profile)
        .arg(&out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().expect("run infragen");
    assert!(status.success(), "render {profile} failed");
    let tree = read_tree(&out);
    (tmp, tree)
}

fn golden(case: &str, profile: &str) {
    let (_tmp, actual) = render(profile, "umask 022", &[]);
    let dir = root().join("tests/cases").join(case);
    let expected_dir = dir.join("expected");
    let modes_file = dir.join("modes");
    let modes: String = actual
        .iter()
        .map(|(p, (m, _))| format!("{m:04o} {p}\n"))
        .collect();
    if std::env::var_os("INFRAGEN_BLESS").is_some() {
        let _ = fs::remove_dir_all(&expected_dir);
        for (p, (_, data)) in &actual {
            let f = expected_dir.join(p);
            fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            fs::write(f, data).expect("write");
        }
        fs::write(&modes_file, &modes).expect("write modes");
        return;
    }
    let expected = read_tree(&expected_dir);
    let mut diffs = Vec::new();
    for (p, (_, data)) in &actual {
        match expected.get(p) {
            None => diffs.push(format!("new file: {p}")),
            Some((_, want)) if want != data => diffs.push(format!("changed: {p}")),
            Some(_) => {}
        }
    }
    diffs.extend(
        expected
            .keys()
            .filter(|p| !actual.contains_key(*p))
            .map(|p| format!("gone: {p}")),
    );
    let want_modes = fs::read_to_string(&modes_file).unwrap_or_default();
    if want_modes != modes {
        diffs.push("modes differ".to_owned());
    }
    assert!(
        diffs.is_empty(),
        "{case}: rendering differs from tests/cases/{case}/expected:\n  {}\nrun `INFRAGEN_BLESS=1 cargo test --test golden` and review the diff",
        diffs.join("\n  ")
    );
}

#[test]
fn three_node_matches_golden_tree() {
    golden("three-node", "three-node");
}

#[test]
fn meta_fixture_matches_golden_tree() {
    let fixture = root().join("tests/fixtures/pigsty/meta.yml");
    golden("meta", fixture.to_str().expect("utf-8"));
}

/// Pigsty's own `meta.yml`, an extra when `../shared` is beside the repository (CI has it).
#[test]
fn pigsty_meta_fixture_matches_golden_tree() {
    let fixture = root().join("../shared/fixtures/pigsty/meta.yml");
    if !fixture.is_file() {
        common::tier::loud(&format!(
            "SKIPPED extra golden case pigsty-meta: {} is absent (a clone alone); the `meta` case covers the same shape",
            fixture.display()
        ));
        return;
    }
    golden("pigsty-meta", fixture.to_str().expect("utf-8"));
}

#[test]
fn same_inputs_same_bytes_whatever_the_environment() {
    // The same profile file in two different directories, rendered under different umask,
    // time zone, locale and clock settings.
    let fixture = fs::read(root().join("tests/fixtures/pigsty/trio.yml")).expect("fixture");
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let paths: Vec<String> = dirs
        .iter()
        .map(|d| {
            let p = d.path().join("nested/pigsty.yml");
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, &fixture).expect("copy");
            p.to_string_lossy().into_owned()
        })
        .collect();
    let (_a, first) = render(&paths[0], "umask 022", &[("TZ", "UTC"), ("LC_ALL", "C")]);
    let second_env = [
        ("TZ", "Asia/Kathmandu"),
        ("LC_ALL", "C.UTF-8"),
        ("SOURCE_DATE_EPOCH", "1"),
    ];
    let (_b, second) = render(&paths[1], "umask 077", &second_env);
    assert!(!first.is_empty());
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (p, v) in &first {
        assert_eq!(v, &second[p], "{p} differs between environments");
    }
}

/// The catalog's "20 processes → one output", for whole builds: twenty `infragen build` runs at
/// once, sharing one cache and one fresh PKI directory, write byte-identical bundles (manifests
/// and their canonical JSON, images, SBOMs, certificates: the PKI is made once, not twenty times).
#[test]
fn twenty_concurrent_builds_write_the_same_bytes() {
    if !common::tier::part(
        common::tier::Tier::Integration,
        "tests/golden.rs::twenty_concurrent_builds_write_the_same_bytes: twenty builds of images from Debian packages fetched from the mirror",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let children: Vec<_> = (0..20)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_infragen"))
                .args(["build", "--profile", "single-node", "--out"])
                .arg(dir.path().join(format!("out{i}")))
                .arg("--lock")
                .arg(root().join("infragen.lock"))
                .arg("--pki")
                .arg(&pki)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("infragen build")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "build {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let first = read_tree(&dir.path().join("out0"));
    assert!(first.keys().any(|k| k.ends_with("manifest.json")));
    for i in 1..20 {
        let other = read_tree(&dir.path().join(format!("out{i}")));
        let differ: Vec<&String> = first
            .keys()
            .chain(other.keys())
            .filter(|k| first.get(*k) != other.get(*k))
            .collect();
        assert!(
            differ.is_empty(),
            "build {i} differs from build 0: {differ:?}"
        );
    }
}
