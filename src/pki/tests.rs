//! Unit tests of the PKI: reuse, renewal, and the checks of a CA brought by the user.

use super::*;
use crate::duration::Duration;

fn d(s: &str) -> Duration {
    Duration::parse(s).unwrap()
}

fn sans() -> Vec<San> {
    vec![
        San::Dns("i.pigsty".into()),
        San::Ip("127.0.0.1".parse().unwrap()),
    ]
}

fn nginx<'a>(sans: &'a [San], validity: &str) -> Request<'a> {
    Request {
        name: "nginx/pigsty",
        cn: "pigsty",
        ou: "nginx",
        sans,
        validity: d(validity),
        renew_before: d("30d"),
        server: true,
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A self-signed CA made here, its key and certificate PEM.
fn other_ca(not_before: OffsetDateTime, not_after: OffsetDateTime, ca: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = name_of("other-ca", "ca");
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.self_signed(&key).unwrap();
    (key.serialize_pem(), cert.pem())
}

/// Writes a CA pair into `dir` as a user would bring it.
fn bring(dir: &Path, key: &str, cert: &str) {
    fs::create_dir_all(dir.join("ca")).unwrap();
    fs::write(dir.join("ca/ca.key"), key).unwrap();
    chmod(&dir.join("ca/ca.key"), 0o600);
    fs::write(dir.join("ca/ca.crt"), cert).unwrap();
}

fn err(r: Result<Pki>) -> String {
    format!("{:#}", r.err().expect("refused"))
}

#[test]
fn reuses_until_sans_change() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    assert!(pki.ca_created);
    let sans = sans();
    let a = pki.issue(&nginx(&sans, "397d")).unwrap();
    assert_eq!((a.action, a.why.as_deref()), (Action::Issued, None));
    let b = pki.issue(&nginx(&sans, "397d")).unwrap();
    assert_eq!(
        (&b.cert, &b.key, b.not_after),
        (&a.cert, &a.key, a.not_after)
    );
    assert_eq!((b.action, b.why), (Action::Reused, None));
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    assert!(!pki.ca_created);
    let again = pki.issue(&nginx(&sans, "397d")).unwrap();
    assert_eq!(
        (again.cert, again.action),
        (a.cert.clone(), Action::Reused),
        "reopened: still reused"
    );
    let c = pki.issue(&nginx(&sans[..1], "397d")).unwrap();
    assert_ne!(a.cert, c.cert);
    assert_eq!(
        (c.action, c.why.as_deref()),
        (Action::Renewed, Some("its SANs changed"))
    );
    let e = pki.issue(&nginx(&sans[..1], "90d")).unwrap();
    assert_eq!(e.why.as_deref(), Some("its validity changed"));
    assert_eq!(mode(&dir.path().join("nginx/pigsty.key")), 0o600);
    assert!(Pki::open(tempfile::tempdir().unwrap().path(), "x", false).is_err());
}

#[test]
fn issued_dates_are_the_certificates_own() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    let sans = sans();
    let a = pki.issue(&nginx(&sans, "397d")).unwrap();
    let facts = check::facts(&a.cert).unwrap();
    assert_eq!(a.not_after, facts.not_after);
    assert_eq!(
        facts.not_after - facts.not_before,
        time::Duration::days(397)
    );
}

/// Replaces the certificate of `nginx/pigsty` by one for the same key, signed by the same CA,
/// valid from `from` to `until` (as an older build would have left it).
fn age_nginx(pki: &Pki, from: OffsetDateTime, until: OffsetDateTime) {
    let crt = pki.dir.join("nginx/pigsty.crt");
    let key =
        KeyPair::from_pem(&fs::read_to_string(pki.dir.join("nginx/pigsty.key")).unwrap()).unwrap();
    let mut params = CertificateParams::new(vec!["i.pigsty".to_owned()]).unwrap();
    params.distinguished_name = name_of("pigsty", "nginx");
    params.not_before = from;
    params.not_after = until;
    let ca = Issuer::from_ca_cert_pem(&pki.ca_cert, &pki.ca_key).unwrap();
    fs::write(crt, params.signed_by(&key, &ca).unwrap().pem()).unwrap();
}

