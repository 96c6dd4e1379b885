//! PKI: a self-signed CA kept in a state directory and reused across builds, the nginx server
//! certificate and one certificate per infra node, issued when missing or when their subject
//! alternative names would change — never on every build.
//!
//! Layout of the state directory (Pigsty's `files/pki`, docs/pigsty-infra.md §4.3, §5):
//! `ca/ca.{key,crt}`, `nginx/pigsty.{key,crt,sans}`, `infra/infra-<seq>.{key,crt,sans}`; keys
//! are 0600 in 0700 directories. A CA the user brings (both files present) is used as is.
//! Keys are ECDSA P-256 (Pigsty uses RSA 4096; P-256 is as strong for TLS and far cheaper).
//! Certificate validity starts at issuance: the one place infragen reads the clock, because a
//! certificate dated in the past or future would be wrong; certificates are state, reused, so
//! builds stay reproducible for a given state directory.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// Certificate.
    pub cert: String,
    /// Private key (a secret).
    pub key: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert", &self.cert)
            .field("key", &"***")
            .finish()
    }
}

/// The PKI state directory with its CA loaded.
pub struct Pki {
    dir: PathBuf,
    ca_cert: String,
    ca_key: KeyPair,
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum San {
    /// `DNS:`.
    Dns(String),
    /// `IP:`.
    Ip(IpAddr),
}

impl San {
    fn line(&self) -> String {
        match self {
            San::Dns(d) => format!("DNS:{d}"),
            San::Ip(ip) => format!("IP:{ip}"),
        }
    }
}

fn write_private(path: &Path, text: &str, mode: u32) -> Result<()> {
    let dir = path.parent().expect("has parent");
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    crate::fsx::write_file_atomic(path, text.as_bytes(), mode)
}

/// Locks the PKI directory itself (created when missing) until the returned handle is dropped:
/// builds sharing a PKI directory take turns to read and write it, so the CA is made once and a
/// key is never paired with another build's certificate.
fn lock_dir(dir: &Path) -> Result<fs::File> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", dir.display()))?;
    Ok(lock)
}

