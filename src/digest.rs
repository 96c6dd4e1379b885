//! Content digests: the one sha256 type ([`Digest`]) and the one way to compute one, from bytes
//! ([`Digest::of`], [`sha256_hex`]) or from a stream ([`Hasher`], [`HashWriter`]).
//!
//! It does not decide what is hashed (canonical JSON, tar streams, cache keys): callers do.
//! See the OCI image spec on digests: <https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests>.

use std::fmt;
use std::io::{self, Write};

use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A content digest, `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// From a finished sha256 hasher (prefer [`Hasher`]).
    pub fn from_hasher(h: sha2::Sha256) -> Self {
        Hasher(h).finish()
    }

    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.strip_prefix("sha256:") {
            Some(h) if is_hex64(h) => Ok(Self(s.to_owned())),
            _ => bail!("`{s}` is not a sha256 digest (`sha256:` and 64 lowercase hex digits)"),
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The whole `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The whole `sha256:<hex>`, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether `s` is 64 lowercase hex digits (digests without their prefix, generation and root
/// ids).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The 64 lowercase hex digits of the sha256 of `bytes` (ids and cache keys, which carry no
/// `sha256:` prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Digest::of(bytes).hex().to_owned()
}

/// A running sha256: feed it with [`Hasher::update`] or as a writer (`io::copy` into it), then
/// [`Hasher::finish`].
#[derive(Debug, Clone, Default)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `bytes` next.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        let sum = self.0.finalize();
        let mut hex = String::with_capacity(7 + 64);
        hex.push_str("sha256:");
        for b in sum {
            // Writing to a String cannot fail.
            let _ = fmt::Write::write_fmt(&mut hex, format_args!("{b:02x}"));
        }
        Digest(hex)
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer that hashes and counts what passes through it to `inner` (hash while writing).
#[derive(Debug)]
pub struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// How many bytes were written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner writer back.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::{sha256_hex, Digest, HashWriter, Hasher};
    use std::io::Write as _;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn bytes_streams_and_tees_agree() {
        assert_eq!(Digest::of(b"hello").as_str(), HELLO);
        assert_eq!(sha256_hex(b"hello"), HELLO[7..]);
        let mut h = Hasher::new();
        std::io::copy(&mut &b"hel"[..], &mut h).unwrap();
        h.update(b"lo");
        assert_eq!(h.finish().as_str(), HELLO);
        let mut w = HashWriter::new(Vec::new());
        w.write_all(b"hello").unwrap();
        assert_eq!((w.digest().as_str(), w.count()), (HELLO, 5));
        assert_eq!(w.into_inner(), b"hello");
        assert_eq!(Digest::parse(HELLO).unwrap(), Digest::of(b"hello"));
    }
}
