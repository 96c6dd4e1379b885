//! What the PKI checks before it trusts a file of its state directory: a private key readable
//! by its owner only, a key and its certificate one pair (same public key), a CA certificate
//! that is a CA, and a certificate's dates against the clock and the renewal window.
//!
//! It reads and parses; it decides nothing about issuing (the parent module does) and never
//! writes.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use time::OffsetDateTime;

/// What a certificate says that the PKI compares: its dates, its public key, whether it is a CA.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    /// `notBefore`.
    pub not_before: OffsetDateTime,
    /// `notAfter`.
    pub not_after: OffsetDateTime,
    /// The subject public key (the bit string of its `SubjectPublicKeyInfo`).
    pub public_key: Vec<u8>,
    /// basicConstraints says `CA:TRUE`.
    pub is_ca: bool,
}

/// Parses the first PEM certificate of `pem`. The error is a phrase for a message about the file.
pub(super) fn facts(pem: &str) -> Result<Facts, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate ({e})"))?;
    if block.label != "CERTIFICATE" {
        return Err(format!(
            "not a PEM certificate (its block is `{}`)",
            block.label
        ));
    }
    let x = block
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate ({e})"))?;
    let date = |t: &x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| format!("a date out of range ({e})"))
    };
    let validity = x.validity();
    Ok(Facts {
        not_before: date(&validity.not_before)?,
        not_after: date(&validity.not_after)?,
        public_key: x.public_key().subject_public_key.data.to_vec(),
        is_ca: x
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| b.value.ca),
    })
}

/// A date as RFC 3339, the form every report of the PKI uses (`2027-12-28T07:08:36Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    crate::oci::layout::shown(t.unix_timestamp())
}

/// Why a private key file cannot be used as it is.
#[derive(Debug)]
pub(super) enum KeyFile {
    /// Group or others may read or write it: its permission bits.
    Loose(u32),
    /// It could not be read.
    Unreadable(std::io::Error),
}

/// The most a PKI file (a PEM key or certificate, a record) may hold: far above any real one.
pub(super) const MAX_FILE: u64 = 1 << 20;

/// Opens `path` for reading: without waiting (a fifo in its place never blocks the build) and
/// checked on the open descriptor to be a regular file.
fn open_regular(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Reads the regular file `f` as UTF-8, refusing one over [`MAX_FILE`] bytes without reading
/// past that.
fn read_bounded(f: fs::File) -> std::io::Result<String> {
    let mut text = String::new();
    f.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE} bytes"
        )));
    }
    Ok(text)
}

/// Reads a PKI file that is not secret (a certificate, a record): a regular file of at most
/// [`MAX_FILE`] bytes.
pub(super) fn read_public(path: &Path) -> std::io::Result<String> {
    read_bounded(open_regular(path)?)
}

/// Reads the private key at `path`, refusing it when group or others have any permission on it.
/// The mode is taken from the open file, so the file checked is the file read; like
/// [`read_public`], only a regular file of at most [`MAX_FILE`] bytes.
pub(super) fn read_private(path: &Path) -> Result<String, KeyFile> {
    let f = open_regular(path).map_err(KeyFile::Unreadable)?;
    let mode = f
        .metadata()
        .map_err(KeyFile::Unreadable)?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFile::Loose(mode));
    }
    read_bounded(f).map_err(KeyFile::Unreadable)
}

/// Why a certificate whose record matches cannot be reused at `now`: expired, not valid yet, or
/// inside the renewal window (`renew_before` before its `notAfter`). `None`: still good.
pub(super) fn stale(
    facts: &Facts,
    now: OffsetDateTime,
    renew_before: crate::duration::Duration,
) -> Option<String> {
    let until = rfc3339(facts.not_after);
    if now >= facts.not_after {
        return Some(format!("it expired on {until}"));
    }
    if now < facts.not_before {
        return Some(format!(
            "it is not valid before {}",
            rfc3339(facts.not_before)
        ));
    }
    let window = i64::try_from(renew_before.millis().unwrap_or(u64::MAX)).unwrap_or(i64::MAX);
    if facts.not_after - now <= time::Duration::milliseconds(window) {
        return Some(format!(
            "it expires on {until}, inside the renewal window (`{renew_before}` before)"
        ));
    }
    None
}

