//! Golden trees: the rendered files of `three-node`, of our meta-style inventory
//! (`tests/fixtures/pigsty/meta.yml`, case `meta`) and, when `../shared` is present, of Pigsty's
//! own default inventory (`../shared/fixtures/pigsty/meta.yml`, case `pigsty-meta`) are committed
//! under `tests/cases/<case>/expected/` as plain files, with their modes in
//! `tests/cases/<case>/modes`. Any change to rendering shows up as a reviewable diff.
//!
//! Golden image digests: the same inventories built from packages made here (a flat APT
//! repository of `.deb` files, `tests/common/hermetic.rs`, resolved by `infragen lock`), so that
//! `tests/cases/<case>/digests.txt` changes only when infragen's output does, never because
//! Debian's mirror moved on. Builds of real packages are checked for reproducibility instead
//! (`tests/images.rs`).
//!
//! To accept a change: `INFRAGEN_BLESS=1 cargo test --test golden`, then review `git diff`.

mod common;

use common::root;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
    let mut cmd = common::infragen_sh(prelude, "render --profile \"$1\" --out \"$2\"");
    cmd.arg(profile).arg(&out);
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

/// The made repository and its lock, once for every test here.
fn hermetic() -> &'static common::hermetic::Repo {
    static REPO: std::sync::OnceLock<common::hermetic::Repo> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-hermetic-")
            .tempdir()
            .expect("temp dir")
            .keep();
        common::hermetic::repo(&dir)
    })
}

/// Builds `fixture` from the made packages with the committed throwaway PKI of
/// `tests/cases/meta/pki` (certificates are part of the config layers) into `out`, with its own
/// cache `cache`; returns `digests.txt`.
fn build_hermetic(
    fixture: &Path,
    out: &Path,
    cache: &Path,
    prelude: &str,
    env: &[(&str, &str)],
) -> String {
    build_hermetic_with(fixture, out, cache, prelude, env, "").0
}

