//! PKI: a self-signed CA kept in a state directory and reused across builds, the nginx server
//! certificate and one certificate per infra node, issued when missing and re-issued when their
//! subject alternative names, common name, CA or validity would change, when they come within
//! the renewal window of their `notAfter` (`cert_renew_before`), or when their key is not
//! private to its owner any more — never on every build.
//!
//! Layout of the state directory (Pigsty's `files/pki`, docs/pigsty-infra.md §4.3, §5):
//! `ca/ca.{key,crt}`, `nginx/pigsty.{key,crt,sans}`, `infra/infra-<seq>.{key,crt,sans}`; keys
//! are 0600 in 0700 directories. A CA the user brings (both files present) is checked, never
//! changed: its key must be private to its owner (no permission for group or others) and must
//! be the key of the certificate, which must be a CA certificate valid now ([`check`]).
//! Keys are ECDSA P-256 (Pigsty uses RSA 4096; P-256 is as strong for TLS and far cheaper).
//! Certificate validity starts at issuance: the one place infragen reads the clock, because a
//! certificate dated in the past or future would be wrong; certificates are state, reused, so
//! builds stay reproducible for a given state directory until a certificate is renewed.

mod check;

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde::Serialize;
use time::OffsetDateTime;

pub use check::rfc3339;

/// A certificate and its private key, PEM, with what the PKI did to get it.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// Certificate.
    pub cert: String,
    /// Private key (a secret).
    pub key: String,
    /// The certificate's `notAfter`.
    pub not_after: OffsetDateTime,
    /// Reused, issued or renewed.
    pub action: Action,
    /// Why it was renewed (`None` when reused or issued where there was none).
    pub why: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert", &self.cert)
            .field("key", &"***")
            .field("not_after", &self.not_after)
            .field("action", &self.action)
            .field("why", &self.why)
            .finish()
    }
}

/// What the PKI did for one certificate of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The one in the state directory was good: shipped as it is.
    Reused,
    /// There was none: made now (the CA too, when infragen created it).
    Issued,
    /// There was one that could not be reused: replaced now, with a new key (`why` says why).
    Renewed,
}

impl Action {
    /// The word reports use.
    pub fn word(self) -> &'static str {
        match self {
            Action::Reused => "reused",
            Action::Issued => "issued",
            Action::Renewed => "renewed",
        }
    }
}

/// One certificate a build ships, for its report (docs/json.md, `certificates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipped {
    /// Its name in the state directory: `ca/ca`, `nginx/pigsty`, `infra/infra-<seq>`.
    pub name: String,
    /// The hosts whose bundles carry it, in plan order.
    pub hosts: Vec<String>,
    /// Its `notAfter`, RFC 3339.
    pub not_after: String,
    /// Reused, issued or renewed.
    pub action: Action,
    /// Why it was renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What [`add_material`] reports: every certificate shipped, and warnings for the person.
#[derive(Debug, Clone, Default)]
pub struct Material {
    /// The certificates shipped, the CA first.
    pub certificates: Vec<Shipped>,
    /// Warnings (without `warning: `): a CA close to its end, a key that was readable by others.
    pub warnings: Vec<String>,
}

