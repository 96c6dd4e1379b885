//! Hostile base images, in OCI layouts the tests write byte for byte (fast tier: no tool, no
//! network, no root): a layer with an escaping path, an absolute path, a hard link out of the
//! tree or to nothing, a symlink to `/etc/shadow` or climbing out, a device or a fifo entry; a
//! layer blob that is a fifo, a symlink to `/dev/zero`, or larger than its descriptor says.
//! Each is refused by `infragen lock --only-bases --bases` (the lock file is left as it was) and
//! by `infragen build --bases` with the image pinned (exit 1, no output directory, no layer in
//! the store), with a message naming the base image, the layer digest and the entry. Every run
//! is measured: its peak resident memory (`VmHWM` of `/proc/<pid>/status`, polled every 2 ms
//! until it exits) must stay under [`MEMORY`], and it must end within [`TIME`] (a fifo blob used
//! to hang the build, a `/dev/zero` blob to take 11 GB in 25 s). A benign layout with the kinds
//! of links real images hold (absolute ones to their own files, relative ones, hard links, a
//! log file linked to `/dev/stdout`) is pinned and built, so the refusals are the rules', not
//! the setup's.
//!
//! The same hostile layer served by a registry (a scripted one on 127.0.51.1) is refused by
//! `build --base-registry` after it is pulled, by the same check.
//!
//! The profile enables Grafana only (its root comes from the base image): no package is needed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::rawtar::{self, Raw};
use common::root;
use infragen::digest::Digest;

const GRAFANA: &str = "grafana/grafana-oss:12.2.1";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The most resident memory one run may reach.
const MEMORY: u64 = 200 << 20;
/// The longest one run may take.
const TIME: Duration = Duration::from_secs(120);

fn gate() {
    common::tier::binary(common::tier::Tier::Fast, "tests/hostile_bases.rs");
}

/// A base image in an OCI layout: its manifest digest and its one layer's digest.
struct Layout {
    dir: PathBuf,
    manifest: String,
    layer: String,
}

fn put(dir: &Path, bytes: &[u8]) -> String {
    let d = Digest::of(bytes);
    fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    d.to_string()
}

/// A layout holding `GRAFANA` with one layer, the gzip of the tar of `entries`.
fn layout(dir: &Path, entries: &[Raw]) -> Layout {
    let tar = rawtar::tar(entries);
    layout_of(dir, &tar, &common::gz(&tar), LAYER)
}

/// A layout holding `GRAFANA` with one layer: `blob`, of media type `media_type`, whose
/// uncompressed tar is `tar`.
fn layout_of(dir: &Path, tar: &[u8], blob: &[u8], media_type: &str) -> Layout {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer = put(dir, blob);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [Digest::of(tar).to_string()] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put(dir, &config),
            "size": config.len(),
        },
        "layers": [{ "mediaType": media_type, "digest": layer, "size": blob.len() }],
    }))
    .unwrap();
    let digest = put(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": GRAFANA },
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    Layout {
        dir: dir.to_path_buf(),
        manifest: digest,
        layer,
    }
}

/// What a real base image holds, in kind: directories, files, a relative and absolute symlinks
/// to its own files (through a symlinked directory too), a hard link, a link to `/dev/stdout`.
fn benign() -> Vec<Raw> {
    vec![
        Raw::dir("usr/"),
        Raw::dir("usr/bin/"),
        Raw::file("usr/bin/busybox", b"#!/bin/false\n").mode(0o755),
        Raw::symlink("bin", "usr/bin"),
        Raw::symlink("usr/bin/sh", "/bin/busybox"),
        Raw::symlink("usr/bin/ash", "busybox"),
        Raw::hardlink("usr/bin/bb", "usr/bin/busybox"),
        Raw::dir("usr/share/"),
        Raw::dir("usr/share/grafana/"),
        Raw::dir("usr/share/grafana/bin/"),
        Raw::file("usr/share/grafana/bin/grafana", b"#!/bin/false\n").mode(0o755),
        Raw::dir("var/"),
        Raw::dir("var/log/"),
        Raw::symlink("var/log/grafana.log", "/dev/stdout"),
        Raw::dir("etc/"),
        Raw::symlink("etc/localtime", "/usr/share/grafana"),
    ]
}

/// One run of infragen, measured: its output, and its peak resident memory in bytes.
struct Run {
    code: Option<i32>,
    stderr: String,
    peak: u64,
}

