//! Sealed secrets (`secrets/<c>/<name>.age`, format version 3): decrypted in memory with the
//! host's identity once every digest verified, before the lock or any write — so a host without
//! the identity, or a bundle encrypted to another key, is refused with nothing changed. The
//! clear bytes then take the path a clear bundle's secret has (`secrets/<c>/<name>`), with the
//! mode and owner the signed manifest gives the `.age` file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::age::{Error, Identity};
use crate::fsx::{Links, Root};
use crate::manifest::Manifest;
use crate::secrets::{IDENTITY, SUFFIX};

/// The host's identities, from `<root>/etc/infragen/age/host.key` (`None` when it has none).
/// Read through [`Root`]; a key others may read is refused.
fn identities(root: &Path) -> Result<Option<Vec<Identity>>> {
    if !root.is_dir() {
        return Ok(None);
    }
    let r = Root::open(root, Links::InRoot)?;
    let rel = Path::new(IDENTITY);
    let Some(meta) = r.meta(rel)? else {
        return Ok(None);
    };
    let shown = root.join(IDENTITY);
    if meta.mode & 0o077 != 0 {
        bail!(
            "{}: mode {:04o}, others may read this host's key\nhint: chmod 0600 {}",
            shown.display(),
            meta.mode & 0o7777,
            shown.display()
        );
    }
    let text =
        String::from_utf8(r.read(rel)?).map_err(|_| anyhow!("{}: not text", shown.display()))?;
    Identity::parse_file(&text)
        .with_context(|| shown.display().to_string())
        .map(Some)
}

/// Replaces every `.age` secret of `files` by its plaintext under its clear name. Errors name
/// the file and the recipients, and end in a hint.
pub fn unseal(m: &Manifest, files: &mut BTreeMap<String, Vec<u8>>, root: &Path) -> Result<()> {
    let sealed: Vec<String> = files
        .keys()
        .filter(|k| k.starts_with("secrets/") && k.ends_with(SUFFIX))
        .cloned()
        .collect();
    if sealed.is_empty() || !m.sealed() {
        return Ok(());
    }
    let to = m.recipients.as_deref().unwrap_or_default().join(", ");
    let hint = "hint: run `infragen host init` on this host, put the key it prints in the profile as `infragen_host_key` for this host, and rebuild";
    let Some(ids) = identities(root)? else {
        bail!(
            "{} is encrypted to {to}, and this host has no age identity ({} is missing)\n{hint}",
            sealed[0],
            root.join(IDENTITY).display()
        );
    };
    for rel in sealed {
        let bytes = files.remove(&rel).expect("listed above");
        let plain = crate::age::decrypt(&bytes, &ids).map_err(|e| match e {
            Error::NoMatch => anyhow!(
                "{rel} is encrypted to {to}, not to this host's key {}\n{hint}",
                ids.iter()
                    .map(|i| i.recipient().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => anyhow!("{rel}: {other}"),
        })?;
        let clear = rel.strip_suffix(SUFFIX).expect("filtered above").to_owned();
        files.insert(clear, plain);
    }
    Ok(())
}
