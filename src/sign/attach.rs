//! Sigstore attachment signatures of OCI images: what `skopeo copy
//! --sign-by-sigstore-private-key` writes and a containers-policy `sigstoreSigned` requirement
//! checks when `use-sigstore-attachments: true` is set in `registries.d`.
//!
//! The signatures of the manifest with digest `sha256:<hex>` live in the same repository, in an
//! OCI image manifest tagged `sha256-<hex>.sig`. Each layer is one signature: its blob is a
//! simple-signing payload ([`payload`]: the signed manifest digest and docker reference), of media
//! type [`SIGNATURE_MEDIA_TYPE`], and its annotation [`SIGNATURE_ANNOTATION`] holds the base64
//! ASN.1 ECDSA-SHA256 signature of the blob's bytes. The config is the image config
//! containers/image writes for it, with the layers' digests as `rootfs.diff_ids`. Layers we add
//! also carry [`KEY_ANNOTATION`], the signing key's id: sigstore signatures do not name their key,
//! and a refusal can then say which key signed (it is a label, never trusted).
//!
//! The manifest and config are written byte for byte as containers/image serialises them (Go
//! struct order, no spaces), so an attachment we extend and one skopeo extends have one shape.
//!
//! This module is pure: no HTTP. A registry client uploads [`Attachment::blobs`] and puts
//! [`Attachment::manifest`] at [`Attachment::tag`]; to verify it fetches the tag's manifest and
//! hands over a blob fetcher.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{PublicKey, SigningKey, PAYLOAD_TYPE};
use crate::manifest::Digest;

/// The media type of a signature layer (a simple-signing payload).
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation naming the signing key's id (ours only; informative).
pub const KEY_ANNOTATION: &str = "dev.infragen.key";
/// The media type of the attachment's config.
pub use crate::oci::layout::CONFIG_MEDIA_TYPE;
/// The media type of the attachment manifest.
pub use crate::oci::layout::MANIFEST_MEDIA_TYPE;
/// At most this many layers in an attachment manifest.
pub const MAX_LAYERS: usize = 64;
/// At most this many bytes in one payload.
pub const MAX_PAYLOAD: u64 = 64 * 1024;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The tag of the attachment holding the signatures of the manifest `signed`.
pub fn tag(signed: &Digest) -> String {
    format!("sha256-{}.sig", signed.hex())
}

/// The simple-signing payload naming `manifest_digest` as `docker_reference`, as containers/image
/// writes it (sorted keys, no spaces), with `optional.creator` and no timestamp.
pub fn payload(docker_reference: &str, manifest_digest: &Digest) -> Vec<u8> {
    crate::oci::json::canonical(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": {"creator": concat!("infragen ", env!("CARGO_PKG_VERSION"))},
    }))
}

/// An OCI descriptor, with the fields containers/image writes, in its order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// The attachment manifest; unknown fields of a manifest read are ignored (and not written back).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default)]
    media_type: String,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
    let m: Manifest =
        serde_json::from_slice(bytes).context("the attachment is not an OCI image manifest")?;
    if m.schema_version != 2 {
        bail!(
            "the attachment has schemaVersion {}, not 2",
            m.schema_version
        );
    }
    if !m.media_type.is_empty() && m.media_type != MANIFEST_MEDIA_TYPE {
        bail!(
            "the attachment has media type `{}`, not `{MANIFEST_MEDIA_TYPE}`",
            m.media_type
        );
    }
    if m.layers.len() > MAX_LAYERS {
        bail!(
            "the attachment has {} layers, more than the {MAX_LAYERS} read",
            m.layers.len()
        );
    }
    Ok(m)
}

/// The config containers/image writes for an attachment with these layers.
fn config(layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    #[allow(clippy::struct_field_names)] // the format's field names
    struct Config<'a> {
        architecture: &'a str,
        os: &'a str,
        config: BTreeMap<String, String>,
        rootfs: RootFs<'a>,
    }
    #[derive(Serialize)]
    struct RootFs<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        diff_ids: Vec<&'a str>,
    }
    serde_json::to_vec(&Config {
        architecture: "",
        os: "",
        config: BTreeMap::new(),
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.digest.as_str()).collect(),
        },
    })
    .expect("serialisable")
}

