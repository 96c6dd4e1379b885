//! Base images from a registry: a stand-in for `grafana/grafana-oss:12.2.1`, pushed by skopeo
//! to a real registry (`docker-registry` on 127.0.50.6x:5000), is pinned by `infragen lock
//! --only-bases --base-registry` (the platform manifest out of a Docker manifest list, Docker
//! schema 2 media types) and used by `build`, which fetches its blobs once; a tampered layer is
//! refused by digest and nothing lands in the store; without a registry the image is reported
//! missing as before. The real victoria-logs/-traces references stay unpinned (not in the
//! test registry), never stubbed.
//!
//! Needs docker-registry, skopeo and umoci; `INFRAGEN_SKIP_REGISTRY=1` skips this tier loudly.
//! No package is needed: the profile enables Grafana only.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::ok;
use common::registry::{skipped, Registry};
use infragen::registry::{Client, Options, DOCKER_LIST, DOCKER_MANIFEST};

const GRAFANA: &str = "grafana/grafana-oss";

fn infragen(args: &[&str]) -> Output {
    common::infragen()
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("INFRAGEN_BASE_REGISTRY")
        .output()
        .expect("run infragen")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A stand-in Grafana base image in an OCI layout under the reference `base`; its layer digest.
fn stand_in(dir: &Path) -> String {
    use infragen::oci::{blob::BlobStore, layer, layout};
    let store = BlobStore::open(dir).unwrap();
    let l = layer::build(
        vec![
            layer::LayerEntry::dir("usr", 0o755),
            layer::LayerEntry::dir("usr/share", 0o755),
            layer::LayerEntry::dir("usr/share/grafana", 0o755),
            layer::LayerEntry::dir("usr/share/grafana/bin", 0o755),
            layer::LayerEntry::file("usr/share/grafana/bin/grafana", "#!/bin/false\n", 0o755),
        ],
        0,
    )
    .unwrap();
    let layer_digest = l.digest.clone();
    let spec = layout::ImageSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        entrypoint: vec!["/usr/share/grafana/bin/grafana".into()],
        created: layout::rfc3339(0).unwrap(),
        ..layout::ImageSpec::default()
    };
    let manifest = layout::write_image(&store, &spec, &[l]).unwrap();
    let mut refs = std::collections::BTreeMap::new();
    refs.insert("base".to_owned(), manifest);
    layout::write_index(dir, &refs).unwrap();
    layer_digest
}

/// `skopeo copy` of the stand-in to `dest` (extra flags first); the pushed manifest's digest.
fn push(layout: &Path, dest: &str, extra: &[&str], work: &Path) -> String {
    let digestfile = work.join("digest");
    let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    let src = format!("oci:{}:base", layout.display());
    let target = format!("docker://{dest}");
    let df = digestfile.to_str().unwrap();
    args.extend_from_slice(&["--digestfile", df, &src, &target]);
    ok(
        &Command::new("skopeo").args(&args).output().unwrap(),
        "skopeo copy",
    );
    fs::read_to_string(digestfile).unwrap().trim().to_owned()
}

/// single-node with Grafana as its only component, and the committed lock, copied.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let profile = common::single_node_with_only(dir, "grafana-only.yml", "grafana", &[]);
    let lock = dir.join("infragen.lock");
    fs::copy(common::lock(), &lock).unwrap();
    (profile, lock)
}

fn lock_json(lock: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(lock).unwrap()).unwrap()
}

fn build(dir: &Path, profile: &Path, lock: &Path, cache: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "build",
        "--profile",
        profile.to_str().unwrap(),
        "--lock",
        lock.to_str().unwrap(),
        "--out",
    ];
    let out = dir.join("out");
    let pki = dir.join("pki");
    args.push(out.to_str().unwrap());
    args.extend_from_slice(&["--cache", cache.to_str().unwrap()]);
    args.extend_from_slice(&["--pki", pki.to_str().unwrap()]);
    args.extend_from_slice(extra);
    infragen(&args)
}

