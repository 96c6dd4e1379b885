//! Sigstore's encrypted private key: the file `skopeo --sign-by-sigstore-private-key` and
//! `cosign sign --key` read.
//!
//! A PEM block `ENCRYPTED COSIGN PRIVATE KEY` (newer tools also write `ENCRYPTED SIGSTORE PRIVATE
//! KEY`; both are read, the first is written because skopeo 1.9 reads only it) holding JSON:
//! `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":<b64>},
//! "cipher":{"name":"nacl/secretbox","nonce":<b64>},"ciphertext":<b64>}` (the format of the
//! `encrypted` package of go-tuf / go-securesystemslib). The passphrase's bytes and the 32-byte
//! salt go through scrypt to a 32-byte key; `NaCl` secretbox (XSalsa20-Poly1305, tag first) with
//! the 24-byte nonce seals the PKCS#8 DER of the key. Byte strings are standard base64 with
//! padding, as Go encodes `[]byte`.
//!
//! Only the scrypt parameters those tools accept are read (N = 2^15, 2^16 or 2^17, r = 8, p = 1),
//! so a tampered file cannot make loading it cost gigabytes; 2^15 is written, the only value
//! skopeo 1.9 accepts. This module does not know what the plaintext is; `sign` parses it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The PEM label written, and read.
pub const LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The PEM label newer sigstore tools write, read too.
pub const LABEL_SIGSTORE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The environment variable holding the passphrase when no passphrase file is named.
pub const PASSPHRASE_ENV: &str = "INFRAGEN_KEY_PASSPHRASE";

/// log2 of scrypt's N written; the accepted ones are this and the next two.
const LOG_N: u8 = 15;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)] // the format's field is `N`
struct KdfParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn derive(passphrase: &[u8], salt: &[u8], log_n: u8) -> XSalsa20Poly1305 {
    let params = scrypt::Params::new(log_n, 8, 1, 32).expect("valid scrypt parameters");
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase, salt, &params, &mut key).expect("32 is a valid output length");
    XSalsa20Poly1305::new(&key.into())
}

/// Encrypts `der` (a PKCS#8 private key) with `passphrase`: the PEM text of the key file.
pub fn seal(der: &[u8], passphrase: &[u8]) -> Result<String> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    let ciphertext = derive(passphrase, &salt, LOG_N)
        .encrypt(&nonce.into(), der)
        .map_err(|_| anyhow::anyhow!("encrypting the key failed"))?;
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                N: 1 << LOG_N,
                r: 8,
                p: 1,
            },
            salt: b64().encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: b64().encode(nonce),
        },
        ciphertext: b64().encode(ciphertext),
    };
    let json = serde_json::to_vec(&sealed).expect("serialisable");
    Ok(super::pem(LABEL, &json))
}

/// The PEM label of an encrypted key in `text`, if it holds one.
pub fn label(text: &str) -> Option<&'static str> {
    [LABEL, LABEL_SIGSTORE]
        .into_iter()
        .find(|l| text.contains(&format!("-----BEGIN {l}-----")))
}

/// Decrypts the encrypted key in `text` with `passphrase`: the PKCS#8 DER it holds.
pub fn open(text: &str, passphrase: &[u8]) -> Result<Vec<u8>> {
    let label = label(text).with_context(|| format!("no `-----BEGIN {LABEL}-----` block"))?;
    let json = super::unpem(label, text)?;
    let s: Sealed = serde_json::from_slice(&json)
        .with_context(|| format!("the {label} block is not sigstore's encrypted key JSON"))?;
    if s.kdf.name != "scrypt" {
        bail!("unknown key derivation `{}` (only `scrypt`)", s.kdf.name);
    }
    if s.cipher.name != "nacl/secretbox" {
        bail!("unknown cipher `{}` (only `nacl/secretbox`)", s.cipher.name);
    }
    let p = &s.kdf.params;
    let log_n = (LOG_N..=LOG_N + 2).find(|&l| p.N == 1 << l);
    let Some(log_n) = log_n.filter(|_| p.r == 8 && p.p == 1) else {
        bail!(
            "unsupported scrypt parameters N={} r={} p={} (N is 2^15, 2^16 or 2^17, r 8, p 1)",
            p.N,
            p.r,
            p.p
        );
    };
    let field = |name: &str, v: &str| {
        b64()
            .decode(v)
            .with_context(|| format!("`{name}` is not base64"))
    };
    let salt = field("kdf.salt", &s.kdf.salt)?;
    let nonce = field("cipher.nonce", &s.cipher.nonce)?;
    let ciphertext = field("ciphertext", &s.ciphertext)?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("`cipher.nonce` has {} bytes, not 24", v.len()))?;
    derive(passphrase, &salt, log_n)
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map_err(|_| {
            anyhow::anyhow!(
                "the passphrase does not open this key\nhint: the passphrase is the first line of \
                 `--passphrase-file`, else `${PASSPHRASE_ENV}`; a key written without one has the \
                 empty passphrase"
            )
        })
}

