//! OCI writer end to end: two builds under different umask and TZ give the same bytes, exact
//! digests guard against accidental changes, and the real consumers (`skopeo inspect`,
//! `umoci unpack`) read what we write.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use infragen::oci::blob::BlobStore;
use infragen::oci::layer::{build, Layer, LayerEntry};
use infragen::oci::layout::{rfc3339, write_image, write_index, Descriptor, ImageSpec};

const REF: &str = "infra-sample";
const EPOCH: u64 = 1_700_000_000;
const CHILD_OUT: &str = "INFRAGEN_OCI_TEST_OUT";

/// A 150-byte path: past the 100 bytes of a tar header's name field.
fn long_path() -> String {
    let path = format!("opt/sample/{}/deep.txt", "n".repeat(150 - 20));
    assert_eq!(path.len(), 150);
    path
}

fn sample_layer() -> Layer {
    build(
        vec![
            LayerEntry::dir("etc/sample", 0o750).owned(0, 0),
            LayerEntry::file("etc/sample/sample.conf", "listen 127.0.0.1:80\n", 0o640),
            LayerEntry::file("usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755),
            LayerEntry::symlink("usr/bin/hi", "hello"),
            LayerEntry::hardlink("usr/bin/hello-again", "usr/bin/hello"),
            LayerEntry::file(&long_path(), "deep\n", 0o644),
        ],
        EPOCH,
    )
    .unwrap()
}

fn sample_spec() -> ImageSpec {
    ImageSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        user: Some("0:0".into()),
        entrypoint: vec!["/usr/bin/hello".into()],
        cmd: vec![],
        env: vec!["PATH=/usr/bin:/bin".into()],
        working_dir: Some("/".into()),
        exposed_ports: vec!["80/tcp".into()],
        volumes: vec!["/var/lib/sample".into()],
        labels: BTreeMap::from([("org.example.component".into(), "sample".into())]),
        stop_signal: Some("SIGTERM".into()),
        created: rfc3339(EPOCH).unwrap(),
        annotations: BTreeMap::from([
            (
                "org.opencontainers.image.created".into(),
                rfc3339(EPOCH).unwrap(),
            ),
            ("org.opencontainers.image.version".into(), "1.0.0".into()),
        ]),
    }
}

/// Builds the sample image into the layout at `dir` and names it [`REF`].
fn build_layout(dir: &Path) -> (Layer, Descriptor) {
    let store = BlobStore::open(dir).unwrap();
    let layer = sample_layer();
    let manifest = write_image(&store, &sample_spec(), std::slice::from_ref(&layer)).unwrap();
    write_index(dir, &BTreeMap::from([(REF.to_owned(), manifest.clone())])).unwrap();
    (layer, manifest)
}

/// Every file under `dir`: relative path → (permission bits, content).
fn files(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            (rel, (mode, fs::read(e.path()).unwrap()))
        })
        .collect()
}

/// Run by `builds_are_identical_across_umask_and_tz` in a child process whose umask and TZ
/// differ; does nothing when run directly.
#[test]
#[ignore = "helper: run as a child process by builds_are_identical_across_umask_and_tz"]
fn child_build() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    if let Some(out) = std::env::var_os(CHILD_OUT) {
        build_layout(Path::new(&out));
    }
}

fn build_in_child(out: &Path, umask: &str, tz: &str) {
    let exe = std::env::current_exe().unwrap();
    // The child's output is captured so its own test summary does not mix with ours.
    let out = Command::new("sh")
        .args(["-c", r#"umask "$1" && shift && exec "$@""#, "sh", umask])
        .arg(exe)
        .args(["child_build", "--exact", "--ignored", "--quiet"])
        .env(CHILD_OUT, out)
        .env("TZ", tz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child build with umask {umask} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn builds_are_identical_across_umask_and_tz() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    build_in_child(&a, "077", "Pacific/Chatham");
    build_in_child(&b, "022", "UTC");
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.contains_key("index.json") && fa.contains_key("oci-layout"));
    // Index, oci-layout, manifest, config and layer: same names, bytes and modes.
    assert_eq!(fa.len(), 5, "{:?}", fa.keys());
    assert_eq!(fa, fb);
    // And the same as a build in this process.
    let c = tmp.path().join("c");
    let (_, manifest) = build_layout(&c);
    assert_eq!(files(&c), fa);
    assert!(fa.contains_key(&format!(
        "blobs/sha256/{}",
        manifest.digest.trim_start_matches("sha256:")
    )));
}

#[test]
fn a_fixed_tiny_layer_has_known_digests() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    let layer = build(vec![LayerEntry::file("hello.txt", "hello\n", 0o644)], 0).unwrap();
    assert_eq!(layer.diff_id, TINY_DIFF_ID);
    assert_eq!(layer.digest, TINY_DIGEST);
    assert_eq!(layer.size, TINY_SIZE);
}

#[test]
fn the_sample_image_has_known_digests() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    let tmp = tempfile::tempdir().unwrap();
    let (layer, manifest) = build_layout(tmp.path());
    assert_eq!(layer.diff_id, SAMPLE_DIFF_ID);
    assert_eq!(layer.digest, SAMPLE_DIGEST);
    assert_eq!(manifest.digest, SAMPLE_MANIFEST);
    let index = fs::read(tmp.path().join("index.json")).unwrap();
    assert_eq!(
        infragen::oci::blob::sha256_digest(&index),
        SAMPLE_INDEX,
        "{}",
        String::from_utf8_lossy(&index)
    );
}

