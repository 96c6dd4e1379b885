//! Signing keys and bundle signatures, in the sigstore "simple signing" shape.
//!
//! Keys are ECDSA P-256, as cosign and `skopeo --sign-by-sigstore-private-key` use: the public
//! key is a PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`), the one a `sigstoreSigned` policy's
//! `keyPath` names, so the registry work signs images with the same keys; the private key is a
//! PEM `PRIVATE KEY` (PKCS#8), kept 0600 on the build side.
//!
//! A bundle's signature (`manifest.sig` beside `manifest.json`) is what a cosign signature
//! layer holds: a simple-signing payload naming the digest of the signed document (here the
//! exact bytes of `manifest.json`, which carry the generation id, the host and every file's
//! digest, mode and owner) and the host as identity, and an ASN.1 ECDSA-SHA256 signature of the
//! payload, base64 — plus the id of the key (sha256 of its `SubjectPublicKeyInfo`), so that a
//! refusal can say which key signed.
//!
//! [`sealed`] reads and writes the same private key in sigstore's encrypted form, the one
//! skopeo signs with; [`attach`] signs and verifies OCI images with sigstore attachments.

pub mod attach;
pub mod sealed;

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::manifest::Digest;

/// The DER prefix of a P-256 `SubjectPublicKeyInfo` before its 65-byte uncompressed point.
const SPKI_P256: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The simple-signing payload type cosign writes.
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// Where a host keeps the public keys it trusts (below its root).
pub const TRUSTED: &str = "etc/infragen/trusted";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = b64().encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn unpem(label: &str, text: &str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .with_context(|| format!("no `{begin}` block"))?;
    let rest = &text[start + begin.len()..];
    let stop = rest
        .find(&end)
        .with_context(|| format!("no `{end}` line"))?;
    let body: String = rest[..stop].split_whitespace().collect();
    b64()
        .decode(body)
        .with_context(|| format!("the {label} block is not base64"))
}