/// [`build_hermetic`] with `extra` added to the command line (shell words); returns
/// `digests.txt` and the command's stdout.
fn build_hermetic_with(
    fixture: &Path,
    out: &Path,
    cache: &Path,
    prelude: &str,
    env: &[(&str, &str)],
    extra: &str,
) -> (String, String) {
    let repo = hermetic();
    // copied, so that nothing is written into the repository
    // (once per directory: builds beside each other share what the first one issued)
    let pki = out.parent().expect("parent").join("pki");
    if !pki.exists() {
        common::pki::copy(&common::pki::committed(), &pki);
    }
    let mut cmd = common::infragen_sh(
        prelude,
        &format!("build --profile \"$1\" --out \"$2\" --cache \"$3\" --lock \"$4\" --pki \"$5\" --repo \"$6\" {extra}"),
    );
    cmd.arg(fixture)
        .arg(out)
        .arg(cache)
        .arg(&repo.lock)
        .arg(&pki)
        .arg(&repo.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        // Only the made repository serves these packages: their sha256 are nobody else's, so
        // one missing there fails the build rather than coming from a mirror. The proxy that
        // goes nowhere stops a fetch early where the HTTP client honours it.
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let stdout = common::ok(
        &cmd.output().expect("run infragen"),
        &format!("build {}", fixture.display()),
    );
    let digests = fs::read_to_string(out.join("digests.txt")).expect("digests.txt");
    (digests, stdout)
}

/// Compares `digests` with the golden list of `case` (`INFRAGEN_BLESS=1` writes it).
fn golden_digests(case: &str, digests: &str) {
    golden_file(case, "digests.txt", digests);
}

/// Compares `digests` with the golden list `file` of `case` (`INFRAGEN_BLESS=1` writes it).
fn golden_file(case: &str, file: &str, digests: &str) {
    let golden = root().join("tests/cases").join(case).join(file);
    if std::env::var_os("INFRAGEN_BLESS").is_some() {
        fs::write(&golden, digests).expect("write digests");
    }
    let want = fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (INFRAGEN_BLESS=1 writes it)", golden.display()));
    assert_eq!(
        digests, want,
        "{case}: image digests changed; if intended, rerun `INFRAGEN_BLESS=1 cargo test --test golden` and review"
    );
}

/// The OCI blobs of a layout, sorted.
fn blobs(layout: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(layout.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Our meta-style inventory built twice from the made packages — different directories, empty
/// caches, umask, time zone and locale — gives the same blobs and the committed digests.
#[test]
fn meta_fixture_images_match_golden_digests() {
    let fixture = root().join("tests/fixtures/pigsty/meta.yml");
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let first = build_hermetic(
        &fixture,
        &a.path().join("x/out"),
        &a.path().join("cache"),
        "umask 022",
        &[("TZ", "UTC"), ("LC_ALL", "C")],
    );
    let second = build_hermetic(
        &fixture,
        &b.path().join("elsewhere/deeper/out"),
        &b.path().join("cache"),
        "umask 077",
        &[("TZ", "Pacific/Chatham"), ("LC_ALL", "C.UTF-8")],
    );
    assert_eq!(first, second);
    assert_eq!(
        first.lines().count(),
        8,
        "every Debian-sourced image:\n{first}"
    );
    assert_eq!(
        blobs(&a.path().join("x/out/10.10.10.10/oci")),
        blobs(&b.path().join("elsewhere/deeper/out/10.10.10.10/oci"))
    );
    golden_digests("meta", &first);
}

/// Pigsty's own `meta.yml`, an extra when `../shared` is beside the repository (CI has it).
#[test]
fn pigsty_meta_fixture_images_match_golden_digests() {
    let fixture = root().join("../shared/fixtures/pigsty/meta.yml");
    if !fixture.is_file() {
        common::tier::loud(&format!(
            "SKIPPED extra golden digests pigsty-meta: {} is absent (a clone alone); the `meta` case covers the same shape",
            fixture.display()
        ));
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let digests = build_hermetic(
        &fixture,
        &dir.path().join("out"),
        &dir.path().join("cache"),
        "umask 022",
        &[],
    );
    golden_digests("pigsty-meta", &digests);
}

/// The made packages are what the lock pins, and are what the images hold: the nginx image's
/// package layer has the made `/usr/sbin/nginx`, and vmalert's leaves out the binaries its
/// recipe excludes.
#[test]
fn the_made_packages_are_the_ones_built_into_the_images() {
    let repo = hermetic();
    let lock: serde_json::Value =
        serde_json::from_slice(&fs::read(&repo.lock).expect("lock")).expect("json");
    let pinned: Vec<(&str, &str)> = lock["images"]["nginx"]["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name"),
                p["version"].as_str().expect("version"),
            )
        })
        .collect();
    // the recipe's packages (with the common ones of images/common/defaults.yml) and the
    // library they depend on, each the made version
    let recipes = infragen::image::recipes().expect("recipes");
    let mut want: Vec<&str> = recipes[&infragen::plan::Component::Nginx]
        .packages
        .iter()
        .map(String::as_str)
        .chain(["libinfragen-test0"])
        .collect();
    want.sort_unstable();
    want.dedup();
    assert!(want.contains(&"nginx"), "{want:?}");
    let want: Vec<(&str, &str)> = want
        .into_iter()
        .map(|n| (n, common::hermetic::VERSION))
        .collect();
    assert_eq!(pinned, want);
    // 2026-01-01, the made Release's Date
    assert_eq!(lock["source_date_epoch"], 1_767_225_600);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("out");
    build_hermetic(
        &root().join("tests/fixtures/pigsty/meta.yml"),
        &out,
        &dir.path().join("cache"),
        "umask 022",
        &[],
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(out.join("10.10.10.10/manifest.json")).expect("manifest.json"),
    )
    .expect("json");
    let layer_paths = |component: &str| -> Vec<String> {
        let mut paths = Vec::new();
        for d in manifest["components"][component]["root_layers"]
            .as_array()
            .unwrap_or_else(|| panic!("{component}: root_layers in {manifest}"))
        {
            let hex = d.as_str().expect("digest").trim_start_matches("sha256:");
            let blob = fs::read(out.join("10.10.10.10/oci/blobs/sha256").join(hex)).expect("blob");
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
            for e in tar.entries().expect("tar") {
                let e = e.expect("entry");
                paths.push(e.path().expect("path").to_string_lossy().into_owned());
            }
        }
        paths
    };
    let has = |paths: &[String], p: &str| paths.iter().any(|x| x.trim_start_matches("./") == p);
    let nginx = layer_paths("nginx");
    assert!(has(&nginx, "usr/sbin/nginx"), "{nginx:?}");
    assert!(
        has(&nginx, "usr/lib/x86_64-linux-gnu/libinfragen-test.so.0"),
        "{nginx:?}"
    );
    let vmalert = layer_paths("vmalert");
    assert!(has(&vmalert, "usr/bin/vmalert"), "{vmalert:?}");
    assert!(!has(&vmalert, "usr/bin/victoria-metrics"), "{vmalert:?}");
}

/// The distinct layers of every image of every host under `out`, read from the manifests.
fn distinct_layers(out: &Path) -> std::collections::BTreeSet<String> {
    let mut layers = std::collections::BTreeSet::new();
    for host in fs::read_dir(out).expect("out") {
        let layout = host.expect("entry").path().join("oci");
        if !layout.is_dir() {
            continue;
        }
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
                .expect("json");
        for m in index["manifests"].as_array().expect("manifests") {
            let hex = m["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:");
            let manifest: serde_json::Value = serde_json::from_slice(
                &fs::read(layout.join("blobs/sha256").join(hex)).expect("manifest"),
            )
            .expect("json");
            for l in manifest["layers"].as_array().expect("layers") {
                layers.insert(l["digest"].as_str().expect("digest").to_owned());
            }
        }
    }
    layers
}

/// The `layers_built` of a `build --json` run's result line.
fn layers_built(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .and_then(|v| v["layers_built"].as_u64())
        .unwrap_or_else(|| panic!("no result line with layers_built in:\n{stdout}"))
}

/// `three-node` from the made packages with an empty cache: every distinct layer is built
/// exactly once, although the shared library's package is asked for by every image, each with
/// its own exclude list (the layer's key is its content's inputs, not the image asking); built
/// again with the same cache, none is built and the images are the same. (Its
/// digests are not golden: the committed PKI is `meta`'s, so the other nodes' certificates are
/// issued afresh; `meta`'s golden digests, unchanged by building each layer once, are.)
#[test]
fn three_node_builds_each_distinct_layer_once() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("out");
    let (digests, stdout) = build_hermetic_with(
        Path::new("three-node"),
        &out,
        &dir.path().join("cache"),
        "umask 022",
        &[],
        "--json",
    );
    assert_eq!(digests.lines().count(), 24, "{digests}");
    let distinct = distinct_layers(&out);
    assert!(distinct.len() > 20, "{distinct:?}");
    assert_eq!(
        layers_built(&stdout),
        distinct.len() as u64,
        "layer builds vs distinct layers of the images"
    );
    // warm: every layer found by the images' requests, none built, the same images
    let (again, stdout) = build_hermetic_with(
        Path::new("three-node"),
        &dir.path().join("out-again"),
        &dir.path().join("cache"),
        "umask 022",
        &[],
        "--json",
    );
    assert_eq!(layers_built(&stdout), 0);
    assert_eq!(again, digests);
}

