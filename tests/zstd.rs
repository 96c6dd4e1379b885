//! `build --compression zstd` with real packages (integration tier): the images are accepted by
//! `skopeo inspect` and `umoci unpack`, every layer is OCI 1.1's `tar+zstd` and decompresses
//! with the `zstd` program to its `diff_id`, the nginx image unpacked from its zstd layers
//! serves the portal under `runc` (on 127.0.56.10), two builds in different places give the
//! same digests, and the bundle verifies (`infragen verify`) and activates (`infragen activate
//! --root`), its root trees extracted from the zstd layers. Golden zstd digests from made
//! packages are in `tests/golden.rs` (fast tier).
//!
//! Needs skopeo, umoci, runc and zstd (`.ci/deps` installs them), and Debian's mirror. umoci
//! reads zstd layers from 0.5.0 on; Debian 12's (and 13's) is 0.4.7, so `.ci/umoci-zstd`
//! installs Debian unstable's into `/opt/infragen-ci/umoci` (or `$INFRAGEN_UMOCI_ZSTD` names
//! one). Without such a umoci, the unpack checks take skopeo's gzip copies and the runc check is
//! not run, each saying so in a loud SKIPPED line.

mod common;

use common::runc::tool;
use common::{enrol, ok, root, signing_key};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn infragen(args: &[&str]) -> Output {
    common::infragen()
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run infragen")
}

/// single-node on 127.0.56.x with plain HTTP, built with `--compression zstd` in directory
/// `name` of `dir`, with its own cache; returns the host's bundle directory.
fn build(dir: &Path, name: &str) -> PathBuf {
    let text = fs::read_to_string(root().join("profiles/single-node.yml"))
        .expect("profile")
        .replace("10.10.10.", "127.0.56.")
        .replace("nginx_sslmode: enable", "nginx_sslmode: disable");
    assert!(
        text.contains("nginx_sslmode: disable"),
        "single-node sets nginx_sslmode"
    );
    let here = dir.join(name);
    fs::create_dir_all(&here).expect("mkdir");
    let profile = here.join("single.yml");
    fs::write(&profile, text).expect("write profile");
    let out = here.join("out");
    let o = infragen(&[
        "build",
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cache",
        here.join("cache").to_str().unwrap(),
        "--lock",
        common::lock().to_str().unwrap(),
        "--pki",
        dir.join("pki").to_str().unwrap(),
        "--sign-key",
        signing_key().0.to_str().unwrap(),
        "--compression",
        "zstd",
    ]);
    ok(&o, &format!("build {name} --compression zstd"));
    out.join("127.0.56.10")
}

/// Two zstd builds of single-node, in different directories with different caches: built
/// once for every test here.
fn built() -> &'static (PathBuf, PathBuf) {
    static B: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-zstd-")
            .tempdir()
            .expect("tmp")
            .keep();
        (build(&dir, "a"), build(&dir, "b"))
    })
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("read")).expect("json")
}

/// The images of the layout `oci`: reference → manifest.
fn images(oci: &Path) -> Vec<(String, serde_json::Value)> {
    json(&oci.join("index.json"))["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            let name = m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .expect("ref")
                .to_owned();
            let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
            (name, json(&oci.join("blobs/sha256").join(hex)))
        })
        .collect()
}

#[test]
fn zstd_images_are_accepted_by_skopeo_umoci_and_zstd() {
    common::tier::binary(common::tier::Tier::Integration, "tests/zstd.rs");
    let (a, _) = built();
    let oci = a.join("oci");
    let images = images(&oci);
    assert_eq!(images.len(), 8, "every Debian-sourced image");
    let scratch = tempfile::tempdir().unwrap();
    for (name, manifest) in images {
        let layers = manifest["layers"].as_array().expect("layers");
        assert!(layers.len() >= 3, "{name}");
        let hex = manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let config = json(&oci.join("blobs/sha256").join(hex));
        for (l, diff_id) in layers
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            assert_eq!(l["mediaType"], ZSTD, "{name}");
            // the zstd program reads the frame, and the tar is the config's diff_id
            let blob = oci
                .join("blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            let o = Command::new(tool("zstd"))
                .args(["-d", "-c", "-q"])
                .arg(&blob)
                .output()
                .unwrap();
            assert!(o.status.success(), "zstd -d {}", blob.display());
            assert_eq!(
                &infragen::oci::blob::sha256_digest(&o.stdout),
                diff_id,
                "{name}"
            );
        }
        let o = Command::new(tool("skopeo"))
            .args(["inspect", &format!("oci:{}:{name}", oci.display())])
            .output()
            .unwrap();
        let inspected: serde_json::Value =
            serde_json::from_str(&ok(&o, &format!("skopeo inspect {name}"))).unwrap();
        assert_eq!(inspected["Architecture"], "amd64");
        assert_eq!(
            inspected["Layers"].as_array().unwrap().len(),
            layers.len(),
            "{name}"
        );
        // umoci reads zstd layers from 0.5.0 on: then directly; before (Debian 12 has
        // 0.4.7), after skopeo has read every zstd layer into a gzip copy.
        let (layout, how) = if umoci_reads_zstd() {
            (oci.clone(), "")
        } else {
            let copy = scratch.path().join("gzip-copy");
            let o = Command::new(tool("skopeo"))
                .args(["copy", "--dest-compress-format", "gzip"])
                .arg(format!("oci:{}:{name}", oci.display()))
                .arg(format!("oci:{}:{name}", copy.display()))
                .output()
                .unwrap();
            ok(&o, &format!("skopeo copy {name} to gzip"));
            (copy, " (skopeo's gzip copy)")
        };
        let bundle = scratch.path().join(&name);
        let o = Command::new(umoci())
            .args(["unpack", "--image", &format!("{}:{name}", layout.display())])
            .arg(&bundle)
            .output()
            .unwrap();
        ok(&o, &format!("umoci unpack {name}{how}"));
        assert!(bundle.join("rootfs/etc/passwd").is_file(), "{name}");
    }
    if !umoci_reads_zstd() {
        common::tier::loud(&format!(
            "SKIPPED umoci unpack of the zstd images themselves: {} is older than 0.5.0 (no zstd); it unpacked skopeo's gzip copies instead; run .ci/umoci-zstd",
            umoci().display()
        ));
    }
}

