//! `Release` and `InRelease`: taking the signed text out of a clearsigned `InRelease`, parsing
//! the `Release` fields the client needs, and checking a fetched index against its `SHA256` list
//! (<https://wiki.debian.org/DebianRepository/Format#A.22Release.22_files>).
//!
//! The signature itself is checked by `gpgv` elsewhere; this module only strips it.

use std::collections::BTreeMap;

use crate::digest::sha256_hex;

use super::deb822::{stanzas, words};
use super::validity::parse_date;
use super::AptError;

/// The parts of a `Release` file the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Suite` (`oldstable-updates`); flat repositories often have none.
    pub suite: Option<String>,
    /// `Codename` (`bookworm-updates`).
    pub codename: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `SHA256`: path relative to the suite → (size in bytes, lowercase hex digest).
    pub sha256: BTreeMap<String, (u64, String)>,
    /// `Date`, seconds since the epoch, when present.
    pub date: Option<i64>,
    /// `Valid-Until`, seconds since the epoch, when present.
    pub valid_until: Option<i64>,
}

const RELEASE: &str = "Release";

/// Parses a `Release` file (the text of an `InRelease` after [`strip_clearsign`]).
pub fn parse_release(text: &str) -> Result<Release, AptError> {
    let mut stanzas = stanzas(RELEASE, text)?.into_iter();
    let Some(stanza) = stanzas.next() else {
        return Err(AptError::Syntax {
            file: RELEASE,
            line: 1,
            message: "file is empty".into(),
        });
    };
    if let Some(extra) = stanzas.next() {
        return Err(AptError::Syntax {
            file: RELEASE,
            line: extra.line,
            message: "a second stanza (Release has exactly one)".into(),
        });
    }
    let field = stanza.require(RELEASE, "SHA256")?;
    let mut sha256 = BTreeMap::new();
    for (index, entry) in field.value.lines().enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let bad = |message: String| AptError::Field {
            file: RELEASE,
            line: field.value_line + index,
            field: field.name.to_owned(),
            message,
        };
        let parts: Vec<&str> = entry.split_whitespace().collect();
        let [hex, size, path] = parts[..] else {
            return Err(bad(format!("expected `sha256 size path`, found `{entry}`")));
        };
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(format!("`{hex}` is not a sha256 digest")));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| bad(format!("size `{size}` of `{path}` is not a number")))?;
        sha256.insert(path.to_owned(), (size, hex.to_ascii_lowercase()));
    }
    let mut dates = [None, None];
    for (slot, name) in dates.iter_mut().zip(["Date", "Valid-Until"]) {
        if let Some(f) = stanza.get(name) {
            *slot = Some(parse_date(&f.value).ok_or_else(|| AptError::Field {
                file: RELEASE,
                line: f.line,
                field: f.name.to_owned(),
                message: format!(
                    "`{}` is not a date such as `Sat, 10 May 2025 09:28:38 UTC`",
                    f.value.trim()
                ),
            })?);
        }
    }
    let [date, valid_until] = dates;
    Ok(Release {
        date,
        valid_until,
        suite: stanza.value("Suite").map(str::to_owned),
        codename: stanza.value("Codename").map(str::to_owned),
        architectures: stanza.value("Architectures").map(words).unwrap_or_default(),
        components: stanza.value("Components").map(words).unwrap_or_default(),
        sha256,
    })
}