/// `VmHWM` of a running process, in bytes (`None` once it has exited).
fn high_water(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// Runs infragen with `args`, polling its peak memory: killed (and the test failed) past
/// [`MEMORY`] or [`TIME`].
fn run(dir: &Path, args: &[&str]) -> Run {
    let err_file = dir.join(format!("stderr-{}", args[0]));
    let mut child = common::infragen()
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("INFRAGEN_BASE_REGISTRY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err_file).unwrap())
        .spawn()
        .expect("run infragen");
    let start = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = high_water(child.id()) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if peak > MEMORY || start.elapsed() > TIME {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "infragen {args:?} killed after {:?} at {} MiB of memory (bounds: {} MiB, {TIME:?}); stderr:\n{}",
                start.elapsed(),
                peak >> 20,
                MEMORY >> 20,
                fs::read_to_string(&err_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Run {
        code: status.code(),
        stderr: fs::read_to_string(&err_file).unwrap(),
        peak,
    }
}

/// single-node with Grafana as its only component.
fn profile(dir: &Path) -> PathBuf {
    common::single_node_with_only(dir, "grafana-only.yml", "grafana", &[])
}

/// The committed lock, with Grafana's base pinned to `digest` when given.
fn lock_file(dir: &Path, name: &str, digest: Option<&str>) -> PathBuf {
    let mut lock: serde_json::Value =
        serde_json::from_slice(&fs::read(root().join("infragen.lock")).unwrap()).unwrap();
    if let Some(d) = digest {
        lock["images"]["grafana"]["base"]["digest"] = d.into();
    }
    let path = dir.join(name);
    fs::write(&path, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    path
}

/// `lock --only-bases --bases`: the run and the lock file after it.
fn lock(dir: &Path, l: &Layout) -> (Run, PathBuf) {
    let path = lock_file(dir, "infragen.lock", None);
    let args = [
        "lock",
        "--only-bases",
        "--lock",
        path.to_str().unwrap(),
        "--bases",
        l.dir.to_str().unwrap(),
    ];
    (run(dir, &args), path)
}

/// `build --bases` of the Grafana-only profile with the image pinned.
fn build(dir: &Path, l: &Layout) -> Run {
    let profile = profile(dir);
    let lock = lock_file(dir, "pinned.lock", Some(&l.manifest));
    let (out, cache, pki) = (dir.join("out"), dir.join("cache"), dir.join("pki"));
    let args = [
        "build",
        "--profile",
        profile.to_str().unwrap(),
        "--lock",
        lock.to_str().unwrap(),
        "--bases",
        l.dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--pki",
        pki.to_str().unwrap(),
    ];
    run(dir, &args)
}

/// Checks that `lock` and `build` both refuse the layout, naming the image, its layer and
/// `what` (the entry or the blob), within the bounds, writing nothing.
fn refused(dir: &Path, l: &Layout, what: &str) {
    let committed = fs::read(root().join("infragen.lock")).unwrap();
    let (r, path) = lock(dir, l);
    let before = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(&committed).unwrap(),
    )
    .unwrap();
    let naming = format!(
        "base image `{GRAFANA}` ({}) refused: image layout `{}`: layer {}: ",
        l.manifest,
        l.dir.display(),
        l.layer
    );
    for (step, r) in [("lock", &r), ("build", &build(dir, l))] {
        assert_eq!(r.code, Some(1), "{step}: {}", r.stderr);
        assert!(
            r.stderr.contains(&naming) && r.stderr.contains(what),
            "{step}: wanted `{naming}…{what}`, got:\n{}",
            r.stderr
        );
        assert!(r.peak < MEMORY, "{step}: peak memory {} MiB", r.peak >> 20);
        eprintln!(
            "{step}: refused with a peak of {} MiB:\n{}",
            r.peak >> 20,
            r.stderr.trim_end()
        );
    }
    assert_eq!(fs::read(&path).unwrap(), before, "lock file left as it was");
    assert!(!dir.join("out").exists(), "no output written");
    let blobs = dir.join("cache/store/blobs/sha256");
    let stored: Vec<String> = fs::read_dir(&blobs)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !stored
            .iter()
            .any(|f| f.contains(&l.layer["sha256:".len()..]) || f.starts_with('.')),
        "nothing of the layer in the store: {stored:?}"
    );
}

/// A layout whose layer holds `bad` after the benign entries.
fn hostile_entry(bad: Raw, what: &str) {
    gate();
    let t = tempfile::tempdir().unwrap();
    let mut entries = benign();
    entries.push(bad);
    let l = layout(&t.path().join("layout"), &entries);
    refused(t.path(), &l, what);
}

#[test]
fn a_benign_base_is_pinned_and_built() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let l = layout(&t.path().join("layout"), &benign());
    let (r, path) = lock(t.path(), &l);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let pinned: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    assert_eq!(
        pinned["images"]["grafana"]["base"]["digest"],
        l.manifest.as_str()
    );
    let r = build(t.path(), &l);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        t.path().join("out/10.10.10.10").is_dir(),
        "bundle written: {}",
        r.stderr
    );
    assert!(
        t.path()
            .join("cache/store/blobs/sha256")
            .join(&l.layer["sha256:".len()..])
            .is_file(),
        "the layer is in the store"
    );
}

#[test]
fn an_escaping_path_is_refused() {
    hostile_entry(
        Raw::file("../escaped", b"x"),
        "entry `../escaped`: the path leaves the root",
    );
}

#[test]
fn an_absolute_path_is_refused() {
    hostile_entry(
        Raw::file("/etc/cron.d/evil", b"x"),
        "entry `/etc/cron.d/evil`: the path leaves the root",
    );
}

#[test]
fn a_hard_link_out_of_the_tree_is_refused() {
    hostile_entry(
        Raw::hardlink("usr/bin/passwd", "../../etc/passwd"),
        "entry `usr/bin/passwd`: hard link target `../../etc/passwd`: the path leaves the root",
    );
}

#[test]
fn a_hard_link_to_nothing_is_refused() {
    hostile_entry(
        Raw::hardlink("usr/bin/x", "etc/shadow"),
        "entry `usr/bin/x`: hard link to `etc/shadow`, which is not an earlier file of the image",
    );
}

#[test]
fn a_symlink_to_etc_shadow_is_refused() {
    hostile_entry(
        Raw::symlink("usr/share/grafana/data", "/etc/shadow"),
        "entry `usr/share/grafana/data`: symlink target `/etc/shadow` leads to `/etc/shadow`, which is not in the image",
    );
}

#[test]
fn a_symlink_climbing_out_is_refused() {
    hostile_entry(
        Raw::symlink("usr/share/grafana/data", "../../../../etc/shadow"),
        "entry `usr/share/grafana/data`: symlink target `../../../../etc/shadow` climbs out of the root",
    );
}

#[test]
fn a_device_entry_is_refused() {
    hostile_entry(
        Raw::new("dev-null", b'3'),
        "entry `dev-null`: type Char is not allowed",
    );
}

#[test]
fn a_fifo_entry_is_refused() {
    hostile_entry(
        Raw::new("pipe", b'6'),
        "entry `pipe`: type Fifo is not allowed",
    );
}

/// A benign layout whose layer blob is replaced by `make` (given the blob's path).
fn hostile_blob(make: impl FnOnce(&Path), what: &str) {
    gate();
    let t = tempfile::tempdir().unwrap();
    let l = layout(&t.path().join("layout"), &benign());
    let blob = l.dir.join("blobs/sha256").join(&l.layer["sha256:".len()..]);
    fs::remove_file(&blob).unwrap();
    make(&blob);
    refused(t.path(), &l, what);
}

#[test]
fn a_fifo_blob_is_refused_without_waiting() {
    hostile_blob(
        |blob| {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                blob,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
        },
        "is a fifo, device or socket; a blob must be a regular file",
    );
}

#[test]
fn a_blob_linked_to_dev_zero_is_refused_in_bounded_memory() {
    hostile_blob(
        |blob| std::os::unix::fs::symlink("/dev/zero", blob).unwrap(),
        "is a symlink, which infragen does not follow; a blob must be a regular file",
    );
}

#[test]
fn a_blob_larger_than_its_descriptor_is_refused_in_bounded_memory() {
    let mut size = 0;
    hostile_blob(
        |blob| {
            // 1 GiB of zeros, sparse: nothing on disk, but reading it whole takes 1 GiB.
            let f = fs::File::create(blob).unwrap();
            f.set_len(1 << 30).unwrap();
            size = 1u64 << 30;
        },
        "the blob is 1073741824 bytes, its descriptor says",
    );
    assert_eq!(size, 1 << 30);
}

/// Serves the blobs of `dir` (an OCI layout) as a registry on 127.0.51.1 does: manifests and
/// blobs by digest under any repository, `/v2/` answered; returns `HOST:PORT`.
fn serve(dir: &Path) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.51.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let blobs = dir.join("blobs/sha256");
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let blobs = blobs.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut reader = BufReader::new(s.try_clone()?);
                let mut out = s;
                loop {
                    let mut first = String::new();
                    if reader.read_line(&mut first)? == 0 {
                        return Ok(());
                    }
                    let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let digest = path.rsplit('/').next().unwrap_or("");
                    let file = blobs.join(digest.trim_start_matches("sha256:"));
                    let (status, body, kind) = if path == "/v2/" {
                        (200, b"{}".to_vec(), "application/json")
                    } else if let Ok(body) = fs::read(&file) {
                        let kind = if path.contains("/manifests/") {
                            "application/vnd.oci.image.manifest.v1+json"
                        } else {
                            "application/octet-stream"
                        };
                        (200, body, kind)
                    } else {
                        (404, b"{}".to_vec(), "application/json")
                    };
                    write!(
                        out,
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: {kind}\r\nDocker-Content-Digest: {digest}\r\n\r\n",
                        body.len()
                    )?;
                    out.write_all(&body)?;
                }
            });
        }
    });
    addr
}