// Observed once and pinned: a change here changes every image digest infragen publishes.
// The tiny layer is `hello.txt` ("hello\n", 0644, root, mtime 0); its diff_id was checked
// against `zcat | sha256sum` and its listing against GNU `tar -tvz`.
const TINY_DIFF_ID: &str =
    "sha256:b78127751712b7ed468b730b76598b7ee6f2cbc6db8a10c1fe69699d319573cc";
const TINY_DIGEST: &str = "sha256:a2506e644d3afc2532243290d487ac58531c1ff6bbafb409338bfbf2e9b0f071";
const TINY_SIZE: u64 = 93;
const SAMPLE_DIFF_ID: &str =
    "sha256:416089a644eeaec4d2496879d4088a40fc3c7a1e67627d5208cb76b0aef3d9dd";
const SAMPLE_DIGEST: &str =
    "sha256:288098b6c92b0ce6bd64774104502f314e53fc10209f31cc049fe6dbf52754e1";
const SAMPLE_MANIFEST: &str =
    "sha256:ae98383a3033e4b135a9271aab38b2ecac7ca6b6d35000c2a4f623568246884e";
const SAMPLE_INDEX: &str =
    "sha256:a869616b6aa46e68d0977f3c71c1129592edbb13e48a307f0bc49e150f960514";

#[test]
fn fsck_sees_a_flipped_byte() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    let tmp = tempfile::tempdir().unwrap();
    let (layer, _) = build_layout(tmp.path());
    let store = BlobStore::open(tmp.path()).unwrap();
    assert_eq!(store.fsck().unwrap(), Vec::<String>::new());
    let path = store.path(&layer.digest).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let problems = store.fsck().unwrap();
    let hex = layer.digest.trim_start_matches("sha256:");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("blobs/sha256/{hex}: content hashes to sha256:")),
        "{problems:?}"
    );
    let err = store.get(&layer.digest).unwrap_err().to_string();
    assert!(err.contains("is corrupt"), "{err}");
}

/// The path of a consumer tool; missing tools fail the test (CI installs them).
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed; it checks the OCI layouts infragen writes\nhint: apt-get install -y skopeo umoci (CI installs them)")
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn skopeo_inspects_the_layout() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    let skopeo = tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (layer, manifest) = build_layout(tmp.path());
    let image = format!("oci:{}:{REF}", tmp.path().display());
    let out = run(Command::new(skopeo).args(["inspect", &image]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["Digest"], manifest.digest.as_str(), "{out}");
    assert_eq!(json["Layers"], serde_json::json!([layer.digest]), "{out}");
    assert_eq!(json["Architecture"], "amd64", "{out}");
    assert_eq!(json["Os"], "linux", "{out}");
    assert_eq!(json["Created"], "2023-11-14T22:13:20Z", "{out}");
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).trim() == "0"
}

#[test]
fn umoci_unpacks_the_layout() {
    common::tier::binary(common::tier::Tier::Integration, "tests/oci.rs");
    let umoci = tool("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    build_layout(&layout);
    let bundle = tmp.path().join("bundle");
    let mut cmd = Command::new(umoci);
    cmd.arg("unpack");
    if !is_root() {
        cmd.arg("--rootless");
    }
    cmd.arg("--image")
        .arg(format!("{}:{REF}", layout.display()))
        .arg(&bundle);
    run(&mut cmd);

    let rootfs = bundle.join("rootfs");
    let meta = |rel: &str| fs::symlink_metadata(rootfs.join(rel)).unwrap();
    let hello = rootfs.join("usr/bin/hello");
    assert_eq!(fs::read(&hello).unwrap(), b"#!/bin/sh\necho hello\n");
    assert_eq!(meta("usr/bin/hello").mode() & 0o7777, 0o755);
    assert_eq!(meta("usr/bin/hello").mtime(), i64::try_from(EPOCH).unwrap());
    assert_eq!(meta("etc/sample").mode() & 0o7777, 0o750);
    assert_eq!(meta("etc/sample/sample.conf").mode() & 0o7777, 0o640);
    assert!(meta("usr/bin/hi").file_type().is_symlink());
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/hi")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(
        meta("usr/bin/hello-again").ino(),
        meta("usr/bin/hello").ino()
    );
    assert_eq!(meta("usr/bin/hello").nlink(), 2);
    assert_eq!(fs::read(rootfs.join(long_path())).unwrap(), b"deep\n");
    assert_eq!(meta("usr").mode() & 0o7777, 0o755);
}
