//! Unit tests of sigstore attachments: shapes, signing, and each refusal.

use std::collections::BTreeMap;

use super::{
    payload, repository, sign_attachment, tag, verify_attachment, Attachment, Identity, Verified,
    KEY_ANNOTATION, MAX_LAYERS, SIGNATURE_ANNOTATION,
};
use crate::manifest::Digest;
use crate::sign::{PublicKey, SigningKey};

const REF: &str = "127.0.0.1:5000/infra/node:1";

fn key() -> SigningKey {
    SigningKey::generate().unwrap().1
}

fn blobs(a: &[&Attachment]) -> BTreeMap<Digest, Vec<u8>> {
    a.iter().flat_map(|a| a.blobs.iter().cloned()).collect()
}

fn check(
    a: &Attachment,
    store: &BTreeMap<Digest, Vec<u8>>,
    signed: &Digest,
    identity: &Identity,
    trusted: &[PublicKey],
) -> Result<Verified, String> {
    let fetch = |d: &Digest| {
        store
            .get(d)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no blob {d}"))
    };
    verify_attachment(&a.manifest, fetch, signed, identity, trusted).map_err(|e| format!("{e:#}"))
}

#[test]
fn the_payload_and_tag_have_the_containers_image_shape() {
    let d = Digest::of(b"m");
    let p = String::from_utf8(payload(REF, &d)).unwrap();
    assert_eq!(
        p,
        format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{REF}\"}},\"image\":{{\
             \"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"\
             }},\"optional\":{{\"creator\":\"infragen {}\"}}}}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(tag(&d), format!("sha256-{}.sig", d.hex()));
}

#[test]
fn a_new_attachment_has_one_layer_and_the_config_containers_image_writes() {
    let k = key();
    let d = Digest::of(b"m");
    let a = sign_attachment(&k, REF, &d, None).unwrap();
    assert!(a.added);
    assert_eq!(a.digest, Digest::of(&a.manifest));
    let (payload_digest, body) = &a.blobs[0];
    assert_eq!(body, &payload(REF, &d));
    let (config_digest, config) = &a.blobs[1];
    assert_eq!(
        String::from_utf8(config.clone()).unwrap(),
        format!(
            "{{\"architecture\":\"\",\"os\":\"\",\"config\":{{}},\"rootfs\":{{\"type\":\"layers\",\
             \"diff_ids\":[\"{payload_digest}\"]}}}}"
        )
    );
    let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    let sig = m["layers"][0]["annotations"][SIGNATURE_ANNOTATION]
        .as_str()
        .unwrap();
    let start = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\
         \"{config_digest}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\
         \"application/vnd.dev.cosign.simplesigning.v1+json\",\"digest\":\"{payload_digest}\",\
         \"size\":{},\"annotations\":{{\"dev.cosignproject.cosign/signature\":\"{sig}\",\
         \"dev.infragen.key\":\"{}\"}}}}]}}",
        config.len(),
        body.len(),
        k.public.id
    );
    assert_eq!(String::from_utf8(a.manifest.clone()).unwrap(), start);
}

#[test]
fn signatures_are_appended_and_a_repeated_signature_is_not() {
    let (k1, k2) = (key(), key());
    let d = Digest::of(b"m");
    let a1 = sign_attachment(&k1, REF, &d, None).unwrap();
    let a2 = sign_attachment(&k2, REF, &d, Some(&a1.manifest)).unwrap();
    assert!(a2.added);
    let m: serde_json::Value = serde_json::from_slice(&a2.manifest).unwrap();
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    assert_eq!(a2.blobs.len(), 2);
    let store = blobs(&[&a1, &a2]);
    let exact = Identity::MatchExact(REF.into());
    for k in [&k1, &k2] {
        let v = check(&a2, &store, &d, &exact, std::slice::from_ref(&k.public)).unwrap();
        assert_eq!(v.key, k.public.id);
    }
    let again = sign_attachment(&k1, REF, &d, Some(&a2.manifest)).unwrap();
    assert!(!again.added);
    assert_eq!(again.manifest, a2.manifest);
    assert_eq!(again.blobs.len(), 1, "only the config");
}

