//! Activating a host from a registry reference (`infragen activate HOST:PORT/ns/bundle`),
//! against Debian's `docker-registry`, into temporary host roots (`--root`): the signature is
//! checked before anything else is fetched, only the blobs the host's store lacks are fetched
//! (counted), secrets travel encrypted to the host's key, and a refused pull leaves the host as
//! it was.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::{skipped, Registry};
use common::{enrol, ok, root, signing_key};

const HOST: &str = "10.10.10.10";

fn infragen(args: &[&str]) -> Output {
    common::infragen()
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A host root with its own secrets key (`host init`), the test key trusted, its name known;
/// returns the host's public key.
fn host(root: &Path) -> String {
    fs::create_dir_all(root).unwrap();
    let o = infragen(&["host", "init", "--root", s(root)]);
    let out = ok(&o, "host init");
    enrol(root, HOST);
    out.lines()
        .find(|l| l.starts_with("age1"))
        .unwrap_or_else(|| panic!("host init printed no age1 key:\n{out}"))
        .to_owned()
}

/// Builds single-node with the host's key and a scrape interval into `dir/out`.
fn build(dir: &Path, key: &str, interval: &str) -> PathBuf {
    let text = fs::read_to_string(root().join("profiles/single-node.yml"))
        .unwrap()
        .replace(
            "10.10.10.10: { infra_seq: 1 }",
            &format!("10.10.10.10: {{ infra_seq: 1, infragen_host_key: {key} }}"),
        )
        .replace(
            "vmetrics_scrape_interval: 10s",
            &format!("vmetrics_scrape_interval: {interval}"),
        );
    fs::create_dir_all(dir).unwrap();
    let profile = dir.join("profile.yml");
    fs::write(&profile, text).unwrap();
    let out = dir.join("out");
    let o = infragen(&[
        "build",
        "--profile",
        s(&profile),
        "--out",
        s(&out),
        "--lock",
        s(common::lock()),
        "--pki",
        s(&dir.join("../pki")),
        "--sign-key",
        s(&signing_key().0),
    ]);
    ok(&o, "build");
    out
}

fn push(out: &Path, reference: &str, sign: bool) -> String {
    let mut args = vec!["push", s(out), reference, "--plain-http"];
    if sign {
        args.extend(["--sign-key", s(&signing_key().0)]);
    }
    ok(&infragen(&args), "push")
}

fn activate(root: &Path, reference: &str, extra: &[&str]) -> Output {
    let mut args = vec!["activate", reference, "--plain-http", "--root", s(root)];
    args.extend_from_slice(extra);
    infragen(&args)
}

/// The blob names of a bundle's layout.
fn blobs(bundle: &Path) -> BTreeSet<String> {
    fs::read_dir(bundle.join("oci/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `N blobs fetched` from a pull's summary line.
fn fetched(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pulled "))
        .unwrap_or_else(|| panic!("no pull summary:\n{stderr}"));
    let (_, rest) = line.split_once(": ").unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

fn current(root: &Path) -> Option<PathBuf> {
    fs::read_link(root.join("var/lib/infragen/current")).ok()
}

#[test]
fn a_host_activates_from_a_registry_fetching_only_what_it_lacks() {
    common::tier::binary(common::tier::Tier::Integration, "tests/pull.rs");
    if skipped() {
        return;
    }
    let reg = Registry::start(40);
    let dir = tempfile::tempdir().unwrap();
    let host_root = dir.path().join("host");
    let key = host(&host_root);
    let a = build(&dir.path().join("a"), &key, "10s");
    let summary = push(&a, &format!("{}/infra", reg.addr), true);
    assert!(summary.contains("signature"), "{summary}");
    let reference = format!("{}/infra/bundle", reg.addr);
    skopeo_accepts_pushed_images(&reg.addr, &a.join(HOST), dir.path());

    // First activation: every blob of the bundle is fetched, once.
    let o = activate(&host_root, &reference, &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(&o, "activate from the registry");
    let a_blobs = blobs(&a.join(HOST));
    assert_eq!(fetched(&err), a_blobs.len(), "{err}");
    let a_gen: serde_json::Value =
        serde_json::from_slice(&fs::read(a.join(HOST).join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        current(&host_root).unwrap().file_name().unwrap().to_str(),
        a_gen["generation"].as_str()
    );
    // Secrets were encrypted in the registry and are in clear, 0600, on the host.
    let secrets = host_root.join("var/lib/infragen/secrets");
    let mut clear = 0;
    for e in walkdir::WalkDir::new(&secrets) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            assert!(!e.path().to_string_lossy().ends_with(".age"));
            clear += 1;
        }
    }
    assert!(clear > 0, "no secrets in {}", secrets.display());
    let mut leaked = Vec::new();
    for e in walkdir::WalkDir::new(&secrets) {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let value = fs::read(e.path()).unwrap();
        if value.len() < 8 {
            continue;
        }
        for f in walkdir::WalkDir::new(&reg.storage) {
            let f = f.unwrap();
            if f.file_type().is_file() {
                let bytes = fs::read(f.path()).unwrap();
                let mut plain = bytes.clone();
                let _ = std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&bytes[..]),
                    &mut plain,
                );
                if plain.windows(value.len()).any(|w| w == value.as_slice()) {
                    leaked.push(format!("{} in {}", e.path().display(), f.path().display()));
                }
            }
        }
    }
    assert!(
        leaked.is_empty(),
        "secret values in the registry: {leaked:?}"
    );

    // One parameter changes: only the blobs that differ are fetched.
    let b = build(&dir.path().join("b"), &key, "15s");
    push(&b, &format!("{}/infra", reg.addr), true);
    let b_blobs = blobs(&b.join(HOST));
    let new: Vec<_> = b_blobs.difference(&a_blobs).collect();
    assert!(!new.is_empty() && new.len() < b_blobs.len() / 4, "{new:?}");
    let o = activate(&host_root, &reference, &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(&o, "activate B from the registry");
    assert_eq!(fetched(&err), new.len(), "{err}");
    eprintln!(
        "one parameter: {}",
        err.lines().find(|l| l.starts_with("pulled ")).unwrap()
    );
    // The same again: nothing fetched.
    let o = activate(&host_root, &reference, &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(&o, "activate B again");
    assert_eq!(fetched(&err), 0, "{err}");

    // --pull-only prefetches: the activation after it fetches nothing, and nothing switched.
    let c = build(&dir.path().join("c"), &key, "20s");
    push(&c, &format!("{}/infra", reg.addr), true);
    let before = current(&host_root);
    let o = activate(&host_root, &reference, &["--pull-only"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(&o, "pull only");
    assert!(fetched(&err) > 0, "{err}");
    assert_eq!(current(&host_root), before);
    let o = activate(&host_root, &reference, &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(&o, "activate C after pull-only");
    assert_eq!(fetched(&err), 0, "{err}");
}

#[test]
fn unsigned_or_foreign_or_tampered_bundles_are_refused_before_anything_changes() {
    common::tier::binary(common::tier::Tier::Integration, "tests/pull.rs");
    if skipped() {
        return;
    }
    let reg = Registry::start(41);
    let dir = tempfile::tempdir().unwrap();
    let host_root = dir.path().join("host");
    let key = host(&host_root);
    let a = build(&dir.path().join("a"), &key, "10s");

    // Unsigned in the registry (the bundle's own manifest.sig is there, the attachment is not).
    push(&a, &format!("{}/unsigned", reg.addr), false);
    let o = activate(&host_root, &format!("{}/unsigned/bundle", reg.addr), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is refused") && err.contains("it is not signed"),
        "{err}"
    );
    assert!(current(&host_root).is_none());
    assert!(
        !host_root.join("var/lib/infragen/blobs/sha256").exists()
            || fs::read_dir(host_root.join("var/lib/infragen/blobs/sha256"))
                .unwrap()
                .next()
                .is_none(),
        "nothing fetched into the store"
    );

    // Signed by a key the host does not trust.
    let other = dir.path().join("other");
    ok(
        &infragen(&["key", "generate", "--out", s(&other)]),
        "key generate",
    );
    let o = infragen(&[
        "push",
        s(&a),
        &format!("{}/foreign", reg.addr),
        "--plain-http",
        "--sign-key",
        s(&other.join("infragen.key")),
    ]);
    ok(&o, "push with another key");
    let o = activate(&host_root, &format!("{}/foreign/bundle", reg.addr), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is refused"), "{err}");
    assert!(current(&host_root).is_none());

    // A layer altered in the registry's storage: refused by digest, nothing switched.
    push(&a, &format!("{}/infra", reg.addr), true);
    let layer = largest_layer(&a.join(HOST));
    let stored = reg.blob_file(&format!("sha256:{layer}"));
    let mut bytes = fs::read(&stored).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0xff;
    fs::write(&stored, bytes).unwrap();
    let o = activate(&host_root, &format!("{}/infra/bundle", reg.addr), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&layer[..12]), "{err}");
    assert!(current(&host_root).is_none());

    // The host's name decides which bundle: another host's is not pulled.
    let o = activate(
        &host_root,
        &format!("{}/infra/bundle:{HOST}", reg.addr),
        &["--host", "10.10.10.11"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("10.10.10.11"), "{err}");
}

/// The hex name of the largest blob of a bundle.
fn largest_layer(bundle: &Path) -> String {
    fs::read_dir(bundle.join("oci/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned()
}

/// Where `.ci/skopeo-sigstore` installs a skopeo with sigstore (Debian 12's has it disabled).
const CI_SKOPEO: &str = "/opt/infragen-ci/skopeo/bin/skopeo";

/// `skopeo copy` under a `sigstoreSigned` policy accepts the images `push --sign-key` pushed
/// with the test key, and refuses them with another key.
fn skopeo_accepts_pushed_images(registry: &str, bundle: &Path, dir: &Path) {
    let skopeo = std::env::var_os("INFRAGEN_SKOPEO_SIGSTORE")
        .map(PathBuf::from)
        .or_else(|| Path::new(CI_SKOPEO).is_file().then(|| CI_SKOPEO.into()));
    let Some(skopeo) = skopeo else {
        common::tier::loud("SKIPPED integration part (skopeo's check of pushed signatures): no sigstore-capable skopeo; run .ci/skopeo-sigstore");
        return;
    };
    let d = dir.join("registries.d");
    fs::create_dir_all(&d).unwrap();
    fs::write(
        d.join("test.yaml"),
        format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    let other = dir.join("skopeo-other");
    ok(
        &infragen(&["key", "generate", "--out", s(&other)]),
        "key generate",
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("oci/index.json")).unwrap()).unwrap();
    let image = &index["manifests"][0];
    let name = image["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap();
    let source = format!(
        "docker://{registry}/infra/{name}@{}",
        image["digest"].as_str().unwrap()
    );
    for (key, accept) in [
        (signing_key().1.clone(), true),
        (other.join("infragen.pub"), false),
    ] {
        let policy = dir.join("policy.json");
        fs::write(
            &policy,
            serde_json::json!({
                "default": [{"type": "reject"}],
                "transports": {"docker": {registry: [{
                    "type": "sigstoreSigned",
                    "keyPath": key,
                    "signedIdentity": {"type": "matchRepository"}
                }]}}
            })
            .to_string(),
        )
        .unwrap();
        let dest = dir.join(format!("copied-{accept}"));
        let o = Command::new(&skopeo)
            .args([
                "copy",
                "--src-tls-verify=false",
                "--remove-signatures",
                "--policy",
            ])
            .arg(&policy)
            .arg("--registries.d")
            .arg(&d)
            .arg(&source)
            .arg(format!("oci:{}", dest.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if accept {
            ok(&o, "skopeo copy of an image infragen pushed and signed");
        } else {
            assert!(
                !o.status.success() && err.contains("Source image rejected"),
                "skopeo accepted with another key: {err}"
            );
        }
    }
}
