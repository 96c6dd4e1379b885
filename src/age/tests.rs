//! Format tests: vectors from the `age` CLI (committed, with their throwaway identity), round
//! trips, determinism, and every refusal of the decoder.

use super::*;

const IDENTITY: &str = include_str!("testdata/identity.txt");
const SMALL: &[u8] = include_bytes!("testdata/small.txt.age");
const EMPTY: &[u8] = include_bytes!("testdata/empty.txt.age");
const KEY: [u8; 32] = [7; 32];

fn fixture_identity() -> Identity {
    Identity::parse_file(IDENTITY).unwrap().remove(0)
}

#[test]
fn decrypts_what_the_age_cli_wrote() {
    let id = fixture_identity();
    assert_eq!(
        id.recipient().to_string(),
        "age1ylgu2lxt9jzzf8qejm2hqe02t5vjm34u42ufejtdp98s0c9mpscsu5lcn3"
    );
    assert_eq!(
        decrypt(SMALL, std::slice::from_ref(&id)).unwrap(),
        include_bytes!("testdata/small.txt")
    );
    assert_eq!(decrypt(EMPTY, &[id]).unwrap(), b"");
}

#[test]
fn keys_round_trip_and_bad_keys_are_refused() {
    let id = fixture_identity();
    let text = id.to_secret_string();
    assert!(text.starts_with("AGE-SECRET-KEY-1"));
    assert_eq!(Identity::parse(&text).unwrap().recipient(), id.recipient());
    assert_eq!(
        Identity::parse(&text.to_lowercase()).unwrap().recipient(),
        id.recipient()
    );
    let r = id.recipient().to_string();
    assert_eq!(Recipient::parse(&r).unwrap(), id.recipient());
    let mut flipped = r.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'q' { b'p' } else { b'q' };
    for bad in [
        String::from_utf8(flipped).unwrap(),
        r[..r.len() - 1].to_owned(),
        text.clone(),
        "age1".to_owned(),
        String::new(),
        "ssh-ed25519 AAAA".to_owned(),
    ] {
        assert!(Recipient::parse(&bad).is_err(), "{bad}");
    }
    assert!(Identity::parse(&r).is_err());
    assert!(Identity::parse_file("# only a comment\n").is_err());
    let err = Identity::parse_file("# c\nAGE-SECRET-KEY-1XYZ\n").unwrap_err();
    assert!(format!("{err:#}").starts_with("line 2: "), "{err:#}");
    assert_eq!(
        Identity::parse_file(&id.to_file()).unwrap()[0].recipient(),
        id.recipient()
    );
    assert_eq!(format!("{id:?}"), format!("Identity({r}, ***)"));
}

#[test]
fn round_trips_at_chunk_boundaries_and_is_deterministic() {
    let a = Identity::parse(&fixture_identity().to_secret_string()).unwrap();
    let b = Identity::generate().unwrap();
    let to = [a.recipient(), b.recipient()];
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, MAX_PLAINTEXT] {
        let plain: Vec<u8> = (0..len)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect();
        let sealed = encrypt(&plain, &to, &KEY, "h/c/n").unwrap();
        assert_eq!(sealed, encrypt(&plain, &to, &KEY, "h/c/n").unwrap());
        assert_eq!(decrypt(&sealed, std::slice::from_ref(&a)).unwrap(), plain);
        assert_eq!(decrypt(&sealed, std::slice::from_ref(&b)).unwrap(), plain);
    }
    let base = encrypt(b"s", &to, &KEY, "h/c/n").unwrap();
    for other in [
        encrypt(b"t", &to, &KEY, "h/c/n").unwrap(),
        encrypt(b"s", &to, &KEY, "h/c/m").unwrap(),
        encrypt(b"s", &to, &[8; 32], "h/c/n").unwrap(),
        encrypt(b"s", &to[..1], &KEY, "h/c/n").unwrap(),
    ] {
        // Nothing shared: not the share, not the nonce, not the payload.
        assert_ne!(base[22..80], other[22..80]);
        assert_ne!(base[base.len() - 40..], other[other.len() - 40..]);
    }
    assert!(matches!(
        encrypt(&vec![0; MAX_PLAINTEXT + 1], &to, &KEY, "x")
            .unwrap_err()
            .downcast::<Error>(),
        Ok(Error::TooLarge)
    ));
    assert!(encrypt(b"s", &[], &KEY, "x").is_err());
}