#[test]
fn an_attachment_is_refused_for_each_failed_check() {
    let (k, other) = (key(), key());
    let d = Digest::of(b"m");
    let a = sign_attachment(&k, REF, &d, None).unwrap();
    let store = blobs(&[&a]);
    let trusted = [k.public.clone()];
    let exact = Identity::MatchExact(REF.into());
    let v = check(&a, &store, &d, &exact, &trusted).unwrap();
    assert_eq!(
        (v.key, v.docker_reference.as_str(), v.layer),
        (k.public.id.clone(), REF, 0)
    );
    let repo = Identity::MatchRepository("127.0.0.1:5000/infra/node@sha256:00".into());
    check(&a, &store, &d, &repo, &trusted).unwrap();

    let refused = |r: Result<Verified, String>| r.unwrap_err();
    assert_eq!(
        refused(check(
            &a,
            &store,
            &d,
            &exact,
            std::slice::from_ref(&other.public)
        )),
        format!(
            "the signature is refused: layer 1: signed by key {} (as the layer says), which is \
             not among the 1 trusted keys",
            k.public.id
        )
    );
    let e = Digest::of(b"another image");
    assert_eq!(
        refused(check(&a, &store, &e, &exact, &trusted)),
        format!(
            "the signature is refused: layer 1: it signs manifest {d}, not this one ({e}): \
             re-tagged or substituted"
        )
    );
    let elsewhere = Identity::MatchExact("127.0.0.1:5000/infra/node:2".into());
    assert!(refused(check(&a, &store, &d, &elsewhere, &trusted))
        .ends_with("it names `127.0.0.1:5000/infra/node:1`, not `127.0.0.1:5000/infra/node:2`"));
    let other_repo = Identity::MatchRepository("127.0.0.1:5000/infra/app:1".into());
    assert!(
        refused(check(&a, &store, &d, &other_repo, &trusted)).ends_with(
            "it names repository `127.0.0.1:5000/infra/node`, not `127.0.0.1:5000/infra/app`"
        )
    );

    // A registry that returns other bytes than the digest names.
    let mut forged = store.clone();
    forged.insert(a.blobs[0].0.clone(), b"{}".to_vec());
    assert!(
        refused(check(&a, &forged, &d, &exact, &trusted)).ends_with(&format!(
            "the registry returned a payload that is not {}",
            a.blobs[0].0
        ))
    );

    // Without our key annotation the refusal cannot name the key.
    let bare = String::from_utf8(a.manifest.clone())
        .unwrap()
        .replace(&format!(",\"{KEY_ANNOTATION}\":\"{}\"", k.public.id), "");
    let bare = Attachment {
        manifest: bare.into_bytes(),
        ..a.clone()
    };
    assert!(refused(check(
        &bare,
        &store,
        &d,
        &exact,
        std::slice::from_ref(&other.public)
    ))
    .ends_with("the signature verifies with none of the 1 trusted keys"));
}

#[test]
fn an_attachment_without_signatures_or_with_too_many_layers_is_refused() {
    let d = Digest::of(b"m");
    let k = key();
    let a = sign_attachment(&k, REF, &d, None).unwrap();
    let empty = String::from_utf8(a.manifest.clone()).unwrap().replace(
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.in-toto+json",
    );
    let empty = Attachment {
        manifest: empty.into_bytes(),
        ..a.clone()
    };
    let exact = Identity::MatchExact(REF.into());
    let err = check(
        &empty,
        &blobs(&[&a]),
        &d,
        &exact,
        std::slice::from_ref(&k.public),
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "not signed: the attachment `{}` holds no signature layer \
             (`application/vnd.dev.cosign.simplesigning.v1+json`)",
            tag(&d)
        )
    );
    let mut m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    let layer = m["layers"][0].clone();
    m["layers"] = serde_json::Value::Array(vec![layer; MAX_LAYERS + 1]);
    let many = serde_json::to_vec(&m).unwrap();
    let err = sign_attachment(&k, REF, &d, Some(&many)).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "the existing attachment: the attachment has 65 layers, more than the 64 read"
    );
}

#[test]
fn references_need_a_tag_or_digest() {
    let (k, d) = (key(), Digest::of(b"m"));
    for bad in ["", "reg:5000/app", "app", "reg/app:1 x"] {
        let err = sign_attachment(&k, bad, &d, None).unwrap_err().to_string();
        assert!(
            err.contains("is not a docker reference with a tag or digest"),
            "{bad}: {err}"
        );
    }
    for (r, repo) in [
        ("reg:5000/app:1", "reg:5000/app"),
        ("reg:5000/app@sha256:ab", "reg:5000/app"),
        ("reg:5000/app:1@sha256:ab", "reg:5000/app"),
        ("reg:5000/app", "reg:5000/app"),
        ("app:latest", "app"),
    ] {
        assert_eq!(repository(r), repo, "{r}");
    }
}