/// Where `.ci/umoci-zstd` installs a umoci that reads zstd layers.
const CI_UMOCI: &str = "/opt/infragen-ci/umoci/bin/umoci";

/// The umoci to unpack with: `$INFRAGEN_UMOCI_ZSTD` (which must exist), else the one
/// `.ci/umoci-zstd` installs when it is there, else the system's.
fn umoci() -> PathBuf {
    if let Some(p) = std::env::var_os("INFRAGEN_UMOCI_ZSTD") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "INFRAGEN_UMOCI_ZSTD={} does not exist\nhint: run .ci/umoci-zstd",
            p.display()
        );
        return p;
    }
    if Path::new(CI_UMOCI).is_file() {
        return PathBuf::from(CI_UMOCI);
    }
    tool("umoci")
}

/// Whether [`umoci`]'s `--version` is 0.5.0 or newer, the first to read zstd layers.
fn umoci_reads_zstd() -> bool {
    let o = Command::new(umoci()).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let version = text.split_whitespace().nth(2).unwrap_or_default();
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (0, 5)
}

#[test]
fn a_zstd_nginx_image_serves_the_portal_under_runc() {
    common::tier::binary(common::tier::Tier::Integration, "tests/zstd.rs");
    if !umoci_reads_zstd() {
        common::tier::loud(&format!(
            "SKIPPED runc serving nginx from a zstd image: {} is older than 0.5.0 and cannot unpack zstd layers; run .ci/umoci-zstd",
            umoci().display()
        ));
        return;
    }
    let (a, _) = built();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("infra-nginx");
    let o = Command::new(umoci())
        .args(["unpack", "--image"])
        .arg(format!("{}:infra-nginx", a.join("oci").display()))
        .arg(&bundle)
        .output()
        .unwrap();
    ok(&o, "umoci unpack infra-nginx (zstd layers)");
    common::runc::spec_for_here(&bundle);
    let body = common::runc::serve_and_get(
        &bundle,
        &format!("infragen-test-zstd-nginx-{}", std::process::id()),
        "http://127.0.56.10:80/",
    );
    assert!(body.contains("<h1>i.pigsty</h1>"), "{body}");
    assert!(body.contains("infra node 1 · 127.0.56.10"), "{body}");
}

#[test]
fn two_zstd_builds_give_the_same_digests_and_blobs() {
    common::tier::binary(common::tier::Tier::Integration, "tests/zstd.rs");
    let (a, b) = built();
    let digests = |host: &Path| {
        fs::read_to_string(host.parent().unwrap().join("digests.txt")).expect("digests.txt")
    };
    assert_eq!(digests(a), digests(b));
    let blobs = |host: &Path| {
        let mut v: Vec<String> = fs::read_dir(host.join("oci/blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(blobs(a), blobs(b));
}

#[test]
fn a_zstd_bundle_verifies_and_activates() {
    common::tier::binary(common::tier::Tier::Integration, "tests/zstd.rs");
    let (a, _) = built();
    let o = infragen(&[
        "verify",
        a.to_str().unwrap(),
        "--key",
        signing_key().1.to_str().unwrap(),
    ]);
    ok(&o, "verify a zstd bundle");
    let host = tempfile::tempdir().unwrap();
    enrol(host.path(), "127.0.56.10");
    let o = infragen(&[
        "activate",
        a.to_str().unwrap(),
        "--root",
        host.path().to_str().unwrap(),
    ]);
    let out = ok(&o, "activate a zstd bundle");
    assert!(out.contains("start   infra-nginx.service (new)"), "{out}");
    let manifest = json(&a.join("manifest.json"));
    for (c, file) in [
        ("vmetrics", "usr/bin/victoria-metrics"),
        ("nginx", "usr/sbin/nginx"),
    ] {
        let root_id = manifest["components"][c]["root"].as_str().unwrap();
        let path = host
            .path()
            .join(format!("var/lib/infragen/roots/{root_id}/{file}"));
        assert!(path.is_file(), "{}", path.display());
    }
}