/// A public key a host trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The uncompressed P-256 point.
    point: Vec<u8>,
    /// sha256 of the `SubjectPublicKeyInfo`.
    pub id: Digest,
}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` holding a P-256 key.
    pub fn from_pem(text: &str) -> Result<Self> {
        let der = unpem("PUBLIC KEY", text)?;
        if der.len() != SPKI_P256.len() + 65 || der[..SPKI_P256.len()] != SPKI_P256 {
            bail!("not an ECDSA P-256 public key");
        }
        Ok(Self {
            point: der[SPKI_P256.len()..].to_vec(),
            id: Digest::of(&der),
        })
    }

    /// Whether `sig` (ASN.1 ECDSA-SHA256) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, sig)
            .is_ok()
    }

    /// The PEM text.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_P256.to_vec();
        der.extend_from_slice(&self.point);
        pem("PUBLIC KEY", &der)
    }
}

/// A signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    /// The PKCS#8 DER it was read from, to write it in sigstore's encrypted form.
    pkcs8: Vec<u8>,
    /// Its public half.
    pub public: PublicKey,
}

impl SigningKey {
    /// Reads a P-256 private key from `path`: a PEM `PRIVATE KEY` (PKCS#8), or sigstore's
    /// encrypted key, opened with the passphrase in `$INFRAGEN_KEY_PASSPHRASE`.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, None)
    }

    /// As [`SigningKey::load`], with the passphrase for an encrypted key given (e.g. read by
    /// [`sealed::read_passphrase_file`]); `None` falls back to `$INFRAGEN_KEY_PASSPHRASE`.
    pub fn load_with(path: &Path, passphrase: Option<&[u8]>) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading signing key {}", path.display()))?;
        let key = if sealed::label(&text).is_some() {
            let from_env = sealed::passphrase_from_env();
            let Some(pass) = passphrase.or(from_env.as_deref()) else {
                bail!(
                    "signing key {} is encrypted and no passphrase was given\nhint: pass \
                     `--passphrase-file FILE` or set `${}` (empty for a key written without one)",
                    path.display(),
                    sealed::PASSPHRASE_ENV
                );
            };
            sealed::open(&text, pass).and_then(|der| Self::from_pkcs8(&der))
        } else {
            Self::from_pem(&text)
        };
        key.with_context(|| format!("signing key {}", path.display()))
    }

    fn from_pem(text: &str) -> Result<Self> {
        Self::from_pkcs8(&unpem("PRIVATE KEY", text)?)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| anyhow::anyhow!("not an ECDSA P-256 PKCS#8 key: {e}"))?;
        let mut spki = SPKI_P256.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        let public = PublicKey {
            point: pair.public_key().as_ref().to_vec(),
            id: Digest::of(&spki),
        };
        Ok(Self {
            pair,
            pkcs8: der.to_vec(),
            public,
        })
    }

    /// The key in sigstore's encrypted form (`ENCRYPTED COSIGN PRIVATE KEY`), sealed with
    /// `passphrase`: the file `skopeo --sign-by-sigstore-private-key` signs with.
    pub fn to_sealed_pem(&self, passphrase: &[u8]) -> Result<String> {
        sealed::seal(&self.pkcs8, passphrase)
    }

    /// The ASN.1 ECDSA-SHA256 signature of `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| anyhow::anyhow!("signing failed"))
    }

    /// A new key pair: (private key PEM, the key).
    pub fn generate() -> Result<(String, Self)> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|_| anyhow::anyhow!("generating a P-256 key failed"))?;
        let text = pem("PRIVATE KEY", pkcs8.as_ref());
        let key = Self::from_pem(&text)?;
        Ok((text, key))
    }

    /// Signs `document` (the exact bytes of a manifest) for `identity` (the host).
    pub fn sign(&self, document: &[u8], identity: &str) -> Result<Vec<u8>> {
        let payload = crate::oci::json::canonical(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": Digest::of(document)},
                "type": PAYLOAD_TYPE,
            },
            "optional": null,
        }));
        let sig = self.sign_bytes(&payload)?;
        let file = Signature {
            key: self.public.id.clone(),
            payload: b64().encode(&payload),
            signature: b64().encode(sig),
        };
        Ok(crate::oci::json::canonical(
            &serde_json::to_value(file).expect("serialisable"),
        ))
    }
}

/// `manifest.sig`.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::struct_field_names)] // the field names are the file format's
#[serde(deny_unknown_fields)]
struct Signature {
    /// The signing key's id.
    key: Digest,
    /// The simple-signing payload, base64.
    payload: String,
    /// ASN.1 ECDSA-SHA256 over the payload bytes, base64.
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    #[allow(dead_code)]
    optional: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: Digest,
}

/// Checks that `sig` is a signature of exactly `document` for `identity` by one of `trusted`;
/// returns the id of the key that signed. Each refusal says why: no trusted key made it, it
/// does not verify, or it signs another document or host.
pub fn verify(
    document: &[u8],
    sig: &[u8],
    identity: &str,
    trusted: &[PublicKey],
) -> Result<Digest> {
    let sig: Signature =
        serde_json::from_slice(sig).context("manifest.sig: not a signature file")?;
    let Some(key) = trusted.iter().find(|k| k.id == sig.key) else {
        bail!(
            "signed by key {}, which is not among the {} trusted keys",
            sig.key,
            trusted.len()
        );
    };
    let payload = b64()
        .decode(&sig.payload)
        .context("manifest.sig: the payload is not base64")?;
    let raw = b64()
        .decode(&sig.signature)
        .context("manifest.sig: the signature is not base64")?;
    if !key.verifies(&payload, &raw) {
        bail!("the signature does not verify with key {}", key.id);
    }
    let p: Payload =
        serde_json::from_slice(&payload).context("manifest.sig: a malformed payload")?;
    if p.critical.kind != PAYLOAD_TYPE {
        bail!("manifest.sig: payload type `{}`", p.critical.kind);
    }
    let want = Digest::of(document);
    if p.critical.image.digest != want {
        bail!(
            "the signature is for manifest {}, not this one ({want}): the manifest changed after it was signed",
            p.critical.image.digest
        );
    }
    if p.critical.identity.reference != identity {
        bail!(
            "the signature is for host `{}`, not `{identity}`",
            p.critical.identity.reference
        );
    }
    Ok(sig.key)
}