fn refusal(bytes: &[u8]) -> String {
    decrypt(bytes, &[fixture_identity()])
        .unwrap_err()
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Each file of `cases` is refused with exactly its message.
fn assert_refused(cases: Vec<(Vec<u8>, &str)>) {
    for (bytes, want) in cases {
        assert_eq!(
            refusal(&bytes),
            want,
            "{}",
            text(&bytes[..bytes.len().min(120)])
        );
    }
}

/// Where `SMALL`'s MAC line starts (`--- `) and ends (its newline).
fn mac_line() -> (usize, usize) {
    let header_end = SMALL.windows(4).position(|w| w == b"--- ").unwrap();
    let end = header_end
        + SMALL[header_end..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap();
    (header_end, end)
}

#[test]
fn malformed_headers_are_refused() {
    let s = text(SMALL);
    assert_refused(vec![
        (
            b"age-encryption.org/v2\n".to_vec(),
            "not a valid age file: the first line is not `age-encryption.org/v1`",
        ),
        (
            Vec::new(),
            "not a valid age file: the header ends without a newline, or a line is too long",
        ),
        (
            b"age-encryption.org/v1\n--- AAAA\n".to_vec(),
            "not a valid age file: no recipient stanza",
        ),
        (
            b"age-encryption.org/v1\nhello\n".to_vec(),
            "not a valid age file: expected a stanza (`-> `) or the MAC line (`--- `), found `hello`",
        ),
        (
            s.replacen("-> X25519 ", "-> X25519  ", 1).into_bytes(),
            "not a valid age file: a stanza has an empty argument",
        ),
        (
            s.replacen("-> X25519 9M", "-> X25519 9M=", 1).into_bytes(),
            "not a valid age file: an X25519 share is not canonical unpadded base64",
        ),
    ]);
}

#[test]
#[allow(clippy::vec_init_then_push)] // one case a push, each with its comment
fn foreign_and_tampered_headers_are_refused() {
    let s = text(SMALL);
    let (header_end, _) = mac_line();
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    // The other identity's file, and a stanza type we do not know.
    let other = Identity::generate().unwrap();
    cases.push((
        encrypt(b"x", &[other.recipient()], &KEY, "c").unwrap(),
        "encrypted to none of the identities given",
    ));
    cases.push((
        s.replacen("-> X25519 ", "-> scrypt ", 1).into_bytes(),
        "encrypted to none of the identities given",
    ));
    // A MAC that is not the header's, and a header changed under its MAC (a new stanza).
    let mut mac = SMALL.to_vec();
    mac[header_end + 5] ^= 1;
    cases.push((
        mac,
        "the header's MAC does not verify (the header was altered)",
    ));
    let mut grown = SMALL[..header_end].to_vec();
    grown.extend_from_slice(b"-> extra\n\n");
    grown.extend_from_slice(&SMALL[header_end..]);
    cases.push((
        grown,
        "the header's MAC does not verify (the header was altered)",
    ));
    assert_refused(cases);
}

#[test]
#[allow(clippy::vec_init_then_push)] // one case a push, each with its comment
fn truncated_and_altered_payloads_are_refused() {
    let (_, mac_line_end) = mac_line();
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    // No nonce, no chunk, a flipped byte, truncated, a last chunk left out.
    cases.push((
        SMALL[..=mac_line_end].to_vec(),
        "the payload is truncated (no nonce)",
    ));
    cases.push((
        SMALL[..mac_line_end + 17].to_vec(),
        "the payload is truncated (no chunk)",
    ));
    let mut flipped = SMALL.to_vec();
    *flipped.last_mut().unwrap() ^= 1;
    cases.push((
        flipped,
        "the payload is truncated or altered (chunk 0, the last)",
    ));
    cases.push((
        SMALL[..SMALL.len() - 1].to_vec(),
        "the payload is truncated or altered (chunk 0, the last)",
    ));
    cases.push((
        SMALL[..mac_line_end + 17 + 10].to_vec(),
        "the payload is truncated (chunk 0)",
    ));
    let id = fixture_identity();
    let two = encrypt(&vec![1; CHUNK + 5], &[id.recipient()], &KEY, "c").unwrap();
    cases.push((
        two[..two.len() - (5 + TAG)].to_vec(),
        "the payload is truncated or altered (chunk 0, the last)",
    ));
    let mut extra = two.clone();
    extra.extend_from_slice(&[0; TAG]);
    cases.push((
        extra,
        "the payload is truncated or altered (chunk 1, the last)",
    ));
    // A full first chunk flagged last, followed by more: the first no longer opens.
    let one = encrypt(&vec![1; CHUNK], &[id.recipient()], &KEY, "c").unwrap();
    let mut more = one.clone();
    more.extend_from_slice(&two[two.len() - (5 + TAG)..]);
    cases.push((more, "the payload is altered (chunk 0)"));
    assert_refused(cases);
}

#[test]
fn an_oversized_payload_is_refused_before_decrypting() {
    let id = fixture_identity();
    let mut big = encrypt(b"", &[id.recipient()], &KEY, "c").unwrap();
    big.truncate(big.len() - TAG);
    big.extend(std::iter::repeat_n(0u8, MAX_PLAINTEXT + 17 * (CHUNK + TAG)));
    assert_eq!(
        refusal(&big),
        "larger than 1024 KiB, the most a secret may be"
    );
}