/// Every file of the store's blob directory (temporary files included).
fn store_files(cache: &Path) -> Vec<String> {
    let dir = cache.join("store/blobs/sha256");
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_base_from_a_registry_is_pinned_fetched_once_and_built_upon() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bases_registry.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(60);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("stand-in");
    let layer = stand_in(&layout);
    // Docker Hub's shape: a Docker schema 2 image, named by a manifest list under the tag.
    let image = push(
        &layout,
        &format!("{}/{GRAFANA}:amd64", r.addr),
        &["--format", "v2s2"],
        dir.path(),
    );
    let mut client = Client::new(
        &r.addr,
        &Options {
            plain_http: true,
            ..Options::default()
        },
    )
    .unwrap();
    let (media_type, bytes, _) = client
        .get_manifest(GRAFANA, &image, &[DOCKER_MANIFEST])
        .unwrap();
    assert_eq!(media_type, DOCKER_MANIFEST);
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{
            "mediaType": DOCKER_MANIFEST,
            "digest": image,
            "size": bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    });
    let list_digest = client
        .put_manifest(
            GRAFANA,
            "12.2.1",
            DOCKER_LIST,
            &serde_json::to_vec(&list).unwrap(),
        )
        .unwrap();

    let (profile, lock) = setup(dir.path());
    let before = lock_json(&lock);
    let o = infragen(&[
        "lock",
        "--only-bases",
        "--lock",
        lock.to_str().unwrap(),
        "--base-registry",
        &r.addr,
        "--plain-http",
    ]);
    let stdout = ok(&o, "lock --base-registry");
    assert!(
        stdout.contains(&format!("grafana       base {GRAFANA}:12.2.1 {image}")),
        "{stdout}"
    );
    let pinned = lock_json(&lock);
    let grafana = &pinned["images"]["grafana"]["base"];
    assert_eq!(grafana["digest"], image.as_str(), "the amd64 manifest");
    assert_eq!(
        grafana["index"],
        list_digest.as_str(),
        "the list it came from"
    );
    // The real upstream references are not in this registry: unpinned, said so, no stub.
    let err = stderr(&o);
    for (c, name) in [
        ("vlogs", "victoriametrics/victoria-logs"),
        ("vtraces", "victoriametrics/victoria-traces"),
    ] {
        assert!(pinned["images"][c]["base"]["digest"].is_null(), "{c}");
        assert!(
            err.contains(&format!("warning: base image `{name}:"))
                && err.contains("it stays unpinned"),
            "{err}"
        );
    }
    assert!(
        err.contains(&format!("is not pinned from `{}`", r.addr)),
        "{err}"
    );
    // Package closures and the time source are untouched; no registry host in the lock.
    for c in ["nginx", "vmetrics", "chrony"] {
        assert_eq!(pinned["images"][c], before["images"][c], "{c}");
    }
    assert_eq!(pinned["source_date_epoch"], before["source_date_epoch"]);
    assert!(!fs::read_to_string(&lock).unwrap().contains(&r.addr));

    let cache = dir.path().join("cache");
    let registry = ["--base-registry", r.addr.as_str(), "--plain-http"];
    let o = build(dir.path(), &profile, &lock, &cache, &registry);
    let stdout = ok(&o, "build with a base registry");
    assert!(
        stdout.contains(&format!("fetched 3 base image blobs from `{}`", r.addr)),
        "manifest, config, layer: {stdout}"
    );
    assert!(stdout.contains("10.10.10.10 infra-grafana"), "{stdout}");
    let oci = dir.path().join("out/10.10.10.10/oci");
    let o = Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:infra-grafana", oci.display())])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&o, "skopeo inspect")).unwrap();
    let layers = json["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "base layer + recipe layer + config layer");
    assert_eq!(
        layers[0],
        layer.as_str(),
        "the stand-in's layer at the bottom"
    );
    // A valid OCI image, Docker media types converted: every layer is OCI gzip.
    let manifest = fs::read_to_string(oci.join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &fs::read(oci.join("blobs/sha256").join(&m["sha256:".len()..])).unwrap(),
    )
    .unwrap();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    let bundle = dir.path().join("unpacked");
    ok(
        &Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:infra-grafana", oci.display()))
            .arg(&bundle)
            .output()
            .unwrap(),
        "umoci unpack",
    );
    assert!(bundle
        .join("rootfs/usr/share/grafana/bin/grafana")
        .is_file());

    // A second build takes everything from the store: not one request for a blob.
    let blobs_before = store_files(&cache);
    let o = build(dir.path(), &profile, &lock, &cache, &registry);
    let stdout = ok(&o, "second build");
    assert!(!stdout.contains("fetched"), "{stdout}");
    assert_eq!(store_files(&cache), blobs_before);
}

#[test]
fn a_tampered_base_layer_is_refused_and_no_registry_means_missing() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bases_registry.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(61);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("stand-in");
    let layer = stand_in(&layout);
    // An OCI image this time (skopeo keeps the layout's media types).
    let image = push(
        &layout,
        &format!("{}/mirror/{GRAFANA}:12.2.1", r.addr),
        &[],
        dir.path(),
    );
    let (profile, lock) = setup(dir.path());
    let o = infragen(&[
        "lock",
        "--only-bases",
        "--lock",
        lock.to_str().unwrap(),
        "--base-registry",
        &format!("{}/mirror", r.addr),
        "--plain-http",
    ]);
    ok(&o, "lock with a prefix");
    let pinned = lock_json(&lock);
    assert_eq!(
        pinned["images"]["grafana"]["base"]["digest"],
        image.as_str()
    );
    assert!(pinned["images"]["grafana"]["base"].get("index").is_none());

    // Without a registry (and an empty store) Grafana is missing, as before.
    let cache = dir.path().join("cache");
    let o = build(dir.path(), &profile, &lock, &cache, &[]);
    ok(&o, "build without a base registry");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "warning: 10.10.10.10: infra-grafana not built: base image `{GRAFANA}:12.2.1` ({image}) is needed; run `infragen lock --base-registry"
        )),
        "{err}"
    );

    // The registry serves other bytes (same size) under the layer's digest.
    let file = r.blob_file(&layer);
    let mut bytes = fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&file, bytes).unwrap();
    let o = build(
        dir.path(),
        &profile,
        &lock,
        &cache,
        &[
            "--base-registry",
            &format!("{}/mirror", r.addr),
            "--plain-http",
            "--strict",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("infra-grafana not built: base image `{GRAFANA}:12.2.1` ({image}) from `{}/mirror`: blob {layer} from registry `{}` is", r.addr, r.addr))
            && err.contains("nothing written"),
        "{err}"
    );
    let files = store_files(&cache);
    let hex = &layer["sha256:".len()..];
    assert!(
        !files.iter().any(|f| f == hex),
        "no tampered layer: {files:?}"
    );
    assert!(
        !files.iter().any(|f| f.starts_with('.')),
        "no temporary file: {files:?}"
    );
    let manifest_hex = &image["sha256:".len()..];
    assert!(
        !files.iter().any(|f| f == manifest_hex),
        "the manifest is stored last, after its blobs: {files:?}"
    );
}