/// The PKI state directory with its CA loaded and checked.
pub struct Pki {
    dir: PathBuf,
    ca_cert: String,
    ca_key: KeyPair,
    ca_facts: check::Facts,
    ca_created: bool,
    now: OffsetDateTime,
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

/// A certificate to issue or reuse.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Its name in the state directory (`nginx/pigsty`).
    pub name: &'a str,
    /// Subject common name.
    pub cn: &'a str,
    /// Subject organisational unit.
    pub ou: &'a str,
    /// Subject alternative names.
    pub sans: &'a [San],
    /// Validity of a newly issued one (`397d`).
    pub validity: crate::duration::Duration,
    /// Re-issued when it is this close to its `notAfter` (`cert_renew_before`).
    pub renew_before: crate::duration::Duration,
    /// A server certificate (server auth only) rather than a node one (server and client).
    pub server: bool,
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
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Makes a new self-signed CA into `key_path` and `crt_path`.
fn create_ca(key_path: &Path, crt_path: &Path, ca_cn: &str, now: OffsetDateTime) -> Result<()> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name_of(ca_cn, "ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now;
    params.not_after = now + time::Duration::days(36_500);
    let cert = params.self_signed(&key)?;
    write_private(key_path, &key.serialize_pem(), 0o600)?;
    write_private(crt_path, &cert.pem(), 0o644)
}

/// Reads the CA key, refusing one that group or others may read.
fn read_ca_key(key_path: &Path) -> Result<KeyPair> {
    let pem = match check::read_private(key_path) {
        Ok(pem) => pem,
        Err(check::KeyFile::Loose(mode)) => bail!(
            "{}: the CA key is readable or writable by group or others (mode {mode:04o}); refusing to use it\n\
             hint: `chmod 600 {}` if nobody else could read it, else make a new CA",
            key_path.display(),
            key_path.display()
        ),
        Err(check::KeyFile::Unreadable(e)) => {
            return Err(e).with_context(|| format!("reading {}", key_path.display()))
        }
    };
    KeyPair::from_pem(&pem).with_context(|| format!("{}: not a private key", key_path.display()))
}

/// Reads and checks the CA certificate against its key and the clock.
fn read_ca_cert(
    crt_path: &Path,
    key_path: &Path,
    key: &KeyPair,
    now: OffsetDateTime,
) -> Result<(String, check::Facts)> {
    let pem = check::read_public(crt_path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "\nhint: a CA key without its certificate"
        } else {
            ""
        };
        anyhow::anyhow!("reading {}: {e}{hint}", crt_path.display())
    })?;
    let facts = check::facts(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", crt_path.display()))?;
    if !facts.is_ca {
        bail!(
            "{}: not a CA certificate (its basicConstraints do not say CA:TRUE)",
            crt_path.display()
        );
    }
    if facts.public_key != key.public_key_raw() {
        bail!(
            "the CA key {} does not belong to the CA certificate {}: their public keys differ\n\
             hint: put the key the certificate was made with beside it (or remove both to let \
             infragen make a new CA)",
            key_path.display(),
            crt_path.display()
        );
    }
    if now >= facts.not_after {
        bail!(
            "{}: the CA certificate expired on {}\nhint: make a new CA; every certificate it \
             signed stopped verifying then",
            crt_path.display(),
            rfc3339(facts.not_after)
        );
    }
    if now < facts.not_before {
        bail!(
            "{}: the CA certificate is not valid before {} (is this machine's clock right?)",
            crt_path.display(),
            rfc3339(facts.not_before)
        );
    }
    Issuer::from_ca_cert_pem(&pem, key)
        .with_context(|| format!("{}: not a CA certificate", crt_path.display()))?;
    Ok((pem, facts))
}

