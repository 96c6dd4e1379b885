//! Grafana plugins from the operator's archives (`grafana_plugin_dir`, docs/content.md and
//! docs/images.md): `infragen lock --profile` pins each zip by sha256, `build` holds every
//! archive to its pin and unpacks them into the grafana image's own layer under
//! `/usr/share/grafana/plugins-infragen/<id>/` (root-owned, fixed modes, the build's time), and
//! `grafana.ini` points Grafana there. Archives the test makes: benign ones (a `plugin.json`
//! and a `module.js`, a backend executable), one changed after locking, and hostile ones (a
//! `../` entry, a symlink, a zip bomb), each refused naming the archive and the entry, with no
//! output written. Without a plugin directory there is no plugin layer. Fast tier: the grafana
//! base image is a layout the test writes (as in `hostile_bases.rs`), no tool, no network.

mod common;

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use common::rawtar::{self, Raw};
use common::root;
use infragen::digest::Digest;
use zip::write::SimpleFileOptions;

const GRAFANA: &str = "grafana/grafana-oss:12.2.1";
const PLUGINS: &str = "usr/share/grafana/plugins-infragen";

fn gate() {
    common::tier::binary(common::tier::Tier::Fast, "tests/plugins.rs");
}

fn put(dir: &Path, bytes: &[u8]) -> String {
    let d = Digest::of(bytes);
    fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    d.to_string()
}

/// An OCI layout holding a stand-in for the grafana base image; its manifest digest.
fn base_layout(dir: &Path) -> String {
    let tar = rawtar::tar(&[
        Raw::dir("usr/"),
        Raw::dir("usr/share/"),
        Raw::dir("usr/share/grafana/"),
        Raw::dir("usr/share/grafana/bin/"),
        Raw::file("usr/share/grafana/bin/grafana", b"#!/bin/false\n").mode(0o755),
    ]);
    let blob = common::gz(&tar);
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer = put(dir, &blob);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": { "type": "layers", "diff_ids": [Digest::of(&tar).to_string()] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": put(dir, &config), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": layer, "size": blob.len() }],
    }))
    .unwrap();
    let digest = put(dir, &manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": manifest.len(), "annotations": { "org.opencontainers.image.ref.name": GRAFANA },
    }]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    digest
}

/// One zip entry the test writes.
enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
}

fn zip_of(entries: &[Entry]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for e in entries {
        match e {
            Entry::File(name, data, mode) => {
                let o = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(*mode);
                w.start_file(*name, o).unwrap();
                w.write_all(data).unwrap();
            }
            Entry::Link(name, target) => {
                w.add_symlink(*name, *target, SimpleFileOptions::default())
                    .unwrap();
            }
        }
    }
    w.finish().unwrap().into_inner()
}