#[test]
fn renews_inside_the_window_and_after_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    let sans = sans();
    let first = pki.issue(&nginx(&sans, "397d")).unwrap();
    let now = pki.now;
    let cases = [
        (time::Duration::days(31), None),
        (
            time::Duration::days(29),
            Some("inside the renewal window (`30d` before)"),
        ),
        (time::Duration::days(-1), Some("it expired on ")),
    ];
    for (left, why) in cases {
        age_nginx(&pki, now - time::Duration::days(300), now + left);
        let aged = fs::read_to_string(dir.path().join("nginx/pigsty.crt")).unwrap();
        let got = pki.issue(&nginx(&sans, "397d")).unwrap();
        match why {
            None => {
                assert_eq!((got.action, &got.cert), (Action::Reused, &aged), "{left}");
            }
            Some(why) => {
                assert_eq!(got.action, Action::Renewed, "{left}");
                assert!(
                    got.why.as_deref().unwrap().contains(why),
                    "{left}: {:?}",
                    got.why
                );
                assert_ne!(got.cert, aged);
                assert_ne!(got.key, first.key, "a renewed certificate has a new key");
                assert!(got.not_after - now >= time::Duration::days(396), "{left}");
                let again = pki.issue(&nginx(&sans, "397d")).unwrap();
                assert_eq!((again.action, again.cert), (Action::Reused, got.cert));
            }
        }
    }
}

#[test]
fn a_leaf_key_others_can_read_is_replaced_and_a_foreign_one_too() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    let sans = sans();
    let first = pki.issue(&nginx(&sans, "397d")).unwrap();
    let key = dir.path().join("nginx/pigsty.key");
    chmod(&key, 0o644);
    let got = pki.issue(&nginx(&sans, "397d")).unwrap();
    assert_eq!(got.action, Action::Renewed);
    assert_eq!(
        got.why.as_deref(),
        Some("its key was readable or writable by group or others (mode 0644)")
    );
    assert_ne!(got.key, first.key);
    assert_eq!(mode(&key), 0o600);
    // a key that is not the certificate's
    fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    chmod(&key, 0o600);
    let got = pki.issue(&nginx(&sans, "397d")).unwrap();
    assert_eq!(
        got.why.as_deref(),
        Some("its key does not match its certificate")
    );
}

/// A fifo, a link to `/dev/zero` or an oversized file in place of a CA file is refused at once:
/// nothing waits on a fifo or reads without end.
#[test]
fn a_ca_file_that_is_not_a_small_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    Pki::open(dir.path(), "test-ca", true).unwrap();
    let key = dir.path().join("ca/ca.key");
    let crt = dir.path().join("ca/ca.crt");
    let good_key = fs::read(&key).unwrap();
    fs::remove_file(&key).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &key,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let e = err(Pki::open(dir.path(), "test-ca", true));
    assert!(e.contains("not a regular file"), "{e}");
    fs::remove_file(&key).unwrap();
    fs::write(&key, good_key).unwrap();
    chmod(&key, 0o600);
    fs::remove_file(&crt).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &crt).unwrap();
    let e = err(Pki::open(dir.path(), "test-ca", true));
    assert_eq!(e, format!("reading {}: not a regular file", crt.display()));
    fs::remove_file(&crt).unwrap();
    fs::write(
        &crt,
        vec![b'a'; usize::try_from(check::MAX_FILE).unwrap() + 1],
    )
    .unwrap();
    let e = err(Pki::open(dir.path(), "test-ca", true));
    assert_eq!(
        e,
        format!(
            "reading {}: larger than {} bytes",
            crt.display(),
            check::MAX_FILE
        )
    );
}

#[test]
fn a_ca_key_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Pki::open(dir.path(), "test-ca", true).unwrap();
    let key = dir.path().join("ca/ca.key");
    for m in [0o644, 0o640, 0o604] {
        chmod(&key, m);
        let e = err(Pki::open(dir.path(), "test-ca", true));
        assert_eq!(
            e,
            format!(
                "{}: the CA key is readable or writable by group or others (mode {m:04o}); refusing to use it\n\
                 hint: `chmod 600 {}` if nobody else could read it, else make a new CA",
                key.display(),
                key.display()
            )
        );
        assert_eq!(mode(&key), m, "refused, not changed");
    }
    chmod(&key, 0o400);
    Pki::open(dir.path(), "test-ca", true).expect("owner-only is fine");
}

#[test]
fn a_ca_pair_that_does_not_belong_together_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let (key_a, _) = other_ca(now, now + time::Duration::days(10), true);
    let (_, cert_b) = other_ca(now, now + time::Duration::days(10), true);
    bring(dir.path(), &key_a, &cert_b);
    let e = err(Pki::open(dir.path(), "test-ca", true));
    let (k, c) = (dir.path().join("ca/ca.key"), dir.path().join("ca/ca.crt"));
    assert!(
        e.starts_with(&format!(
            "the CA key {} does not belong to the CA certificate {}: their public keys differ\n",
            k.display(),
            c.display()
        )),
        "{e}"
    );
    assert_eq!(fs::read_to_string(&c).unwrap(), cert_b, "nothing replaced");
    assert!(!dir.path().join("nginx").exists());
}