/// The manifest and config bytes of an attachment with `layers`.
fn build(layers: Vec<Descriptor>) -> (Vec<u8>, Vec<u8>) {
    let config = config(&layers);
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: Digest::of(&config).to_string(),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers,
    };
    (serde_json::to_vec(&manifest).expect("serialisable"), config)
}

/// An attachment manifest to put, and the blobs it needs.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The tag to put the manifest at: `sha256-<hex>.sig`.
    pub tag: String,
    /// The manifest's media type (the `Content-Type` of the put).
    pub media_type: &'static str,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// The blobs the registry may not have yet: the new payload (when one was added) and the
    /// config. Existing layers' blobs are not repeated.
    pub blobs: Vec<(Digest, Vec<u8>)>,
    /// Whether a signature was added (false: `key` had already signed this payload).
    pub added: bool,
}

/// Signs the manifest `manifest_digest` as `docker_reference` (a name with a tag or digest,
/// e.g. `registry:5000/infra/node:1`) with `key`, as one more layer of the `existing` attachment
/// manifest (skopeo appends too) or of a new one.
pub fn sign_attachment(
    key: &SigningKey,
    docker_reference: &str,
    manifest_digest: &Digest,
    existing: Option<&[u8]>,
) -> Result<Attachment> {
    check_reference(docker_reference)?;
    let mut layers = match existing {
        Some(bytes) => {
            parse_manifest(bytes)
                .context("the existing attachment")?
                .layers
        }
        None => Vec::new(),
    };
    let body = payload(docker_reference, manifest_digest);
    let body_digest = Digest::of(&body);
    // The payload has no timestamp: a key that signs the same reference again finds its layer.
    let already = layers.iter().any(|l| {
        l.media_type == SIGNATURE_MEDIA_TYPE
            && l.digest == body_digest.as_str()
            && l.annotations
                .get(SIGNATURE_ANNOTATION)
                .and_then(|s| b64().decode(s).ok())
                .is_some_and(|s| key.public.verifies(&body, &s))
    });
    let mut blobs = Vec::new();
    if !already {
        if layers.len() >= MAX_LAYERS {
            bail!(
                "the attachment `{}` already holds {MAX_LAYERS} layers\nhint: remove old \
                 signatures from it (delete the tag) and sign again",
                tag(manifest_digest)
            );
        }
        let sig = key.sign_bytes(&body)?;
        layers.push(Descriptor {
            media_type: SIGNATURE_MEDIA_TYPE.into(),
            digest: body_digest.to_string(),
            size: body.len() as u64,
            annotations: BTreeMap::from([
                (SIGNATURE_ANNOTATION.to_owned(), b64().encode(sig)),
                (KEY_ANNOTATION.to_owned(), key.public.id.to_string()),
            ]),
        });
        blobs.push((body_digest, body));
    }
    let (manifest, config) = build(layers);
    blobs.push((Digest::of(&config), config));
    Ok(Attachment {
        tag: tag(manifest_digest),
        media_type: MANIFEST_MEDIA_TYPE,
        digest: Digest::of(&manifest),
        manifest,
        blobs,
        added: !already,
    })
}

/// A docker reference must name a tag or a digest (containers/image refuses a bare name).
fn check_reference(r: &str) -> Result<()> {
    let named = r.contains('@') || r.rsplit('/').next().is_some_and(|last| last.contains(':'));
    if r.is_empty() || !named || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "`{r}` is not a docker reference with a tag or digest\nhint: e.g. \
             `registry:5000/infra/node:1`"
        );
    }
    Ok(())
}

/// The repository of a docker reference: without its `@digest` and `:tag`.
pub fn repository(reference: &str) -> &str {
    let r = reference.split_once('@').map_or(reference, |(n, _)| n);
    match r.rfind(['/', ':']) {
        Some(i) if r.as_bytes()[i] == b':' => &r[..i],
        _ => r,
    }
}

/// Which docker reference a signature must name (containers-policy `signedIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Exactly this reference (`matchExact`).
    MatchExact(String),
    /// Any reference in the repository of this one (`matchRepository`): a signature of
    /// `reg/app:1` is accepted for `reg/app:2` and `reg/app@sha256:…`. Names are compared as
    /// written; docker.io short names are not expanded.
    MatchRepository(String),
    /// Any reference: the signature binds the digest alone. For bundles, whose host binding is
    /// the signed `manifest.json` itself, pulled from mirrors and static trees under names the
    /// signer never saw.
    Any,
}