/// One worker or several, the same images: `three-node` built with `--jobs 1` and `--jobs 4`
/// (each with an empty cache, the same PKI) gives the same digests and the same blobs, and
/// `meta` with `--jobs 1` its golden digests.
#[test]
fn the_number_of_workers_does_not_change_the_images() {
    let dir = tempfile::tempdir().expect("dir");
    let build = |jobs: usize| {
        let out = dir.path().join(format!("out-{jobs}"));
        let cache = dir.path().join(format!("cache-{jobs}"));
        let (digests, _) = build_hermetic_with(
            Path::new("three-node"),
            &out,
            &cache,
            "umask 022",
            &[],
            &format!("--jobs {jobs}"),
        );
        (digests, blobs(&out.join("10.10.10.11/oci")))
    };
    let (one, one_blobs) = build(1);
    let (four, four_blobs) = build(4);
    assert_eq!(one, four);
    assert_eq!(one_blobs, four_blobs);
    assert_eq!(one.lines().count(), 24, "{one}");
    let meta = tempfile::tempdir().expect("dir");
    let (digests, _) = build_hermetic_with(
        &root().join("tests/fixtures/pigsty/meta.yml"),
        &meta.path().join("out"),
        &meta.path().join("cache"),
        "umask 022",
        &[],
        "--jobs 1",
    );
    golden_digests("meta", &digests);
}

