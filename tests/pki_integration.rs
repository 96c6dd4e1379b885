//! Certificate renewal checked by openssl (integration tier: it runs `openssl`): a certificate
//! an older build left inside its renewal window is re-issued by the next build, the bundle
//! carries the new one, `openssl verify` accepts it against the CA, and the end date the build
//! reports is the one openssl reads. The packages are made here (`tests/common/hermetic.rs`).
//! The fast PKI tests: `tests/pki.rs`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

const FILE: &str = "tests/pki_integration.rs";

fn openssl(args: &[&str]) -> String {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `notAfter` of the certificate at `path` as openssl reads it, RFC 3339 (`2027-12-28T07:08:36Z`).
fn end_date(path: &Path) -> String {
    openssl(&[
        "x509",
        "-in",
        s(path),
        "-noout",
        "-enddate",
        "-dateopt",
        "iso_8601",
    ])
    .trim()
    .trim_start_matches("notAfter=")
    .replace(' ', "T")
}

/// `infragen build` of the meta-style inventory from the made packages into `dir/out`.
fn build(dir: &Path, repo: &common::hermetic::Repo) -> String {
    let o = common::infragen()
        .arg("build")
        .arg("--profile")
        .arg(common::root().join("tests/fixtures/pigsty/meta.yml"))
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--lock")
        .arg(&repo.lock)
        .arg("--pki")
        .arg(dir.join("pki"))
        .arg("--repo")
        .arg(&repo.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        // Only the made repository serves these packages (tests/golden.rs says why).
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .output()
        .expect("run infragen");
    common::ok(&o, "build")
}

/// Whether any file of the bundle `host` (layers decompressed) holds `needle`.
fn bundle_holds(host: &Path, needle: &[u8]) -> bool {
    common::artifact_texts(host)
        .iter()
        .any(|(_, bytes, _)| bytes.windows(needle.len()).any(|w| w == needle))
}

#[test]
fn a_certificate_inside_its_renewal_window_is_renewed_and_verifies() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    common::tier::require(FILE, &[("openssl", "openssl")]);
    let tmp = tempfile::tempdir().unwrap();
    let repo = common::hermetic::repo(&tmp.path().join("made"));
    let dir = tmp.path();
    let pki = dir.join("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    let (ca, ca_key) = (pki.join("ca/ca.crt"), pki.join("ca/ca.key"));
    let (crt, key) = (pki.join("nginx/pigsty.crt"), pki.join("nginx/pigsty.key"));

    // As an older build would have left it: the same key, signed by the same CA, 10 days left.
    let req = dir.join("pigsty.csr");
    openssl(&[
        "req",
        "-new",
        "-key",
        s(&key),
        "-subj",
        "/CN=pigsty/O=pigsty/OU=nginx",
        "-out",
        s(&req),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&req),
        "-CA",
        s(&ca),
        "-CAkey",
        s(&ca_key),
        "-set_serial",
        "7",
        "-days",
        "10",
        "-out",
        s(&crt),
    ]);
    let aged = fs::read_to_string(&crt).unwrap();
    let aged_end = end_date(&crt);
    assert!(openssl(&["verify", "-CAfile", s(&ca), s(&crt)]).contains(": OK"));
    let old_key = fs::read(&key).unwrap();

    let out = build(dir, &repo);
    let renewed = fs::read_to_string(&crt).unwrap();
    assert_ne!(renewed, aged, "renewed");
    assert_ne!(fs::read(&key).unwrap(), old_key, "with a new key");
    let verified = openssl(&["verify", "-CAfile", s(&ca), s(&crt)]);
    assert_eq!(verified.trim(), format!("{}: OK", crt.display()));
    // What the build reports is what the certificate says.
    let new_end = end_date(&crt);
    let want = format!(
        "certificate nginx/pigsty     expires {new_end} (renewed: it expires on {aged_end}, \
         inside the renewal window (`30d` before))"
    );
    assert!(out.lines().any(|l| l == want), "want {want:?} in:\n{out}");
    let ca_line = format!(
        "certificate ca/ca            expires {} (reused)",
        end_date(&ca)
    );
    assert!(
        out.lines().any(|l| l == ca_line),
        "want {ca_line:?} in:\n{out}"
    );
    // The bundle carries the new certificate and key, not the aged certificate.
    let host = dir.join("out/10.10.10.10");
    assert!(
        bundle_holds(&host, renewed.as_bytes()),
        "the renewed certificate is in a layer"
    );
    assert!(!bundle_holds(&host, aged.as_bytes()), "the aged one is not");
    assert_eq!(
        fs::read(host.join("secrets/nginx/pigsty.key")).unwrap(),
        fs::read(&key).unwrap()
    );

    // Renewed once: the next build reuses it.
    fs::remove_dir_all(dir.join("out")).unwrap();
    let out = build(dir, &repo);
    assert_eq!(fs::read_to_string(&crt).unwrap(), renewed);
    let want = format!("certificate nginx/pigsty     expires {new_end} (reused)");
    assert!(out.lines().any(|l| l == want), "want {want:?} in:\n{out}");
}
