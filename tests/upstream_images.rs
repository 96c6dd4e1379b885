//! Upstream images (`infragen_upstream_images`): a stand-in for
//! `victoriametrics/victoria-metrics:v1.110.0` (the upstream layout: `/victoria-metrics-prod`,
//! config `Entrypoint`), pushed by skopeo to a real registry (`docker-registry` on
//! 127.0.50.62–63:5000), is pinned by `infragen lock --only-bases --profile` under
//! `upstream/vmetrics` and built upon: the stand-in's layer at the bottom, our recipe and config
//! layers on top, the upstream entrypoint with our flags, no Debian package, an SBOM naming the
//! pinned image. Without the image in the registry it stays unpinned and the build reports it
//! missing, never built from Debian's package instead; an image laid out otherwise is refused.
//!
//! Needs docker-registry, skopeo and umoci; `INFRAGEN_SKIP_REGISTRY=1` skips this tier loudly.
//! No package is needed: the profile enables VictoriaMetrics only, from its upstream image.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::ok;
use common::registry::{skipped, Registry};

const VM: &str = "victoriametrics/victoria-metrics";
const TAG: &str = "v1.110.0";

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

/// A stand-in upstream VictoriaMetrics image (binary at `/<binary>`, config entrypoint
/// `/<binary>`) in an OCI layout under the reference `base`; its layer digest.
fn stand_in(dir: &Path, binary: &str) -> String {
    use infragen::oci::{blob::BlobStore, layer, layout};
    let store = BlobStore::open(dir).unwrap();
    let l = layer::build(
        vec![layer::LayerEntry::file(binary, "#!/bin/false\n", 0o755)],
        0,
    )
    .unwrap();
    let layer_digest = l.digest.clone();
    let spec = layout::ImageSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        entrypoint: vec![format!("/{binary}")],
        created: layout::rfc3339(0).unwrap(),
        ..layout::ImageSpec::default()
    };
    let manifest = layout::write_image(&store, &spec, &[l]).unwrap();
    let mut refs = std::collections::BTreeMap::new();
    refs.insert("base".to_owned(), manifest);
    layout::write_index(dir, &refs).unwrap();
    layer_digest
}

/// `skopeo copy` of the stand-in to `dest`.
fn push(layout: &Path, dest: &str) {
    let src = format!("oci:{}:base", layout.display());
    let o = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", &src])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    ok(&o, "skopeo copy");
}

/// `skopeo inspect`'s JSON of `image`.
fn inspect(image: &str, extra: &[&str]) -> serde_json::Value {
    let o = Command::new("skopeo")
        .arg("inspect")
        .args(extra)
        .arg(image)
        .output()
        .unwrap();
    serde_json::from_str(&ok(&o, "skopeo inspect")).unwrap()
}

/// single-node with VictoriaMetrics as its only component, `upstream` as the value of
/// `infragen_upstream_images` (when given), and the committed lock, copied.
fn setup(dir: &Path, upstream: Option<&str>) -> (PathBuf, PathBuf) {
    let extra = upstream.map(|u| format!("infragen_upstream_images: {u}"));
    let profile = common::single_node_with_only(
        dir,
        "vmetrics-only.yml",
        "vmetrics",
        &extra.as_deref().into_iter().collect::<Vec<_>>(),
    );
    let lock = dir.join("infragen.lock");
    fs::copy(common::lock(), &lock).unwrap();
    (profile, lock)
}

fn lock_json(lock: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(lock).unwrap()).unwrap()
}

fn lock(profile: Option<&Path>, lock: &Path, registry: &str) -> Output {
    let mut args = vec!["lock", "--only-bases", "--lock", lock.to_str().unwrap()];
    if let Some(p) = profile {
        args.extend_from_slice(&["--profile", p.to_str().unwrap()]);
    }
    args.extend_from_slice(&["--base-registry", registry, "--plain-http"]);
    infragen(&args)
}

fn build(dir: &Path, profile: &Path, lock: &Path, extra: &[&str]) -> Output {
    let (out, cache, pki) = (dir.join("out"), dir.join("cache"), dir.join("pki"));
    let mut args = vec!["build", "--profile", profile.to_str().unwrap()];
    args.extend_from_slice(&["--lock", lock.to_str().unwrap()]);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(&["--cache", cache.to_str().unwrap()]);
    args.extend_from_slice(&["--pki", pki.to_str().unwrap()]);
    args.extend_from_slice(extra);
    infragen(&args)
}