/// Takes the signed text out of a clearsigned `InRelease` (RFC 4880 §7): after
/// `-----BEGIN PGP SIGNED MESSAGE-----`, `Hash:` headers and a blank line, up to
/// `-----BEGIN PGP SIGNATURE-----`, with `- ` dash-escaping removed. Each body line is returned
/// with a trailing `\n`. Text before the message or after the signature is refused, as apt
/// does, so nothing unsigned can ride along. The signature itself is checked by `gpgv`.
pub fn strip_clearsign(text: &str) -> Result<String, AptError> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
    const END: &str = "-----END PGP SIGNATURE-----";
    let err = |line: usize, message: &str| AptError::Clearsign {
        line,
        message: message.to_owned(),
    };
    let mut lines = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, BEGIN)) => {}
        _ => return Err(err(1, "expected `-----BEGIN PGP SIGNED MESSAGE-----`")),
    }
    loop {
        match lines.next() {
            Some((_, "")) => break,
            Some((_, header)) if header.starts_with("Hash:") => {}
            Some((line, _)) => return Err(err(line, "expected a `Hash:` header or a blank line")),
            None => return Err(err(text.lines().count(), "message ends inside its headers")),
        }
    }
    let mut body = String::with_capacity(text.len());
    loop {
        match lines.next() {
            Some((_, SIGNATURE)) => break,
            Some((line, l)) if l.starts_with('-') => {
                let Some(unescaped) = l.strip_prefix("- ") else {
                    return Err(err(line, "line starts with `-` but is not dash-escaped"));
                };
                body.push_str(unescaped);
                body.push('\n');
            }
            Some((_, l)) => {
                body.push_str(l);
                body.push('\n');
            }
            None => {
                return Err(err(
                    text.lines().count(),
                    "no `-----BEGIN PGP SIGNATURE-----`",
                ))
            }
        }
    }
    loop {
        match lines.next() {
            Some((_, END)) => break,
            Some((line, l)) if l.starts_with("-----") => {
                return Err(err(line, "expected `-----END PGP SIGNATURE-----`"))
            }
            Some(_) => {}
            None => {
                return Err(err(
                    text.lines().count(),
                    "no `-----END PGP SIGNATURE-----`",
                ))
            }
        }
    }
    if let Some((line, _)) = lines.find(|(_, l)| !l.trim().is_empty()) {
        return Err(err(line, "text after the signature"));
    }
    Ok(body)
}

