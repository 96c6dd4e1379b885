//! The PKI checks itself, through `infragen build` (fast tier: the packages are made here,
//! `tests/common/hermetic.rs`, and nothing calls openssl): a CA pair that does not belong
//! together and a CA key others can read are refused before anything is written, and a build
//! reports every certificate it ships with its end date, the same in its human lines and in its
//! `--json` result (checked against docs/json-schema.json). Renewal checked by openssl:
//! `tests/pki_integration.rs`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::schema::{check_lines, documented};

/// The made repository, once per test binary.
fn hermetic() -> &'static common::hermetic::Repo {
    static REPO: std::sync::OnceLock<common::hermetic::Repo> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-hermetic-")
            .tempdir()
            .expect("temp dir")
            .keep();
        common::hermetic::repo(&dir)
    })
}

/// The meta-style inventory the committed PKI was made for (its SANs, its node).
fn meta() -> String {
    common::root()
        .join("tests/fixtures/pigsty/meta.yml")
        .display()
        .to_string()
}

/// `infragen build` of `profile` from the made packages into `dir/out`, with the PKI
/// directory `pki` and the extra arguments `extra`.
fn build(dir: &Path, pki: &Path, profile: &str, extra: &[&str]) -> std::process::Output {
    let repo = hermetic();
    common::infragen()
        .arg("build")
        .args(["--profile", profile, "--out"])
        .arg(dir.join("out"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--lock")
        .arg(&repo.lock)
        .arg("--pki")
        .arg(pki)
        .arg("--repo")
        .arg(&repo.dir)
        .args(extra)
        .env_remove("SOURCE_DATE_EPOCH")
        // Only the made repository serves these packages (tests/golden.rs says why).
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .output()
        .expect("run infragen")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The committed throwaway PKI, copied into `dir/pki` with private keys.
fn committed_pki(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    pki
}

/// A refused build: exit 1, `error: <want>` on stderr, nothing written to `--out`, the state
/// directory's CA untouched and no certificate issued.
fn assert_refused(dir: &Path, pki: &Path, want: &str) {
    let ca_before = fs::read(pki.join("ca/ca.crt")).unwrap();
    fs::remove_dir_all(pki.join("nginx")).unwrap();
    let o = build(dir, pki, &meta(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o), format!("error: {want}\n"));
    assert!(!dir.join("out").exists(), "nothing written to --out");
    assert!(!pki.join("nginx").exists(), "no certificate issued");
    assert_eq!(fs::read(pki.join("ca/ca.crt")).unwrap(), ca_before);
}

#[test]
fn a_ca_pair_that_does_not_belong_together_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = committed_pki(tmp.path());
    // The nginx key of the same throwaway PKI: a real key, not the CA certificate's.
    fs::copy(pki.join("nginx/pigsty.key"), pki.join("ca/ca.key")).unwrap();
    let (key, crt) = (pki.join("ca/ca.key"), pki.join("ca/ca.crt"));
    assert_refused(
        tmp.path(),
        &pki,
        &format!(
            "the CA key {} does not belong to the CA certificate {}: their public keys differ\n\
             hint: put the key the certificate was made with beside it (or remove both to let \
             infragen make a new CA)",
            key.display(),
            crt.display()
        ),
    );
}

#[test]
fn a_ca_key_others_can_read_is_refused_and_left_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = committed_pki(tmp.path());
    let key = pki.join("ca/ca.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    assert_refused(
        tmp.path(),
        &pki,
        &format!(
            "{}: the CA key is readable or writable by group or others (mode 0644); refusing to use it\n\
             hint: `chmod 600 {}` if nobody else could read it, else make a new CA",
            key.display(),
            key.display()
        ),
    );
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "refused, not tightened behind the user's back");
}

/// The `certificate …` lines of a build's human output.
fn certificate_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("certificate "))
        .collect()
}

/// `build` says every certificate it ships with its end date: a fresh PKI issues them, the next
/// build reuses them and says the same dates; `--json` carries the same as `certificates`.
#[test]
fn a_build_reports_the_certificates_it_ships_and_their_end_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("fresh-pki");
    let o = build(tmp.path(), &pki, "single-node", &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = check_lines(&documented(), &stdout(&o));
    let certs = lines.last().unwrap()["certificates"].clone();
    let names: Vec<&str> = certs
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ca/ca", "nginx/pigsty", "infra/infra-1"]);
    for c in certs.as_array().unwrap() {
        assert_eq!(c["action"], "issued", "{c}");
        assert!(c.get("why").is_none(), "{c}");
        assert_eq!(c["hosts"], serde_json::json!(["10.10.10.10"]), "{c}");
        let date = c["not_after"].as_str().unwrap();
        assert!(
            date.len() == 20 && date.ends_with('Z') && &date[10..11] == "T",
            "RFC 3339 in UTC: {date}"
        );
    }
    fs::remove_dir_all(tmp.path().join("out")).unwrap();

    // The same PKI again, human output: reused, the same dates.
    let o = build(tmp.path(), &pki, "single-node", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let want: Vec<String> = certs
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "certificate {:<16} expires {} (reused)",
                c["name"].as_str().unwrap(),
                c["not_after"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(certificate_lines(&out), want, "{out}");
    // What the state directory holds is what the bundle carries.
    let key = fs::read(tmp.path().join("out/10.10.10.10/secrets/nginx/pigsty.key")).unwrap();
    assert_eq!(key, fs::read(pki.join("nginx/pigsty.key")).unwrap());
}

/// A certificate key that group or others could read is no secret any more: the next build
/// renews the certificate with a new key and says so (infragen made that key, so replacing it
/// costs nothing; a CA key is refused instead, above).
#[test]
fn a_certificate_key_others_can_read_is_replaced_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = committed_pki(tmp.path());
    let key = pki.join("nginx/pigsty.key");
    let old = fs::read(&key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    let o = build(tmp.path(), &pki, &meta(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "warning: certificate `nginx/pigsty` renewed with a new key: its key was readable or writable by \
             group or others (mode 0640)\n"
        ),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    let line = certificate_lines(&out)
        .into_iter()
        .find(|l| l.starts_with("certificate nginx/pigsty "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.ends_with(
            "(renewed: its key was readable or writable by group or others (mode 0640))"
        ),
        "{out}"
    );
    assert_ne!(fs::read(&key).unwrap(), old);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let shipped = fs::read(tmp.path().join("out/10.10.10.10/secrets/nginx/pigsty.key")).unwrap();
    assert_eq!(
        shipped,
        fs::read(&key).unwrap(),
        "the bundle carries the new key"
    );
    // The other certificates of the committed PKI were good: reused.
    assert_eq!(
        certificate_lines(&out)
            .iter()
            .filter(|l| l.ends_with("(reused)"))
            .count(),
        2,
        "{out}"
    );
}