impl Identity {
    fn check(&self, signed: &str) -> Result<()> {
        match self {
            Self::MatchExact(want) if signed != want => {
                bail!("it names `{signed}`, not `{want}`")
            }
            Self::MatchRepository(want) if repository(signed) != repository(want) => bail!(
                "it names repository `{}`, not `{}`",
                repository(signed),
                repository(want)
            ),
            _ => Ok(()),
        }
    }
}

/// What an accepted signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The id of the trusted key that signed.
    pub key: Digest,
    /// The docker reference the payload names.
    pub docker_reference: String,
    /// The layer that carries the signature (0-based).
    pub layer: usize,
}

/// Accepts the attachment `manifest` if one of its signature layers is a signature by one of
/// `trusted` of a payload naming exactly `signed` (the digest of the image manifest) and a
/// reference `identity` accepts. `fetch_blob` returns a layer's blob (a registry `GET
/// /v2/<repo>/blobs/<digest>`); what it returns is checked against the digest. A refusal lists
/// why each signature failed.
pub fn verify_attachment(
    manifest: &[u8],
    fetch_blob: impl Fn(&Digest) -> Result<Vec<u8>>,
    signed: &Digest,
    identity: &Identity,
    trusted: &[PublicKey],
) -> Result<Verified> {
    let m = parse_manifest(manifest)?;
    let mut reasons = Vec::new();
    for (i, layer) in m.layers.iter().enumerate() {
        if layer.media_type != SIGNATURE_MEDIA_TYPE {
            continue;
        }
        match verify_layer(layer, i, &fetch_blob, signed, identity, trusted) {
            Ok(v) => return Ok(v),
            Err(e) => reasons.push(format!("layer {}: {e:#}", i + 1)),
        }
    }
    match reasons.len() {
        0 => bail!(
            "not signed: the attachment `{}` holds no signature layer (`{SIGNATURE_MEDIA_TYPE}`)",
            tag(signed)
        ),
        1 => bail!("the signature is refused: {}", reasons[0]),
        n => bail!(
            "none of the {n} signatures is accepted:\n  {}",
            reasons.join("\n  ")
        ),
    }
}

fn verify_layer(
    layer: &Descriptor,
    index: usize,
    fetch_blob: &impl Fn(&Digest) -> Result<Vec<u8>>,
    signed: &Digest,
    identity: &Identity,
    trusted: &[PublicKey],
) -> Result<Verified> {
    let digest = Digest::parse(&layer.digest)?;
    if layer.size > MAX_PAYLOAD {
        bail!("a payload of {} bytes, more than {MAX_PAYLOAD}", layer.size);
    }
    let Some(sig) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
        bail!("no `{SIGNATURE_ANNOTATION}` annotation");
    };
    let sig = b64()
        .decode(sig)
        .with_context(|| format!("the `{SIGNATURE_ANNOTATION}` annotation is not base64"))?;
    let body = fetch_blob(&digest).with_context(|| format!("fetching payload {digest}"))?;
    if body.len() as u64 > MAX_PAYLOAD || Digest::of(&body) != digest {
        bail!("the registry returned a payload that is not {digest}");
    }
    let Some(key) = trusted.iter().find(|k| k.verifies(&body, &sig)) else {
        let n = trusted.len();
        match layer.annotations.get(KEY_ANNOTATION) {
            Some(id) => bail!(
                "signed by key {id} (as the layer says), which is not among the {n} trusted keys"
            ),
            None => bail!("the signature verifies with none of the {n} trusted keys"),
        }
    };
    let p: super::Payload = serde_json::from_slice(&body)
        .context("a malformed payload (signed, but not simple-signing JSON)")?;
    if p.critical.kind != PAYLOAD_TYPE {
        bail!("payload type `{}`, not `{PAYLOAD_TYPE}`", p.critical.kind);
    }
    if p.critical.image.digest != *signed {
        bail!(
            "it signs manifest {}, not this one ({signed}): re-tagged or substituted",
            p.critical.image.digest
        );
    }
    let reference = p.critical.identity.reference;
    identity.check(&reference)?;
    Ok(Verified {
        key: key.id.clone(),
        docker_reference: reference,
        layer: index,
    })
}

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