impl Pki {
    /// Opens `dir`, creating the CA when it is missing and `create` is true, and checks it: a
    /// private key, the certificate's own key, a CA certificate valid now.
    pub fn open(dir: &Path, ca_cn: &str, create: bool) -> Result<Self> {
        let _lock = lock_dir(dir)?;
        let now = now();
        let key_path = dir.join("ca/ca.key");
        let crt_path = dir.join("ca/ca.crt");
        let mut ca_created = false;
        if !key_path.exists() {
            if crt_path.exists() {
                bail!(
                    "{}: a CA certificate without its key {}\nhint: put the CA's key there, or \
                     remove the certificate to let infragen make a new CA",
                    crt_path.display(),
                    key_path.display()
                );
            }
            if !create {
                bail!("{}: no CA key and `ca_create` is false\nhint: put your CA in ca/ca.key and ca/ca.crt", dir.display());
            }
            create_ca(&key_path, &crt_path, ca_cn, now)?;
            ca_created = true;
        }
        let ca_key = read_ca_key(&key_path)?;
        let (ca_cert, ca_facts) = read_ca_cert(&crt_path, &key_path, &ca_key, now)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_cert,
            ca_key,
            ca_facts,
            ca_created,
            now,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca(&self) -> &str {
        &self.ca_cert
    }

    /// The CA certificate's `notAfter`.
    pub fn ca_not_after(&self) -> OffsetDateTime {
        self.ca_facts.not_after
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

    /// The record a certificate is issued for: its SANs, CN, CA and validity, one per line.
    fn record(&self, r: &Request) -> String {
        let mut want: Vec<String> = r.sans.iter().map(San::line).collect();
        want.push(format!("CN:{}", r.cn));
        want.push(format!(
            "CA:{}",
            crate::digest::sha256_hex(self.ca_cert.as_bytes())
        ));
        want.push(format!("validity:{}", r.validity));
        want.join("\n") + "\n"
    }

    /// The certificate in the state directory when it can be shipped again for `want`; else why
    /// not (`None` when there is none at all).
    fn reusable(
        &self,
        r: &Request,
        want: &str,
        at: OffsetDateTime,
    ) -> Result<Issued, Option<String>> {
        let base = self.dir.join(r.name);
        let meta = check::read_public(&base.with_extension("sans"));
        let cert = check::read_public(&base.with_extension("crt"));
        let (meta, cert) = match (meta, cert) {
            (Ok(m), Ok(c)) => (m, c),
            (Err(_), Err(_)) => return Err(None),
            _ => return Err(Some("its certificate or record is missing".to_owned())),
        };
        if meta != want {
            return Err(Some(check::changed(&meta, want)));
        }
        let key_path = base.with_extension("key");
        let key = match check::read_private(&key_path) {
            Ok(k) => k,
            Err(check::KeyFile::Loose(mode)) => {
                return Err(Some(format!(
                    "its key was readable or writable by group or others (mode {mode:04o})"
                )))
            }
            Err(check::KeyFile::Unreadable(e)) => return Err(Some(format!("its key: {e}"))),
        };
        let facts = check::facts(&cert).map_err(|e| Some(format!("its certificate is {e}")))?;
        let pair =
            KeyPair::from_pem(&key).map_err(|_| Some("its key does not parse".to_owned()))?;
        if pair.public_key_raw() != facts.public_key {
            return Err(Some("its key does not match its certificate".to_owned()));
        }
        if let Some(why) = check::stale(&facts, at, r.renew_before) {
            return Err(Some(why));
        }
        Ok(Issued {
            cert,
            key,
            not_after: facts.not_after,
            action: Action::Reused,
            why: None,
        })
    }

    /// The certificate `r.name` (e.g. `nginx/pigsty`), reused when it exists for exactly these
    /// SANs, CN, validity and this CA, its key is private and matches it, and it is outside its
    /// renewal window; else issued now with `r.validity`, saying why.
    pub fn issue(&self, r: &Request) -> Result<Issued> {
        let want = self.record(r);
        let _lock = lock_dir(&self.dir)?;
        // The clock is read again once the directory is ours: a build that opened the PKI
        // earlier but waited for the lock must not find the certificate another build has just
        // issued "not valid yet" (twenty concurrent builds did, and issued twice).
        let at = now().max(self.now);
        let why = match self.reusable(r, &want, at) {
            Ok(issued) => return Ok(issued),
            Err(why) => why,
        };
        let (cert, key, not_after) = self.sign(r, at)?;
        let base = self.dir.join(r.name);
        write_private(&base.with_extension("key"), &key, 0o600)?;
        write_private(&base.with_extension("crt"), &cert, 0o644)?;
        write_private(&base.with_extension("sans"), &want, 0o644)?;
        Ok(Issued {
            cert,
            key,
            not_after,
            action: if why.is_some() {
                Action::Renewed
            } else {
                Action::Issued
            },
            why,
        })
    }

    /// A new key and a certificate for it signed by the CA: PEMs and the `notAfter`.
    fn sign(&self, r: &Request, at: OffsetDateTime) -> Result<(String, String, OffsetDateTime)> {
        let key_pair = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name_of(r.cn, r.ou);
        params.subject_alt_names = r
            .sans
            .iter()
            .map(|s| match s {
                San::Dns(d) => Ok(SanType::DnsName(d.clone().try_into()?)),
                San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        if r.server {
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
        params.not_before = at;
        // The plan refuses validities that are not whole seconds or overflow (crate::duration).
        let seconds = r.validity.whole_seconds().with_context(|| {
            format!("certificate validity `{}` is not whole seconds", r.validity)
        })?;
        let not_after = at + time::Duration::seconds(seconds);
        params.not_after = not_after;
        let ca = Issuer::from_ca_cert_pem(&self.ca_cert, &self.ca_key)?;
        let signed = params.signed_by(&key_pair, &ca)?;
        // X.509 dates are whole seconds: report the date the certificate carries.
        let not_after = not_after.replace_nanosecond(0).unwrap_or(not_after);
        Ok((signed.pem(), key_pair.serialize_pem(), not_after))
    }
}

fn name_of(cn: &str, ou: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "pigsty");
    dn.push(DnType::OrganizationalUnitName, ou);
    dn
}

/// The SANs of the shared nginx server certificate: the portal's domains (the first host's:
/// `infra_portal` is global), `localhost`, every infra host's address.
fn nginx_sans(plan: &crate::plan::Plan) -> Vec<San> {
    use crate::plan::PortalKind;
    let mut sans = Vec::new();
    let mut push = |s: San| {
        if !sans.contains(&s) {
            sans.push(s);
        }
    };
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
    sans
}

/// The report line of `issued` under `name`, shipped to `hosts`; a warning too when its key had
/// been readable by others (it was replaced: a key others could read is no secret any more), and
/// when it ends after its CA (it stops verifying when the CA ends, whatever its own date says).
fn shipped(pki: &Pki, name: &str, issued: &Issued, hosts: Vec<String>, m: &mut Material) {
    if issued.not_after > pki.ca_not_after() {
        m.warnings.push(format!(
            "certificate `{name}` ends on {}, after its CA ({}): it stops verifying then",
            rfc3339(issued.not_after),
            rfc3339(pki.ca_not_after())
        ));
    }
    if let Some(why) = issued
        .why
        .as_deref()
        .filter(|w| w.contains("by group or others"))
    {
        m.warnings.push(format!(
            "certificate `{name}` renewed with a new key: {why}"
        ));
    }
    m.certificates.push(Shipped {
        name: name.to_owned(),
        hosts,
        not_after: rfc3339(issued.not_after),
        action: issued.action,
        why: issued.why.clone(),
    });
}

/// The CA's line of the report, and a warning when it ends inside the renewal window: infragen
/// never replaces a CA (hosts trust it), so a person must.
fn ca_shipped(
    pki: &Pki,
    renew_before: crate::duration::Duration,
    hosts: Vec<String>,
    m: &mut Material,
) {
    let ca_path = pki.dir.join("ca/ca.crt");
    if let Some(why) = check::stale(&pki.ca_facts, pki.now, renew_before) {
        m.warnings.push(format!(
            "the CA {}: {why}; every certificate it signed stops verifying then\n\
             hint: make a new CA and activate bundles with it before that date",
            ca_path.display()
        ));
    }
    m.certificates.insert(
        0,
        Shipped {
            name: "ca/ca".to_owned(),
            hosts,
            not_after: rfc3339(pki.ca_not_after()),
            action: if pki.ca_created {
                Action::Issued
            } else {
                Action::Reused
            },
            why: None,
        },
    );
}

/// The certificates of every infra host of `plan`, added to `tree`: the CA and the shared nginx
/// server certificate in nginx's root (`/etc/pki/ca.crt`, `/etc/nginx/cert/pigsty.crt`), the
/// node certificate in vmetrics' root (`/etc/pki/infra.crt`, client certificate of the TLS
/// scrape jobs), and their keys as secrets. Returns what was shipped, for the build's report.
pub fn add_material(
    plan: &crate::plan::Plan,
    pki: &Pki,
    tree: &mut crate::tree::Tree,
) -> Result<Material> {
    use crate::plan::Component;
    let mut m = Material::default();
    let Some(first) = plan.hosts.first() else {
        return Ok(m);
    };
    let sans = nginx_sans(plan);
    let nginx = pki.issue(&Request {
        name: "nginx/pigsty",
        cn: "pigsty",
        ou: "nginx",
        sans: &sans,
        validity: first.pki.nginx_cert_validity,
        renew_before: first.pki.renew_before,
        server: true,
    })?;
    let (mut ca_hosts, mut nginx_hosts) = (Vec::new(), Vec::new());
    for h in &plan.hosts {
        let host = h.ip.to_string();
        let enabled = h.enabled();
        if enabled.contains(&Component::Nginx) || enabled.contains(&Component::Vmetrics) {
            ca_hosts.push(host.clone());
        }
        if enabled.contains(&Component::Nginx) {
            nginx_hosts.push(host.clone());
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
        if enabled.contains(&Component::Vmetrics) {
            let node_sans = [
                San::Dns("localhost".into()),
                San::Ip(std::net::Ipv4Addr::LOCALHOST.into()),
                San::Ip(h.ip),
            ];
            let name = format!("infra/infra-{}", h.seq);
            let node = pki.issue(&Request {
                name: &name,
                cn: &host,
                ou: "infra",
                sans: &node_sans,
                validity: h.pki.cert_validity,
                renew_before: h.pki.renew_before,
                server: false,
            })?;
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
            shipped(pki, &name, &node, vec![host], &mut m);
        }
    }
    if !nginx_hosts.is_empty() {
        shipped(pki, "nginx/pigsty", &nginx, nginx_hosts, &mut m);
        // The nginx certificate before the nodes', as the state directory lists them.
        let last = m.certificates.pop().expect("just pushed");
        m.certificates.insert(0, last);
    }
    if !ca_hosts.is_empty() {
        ca_shipped(pki, first.pki.renew_before, ca_hosts, &mut m);
    }
    Ok(m)
}

#[cfg(test)]
mod tests;