/// Checks that `bytes`, fetched as `path` (relative to the suite, as listed in `Release`, e.g.
/// `main/binary-amd64/Packages.xz`), have the size and sha256 that `release` lists. An index
/// that `Release` does not list, or that differs, is refused.
pub fn verify(path: &str, bytes: &[u8], release: &Release) -> Result<(), AptError> {
    let Some((expected_size, expected)) = release.sha256.get(path) else {
        return Err(AptError::NotInRelease {
            path: path.to_owned(),
        });
    };
    let actual = sha256_hex(bytes);
    let actual_size = bytes.len() as u64;
    if actual_size != *expected_size || actual != *expected {
        return Err(AptError::Mismatch {
            path: path.to_owned(),
            expected_size: *expected_size,
            expected: expected.clone(),
            actual_size,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: oldstable-updates
Codename: bookworm-updates
Architectures: all amd64 arm64
Components: main contrib
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 contrib/Contents-all
 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae        3 main/binary-amd64/Packages
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE
=abcd
-----END PGP SIGNATURE-----
";

    #[test]
    fn clearsigned_body() {
        let body = strip_clearsign(SIGNED).unwrap();
        assert!(
            body.starts_with("Origin: Debian\nSuite: oldstable-updates\n"),
            "{body}"
        );
        assert!(body.ends_with("main/binary-amd64/Packages\n"), "{body}");
        assert!(!body.contains("PGP"));
        let escaped = "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\nA: 1\r\n- - b\r\n\
                       - -----x\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nabc\r\n-----END PGP SIGNATURE-----\r\n\r\n";
        assert_eq!(strip_clearsign(escaped).unwrap(), "A: 1\n- b\n-----x\n");
    }

    #[test]
    fn clearsign_errors() {
        let cases = [
            (
                format!("junk\n{SIGNED}"),
                "InRelease line 1: expected `-----BEGIN PGP SIGNED MESSAGE-----`",
            ),
            (
                format!("{SIGNED}Suite: evil\n"),
                "InRelease line 17: text after the signature",
            ),
            (
                SIGNED.replace("Hash: SHA256", "Comment: x"),
                "InRelease line 2: expected a `Hash:` header or a blank line",
            ),
            (
                SIGNED.replace("Origin:", "-Origin:"),
                "InRelease line 4: line starts with `-` but is not dash-escaped",
            ),
            (
                SIGNED.replace("-----END PGP SIGNATURE-----\n", ""),
                "InRelease line 15: no `-----END PGP SIGNATURE-----`",
            ),
            (
                SIGNED
                    .split("-----BEGIN PGP SIGNATURE")
                    .next()
                    .unwrap()
                    .to_owned(),
                "InRelease line 11: no `-----BEGIN PGP SIGNATURE-----`",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(strip_clearsign(&text).unwrap_err().to_string(), want);
        }
    }

    fn release() -> Release {
        parse_release(&strip_clearsign(SIGNED).unwrap()).unwrap()
    }

    #[test]
    fn release_fields() {
        let r = release();
        assert_eq!(r.suite.as_deref(), Some("oldstable-updates"));
        assert_eq!(r.codename.as_deref(), Some("bookworm-updates"));
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(
            r.sha256.get("main/binary-amd64/Packages"),
            Some(&(
                3,
                "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".to_owned()
            ))
        );
        assert_eq!(r.sha256.len(), 2);
    }

    #[test]
    fn release_errors() {
        let cases = [
            ("", "Release line 1: file is empty"),
            ("Suite: x\n", "Release line 1: stanza has no `SHA256` field"),
            (
                "Suite: x\nSHA256:\n abc 1 p\n",
                "Release line 3: field `SHA256`: `abc` is not a sha256 digest",
            ),
            (
                "Suite: x\nSHA256:\n abc p\n",
                "Release line 3: field `SHA256`: expected `sha256 size path`, found `abc p`",
            ),
            (
                "Suite: x\nSHA256:\n\n\nSuite: y\n",
                "Release line 5: a second stanza (Release has exactly one)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_release(text).unwrap_err().to_string(),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn release_dates_are_parsed_and_a_malformed_one_is_named() {
        let r = parse_release(
            "Suite: s\nDate: Sat, 10 May 2025 09:28:38 UTC\nValid-Until: Sat, 17 May 2025 09:28:38 UTC\nSHA256:\n",
        )
        .unwrap();
        assert_eq!(r.date, Some(1_746_869_318));
        assert_eq!(r.valid_until, Some(1_746_869_318 + 7 * 86_400));
        assert_eq!(release().date, None);
        assert_eq!(release().valid_until, None);
        let e = parse_release("Suite: s\nDate: x\nValid-Until: tomorrow\nSHA256:\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Release line 2: field `Date`: `x` is not a date such as `Sat, 10 May 2025 09:28:38 UTC`"
        );
        let e = parse_release("Suite: s\nValid-Until: Sat, 32 May 2025 09:28:38 UTC\nSHA256:\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Release line 2: field `Valid-Until`: `Sat, 32 May 2025"),
            "{e}"
        );
    }

    #[test]
    fn verify_against_release() {
        let r = release();
        verify("main/binary-amd64/Packages", b"foo", &r).unwrap();
        let err = verify("main/binary-amd64/Packages", b"fox", &r)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "`main/binary-amd64/Packages` does not match Release: got 3 bytes with sha256 {}, \
                 Release says 3 bytes with sha256 \
                 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                sha256_hex(b"fox")
            )
        );
        let err = verify("main/binary-arm64/Packages", b"foo", &r)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "`main/binary-arm64/Packages` is not listed in the SHA256 field of Release"
        );
        let err = verify("main/binary-amd64/Packages", b"fooo", &r)
            .unwrap_err()
            .to_string();
        assert!(err.contains("got 4 bytes"), "{err}");
    }
}
