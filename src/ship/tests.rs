//! The push logic against the static tree: a small output of two hosts written here.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::*;
use crate::manifest::{FileEntry, ProfileRef, VERSION};

fn put_blob(layout: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    fs::write(layout.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    d
}

/// An image of one shared layer and one own layer; its manifest digest.
fn image(layout: &Path, own: &[u8]) -> Digest {
    let shared = put_blob(layout, b"shared layer");
    let mine = put_blob(layout, own);
    let config_json = format!("{{\"c\":\"{}\"}}", String::from_utf8_lossy(own));
    let config = put_blob(layout, config_json.as_bytes());
    let desc = |d: &Digest, n: usize| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{n}}}"#
        )
    };
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{}}},"layers":[{},{}]}}"#,
        config_json.len(),
        desc(&shared, 12),
        desc(&mine, own.len())
    );
    put_blob(layout, m.as_bytes())
}

/// A bundle for `host` with images `infra-a` (the same for every host) and `infra-<host
/// suffix>`, a unit and the given extra files.
fn bundle(out: &Path, host: &str, extra: &[(&str, &[u8])]) {
    let dir = out.join(host);
    let layout = dir.join("oci");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let a = image(&layout, b"layer a");
    let own = image(&layout, host.as_bytes());
    let entry = |name: &str, d: &Digest| {
        format!(
            r#"{{"annotations":{{"org.opencontainers.image.ref.name":"{name}"}},"digest":"{d}","mediaType":"{MANIFEST_MEDIA_TYPE}","size":1}}"#
        )
    };
    let suffix = host.rsplit('.').next().unwrap();
    fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
            entry("infra-a", &a),
            entry(&format!("infra-h{suffix}"), &own)
        ),
    )
    .unwrap();
    let mut files: Vec<(String, Vec<u8>)> =
        vec![("units/infra-a.service".into(), b"[Unit]\n".to_vec())];
    files.extend(extra.iter().map(|(p, b)| ((*p).to_owned(), b.to_vec())));
    let mut listed = BTreeMap::new();
    for (p, b) in &files {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b).unwrap();
    }
    for e in walkdir::WalkDir::new(&dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e
                .path()
                .strip_prefix(&dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let digest = Digest::of(&fs::read(e.path()).unwrap());
            listed.insert(
                rel,
                FileEntry {
                    digest,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            );
        }
    }
    // Secrets as `.age` files make a sealed manifest (format 3, with its recipients).
    let sealed = listed
        .keys()
        .any(|p| p.starts_with("secrets/") && Path::new(p).extension().is_some_and(|e| e == "age"));
    let mut m = Manifest {
        version: if sealed {
            crate::manifest::VERSION_SEALED
        } else {
            VERSION
        },
        infragen: "0".into(),
        host: host.into(),
        profile: ProfileRef {
            name: "p".into(),
            digest: "d".into(),
        },
        version_string: "v".into(),
        components: BTreeMap::new(),
        incomplete: vec![],
        node: None,
        files: listed,
        generation: None,
        recipients: sealed.then(|| {
            vec![crate::age::Identity::generate()
                .unwrap()
                .recipient()
                .to_string()]
        }),
    };
    m.generation = Some(m.compute_generation());
    fs::write(dir.join("manifest.json"), m.to_canonical()).unwrap();
}

/// Every file of `dir` with its inode and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.path().display().to_string(),
                (m.ino(), m.mtime(), m.mtime_nsec()),
            )
        })
        .collect()
}