/// What changed between the record a certificate was issued for (`old`) and the one wanted now:
/// `its SANs and validity changed`.
pub(super) fn changed(old: &str, want: &str) -> String {
    const KINDS: [(&str, &[&str]); 4] = [
        ("SANs", &["DNS:", "IP:"]),
        ("common name", &["CN:"]),
        ("CA", &["CA:"]),
        ("validity", &["validity:"]),
    ];
    let pick = |text: &str, prefixes: &[&str]| -> Vec<String> {
        text.lines()
            .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
            .map(str::to_owned)
            .collect()
    };
    let what: Vec<&str> = KINDS
        .iter()
        .filter(|(_, p)| pick(old, p) != pick(want, p))
        .map(|(name, _)| *name)
        .collect();
    match what.as_slice() {
        [] => "its record changed".to_owned(),
        [one] => format!("its {one} changed"),
        [init @ .., last] => format!("its {} and {last} changed", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;
    use time::format_description::well_known::Rfc3339;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn stale_by_the_clock_and_the_window() {
        let facts = Facts {
            not_before: at("2026-01-01T00:00:00Z"),
            not_after: at("2027-01-01T00:00:00Z"),
            public_key: Vec::new(),
            is_ca: false,
        };
        let d30 = Duration::parse("30d").unwrap();
        let cases = [
            ("2026-06-01T00:00:00Z", None),
            ("2026-12-01T23:59:59Z", None),
            (
                "2026-12-02T00:00:00Z",
                Some(
                    "it expires on 2027-01-01T00:00:00Z, inside the renewal window (`30d` before)",
                ),
            ),
            (
                "2027-01-01T00:00:00Z",
                Some("it expired on 2027-01-01T00:00:00Z"),
            ),
            (
                "2025-12-31T23:59:59Z",
                Some("it is not valid before 2026-01-01T00:00:00Z"),
            ),
        ];
        for (now, want) in cases {
            assert_eq!(stale(&facts, at(now), d30).as_deref(), want, "{now}");
        }
    }

    #[test]
    fn changed_names_what() {
        let old = "DNS:a\nIP:10.0.0.1\nCN:x\nCA:1\nvalidity:397d\n";
        let cases = [
            (
                "DNS:a\nIP:10.0.0.1\nCN:x\nCA:1\nvalidity:397d\n",
                "its record changed",
            ),
            ("DNS:a\nCN:x\nCA:1\nvalidity:397d\n", "its SANs changed"),
            (
                "DNS:a\nIP:10.0.0.1\nCN:x\nCA:2\nvalidity:90d\n",
                "its CA and validity changed",
            ),
            (
                "DNS:b\nCN:y\nCA:2\nvalidity:397d\n",
                "its SANs, common name and CA changed",
            ),
        ];
        for (want, msg) in cases {
            assert_eq!(changed(old, want), msg, "{want:?}");
        }
    }

    #[test]
    fn loose_keys_are_refused_private_ones_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "secret").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o640, false),
            (0o604, false),
            (0o620, false),
        ] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            match read_private(&path) {
                Ok(text) => assert!(ok, "{mode:o} accepted: {text}"),
                Err(KeyFile::Loose(m)) => assert!(!ok && m == mode, "{mode:o} refused as {m:o}"),
                Err(KeyFile::Unreadable(e)) => panic!("{mode:o}: {e}"),
            }
        }
    }

    #[test]
    fn facts_refuse_what_is_not_a_certificate() {
        assert!(facts("").unwrap_err().starts_with("not a PEM certificate"));
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            facts(key).unwrap_err(),
            "not a PEM certificate (its block is `PRIVATE KEY`)"
        );
    }
}
