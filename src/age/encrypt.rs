//! The encoder: age v1 files whose random values are derived, so that a build is reproducible.
//!
//! age draws the file key, each stanza's ephemeral X25519 secret and the payload nonce at
//! random. Here they come from one seed, HMAC-SHA256 keyed with the build's sealing key over the
//! context (which host and file), the recipients and the plaintext: the same inputs give the
//! same bytes, anything else gives unrelated values. What that reveals is in docs/trust.md.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use base64::Engine as _;
use chacha20poly1305::aead::Aead as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

use super::{
    b64, chunk_nonce, cipher, hkdf, mac_key, payload_key, Recipient, CHUNK, MAGIC, MAX_PLAINTEXT,
    X25519_INFO,
};

/// The seed every random value of one file is derived from.
fn seed(plaintext: &[u8], recipients: &[Recipient], key: &[u8; 32], context: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"infragen age seed v1\0");
    mac.update(&(context.len() as u64).to_be_bytes());
    mac.update(context.as_bytes());
    mac.update(&(recipients.len() as u64).to_be_bytes());
    for r in recipients {
        mac.update(r.as_bytes());
    }
    mac.update(plaintext);
    mac.finalize().into_bytes().into()
}

/// Encrypts `plaintext` to `recipients` (at least one) as an age v1 file. Deterministic: the
/// file key, ephemeral secrets and nonce derive from the sealing `key`, the `context` (say,
/// `host/component/name`), the recipients in order and the plaintext.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Recipient],
    key: &[u8; 32],
    context: &str,
) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        bail!("no recipients to encrypt to");
    }
    if plaintext.len() > MAX_PLAINTEXT {
        bail!(super::Error::TooLarge);
    }
    let seed = seed(plaintext, recipients, key, context);
    let file_key: [u8; 16] = hkdf(&[], &seed, b"file key");
    let nonce: [u8; 16] = hkdf(&[], &seed, b"payload nonce");
    let mut header = format!("{MAGIC}\n");
    for (n, r) in recipients.iter().enumerate() {
        let mut info = b"ephemeral ".to_vec();
        info.extend_from_slice(&(n as u64).to_be_bytes());
        let ephemeral = StaticSecret::from(hkdf::<32>(&[], &seed, &info));
        let share = PublicKey::from(&ephemeral);
        let theirs = PublicKey::from(*r.as_bytes());
        let shared = ephemeral.diffie_hellman(&theirs);
        if !shared.was_contributory() {
            bail!("recipient {r} is a low-order point");
        }
        let mut salt = share.as_bytes().to_vec();
        salt.extend_from_slice(r.as_bytes());
        let wrap: [u8; 32] = hkdf(&salt, shared.as_bytes(), X25519_INFO);
        let body = cipher(&wrap)
            .encrypt(&[0u8; 12].into(), &file_key[..])
            .map_err(|_| anyhow::anyhow!("wrapping the file key failed"))?;
        let _ = writeln!(header, "-> X25519 {}", b64().encode(share.as_bytes()));
        let _ = writeln!(header, "{}", b64().encode(body));
    }
    header.push_str("---");
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&mac_key(&file_key)).expect("HMAC takes any key length");
    mac.update(header.as_bytes());
    let _ = writeln!(header, " {}", b64().encode(mac.finalize().into_bytes()));
    let mut out = header.into_bytes();
    out.extend_from_slice(&nonce);
    let payload = cipher(&payload_key(&file_key, &nonce));
    // An empty plaintext is one empty last chunk; otherwise the last chunk is never empty.
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(CHUNK).collect()
    };
    for (n, chunk) in chunks.iter().enumerate() {
        let last = n + 1 == chunks.len();
        let sealed = payload
            .encrypt(&chunk_nonce(n as u64, last), *chunk)
            .map_err(|_| anyhow::anyhow!("encrypting the payload failed"))?;
        out.extend_from_slice(&sealed);
    }
    Ok(out)
}
