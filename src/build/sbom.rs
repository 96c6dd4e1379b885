//! Software bills of materials: one SPDX 2.3 JSON document per image, `sbom/infra-<c>.spdx.json`
//! in the host's bundle. It names the image (by manifest digest) and every Debian package in its
//! layers with its exact version, architecture, the sha256 of the `.deb` and the layer it became,
//! or the pinned base image it was built on. A package is listed as its `.deb` describes itself
//! (the `Package`, `Version` and `Architecture` of its control file, the sha256 of its bytes),
//! not as the lock names it — the build has held the two to each other — and the pool path it
//! was fetched from. As reproducible as the image: the creation time is the build's epoch.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::layers::PackageLayer;
use crate::lock::ImageLock;
use crate::pkg::deb::Identity;

/// One package of an image, for its SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// What its `.deb` says it is.
    pub deb: Identity,
    /// The `.deb`'s path below its repository's root (`pool/…`), from the lock.
    pub filename: String,
    /// The digest of the layer it became.
    pub layer: String,
}

/// What an image holds, for its SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// Each package, in the order of its layers.
    pub packages: Vec<Listed>,
    /// The pinned base image (`name:tag@digest`), when the image is built on one.
    pub base: Option<String>,
}

impl Contents {
    /// The contents of an image built from `entry`, given its package layers in lock order.
    pub(super) fn of(entry: &ImageLock, layers: &[PackageLayer]) -> Self {
        match &entry.base {
            Some(b) => Contents {
                packages: Vec::new(),
                base: Some(format!(
                    "{}:{}@{}",
                    b.name,
                    b.tag,
                    b.digest.as_deref().unwrap_or("unpinned")
                )),
            },
            None => Contents {
                packages: entry
                    .packages
                    .iter()
                    .zip(layers)
                    .map(|(p, l)| Listed {
                        deb: l.deb.clone(),
                        filename: p.filename.clone(),
                        layer: l.layer.digest.clone(),
                    })
                    .collect(),
                base: None,
            },
        }
    }
}

/// Percent-encodes a package URL component (purl spec: everything but unreserved characters).
fn purl_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An SPDX id for the `n`th package: letters, digits, `.` and `-` only, unique by the index.
fn spdx_id(n: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-Package-{n}-{clean}")
}

/// The SPDX document of image `reference` (`infra-<c>`) on `host`, manifest `digest`.
pub fn document(
    reference: &str,
    host: &str,
    digest: &str,
    contents: &Contents,
    epoch: u64,
) -> anyhow::Result<Value> {
    let hex = digest.trim_start_matches("sha256:");
    let mut packages = vec![json!({
        "name": reference,
        "SPDXID": "SPDXRef-Image",
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": hex}],
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/{reference}@sha256%3A{hex}"),
        }],
        "comment": format!("the image infra-{} of host {host}", reference.trim_start_matches("infra-")),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (n, listed) in contents.packages.iter().enumerate() {
        let deb = &listed.deb;
        let id = spdx_id(n, &deb.package);
        packages.push(json!({
            "name": deb.package,
            "SPDXID": id,
            "versionInfo": deb.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "supplier": "NOASSERTION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": deb.sha256}],
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": format!(
                    "pkg:deb/debian/{}@{}?arch={}",
                    purl_escape(&deb.package),
                    purl_escape(&deb.version),
                    purl_escape(&deb.architecture)
                ),
            }],
            "comment": format!("{}; layer {}", listed.filename, listed.layer),
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    if let Some(base) = &contents.base {
        let (name, digest) = base.split_once('@').unwrap_or((base, ""));
        packages.push(json!({
            "name": name,
            "SPDXID": "SPDXRef-Base",
            "versionInfo": digest,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "DESCENDANT_OF",
            "relatedSpdxElement": "SPDXRef-Base",
        }));
    }
    Ok(json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{reference} ({host})"),
        "documentNamespace": format!("https://infragen.invalid/spdx/{reference}/{hex}"),
        "creationInfo": {
            "created": crate::oci::layout::rfc3339(epoch)?,
            "creators": [format!("Tool: infragen-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_and_ids_escape_what_they_must() {
        assert_eq!(purl_escape("1:2.3+dfsg-1~b1"), "1%3A2.3%2Bdfsg-1~b1");
        assert_eq!(spdx_id(3, "libstdc++6"), "SPDXRef-Package-3-libstdc--6");
    }
}