/// The layers' media types and the config's `diff_ids` of every image of `layout`, by
/// reference.
fn layer_types_and_diff_ids(layout: &Path) -> BTreeMap<String, (Vec<String>, serde_json::Value)> {
    let blob = |d: &str| -> serde_json::Value {
        let hex = d.trim_start_matches("sha256:");
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).expect("blob"))
            .expect("json")
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index")).expect("json");
    let mut out = BTreeMap::new();
    for m in index["manifests"].as_array().expect("manifests") {
        let name = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .expect("ref")
            .to_owned();
        let manifest = blob(m["digest"].as_str().expect("digest"));
        let types = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["mediaType"].as_str().expect("type").to_owned())
            .collect();
        let config = blob(manifest["config"]["digest"].as_str().expect("config"));
        out.insert(name, (types, config["rootfs"]["diff_ids"].clone()));
    }
    out
}

/// `--compression zstd`: our meta-style inventory built twice from the made packages
/// (different directories, caches, umask, time zone) gives the same digests, the committed
/// zstd ones (`tests/cases/meta/digests-zstd.txt`); every layer is `tar+zstd`, the images hold
/// the same tars as the gzip build (the same `diff_ids`), and `--json` says `zstd`.
#[test]
fn zstd_images_are_reproducible_and_match_golden_digests() {
    let fixture = root().join("tests/fixtures/pigsty/meta.yml");
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (first, stdout) = build_hermetic_with(
        &fixture,
        &a.path().join("x/out"),
        &a.path().join("cache"),
        "umask 022",
        &[("TZ", "UTC")],
        "--compression zstd --json",
    );
    let (second, _) = build_hermetic_with(
        &fixture,
        &b.path().join("elsewhere/out"),
        &b.path().join("cache"),
        "umask 077",
        &[("TZ", "Pacific/Chatham")],
        "--compression zstd",
    );
    assert_eq!(first, second);
    assert_eq!(first.lines().count(), 8, "{first}");
    let result = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .expect("result line");
    assert_eq!(result["compression"], "zstd", "{result}");
    golden_file("meta", "digests-zstd.txt", &first);
    let gzip_dir = tempfile::tempdir().expect("dir");
    let gzip = build_hermetic(
        &fixture,
        &gzip_dir.path().join("out"),
        &gzip_dir.path().join("cache"),
        "umask 022",
        &[],
    );
    assert_ne!(gzip, first);
    let zstd = layer_types_and_diff_ids(&a.path().join("x/out/10.10.10.10/oci"));
    let gz = layer_types_and_diff_ids(&gzip_dir.path().join("out/10.10.10.10/oci"));
    assert_eq!(zstd.len(), 8);
    for (name, (types, diff_ids)) in &zstd {
        assert!(
            types
                .iter()
                .all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"),
            "{name}: {types:?}"
        );
        assert_eq!(
            diff_ids, &gz[name].1,
            "{name}: the zstd image holds other tars"
        );
        assert!(gz[name]
            .0
            .iter()
            .all(|t| t == "application/vnd.oci.image.layer.v1.tar+gzip"));
    }
}