#[test]
fn an_upstream_image_is_pinned_per_component_and_built_upon() {
    common::tier::binary(common::tier::Tier::Integration, "tests/upstream_images.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(62);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("stand-in");
    let layer = stand_in(&layout, "victoria-metrics-prod");
    let remote = format!("docker://{}/{VM}:{TAG}", r.addr);
    push(&layout, &format!("{}/{VM}:{TAG}", r.addr));
    let digest = inspect(&remote, &["--tls-verify=false"])["Digest"]
        .as_str()
        .unwrap()
        .to_owned();

    let (profile, lockfile) = setup(dir.path(), Some(&format!("{{ vmetrics: \"{VM}:{TAG}\" }}")));
    let before = lock_json(&lockfile);
    let o = lock(Some(&profile), &lockfile, &r.addr);
    let stdout = ok(&o, "lock --profile");
    assert!(
        stdout.contains(&format!("upstream/vmetrics base {VM}:{TAG} {digest}")),
        "{stdout}"
    );
    let pinned = lock_json(&lockfile);
    let entry = &pinned["images"]["upstream/vmetrics"];
    assert_eq!(entry["base"]["digest"], digest.as_str(), "skopeo's digest");
    assert_eq!(entry["base"]["name"], VM);
    assert_eq!(entry["base"]["tag"], TAG);
    assert!(entry.get("packages").is_none(), "{entry}");
    // The Debian recipe's closure (vmalert uses it) and the time source are untouched.
    assert_eq!(pinned["images"]["vmetrics"], before["images"]["vmetrics"]);
    assert_eq!(pinned["source_date_epoch"], before["source_date_epoch"]);
    assert!(!fs::read_to_string(&lockfile).unwrap().contains(&r.addr));
    // Without --profile the upstream pin is kept (and re-pinned from the registry).
    ok(&lock(None, &lockfile, &r.addr), "lock without a profile");
    assert_eq!(lock_json(&lockfile)["images"]["upstream/vmetrics"], *entry);

    let registry = ["--base-registry", r.addr.as_str(), "--plain-http"];
    let o = build(dir.path(), &profile, &lockfile, &registry);
    let stdout = ok(&o, "build");
    assert!(stdout.contains("10.10.10.10 infra-vmetrics"), "{stdout}");
    assert!(!stdout.contains("INCOMPLETE"), "{stdout}");
    let host = dir.path().join("out/10.10.10.10");
    assert!(!host.join("INCOMPLETE").exists());
    let image = format!("oci:{}:infra-vmetrics", host.join("oci").display());
    let json = inspect(&image, &[]);
    let layers = json["Layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        3,
        "upstream layer + recipe layer + config layer"
    );
    assert_eq!(
        layers[0],
        layer.as_str(),
        "the stand-in's layer at the bottom"
    );
    let config = inspect(&image, &["--config"]);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/victoria-metrics-prod"]),
        "the upstream entrypoint"
    );
    let cmd = config["config"]["Cmd"].as_array().unwrap();
    assert!(
        cmd.iter().any(|a| a == "-retentionPeriod=15d"),
        "our flags: {cmd:?}"
    );
    assert_eq!(config["config"]["User"], "991:991", "the recipe's user");
    let unpacked = dir.path().join("unpacked");
    ok(
        &Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:infra-vmetrics", host.join("oci").display()))
            .arg(&unpacked)
            .output()
            .unwrap(),
        "umoci unpack",
    );
    let rootfs = unpacked.join("rootfs");
    assert!(rootfs.join("victoria-metrics-prod").is_file());
    assert!(
        !rootfs.join("usr/bin/victoria-metrics").exists(),
        "no Debian binary"
    );
    assert!(
        !rootfs.join("usr/share/doc/victoria-metrics").exists(),
        "no Debian package"
    );
    assert!(
        rootfs.join("infra/metrics").is_dir(),
        "the recipe's directory"
    );
    assert!(
        fs::read_to_string(rootfs.join("etc/passwd"))
            .unwrap()
            .contains("victoria:x:991:991:"),
        "the recipe's user"
    );
    // The unit starts the upstream binary with our flags.
    let unit = fs::read_to_string(host.join("units/infra-vmetrics.service")).unwrap();
    assert!(unit.contains("ExecStart=/victoria-metrics-prod "), "{unit}");
    // The SBOM names the pinned image, not Debian's packages.
    let sbom: serde_json::Value =
        serde_json::from_slice(&fs::read(host.join("sbom/infra-vmetrics.spdx.json")).unwrap())
            .unwrap();
    let packages = sbom["packages"].as_array().unwrap();
    assert_eq!(
        packages.len(),
        2,
        "the image and its upstream image: {packages:?}"
    );
    assert_eq!(packages[1]["name"], format!("{VM}:{TAG}"));
    assert_eq!(packages[1]["versionInfo"], digest.as_str());
}