#[test]
fn the_static_tree_is_laid_out_linked_and_left_alone_when_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    bundle(&out, "10.0.0.1", &[("secrets/a/key.age", b"age-encrypted")]);
    bundle(&out, "10.0.0.2", &[]);
    let root = tmp.path().join("registry");
    let mut sink = StaticTree::new(&root);
    let s = push(
        &out,
        &mut sink,
        "infragen",
        None,
        &crate::progress::Reporter::silent(),
    )
    .unwrap();
    // Images: the shared layer, layer a and config a, then an own layer and config per host
    // (the shared layer mounted into each host's repository). The bundle repository: `{}`,
    // the unit and oci-layout (the same for both hosts: once), a secret, two index.json and
    // two manifest.json.
    assert_eq!(s.hosts, 2);
    assert_eq!((s.uploaded, s.mounted, s.skipped), (7 + 8, 2, 3), "{s}");
    // Image manifests: infra-a once, one own image per host; bundle tags: 2 per host.
    assert_eq!(s.manifests, 3 + 4, "{s}");
    let v2 = root.join("v2/infragen");
    let shared = Digest::of(b"shared layer");
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    let a = v2.join("infra-a/blobs").join(shared.as_str());
    assert_eq!(
        ino(&a),
        ino(&v2.join("infra-h1/blobs").join(shared.as_str()))
    );
    assert_eq!(
        ino(&a),
        ino(&v2.join("infra-h2/blobs").join(shared.as_str()))
    );
    assert_eq!(fs::read(&a).unwrap(), b"shared layer");

    let bundle_manifest = fs::read(v2.join("bundle/manifests/10.0.0.1")).unwrap();
    let m = Manifest::parse(&fs::read(out.join("10.0.0.1/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        fs::read(v2.join("bundle/manifests").join(m.id())).unwrap(),
        bundle_manifest
    );
    assert_eq!(
        fs::read(
            v2.join("bundle/manifests")
                .join(Digest::of(&bundle_manifest).as_str())
        )
        .unwrap(),
        bundle_manifest
    );
    let files = bundle_files(&bundle_manifest).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "manifest.json",
            "oci/index.json",
            "oci/oci-layout",
            "secrets/a/key.age",
            "units/infra-a.service"
        ]
    );
    for f in &files {
        let blob = v2.join("bundle/blobs").join(f.digest.as_str());
        assert_eq!(
            fs::read(blob).unwrap(),
            fs::read(out.join("10.0.0.1").join(&f.path)).unwrap()
        );
    }

    // Again: nothing written, not even touched.
    let before = snapshot(&root);
    let mut again = StaticTree::new(&root);
    let s = push(
        &out,
        &mut again,
        "infragen",
        None,
        &crate::progress::Reporter::silent(),
    )
    .unwrap();
    assert_eq!(
        (s.uploaded, s.mounted, s.manifests, again.written),
        (0, 0, 0, 0),
        "{s}"
    );
    assert_eq!(snapshot(&root), before);
    assert!(
        s.to_string()
            .starts_with("2 hosts: 0 blobs uploaded (0 B), 0 mounted"),
        "{s}"
    );
}

#[test]
fn a_secret_in_clear_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    bundle(&out, "10.0.0.1", &[("secrets/a/key.age", b"x")]);
    bundle(
        &out,
        "10.0.0.2",
        &[
            ("secrets/grafana/admin-password", b"x"),
            ("secrets/z/zz", b"y"),
        ],
    );
    let root = tmp.path().join("registry");
    let e = format!(
        "{:#}",
        push(
            &out,
            &mut StaticTree::new(&root),
            "infragen",
            None,
            &crate::progress::Reporter::silent()
        )
        .unwrap_err()
    );
    assert_eq!(
        e,
        "host `10.0.0.2`: `secrets/grafana/admin-password` is a secret in clear (not an `.age` file); refusing to push the bundle\nhint: run `infragen host init` on the host, put its key in the profile as `infragen_host_key`, and rebuild"
    );
    assert!(!root.exists());
}

#[test]
fn a_tag_moves_and_the_tree_refuses_what_it_cannot_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = StaticTree::new(tmp.path());
    let one = br#"{"a":1}"#;
    let two = br#"{"a":2}"#;
    t.put_manifest("x/y", "v1", MANIFEST_MEDIA_TYPE, one)
        .unwrap();
    t.put_manifest("x/y", "v1", MANIFEST_MEDIA_TYPE, two)
        .unwrap();
    assert_eq!(
        t.manifest_digest("x/y", "v1").unwrap(),
        Some(Digest::of(two))
    );
    assert_eq!(
        t.manifest_digest("x/y", Digest::of(one).as_str()).unwrap(),
        Some(Digest::of(one))
    );
    assert_eq!(t.written, 4);
    assert!(t
        .put_manifest("x/y", "v1", "application/vnd.oci.image.index.v1+json", one)
        .is_err());
    assert!(t
        .put_manifest("x/../y", "v1", MANIFEST_MEDIA_TYPE, one)
        .is_err());
    assert!(t
        .put_manifest("x/y", "../v1", MANIFEST_MEDIA_TYPE, one)
        .is_err());
    assert!(t
        .put_manifest("x/y", Digest::of(two).as_str(), MANIFEST_MEDIA_TYPE, one)
        .is_err());
    let src = tmp.path().join("src");
    fs::write(&src, b"not what the digest says").unwrap();
    let e = format!(
        "{:#}",
        t.put_blob("x/y", &Digest::of(b"other"), 24, &src, &mut |_, _| {})
            .unwrap_err()
    );
    assert!(e.contains("hashing to"), "{e}");
    assert_eq!(
        fs::read_dir(tmp.path().join("v2/x/y/blobs"))
            .unwrap()
            .count(),
        0,
        "no file left"
    );
}