/// Builds `profile` from the made packages into `out` with its own `cache`, no `--pki`: the
/// PKI is the default one under `state` (`$XDG_STATE_HOME`).
fn build_default_pki(profile: &Path, out: &Path, cache: &Path, state: &Path) {
    let repo = hermetic();
    let mut cmd = common::infragen_sh(
        "umask 022",
        "build --profile \"$1\" --out \"$2\" --cache \"$3\" --lock \"$4\" --repo \"$5\"",
    );
    cmd.arg(profile)
        .arg(out)
        .arg(cache)
        .arg(&repo.lock)
        .arg(&repo.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("XDG_STATE_HOME", state)
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9");
    common::ok(
        &cmd.output().expect("run infragen"),
        &format!("build {}", profile.display()),
    );
}

/// Renaming or moving a profile file changes no byte of the output: the same text built from
/// `a/meta.yml` and from `b/deeper/site-inventory.yml` (same PKI, separate caches and output
/// directories) gives the same digests and the same files — every blob, unit, SBOM, secret,
/// manifest and generation id alike. Then without `--pki`: the default PKI is chosen by the
/// output directory, not by the profile's path, so renaming the profile in place and building
/// into the same output again changes nothing either.
#[test]
fn a_renamed_or_moved_profile_changes_no_byte_of_the_output() {
    let text = fs::read(root().join("tests/fixtures/pigsty/meta.yml")).expect("fixture");
    let t = tempfile::tempdir().expect("dir");
    let first = t.path().join("a/meta.yml");
    let second = t.path().join("b/deeper/site-inventory.yml");
    for p in [&first, &second] {
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, &text).expect("copy");
    }
    let (out_a, out_b) = (t.path().join("a/out"), t.path().join("b/out"));
    let a = build_hermetic(&first, &out_a, &t.path().join("a/cache"), "umask 022", &[]);
    let b = build_hermetic(&second, &out_b, &t.path().join("b/cache"), "umask 022", &[]);
    assert_eq!(a, b, "image digests differ between the two file names");
    let (tree_a, tree_b) = (read_tree(&out_a), read_tree(&out_b));
    assert!(tree_a.len() > 50, "a real output: {} files", tree_a.len());
    assert_eq!(
        tree_a.keys().collect::<Vec<_>>(),
        tree_b.keys().collect::<Vec<_>>()
    );
    for (p, v) in &tree_a {
        assert!(v == &tree_b[p], "{p} differs between the two file names");
    }
    // Nothing of either name in any file of the output.
    for (p, (_, bytes)) in &tree_a {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains("meta.yml") && !text.contains("site-inventory"),
            "{p} names the profile file"
        );
    }

    // The default PKI (no --pki) follows the output directory: rename the profile in place.
    let (out, cache, state) = (
        t.path().join("c/out"),
        t.path().join("c/cache"),
        t.path().join("c/state"),
    );
    fs::create_dir_all(t.path().join("c")).expect("mkdir");
    let before = t.path().join("c/pigsty.yml");
    fs::write(&before, &text).expect("copy");
    build_default_pki(&before, &out, &cache, &state);
    let built = read_tree(&out);
    let after = t.path().join("c/renamed.yml");
    fs::rename(&before, &after).expect("rename");
    build_default_pki(&after, &out, &cache, &state);
    assert!(
        read_tree(&out) == built,
        "renaming the profile changed the output"
    );
    let pki: Vec<_> = fs::read_dir(state.join("infragen/pki"))
        .expect("default PKI")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(pki.len(), 1, "one PKI state directory: {pki:?}");
}
