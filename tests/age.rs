//! Interoperability with the reference `age` CLI (Debian package `age`): what infragen
//! encrypts, `age -d` decrypts; what `age -r` encrypts, infragen decrypts; `age-keygen`'s
//! identity file is what infragen reads, and the file `host init` writes is one `age` reads.

mod common;

use std::fs;
use std::process::Command;

use infragen::age::{decrypt, encrypt, Identity, Recipient};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("the age CLI (apt-get install age)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Plaintexts around the 64 KiB chunk boundaries.
fn plaintexts() -> Vec<Vec<u8>> {
    [0usize, 1, 100, 65_535, 65_536, 65_537, 200_000]
        .iter()
        .map(|&n| {
            (0..n)
                .map(|i| u8::try_from(i * 13 % 256).unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn the_age_cli_decrypts_what_infragen_encrypts() {
    common::tier::binary(common::tier::Tier::Integration, "tests/age.rs");
    let dir = tempfile::tempdir().unwrap();
    let ours = Identity::generate().unwrap();
    let id_file = dir.path().join("ours.key");
    fs::write(&id_file, ours.to_file()).unwrap();
    // A second recipient from age-keygen: either identity decrypts.
    let theirs_file = dir.path().join("theirs.key");
    run(Command::new("age-keygen").arg("-o").arg(&theirs_file));
    let theirs = Identity::parse_file(&fs::read_to_string(&theirs_file).unwrap())
        .unwrap()
        .remove(0);
    let public = run(Command::new("age-keygen").arg("-y").arg(&theirs_file));
    assert_eq!(
        String::from_utf8(public).unwrap().trim(),
        theirs.recipient().to_string()
    );
    let to = [ours.recipient(), theirs.recipient()];
    for plain in plaintexts() {
        let sealed = encrypt(&plain, &to, &[3; 32], "10.10.10.10/grafana/x").unwrap();
        let file = dir.path().join("x.age");
        fs::write(&file, &sealed).unwrap();
        for id in [&id_file, &theirs_file] {
            let got = run(Command::new("age").arg("-d").arg("-i").arg(id).arg(&file));
            assert_eq!(got, plain, "{} bytes with {}", plain.len(), id.display());
        }
    }
}

#[test]
fn infragen_decrypts_what_the_age_cli_encrypts() {
    common::tier::binary(common::tier::Tier::Integration, "tests/age.rs");
    let dir = tempfile::tempdir().unwrap();
    let ours = Identity::generate().unwrap();
    let other = Identity::generate().unwrap();
    for plain in plaintexts() {
        let input = dir.path().join("plain");
        fs::write(&input, &plain).unwrap();
        let sealed = run(Command::new("age")
            .arg("-r")
            .arg(ours.recipient().to_string())
            .arg("-r")
            .arg(other.recipient().to_string())
            .arg(&input));
        assert_eq!(
            decrypt(&sealed, std::slice::from_ref(&ours)).unwrap(),
            plain
        );
        // Armored output is not what bundles hold: refused, not misread.
        assert!(decrypt(
            b"-----BEGIN AGE ENCRYPTED FILE-----\n",
            std::slice::from_ref(&ours)
        )
        .is_err());
    }
    let stranger = Identity::generate().unwrap();
    fs::write(dir.path().join("plain"), b"x").unwrap();
    let sealed = run(Command::new("age")
        .arg("-r")
        .arg(ours.recipient().to_string())
        .arg(dir.path().join("plain")));
    assert_eq!(
        decrypt(&sealed, &[stranger]).unwrap_err().to_string(),
        "encrypted to none of the identities given"
    );
    assert!(Recipient::parse(&ours.recipient().to_string()).is_ok());
}