/// The public keys in `<root>/etc/infragen/trusted/*.pub`, read without following a link out
/// of `root`; a file there that is not a P-256 public key is an error naming it.
pub fn trusted_keys(root: &Path) -> Result<Vec<PublicKey>> {
    use crate::fsx::{Kind, Links, Root};
    let r = Root::open(root, Links::InRoot)?;
    let dir = Path::new(TRUSTED);
    if !r.meta(dir)?.is_some_and(|m| m.kind == Kind::Dir) {
        return Ok(Vec::new());
    }
    let d = r.sub(dir)?;
    let mut keys = Vec::new();
    for name in d.list()? {
        if !name.to_string_lossy().ends_with(".pub") {
            continue;
        }
        let text = String::from_utf8(d.read(Path::new(&name))?).unwrap_or_default();
        keys.push(PublicKey::from_pem(&text).with_context(|| {
            format!("trusted key {}", root.join(TRUSTED).join(&name).display())
        })?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::{verify, PublicKey, SigningKey};

    #[test]
    fn a_signature_verifies_only_for_its_document_host_and_key() {
        let (_, key) = SigningKey::generate().unwrap();
        let (_, other) = SigningKey::generate().unwrap();
        let public = PublicKey::from_pem(&key.public.to_pem()).unwrap();
        assert_eq!(public, key.public);
        let doc = b"{\"host\":\"127.0.0.1\"}";
        let sig = key.sign(doc, "127.0.0.1").unwrap();
        let trusted = [public];
        verify(doc, &sig, "127.0.0.1", &trusted).unwrap();
        let err = |r: anyhow::Result<_>| format!("{:#}", r.unwrap_err());
        assert!(err(verify(b"{}", &sig, "127.0.0.1", &trusted)).contains("changed after"));
        assert!(err(verify(doc, &sig, "127.0.0.2", &trusted)).contains("for host"));
        assert!(err(verify(doc, &sig, "127.0.0.1", &[])).contains("not among"));
        let forged = other.sign(doc, "127.0.0.1").unwrap();
        assert!(err(verify(doc, &forged, "127.0.0.1", &trusted)).contains("not among"));
        // A signature made by another key but labelled with the trusted key's id.
        let relabelled = String::from_utf8(forged)
            .unwrap()
            .replace(other.public.id.as_str(), key.public.id.as_str());
        assert!(
            err(verify(doc, relabelled.as_bytes(), "127.0.0.1", &trusted))
                .contains("does not verify")
        );
    }

    #[test]
    fn a_key_loads_from_either_file_form() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, key) = SigningKey::generate().unwrap();
        let plain = dir.path().join("k.key");
        std::fs::write(&plain, pem).unwrap();
        assert_eq!(SigningKey::load(&plain).unwrap().public, key.public);
        let sealed = dir.path().join("k.sigstore.key");
        std::fs::write(&sealed, key.to_sealed_pem(b"pass").unwrap()).unwrap();
        let loaded = SigningKey::load_with(&sealed, Some(b"pass")).unwrap();
        assert_eq!(loaded.public, key.public);
        let err = format!(
            "{:#}",
            SigningKey::load_with(&sealed, Some(b"nope")).err().unwrap()
        );
        assert!(
            err.starts_with(&format!(
                "signing key {}: the passphrase does not open this key\nhint:",
                sealed.display()
            )),
            "{err}"
        );
    }
}