/// A plugin as Grafana's catalogue ships one: `<id>/plugin.json`, `<id>/module.js`.
fn plugin(id: &str) -> Vec<u8> {
    let json = format!(r#"{{"id": "{id}", "type": "datasource", "name": "{id}"}}"#);
    zip_of(&[
        Entry::File(&format!("{id}/plugin.json"), json.as_bytes(), 0o644),
        Entry::File(
            &format!("{id}/module.js"),
            b"define([], function () {});\n",
            0o644,
        ),
        Entry::File(
            &format!("{id}/gpx_{id}_linux_amd64"),
            b"\x7fELF not really\n",
            0o755,
        ),
    ])
}

/// A work directory: the base layout, a Grafana-only profile (with `grafana_plugin_dir:
/// plugins` when `with_plugins`), the committed lock with the base pinned.
struct Work {
    dir: PathBuf,
    profile: PathBuf,
    lock: PathBuf,
    layout: PathBuf,
}

fn work(dir: &Path, with_plugins: bool) -> Work {
    let layout = dir.join("layout");
    let manifest = base_layout(&layout);
    let extra: &[&str] = if with_plugins {
        &["grafana_plugin_dir: plugins"]
    } else {
        &[]
    };
    let profile = common::single_node_with_only(dir, "grafana-only.yml", "grafana", extra);
    fs::create_dir_all(dir.join("plugins")).unwrap();
    let mut lock: serde_json::Value =
        serde_json::from_slice(&fs::read(root().join("infragen.lock")).unwrap()).unwrap();
    lock["images"]["grafana"]["base"]["digest"] = manifest.into();
    let path = dir.join("infragen.lock");
    fs::write(&path, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    Work {
        dir: dir.to_path_buf(),
        profile,
        lock: path,
        layout,
    }
}

/// One run of infragen: its exit code and standard error.
fn run(args: &[&str]) -> (i32, String) {
    let o = common::infragen()
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("INFRAGEN_BASE_REGISTRY")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

impl Work {
    /// `lock --only-bases --profile`: pins the plugin archives.
    fn lock(&self) -> serde_json::Value {
        let (p, l, b) = (
            self.profile.to_str().unwrap(),
            self.lock.to_str().unwrap(),
            self.layout.to_str().unwrap(),
        );
        let (code, err) = run(&[
            "lock",
            "--only-bases",
            "--profile",
            p,
            "--lock",
            l,
            "--bases",
            b,
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_slice(&fs::read(&self.lock).unwrap()).unwrap()
    }

    /// `build` into `out` with cache `cache`.
    fn build(&self, out: &str, cache: &str) -> (i32, String) {
        let d = &self.dir;
        let args: Vec<String> = [
            "build",
            "--profile",
            self.profile.to_str().unwrap(),
            "--lock",
            self.lock.to_str().unwrap(),
            "--bases",
            self.layout.to_str().unwrap(),
            "--out",
            d.join(out).to_str().unwrap(),
            "--cache",
            d.join(cache).to_str().unwrap(),
            "--pki",
            d.join("pki").to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    }
}

/// The tar entries (path, mode, uid, mtime, is file) of every layer of the grafana image in
/// `out`, layer by layer.
/// A layer entry: path, mode, uid, mtime, whether it is a regular file.
type TarEntry = (String, u32, u64, u64, bool);

fn grafana_layers(out: &Path) -> Vec<Vec<TarEntry>> {
    let layout = out.join("10.10.10.10/oci");
    let blob = |d: &str| fs::read(layout.join("blobs/sha256").join(&d["sha256:".len()..])).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "infra-grafana")
        .expect("infra-grafana");
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(m["digest"].as_str().unwrap())).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut tar_bytes = Vec::new();
            flate2::read::GzDecoder::new(&blob(l["digest"].as_str().unwrap())[..])
                .read_to_end(&mut tar_bytes)
                .unwrap();
            let mut a = tar::Archive::new(&tar_bytes[..]);
            a.entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let h = e.header();
                    (
                        e.path()
                            .unwrap()
                            .to_string_lossy()
                            .trim_end_matches('/')
                            .to_owned(),
                        h.mode().unwrap(),
                        h.uid().unwrap(),
                        h.mtime().unwrap(),
                        h.entry_type().is_file(),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn archives_are_pinned_and_unpacked_into_their_own_layer() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let w = work(t.path(), true);
    let logs = plugin("victoriametrics-logs-datasource");
    fs::write(w.dir.join("plugins/vlogs.zip"), &logs).unwrap();
    fs::write(
        w.dir.join("plugins/static.zip"),
        plugin("marcusolsson-static-datasource"),
    )
    .unwrap();
    fs::write(w.dir.join("plugins/README.txt"), "not an archive: ignored").unwrap();
    let lock = w.lock();
    assert_eq!(
        lock["plugins"]["vlogs.zip"]["sha256"],
        infragen::digest::sha256_hex(&logs)
    );
    assert_eq!(lock["plugins"]["vlogs.zip"]["size"], logs.len());
    assert_eq!(lock["plugins"].as_object().unwrap().len(), 2, "{lock}");

    let (code, err) = w.build("out", "cache");
    assert_eq!(code, 0, "{err}");
    let layers = grafana_layers(&w.dir.join("out"));
    let with: Vec<_> = layers
        .iter()
        .filter(|l| l.iter().any(|e| e.0.starts_with(PLUGINS)))
        .collect();
    assert_eq!(with.len(), 1, "one layer holds the plugins");
    let layer = with[0];
    assert!(
        layer
            .iter()
            .all(|e| PLUGINS.starts_with(&e.0) || e.0.starts_with(PLUGINS)),
        "the layer holds the plugins alone: {layer:?}"
    );
    let epoch = lock["source_date_epoch"].as_u64().unwrap();
    let find = |p: &str| {
        layer
            .iter()
            .find(|e| e.0 == format!("{PLUGINS}/{p}"))
            .unwrap_or_else(|| panic!("{p} not in {layer:?}"))
    };
    for (p, mode, file) in [
        ("victoriametrics-logs-datasource", 0o755, false),
        ("victoriametrics-logs-datasource/plugin.json", 0o644, true),
        ("victoriametrics-logs-datasource/module.js", 0o644, true),
        (
            "victoriametrics-logs-datasource/gpx_victoriametrics-logs-datasource_linux_amd64",
            0o755,
            true,
        ),
        ("marcusolsson-static-datasource/plugin.json", 0o644, true),
    ] {
        let e = find(p);
        assert_eq!((e.1 & 0o7777, e.2, e.3, e.4), (mode, 0, epoch, file), "{p}");
    }
    // The same archives in another cache: the same image.
    let (code, err) = w.build("again", "cache2");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::read_to_string(w.dir.join("out/digests.txt")).unwrap(),
        fs::read_to_string(w.dir.join("again/digests.txt")).unwrap()
    );
}

#[test]
fn grafana_ini_points_at_the_plugin_layer_only_when_there_is_one() {
    gate();
    for with in [true, false] {
        let t = tempfile::tempdir().unwrap();
        let w = work(t.path(), with);
        let out = w.dir.join("r");
        let (code, err) = run(&[
            "render",
            "--profile",
            w.profile.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let ini =
            fs::read_to_string(out.join("10.10.10.10/grafana/etc/grafana/grafana.ini")).unwrap();
        let want = if with {
            "plugins = /usr/share/grafana/plugins-infragen\n"
        } else {
            "plugins = /var/lib/grafana/plugins\n"
        };
        assert!(ini.contains(want), "{with}: {ini}");
    }
}

#[test]
fn without_a_plugin_directory_there_is_no_plugin_layer() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let w = work(t.path(), false);
    let lock = w.lock();
    assert!(lock.get("plugins").is_none(), "{lock}");
    let (code, err) = w.build("out", "cache");
    assert_eq!(code, 0, "{err}");
    let layers = grafana_layers(&w.dir.join("out"));
    assert!(!layers.iter().flatten().any(|e| e.0.starts_with(PLUGINS)));
}

#[test]
fn an_archive_changed_after_locking_fails_the_build_naming_it() {
    gate();
    let t = tempfile::tempdir().unwrap();
    let w = work(t.path(), true);
    fs::write(w.dir.join("plugins/a.zip"), plugin("acme-datasource")).unwrap();
    w.lock();
    let changed = plugin("acme-other-datasource");
    fs::write(w.dir.join("plugins/a.zip"), &changed).unwrap();
    let (code, err) = w.build("out", "cache");
    assert_eq!(code, 1, "{err}");
    let file = w.dir.join("plugins/a.zip");
    assert!(
        err.contains(&format!(
            "{}: sha256 {} differs from the one",
            file.display(),
            infragen::digest::sha256_hex(&changed)
        )) && err.contains("infragen lock --profile"),
        "{err}"
    );
    assert!(!w.dir.join("out").exists(), "nothing written");
    // An archive the lock does not know, and a pinned one gone, are refused too.
    fs::write(w.dir.join("plugins/b.zip"), plugin("acme-b-datasource")).unwrap();
    w.lock();
    fs::remove_file(w.dir.join("plugins/b.zip")).unwrap();
    let (code, err) = w.build("out", "cache");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("plugin archive `b.zip`, pinned in") && err.contains("is missing"),
        "{err}"
    );
    fs::write(w.dir.join("plugins/c.zip"), plugin("acme-c-datasource")).unwrap();
    let (code, err) = w.build("out", "cache");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("plugin archive `b.zip`") || err.contains("`c.zip` is not pinned"),
        "{err}"
    );
}

/// A hostile archive is pinned (the lock only hashes) and refused by the build, naming the
/// archive and the entry, writing nothing.
fn refused(archive: &[u8], want: &str) {
    let t = tempfile::tempdir().unwrap();
    let w = work(t.path(), true);
    fs::write(w.dir.join("plugins/hostile.zip"), archive).unwrap();
    w.lock();
    let (code, err) = w.build("out", "cache");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("plugin archive `hostile.zip`") && err.contains(want),
        "wanted `{want}`:\n{err}"
    );
    assert!(!w.dir.join("out").exists(), "nothing written");
    eprintln!("refused:\n{}", err.trim_end());
}

#[test]
fn an_entry_climbing_out_is_refused() {
    gate();
    refused(
        &zip_of(&[Entry::File(
            "evil-panel/../../etc/cron.d/x",
            b"* * * * * root sh\n",
            0o644,
        )]),
        "entry `evil-panel/../../etc/cron.d/x` has an empty, `.` or `..` component: refused",
    );
}

#[test]
fn a_symlink_entry_is_refused() {
    gate();
    refused(
        &zip_of(&[
            Entry::File("evil-panel/plugin.json", br#"{"id": "evil-panel"}"#, 0o644),
            Entry::Link("evil-panel/module.js", "/etc/shadow"),
        ]),
        "entry `evil-panel/module.js` is a link or a special file",
    );
}

#[test]
fn a_zip_bomb_is_refused() {
    gate();
    let zeros = vec![0u8; 64 << 20];
    refused(
        &zip_of(&[
            Entry::File("bomb-panel/plugin.json", br#"{"id": "bomb-panel"}"#, 0o644),
            Entry::File("bomb-panel/module.js", &zeros, 0o644),
        ]),
        "entry `bomb-panel/module.js` unpacks more than 200 times its compressed size: refused (a zip bomb?)",
    );
}