#[allow(clippy::disallowed_methods)] // certificates are valid from their issuance (module docs)
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl Pki {
    /// Opens `dir`, creating the CA when it is missing and `create` is true.
    pub fn open(dir: &Path, ca_cn: &str, create: bool) -> Result<Self> {
        let _lock = lock_dir(dir)?;
        let key_path = dir.join("ca/ca.key");
        let crt_path = dir.join("ca/ca.crt");
        if !key_path.exists() {
            if !create {
                bail!("{}: no CA key and `ca_create` is false\nhint: put your CA in ca/ca.key and ca/ca.crt", dir.display());
            }
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name_of(ca_cn, "ca");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = now();
            params.not_after = now() + time::Duration::days(36_500);
            let cert = params.self_signed(&key)?;
            write_private(&key_path, &key.serialize_pem(), 0o600)?;
            write_private(&crt_path, &cert.pem(), 0o644)?;
        }
        let key_pem = fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let ca_key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{}: not a private key", key_path.display()))?;
        let ca_cert = fs::read_to_string(&crt_path).with_context(|| {
            format!(
                "reading {}\nhint: a CA key without its certificate",
                crt_path.display()
            )
        })?;
        Issuer::from_ca_cert_pem(&ca_cert, &ca_key)
            .with_context(|| format!("{}: not a CA certificate", crt_path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_cert,
            ca_key,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca(&self) -> &str {
        &self.ca_cert
    }

    /// The build's sealing key for secrets ([`crate::secrets::seal`]): derived from the CA's
    /// private key, the one secret every build of this state directory already shares, so that
    /// encrypted secrets are reproducible for it and unguessable without it.
    pub fn sealing_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(
            Some(b"infragen sealing key v1"),
            &self.ca_key.serialize_der(),
        )
        .expand(b"age seed", &mut out)
        .expect("32 bytes is within HKDF's limit");
        out
    }

    /// The certificate `name` (e.g. `nginx/pigsty`), reused when it exists for exactly these
    /// SANs and this CA, else issued now with `validity` (a duration such as `397d`).
    pub fn issue(
        &self,
        name: &str,
        cn: &str,
        ou: &str,
        sans: &[San],
        validity: crate::duration::Duration,
        server: bool,
    ) -> Result<Issued> {
        let base = self.dir.join(name);
        let (crt_path, key_path, meta_path) = (
            base.with_extension("crt"),
            base.with_extension("key"),
            base.with_extension("sans"),
        );
        let mut want: Vec<String> = sans.iter().map(San::line).collect();
        want.push(format!("CN:{cn}"));
        want.push(format!(
            "CA:{}",
            crate::digest::sha256_hex(self.ca_cert.as_bytes())
        ));
        want.push(format!("validity:{validity}"));
        let want = want.join("\n") + "\n";
        let _lock = lock_dir(&self.dir)?;
        if let (Ok(c), Ok(k), Ok(m)) = (
            fs::read_to_string(&crt_path),
            fs::read_to_string(&key_path),
            fs::read_to_string(&meta_path),
        ) {
            if m == want {
                return Ok(Issued { cert: c, key: k });
            }
        }
        let key_pair = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name_of(cn, ou);
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s {
                San::Dns(d) => Ok(SanType::DnsName(d.clone().try_into()?)),
                San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        if server {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        params.use_authority_key_identifier_extension = true;
        params.not_before = now();
        // The plan refuses validities that are not whole seconds or overflow (crate::duration).
        let seconds = validity
            .whole_seconds()
            .with_context(|| format!("certificate validity `{validity}` is not whole seconds"))?;
        params.not_after = now() + time::Duration::seconds(seconds);
        let ca = Issuer::from_ca_cert_pem(&self.ca_cert, &self.ca_key)?;
        let signed = params.signed_by(&key_pair, &ca)?;
        let issued = Issued {
            cert: signed.pem(),
            key: key_pair.serialize_pem(),
        };
        write_private(&key_path, &issued.key, 0o600)?;
        write_private(&crt_path, &issued.cert, 0o644)?;
        write_private(&meta_path, &want, 0o644)?;
        Ok(issued)
    }
}

fn name_of(cn: &str, ou: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "pigsty");
    dn.push(DnType::OrganizationalUnitName, ou);
    dn
}

/// The certificates of every infra host of `plan`, added to `tree`: the CA and the shared nginx
/// server certificate in nginx's root (`/etc/pki/ca.crt`, `/etc/nginx/cert/pigsty.crt`), the
/// node certificate in vmetrics' root (`/etc/pki/infra.crt`, client certificate of the TLS
/// scrape jobs), and their keys as secrets.
pub fn add_material(
    plan: &crate::plan::Plan,
    pki: &Pki,
    tree: &mut crate::tree::Tree,
) -> Result<()> {
    use crate::plan::{Component, PortalKind};
    let Some(first) = plan.hosts.first() else {
        return Ok(());
    };
    let mut sans = Vec::new();
    let mut push = |s: San| {
        if !sans.contains(&s) {
            sans.push(s);
        }
    };
    // Domains of the portal (the first host's: infra_portal is global), localhost, every infra
    // host's address.
    if let Some(n) = plan.hosts.iter().find_map(|h| h.nginx.as_ref()) {
        for p in &n.portal {
            if p.cert.is_none() || matches!(p.kind, PortalKind::Home { .. }) {
                push(San::Dns(p.domain.clone()));
            }
        }
    }
    push(San::Dns("localhost".to_owned()));
    for node in &plan.infra {
        push(San::Ip(node.ip));
    }
    let nginx = pki.issue(
        "nginx/pigsty",
        "pigsty",
        "nginx",
        &sans,
        first.pki.nginx_cert_validity,
        true,
    )?;
    for h in &plan.hosts {
        let host = h.ip.to_string();
        if h.enabled().contains(&Component::Nginx) {
            tree.add(format!("{host}/nginx/etc/pki/ca.crt"), 0o644, pki.ca());
            tree.add(
                format!("{host}/nginx/etc/nginx/cert/pigsty.crt"),
                0o644,
                nginx.cert.as_str(),
            );
            tree.add(
                format!("{host}/secrets/nginx/pigsty.key"),
                0o600,
                nginx.key.as_str(),
            );
        }
        if h.enabled().contains(&Component::Vmetrics) {
            let node_sans = [
                San::Dns("localhost".into()),
                San::Ip(std::net::Ipv4Addr::LOCALHOST.into()),
                San::Ip(h.ip),
            ];
            let node = pki.issue(
                &format!("infra/infra-{}", h.seq),
                &host,
                "infra",
                &node_sans,
                h.pki.cert_validity,
                false,
            )?;
            tree.add(format!("{host}/vmetrics/etc/pki/ca.crt"), 0o644, pki.ca());
            tree.add(
                format!("{host}/vmetrics/etc/pki/infra.crt"),
                0o644,
                node.cert.as_str(),
            );
            tree.add(
                format!("{host}/secrets/vmetrics/infra.key"),
                0o600,
                node.key.as_str(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_until_sans_change() {
        let d397 = crate::duration::Duration::parse("397d").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
        let sans = [
            San::Dns("i.pigsty".into()),
            San::Ip("127.0.0.1".parse().unwrap()),
        ];
        let a = pki
            .issue("nginx/pigsty", "pigsty", "nginx", &sans, d397, true)
            .unwrap();
        let b = pki
            .issue("nginx/pigsty", "pigsty", "nginx", &sans, d397, true)
            .unwrap();
        assert_eq!(a, b);
        let pki = Pki::open(dir.path(), "test-ca", true).unwrap();
        assert_eq!(
            pki.issue("nginx/pigsty", "pigsty", "nginx", &sans, d397, true)
                .unwrap(),
            a,
            "reopened: still reused"
        );
        let c = pki
            .issue("nginx/pigsty", "pigsty", "nginx", &sans[..1], d397, true)
            .unwrap();
        assert_ne!(a.cert, c.cert);
        let mode = fs::metadata(dir.path().join("nginx/pigsty.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(Pki::open(tempfile::tempdir().unwrap().path(), "x", false).is_err());
    }
}
