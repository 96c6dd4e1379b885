//! The age file format (<https://age-encryption.org/v1>), X25519 recipients only: the keys, a
//! deterministic encoder (build side) and a strict decoder (host side).
//!
//! Owns the format: bech32 keys (`age1…` recipients, `AGE-SECRET-KEY-1…` identities, the
//! `age-keygen` identity file), the header (stanzas, HMAC-SHA256 MAC), the X25519 stanza
//! (HKDF-SHA256, ChaCha20-Poly1305 key wrapping) and the STREAM payload (64 KiB chunks). It does
//! not own which secrets are encrypted to whom (`secrets`) nor where they are written
//! (`activate`). Files are small (a secret is at most [`MAX_PLAINTEXT`]), so everything is in
//! memory. Interoperability with the reference `age` CLI is tested (tests/age.rs).

mod decrypt;
mod encrypt;
#[cfg(test)]
mod tests;

use std::fmt;

use anyhow::{bail, Context, Result};
use bech32::{primitives::decode::CheckedHrpstring, Bech32, Hrp};
use x25519_dalek::{PublicKey, StaticSecret};

pub use decrypt::decrypt;
pub use encrypt::encrypt;

/// The largest secret encrypted or decrypted (1 MiB): credentials are a few KiB.
pub const MAX_PLAINTEXT: usize = 1 << 20;

/// The first line of every age v1 file.
pub const MAGIC: &str = "age-encryption.org/v1";

/// Plaintext bytes per payload chunk (STREAM).
const CHUNK: usize = 64 << 10;

/// The Poly1305 tag after each chunk and wrapped key.
const TAG: usize = 16;

/// The stanza label and HKDF info of X25519 recipients.
const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";

/// Why a file does not decrypt.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not an age v1 header, or a malformed one.
    #[error("not a valid age file: {0}")]
    Header(String),
    /// No stanza opens with any of the identities given.
    #[error("encrypted to none of the identities given")]
    NoMatch,
    /// The header's MAC does not verify: it was altered after encryption.
    #[error("the header's MAC does not verify (the header was altered)")]
    Mac,
    /// The payload is truncated, altered or breaks the chunk rules.
    #[error("the payload {0}")]
    Payload(String),
    /// The plaintext is larger than [`MAX_PLAINTEXT`].
    #[error("larger than {} KiB, the most a secret may be", MAX_PLAINTEXT >> 10)]
    TooLarge,
}

/// An age X25519 recipient: a public key, written `age1…` (bech32).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Recipient([u8; 32]);

impl Recipient {
    /// Parses `age1…`.
    pub fn parse(s: &str) -> Result<Self> {
        let bytes = decode_key(s, "age")
            .with_context(|| format!("`{s}` is not an age X25519 recipient (`age1…`)"))?;
        Ok(Self(bytes))
    }

    /// The 32 bytes of the public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked("age");
        f.write_str(&bech32::encode_lower::<Bech32>(hrp, &self.0).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

/// An age X25519 identity: a private key, written `AGE-SECRET-KEY-1…`. Its `Debug` hides it.
#[derive(Clone)]
pub struct Identity(StaticSecret);

impl Identity {
    /// A new identity from the operating system's random source.
    pub fn generate() -> Result<Self> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
        Ok(Self(StaticSecret::from(bytes)))
    }

    /// Parses `AGE-SECRET-KEY-1…`.
    pub fn parse(s: &str) -> Result<Self> {
        let bytes = decode_key(s, "age-secret-key-")
            .context("not an age X25519 identity (`AGE-SECRET-KEY-1…`)")?;
        Ok(Self(StaticSecret::from(bytes)))
    }

    /// Its recipient (public key).
    pub fn recipient(&self) -> Recipient {
        Recipient(PublicKey::from(&self.0).to_bytes())
    }

    /// `AGE-SECRET-KEY-1…`, as `age-keygen` writes it.
    pub fn to_secret_string(&self) -> String {
        let hrp = Hrp::parse_unchecked("age-secret-key-");
        bech32::encode_upper::<Bech32>(hrp, self.0.as_bytes()).expect("32 bytes always encode")
    }

    /// The identity file `age-keygen` writes: a comment with the public key, then the key.
    pub fn to_file(&self) -> String {
        format!(
            "# public key: {}\n{}\n",
            self.recipient(),
            self.to_secret_string()
        )
    }

    /// The identities of an identity file (`age-keygen`'s format: one key a line, `#`
    /// comments and empty lines ignored). An error names the line.
    pub fn parse_file(text: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(Self::parse(line).with_context(|| format!("line {}", n + 1))?);
        }
        if out.is_empty() {
            bail!("no identity in it (`AGE-SECRET-KEY-1…`)");
        }
        Ok(out)
    }

    fn secret(&self) -> &StaticSecret {
        &self.0
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, ***)", self.recipient())
    }
}

/// The 32 bytes of a bech32 (not bech32m) key whose human-readable part is `hrp`.
fn decode_key(s: &str, hrp: &str) -> Result<[u8; 32]> {
    let checked = CheckedHrpstring::new::<Bech32>(s).map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = checked.hrp().to_lowercase();
    if got != hrp {
        bail!("its prefix is `{got}`, not `{hrp}`");
    }
    let bytes: Vec<u8> = checked.byte_iter().collect();
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{} bytes, not 32", b.len()))
}

/// HKDF-SHA256 of `ikm` with `salt` and `info`, `N` bytes.
fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("N is far below HKDF's limit");
    out
}

/// The header's MAC key.
fn mac_key(file_key: &[u8; 16]) -> [u8; 32] {
    hkdf(&[], file_key, b"header")
}

/// The payload key.
fn payload_key(file_key: &[u8; 16], nonce: &[u8; 16]) -> [u8; 32] {
    hkdf(nonce, file_key, b"payload")
}

/// The STREAM nonce of chunk `n`: an 11-byte big-endian counter and the last-chunk flag.
fn chunk_nonce(n: u64, last: bool) -> chacha20poly1305::Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&n.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce.into()
}

fn cipher(key: &[u8; 32]) -> chacha20poly1305::ChaCha20Poly1305 {
    use chacha20poly1305::KeyInit as _;
    chacha20poly1305::ChaCha20Poly1305::new(&(*key).into())
}

/// Base64 as age writes it: standard alphabet, no padding, canonical.
fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}