#[test]
fn a_hostile_layer_from_a_registry_is_refused_after_the_pull() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let mut entries = benign();
    entries.push(Raw::symlink("usr/share/grafana/data", "/etc/shadow"));
    let l = layout(&t.path().join("layout"), &entries);
    let registry = serve(&l.dir);
    let profile = profile(t.path());
    let lock = lock_file(t.path(), "pinned.lock", Some(&l.manifest));
    let (out, cache, pki) = (
        t.path().join("out"),
        t.path().join("cache"),
        t.path().join("pki"),
    );
    let r = run(
        t.path(),
        &[
            "build",
            "--profile",
            profile.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
            "--base-registry",
            &registry,
            "--plain-http",
            "--out",
            out.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--pki",
            pki.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let naming = format!(
        "base image `{GRAFANA}` ({}) refused: image layout `{}`: layer {}: entry `usr/share/grafana/data`: symlink target `/etc/shadow` leads to `/etc/shadow`, which is not in the image",
        l.manifest,
        cache.join("store").display(),
        l.layer
    );
    assert!(
        r.stderr.contains(&naming),
        "wanted `{naming}`, got:\n{}",
        r.stderr
    );
    assert!(r.peak < MEMORY, "peak memory {} MiB", r.peak >> 20);
    assert!(!out.exists(), "no output written");
}

#[test]
fn the_memory_bound_can_fail() {
    // The canary of the measurement: a process that holds more than the bound is seen to (a
    // shell holding a 300 MB string; `printf` is the shell's own).
    gate();
    let t = tempfile::tempdir().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("x=$(printf '%0300000000d' 0); sleep 1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(high_water(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(t);
    assert!(peak > MEMORY, "peak {} MiB", peak >> 20);
}

/// OCI 1.1's zstd layer media type.
const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A base image whose layer is `tar+zstd` (OCI 1.1) is pinned and built upon: the built image
/// lists the layer with its zstd media type, and its blob is in the store as pinned.
#[test]
fn a_benign_zstd_base_is_pinned_and_built() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let tar = rawtar::tar(&benign());
    let l = layout_of(
        &t.path().join("layout"),
        &tar,
        &common::zst(&tar),
        ZSTD_LAYER,
    );
    let (r, _) = lock(t.path(), &l);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = build(t.path(), &l);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let oci = t.path().join("out/10.10.10.10/oci");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
    let hex = index["manifests"][0]["digest"].as_str().unwrap()["sha256:".len()..].to_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(oci.join("blobs/sha256").join(hex)).unwrap()).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], l.layer.as_str());
    assert_eq!(manifest["layers"][0]["mediaType"], ZSTD_LAYER);
    // the image's own layers are the build's compression, gzip by default
    assert_eq!(manifest["layers"][1]["mediaType"], LAYER);
}

/// A zstd layer is held to the same entry rules as a gzip one.
#[test]
fn a_hostile_entry_in_a_zstd_layer_is_refused() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let mut entries = benign();
    entries.push(Raw::file("../escaped", b"x"));
    let tar = rawtar::tar(&entries);
    let l = layout_of(
        &t.path().join("layout"),
        &tar,
        &common::zst(&tar),
        ZSTD_LAYER,
    );
    refused(t.path(), &l, "entry `../escaped`: the path leaves the root");
}

/// A layer whose media type says zstd but whose bytes are gzip (or the other way round) is
/// refused, naming the mismatch.
#[test]
fn a_layer_not_compressed_as_its_media_type_says_is_refused() {
    gate();
    for (blob, media_type, what) in [
        (
            common::gz as fn(&[u8]) -> Vec<u8>,
            ZSTD_LAYER,
            "the blob is not zstd-compressed, as its media type says",
        ),
        (
            common::zst,
            LAYER,
            "the blob is not gzip-compressed, as its media type says",
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let tar = rawtar::tar(&benign());
        let l = layout_of(&t.path().join("layout"), &tar, &blob(&tar), media_type);
        refused(t.path(), &l, what);
    }
}