/// The passphrase in `path`: its first line without the newline, as skopeo's
/// `--sign-passphrase-file` reads it (an empty file is the empty passphrase).
pub fn read_passphrase_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading passphrase file {}", path.display()))?;
    Ok(match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => bytes[..i].to_vec(),
        None => bytes,
    })
}

/// The passphrase in `$INFRAGEN_KEY_PASSPHRASE`, if it is set.
pub fn passphrase_from_env() -> Option<Vec<u8>> {
    std::env::var_os(PASSPHRASE_ENV).map(|v| {
        use std::os::unix::ffi::OsStringExt as _;
        v.into_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::{label, open, read_passphrase_file, seal, LABEL};

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let der = b"not really a key, the module does not look";
        let text = seal(der, b"correct horse").unwrap();
        assert!(text.starts_with(&format!("-----BEGIN {LABEL}-----\n")));
        assert_eq!(label(&text), Some(LABEL));
        assert_eq!(open(&text, b"correct horse").unwrap(), der);
        let err = format!("{:#}", open(&text, b"wrong").unwrap_err());
        assert!(
            err.starts_with("the passphrase does not open this key\nhint:"),
            "{err}"
        );
        let empty = seal(der, b"").unwrap();
        assert_eq!(open(&empty, b"").unwrap(), der);
        assert!(open(&empty, b"x").is_err());
    }

    #[test]
    fn the_json_has_the_go_field_names_and_parameters() {
        let text = seal(b"k", b"").unwrap();
        let json = super::super::unpem(LABEL, &text).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["kdf"]["name"], "scrypt");
        assert_eq!(
            v["kdf"]["params"],
            serde_json::json!({"N": 32768, "r": 8, "p": 1})
        );
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        let s = |p: &str| v.pointer(p).unwrap().as_str().unwrap().len();
        assert_eq!((s("/kdf/salt"), s("/cipher/nonce")), (44, 32));
        // 1 plaintext byte and the 16-byte tag, base64.
        assert_eq!(s("/ciphertext"), 24);
    }

    #[test]
    fn costly_or_unknown_parameters_are_refused_before_any_work() {
        let text = seal(b"k", b"").unwrap();
        let json = String::from_utf8(super::super::unpem(LABEL, &text).unwrap()).unwrap();
        for (from, to, want) in [
            (
                "\"N\":32768",
                "\"N\":1073741824",
                "unsupported scrypt parameters N=1073741824",
            ),
            ("\"r\":8", "\"r\":64", "unsupported scrypt parameters"),
            (
                "\"scrypt\"",
                "\"argon2\"",
                "unknown key derivation `argon2`",
            ),
            ("nacl/secretbox", "aes", "unknown cipher `aes`"),
        ] {
            let bad = super::super::pem(LABEL, json.replace(from, to).as_bytes());
            let err = format!("{:#}", open(&bad, b"").unwrap_err());
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn a_passphrase_file_is_read_up_to_its_first_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret", b"secret"),
            (b"two\nlines\n", b"two"),
            (b"", b""),
            (b"\n", b""),
        ] {
            let p = dir.path().join("pass");
            std::fs::write(&p, content).unwrap();
            assert_eq!(read_passphrase_file(&p).unwrap(), want);
        }
    }
}