#[test]
fn a_ca_that_is_expired_not_a_ca_or_without_its_key_is_refused() {
    let now = now();
    let ca_crt = |d: &Path| d.join("ca/ca.crt").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = other_ca(
        now - time::Duration::days(20),
        now - time::Duration::days(1),
        true,
    );
    bring(dir.path(), &key, &cert);
    let e = err(Pki::open(dir.path(), "x", true));
    assert!(
        e.starts_with(&format!(
            "{}: the CA certificate expired on ",
            ca_crt(dir.path())
        )),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = other_ca(now, now + time::Duration::days(20), false);
    bring(dir.path(), &key, &cert);
    let e = err(Pki::open(dir.path(), "x", true));
    assert_eq!(
        e,
        format!(
            "{}: not a CA certificate (its basicConstraints do not say CA:TRUE)",
            ca_crt(dir.path())
        )
    );

    let dir = tempfile::tempdir().unwrap();
    bring(dir.path(), &key, &cert);
    fs::remove_file(dir.path().join("ca/ca.key")).unwrap();
    let e = err(Pki::open(dir.path(), "x", true));
    assert!(
        e.starts_with(&format!(
            "{}: a CA certificate without its key ",
            ca_crt(dir.path())
        )),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("ca/ca.crt")).unwrap(),
        cert,
        "kept"
    );
}

#[test]
fn a_ca_near_its_end_is_reported_not_replaced() {
    let now = now();
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = other_ca(
        now - time::Duration::days(1),
        now + time::Duration::days(10),
        true,
    );
    bring(dir.path(), &key, &cert);
    let pki = Pki::open(dir.path(), "x", true).unwrap();
    assert!(!pki.ca_created);
    let mut m = Material::default();
    ca_shipped(&pki, d("30d"), vec!["10.0.0.1".into()], &mut m);
    assert_eq!(m.certificates.len(), 1);
    let ca = &m.certificates[0];
    assert_eq!(
        (ca.name.as_str(), ca.action, &ca.why),
        ("ca/ca", Action::Reused, &None)
    );
    assert_eq!(
        ca.not_after,
        rfc3339(check::facts(&cert).unwrap().not_after)
    );
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("inside the renewal window"),
        "{:?}",
        m.warnings
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("ca/ca.crt")).unwrap(),
        cert
    );
}

#[test]
fn a_new_ca_renews_the_certificates_it_did_not_sign() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    let sans = sans();
    let first = pki.issue(&nginx(&sans, "397d")).unwrap();
    let now = now();
    let (key, cert) = other_ca(now, now + time::Duration::days(3650), true);
    bring(dir.path(), &key, &cert);
    let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
    let got = pki.issue(&nginx(&sans, "397d")).unwrap();
    assert_eq!(
        (got.action, got.why.as_deref()),
        (Action::Renewed, Some("its CA changed"))
    );
    assert_ne!(got.cert, first.cert);
    // signed by the new CA: its issuer is the new CA's subject
    let der = |pem: &str| x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1;
    let (leaf, ca) = (der(&got.cert), der(&cert));
    let (leaf, ca) = (leaf.parse_x509().unwrap(), ca.parse_x509().unwrap());
    assert_eq!(leaf.issuer().to_string(), ca.subject().to_string());
}

#[test]
fn a_certificate_that_outlives_its_ca_is_reported() {
    let now = now();
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = other_ca(
        now - time::Duration::days(1),
        now + time::Duration::days(100),
        true,
    );
    bring(dir.path(), &key, &cert);
    let pki = Pki::open(dir.path(), "x", true).unwrap();
    let sans = sans();
    let mut m = Material::default();
    let long = pki.issue(&nginx(&sans, "397d")).unwrap();
    shipped(&pki, "nginx/pigsty", &long, vec!["10.0.0.1".into()], &mut m);
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].starts_with("certificate `nginx/pigsty` ends on ")
            && m.warnings[0].ends_with(&format!(
                "after its CA ({}): it stops verifying then",
                rfc3339(pki.ca_not_after())
            )),
        "{:?}",
        m.warnings
    );
    let mut m = Material::default();
    let short = pki.issue(&nginx(&sans, "60d")).unwrap();
    shipped(
        &pki,
        "nginx/pigsty",
        &short,
        vec!["10.0.0.1".into()],
        &mut m,
    );
    assert_eq!(m.warnings, Vec::<String>::new());
}