#[test]
fn an_upstream_image_not_in_the_registry_or_laid_out_otherwise_is_missing() {
    common::tier::binary(common::tier::Tier::Integration, "tests/upstream_images.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(63);
    let dir = tempfile::tempdir().unwrap();
    let (profile, lockfile) = setup(dir.path(), Some(&format!("{{ vmetrics: \"{VM}:{TAG}\" }}")));

    // A build before `lock --profile` refuses the lock, saying how to fix it.
    let o = build(dir.path(), &profile, &lockfile, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).ends_with(
        "error: infragen.lock has no entry for image `upstream/vmetrics`, which the profile's `infragen_upstream_images` names\nhint: run `infragen lock --profile PROFILE` (with `--only-bases` to keep every package closure)\n"
    ), "{}", stderr(&o));

    // Not in the registry: unpinned, said so; the build reports it missing, never from Debian.
    let o = lock(Some(&profile), &lockfile, &r.addr);
    ok(&o, "lock with the image missing");
    assert!(
        stderr(&o).contains(&format!(
            "warning: base image `{VM}:{TAG}` is not pinned from `{}`",
            r.addr
        )) && stderr(&o).contains("it stays unpinned"),
        "{}",
        stderr(&o)
    );
    assert!(lock_json(&lockfile)["images"]["upstream/vmetrics"]["base"]["digest"].is_null());
    let o = build(dir.path(), &profile, &lockfile, &[]);
    ok(&o, "build with the image unpinned");
    let incomplete = fs::read_to_string(dir.path().join("out/10.10.10.10/INCOMPLETE")).unwrap();
    assert!(
        incomplete.starts_with(&format!(
            "infra-vmetrics: base image `{VM}:{TAG}` is not pinned in infragen.lock"
        )),
        "{incomplete}"
    );
    assert!(
        !dir.path().join("out/10.10.10.10/oci/blobs").exists()
            || inspect_refs(&dir.path().join("out/10.10.10.10/oci")).is_empty()
    );

    // An image laid out otherwise (its binary moved) is refused by the entrypoint check.
    let layout = dir.path().join("stand-in");
    stand_in(&layout, "bin/victoria-metrics");
    push(&layout, &format!("{}/{VM}:{TAG}", r.addr));
    ok(&lock(Some(&profile), &lockfile, &r.addr), "lock");
    let digest = lock_json(&lockfile)["images"]["upstream/vmetrics"]["base"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = build(
        dir.path(),
        &profile,
        &lockfile,
        &["--base-registry", &r.addr, "--plain-http", "--strict"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "infra-vmetrics not built: upstream image `{VM}:{TAG}` ({digest}): its entrypoint is [\"/bin/victoria-metrics\"], not [\"/victoria-metrics-prod\"] as the recipe's `upstream:` says"
        )),
        "{}",
        stderr(&o)
    );

    // A profile without the parameter drops the upstream pin.
    fs::create_dir(dir.path().join("plain")).unwrap();
    let (plain, _) = setup(&dir.path().join("plain"), None);
    ok(
        &lock(Some(&plain), &lockfile, &r.addr),
        "lock without upstream",
    );
    assert!(lock_json(&lockfile)["images"]
        .get("upstream/vmetrics")
        .is_none());
}

/// The image references of an OCI layout's index.
fn inspect_refs(oci: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect()
}
