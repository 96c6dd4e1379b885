//! Round trips through real blob stores: the documents `write` makes parse as the `oci-spec`
//! types, `index.json` refuses bad refs and missing manifests, and `read` takes an image back.

use super::*;
use crate::oci::blob::{BlobStore, OciError};
use crate::oci::layer::{build, LayerEntry};

fn spec() -> ImageSpec {
    ImageSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        user: Some("nginx".into()),
        entrypoint: vec!["/usr/sbin/nginx".into()],
        cmd: vec!["-g".into(), "daemon off;".into()],
        env: vec!["PATH=/usr/bin".into()],
        working_dir: Some("/".into()),
        exposed_ports: vec!["80/tcp".into(), "443/tcp".into()],
        volumes: vec!["/var/log/nginx".into()],
        labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        stop_signal: Some("SIGQUIT".into()),
        created: rfc3339(0).unwrap(),
        annotations: BTreeMap::from([("org.opencontainers.image.version".into(), "1".into())]),
    }
}

#[test]
fn documents_parse_as_oci_spec_types() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let layer = build(vec![LayerEntry::file("etc/x", "x", 0o644)], 0).unwrap();
    let desc = write_image(&store, &spec(), std::slice::from_ref(&layer)).unwrap();
    assert_eq!(desc.media_type, MANIFEST_MEDIA_TYPE);

    let manifest_bytes = store.get(&desc.digest).unwrap();
    let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest.layers().len(), 1);
    assert_eq!(manifest.layers()[0].digest().to_string(), layer.digest);
    let config_digest = manifest.config().digest().to_string();
    let config_bytes = store.get(&config_digest).unwrap();
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(config.rootfs().diff_ids(), &vec![layer.diff_id.clone()]);
    assert_eq!(config.history().as_ref().map(Vec::len), Some(1));
    let run = config.config().as_ref().unwrap();
    assert_eq!(run.user().as_deref(), Some("nginx"));
    assert_eq!(run.stop_signal().as_deref(), Some("SIGQUIT"));
    let text = String::from_utf8(config_bytes).unwrap();
    assert!(
        text.contains(r#""ExposedPorts":{"443/tcp":{},"80/tcp":{}}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""Volumes":{"/var/log/nginx":{}}"#),
        "{text}"
    );

    write_index(
        dir.path(),
        &BTreeMap::from([("infra-nginx".to_owned(), desc.clone())]),
    )
    .unwrap();
    let index_bytes = std::fs::read(dir.path().join("index.json")).unwrap();
    let index: oci_spec::image::ImageIndex = serde_json::from_slice(&index_bytes).unwrap();
    assert_eq!(index.manifests()[0].digest().to_string(), desc.digest);
    assert_eq!(
        String::from_utf8(index_bytes).unwrap(),
        format!(
            r#"{{"manifests":[{{"annotations":{{"{REF_NAME}":"infra-nginx"}},"digest":"{}","mediaType":"{MANIFEST_MEDIA_TYPE}","size":{}}}],"mediaType":"{INDEX_MEDIA_TYPE}","schemaVersion":2}}"#,
            desc.digest, desc.size
        )
    );
    assert!(store.fsck().unwrap().is_empty());
}

#[test]
fn images_are_read_back_from_another_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
    let source = BlobStore::open(&from).unwrap();
    let layers = [
        build(vec![LayerEntry::file("a", "1", 0o644)], 0).unwrap(),
        build(vec![LayerEntry::file("b", "2", 0o644)], 0).unwrap(),
    ];
    let desc = write_image(&source, &spec(), &layers).unwrap();
    let name = "grafana/grafana:11.0".to_owned();
    write_index(&from, &BTreeMap::from([(name.clone(), desc.clone())])).unwrap();
    assert_eq!(
        refs(&from).unwrap(),
        BTreeMap::from([(name.clone(), desc.digest.clone())])
    );

    let store = BlobStore::open(&to).unwrap();
    let got = read_image(&from, &name, &desc.digest, &store).unwrap();
    let want: Vec<LayerRef> = layers.iter().map(LayerRef::from).collect();
    assert_eq!(got, want);
    // The imported refs build the same image as the layers they came from.
    assert_eq!(write_image(&store, &spec(), &got).unwrap(), desc);

    let wrong = crate::oci::blob::sha256_digest(b"other");
    let err = read_image(&from, &name, &wrong, &store).unwrap_err();
    assert!(err.to_string().contains("is pinned"), "{err}");
    let err = read_image(&from, "absent", &desc.digest, &store).unwrap_err();
    assert!(
        err.to_string().contains("no image is named `absent`"),
        "{err}"
    );

    // A layer ref whose blob is not in the store is an error, not a dangling manifest.
    let empty = BlobStore::open(tmp.path().join("empty")).unwrap();
    assert!(matches!(
        write_image(&empty, &spec(), &got),
        Err(OciError::MissingBlob { .. })
    ));
}

#[test]
fn index_rejects_bad_refs_and_missing_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: crate::oci::blob::sha256_digest(b"nothing"),
        size: 7,
    };
    let err = write_index(
        dir.path(),
        &BTreeMap::from([("ok".into(), missing.clone())]),
    );
    assert!(matches!(err, Err(OciError::MissingBlob { .. })));
    let err = write_index(dir.path(), &BTreeMap::from([("bad name".into(), missing)]));
    assert!(matches!(err, Err(OciError::InvalidRefName(_))));
    assert!(!dir.path().join("index.json").exists());
}
