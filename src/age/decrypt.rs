//! The decoder: strict parsing of an age v1 file, X25519 stanzas opened with the identities
//! given, the header MAC and every payload chunk checked before a byte is returned.

use base64::Engine as _;
use chacha20poly1305::aead::Aead as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use x25519_dalek::PublicKey;

use super::{
    b64, chunk_nonce, cipher, hkdf, mac_key, payload_key, Error, Identity, CHUNK, MAGIC,
    MAX_PLAINTEXT, TAG, X25519_INFO,
};

/// The most stanzas a header may hold (ours have one per recipient).
const MAX_STANZAS: usize = 64;

/// One recipient stanza: `-> type args…` and its body.
struct Stanza {
    kind: String,
    args: Vec<String>,
    body: Vec<u8>,
}

/// The parsed header: stanzas, the bytes the MAC covers, the MAC, where the payload starts.
struct Header {
    stanzas: Vec<Stanza>,
    covered: usize,
    mac: Vec<u8>,
    payload: usize,
}

fn header_err(why: impl Into<String>) -> Error {
    Error::Header(why.into())
}

/// The next `\n`-terminated line from `at`, without its newline; and where the next starts.
fn line(bytes: &[u8], at: usize) -> Result<(&str, usize), Error> {
    let rest = bytes.get(at..).unwrap_or_default();
    let end = rest
        .iter()
        .take(4096)
        .position(|&b| b == b'\n')
        .ok_or_else(|| header_err("the header ends without a newline, or a line is too long"))?;
    let text = std::str::from_utf8(&rest[..end])
        .ok()
        .filter(|t| t.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or_else(|| header_err("the header holds a byte that is not printable ASCII"))?;
    Ok((text, at + end + 1))
}

fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, Error> {
    b64()
        .decode(text)
        .map_err(|_| header_err(format!("{what} is not canonical unpadded base64")))
}

fn parse_header(bytes: &[u8]) -> Result<Header, Error> {
    let (first, mut at) = line(bytes, 0)?;
    if first != MAGIC {
        return Err(header_err(format!("the first line is not `{MAGIC}`")));
    }
    let mut stanzas = Vec::new();
    loop {
        let start = at;
        let (text, next) = line(bytes, at)?;
        if let Some(mac) = text.strip_prefix("--- ") {
            if stanzas.is_empty() {
                return Err(header_err("no recipient stanza"));
            }
            let mac = decode_b64(mac, "the MAC")?;
            if mac.len() != 32 {
                return Err(header_err("the MAC is not 32 bytes"));
            }
            return Ok(Header {
                stanzas,
                covered: start + 3,
                mac,
                payload: next,
            });
        }
        let Some(args) = text.strip_prefix("-> ") else {
            return Err(header_err(format!(
                "expected a stanza (`-> `) or the MAC line (`--- `), found `{}`",
                text.chars().take(40).collect::<String>()
            )));
        };
        let mut words = args.split(' ');
        let kind = words.next().unwrap_or_default().to_owned();
        let args: Vec<String> = words.map(str::to_owned).collect();
        if kind.is_empty() || args.iter().any(String::is_empty) {
            return Err(header_err("a stanza has an empty argument"));
        }
        // The body: base64 lines of 64 columns, ended by a shorter (possibly empty) line.
        let mut body_text = String::new();
        at = next;
        loop {
            let (chunk, next) = line(bytes, at)?;
            at = next;
            if chunk.len() > 64 {
                return Err(header_err("a stanza body line is longer than 64 columns"));
            }
            body_text.push_str(chunk);
            if chunk.len() < 64 {
                break;
            }
        }
        let body = decode_b64(&body_text, "a stanza body")?;
        stanzas.push(Stanza { kind, args, body });
        if stanzas.len() > MAX_STANZAS {
            return Err(header_err(format!("more than {MAX_STANZAS} stanzas")));
        }
    }
}

/// The file key from an X25519 stanza, when `identity` opens it.
fn unwrap_x25519(s: &Stanza, identity: &Identity) -> Result<Option<[u8; 16]>, Error> {
    let [share] = s.args.as_slice() else {
        return Err(header_err(
            "an X25519 stanza must have exactly one argument",
        ));
    };
    let share: [u8; 32] = decode_b64(share, "an X25519 share")?
        .try_into()
        .map_err(|_| header_err("an X25519 share is not 32 bytes"))?;
    if s.body.len() != 16 + TAG {
        return Err(header_err("an X25519 stanza body is not 32 bytes"));
    }
    let shared = identity.secret().diffie_hellman(&PublicKey::from(share));
    if !shared.was_contributory() {
        return Err(header_err("an X25519 share is a low-order point"));
    }
    let mut salt = share.to_vec();
    salt.extend_from_slice(identity.recipient().as_bytes());
    let wrap: [u8; 32] = hkdf(&salt, shared.as_bytes(), X25519_INFO);
    Ok(cipher(&wrap)
        .decrypt(&[0u8; 12].into(), s.body.as_slice())
        .ok()
        .and_then(|k| k.try_into().ok()))
}

/// Decrypts an age v1 file with any of `identities`. Refuses a malformed header, a file none of
/// them opens, a header whose MAC does not verify, a truncated or altered payload, a payload
/// that breaks the chunk rules, and a plaintext larger than [`MAX_PLAINTEXT`].
pub fn decrypt(bytes: &[u8], identities: &[Identity]) -> Result<Vec<u8>, Error> {
    let header = parse_header(bytes)?;
    let mut file_key = None;
    'stanzas: for s in header.stanzas.iter().filter(|s| s.kind == "X25519") {
        for id in identities {
            if let Some(k) = unwrap_x25519(s, id)? {
                file_key = Some(k);
                break 'stanzas;
            }
        }
    }
    let file_key = file_key.ok_or(Error::NoMatch)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&mac_key(&file_key)).expect("HMAC takes any key length");
    mac.update(&bytes[..header.covered]);
    mac.verify_slice(&header.mac).map_err(|_| Error::Mac)?;
    let rest = &bytes[header.payload..];
    let Some((nonce, payload)) = rest.split_first_chunk::<16>() else {
        return Err(Error::Payload("is truncated (no nonce)".into()));
    };
    if payload.is_empty() {
        return Err(Error::Payload("is truncated (no chunk)".into()));
    }
    let chunks = payload.len().div_ceil(CHUNK + TAG);
    if payload.len().saturating_sub(chunks * TAG) > MAX_PLAINTEXT {
        return Err(Error::TooLarge);
    }
    let cipher = cipher(&payload_key(&file_key, nonce));
    let mut out = Vec::with_capacity(payload.len());
    for (n, chunk) in payload.chunks(CHUNK + TAG).enumerate() {
        let last = n + 1 == chunks;
        if chunk.len() < TAG {
            return Err(Error::Payload(format!("is truncated (chunk {n})")));
        }
        if last && chunk.len() == TAG && n > 0 {
            return Err(Error::Payload("ends with an empty chunk".into()));
        }
        let plain = cipher
            .decrypt(&chunk_nonce(n as u64, last), chunk)
            .map_err(|_| {
                Error::Payload(if last {
                    format!("is truncated or altered (chunk {n}, the last)")
                } else {
                    format!("is altered (chunk {n})")
                })
            })?;
        out.extend_from_slice(&plain);
    }
    Ok(out)
}
