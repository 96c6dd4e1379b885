//! Base images from a registry: where they come from (`--base-registry`, else
//! `$INFRAGEN_BASE_REGISTRY`), pinning a recipe's `name:tag` to a manifest digest at lock time,
//! and pulling a pinned image's blobs into the build's store; and the whole-image check of what
//! `lock --bases` pins from a layout.
//!
//! Owns the choice of registry and platform. It does not speak HTTP (`registry`) nor check
//! layers (`oci::layout::image_layers`, shared with imported layouts). No registry host is
//! written into the repository or the lock: the host is configuration, the lock holds digests.

mod pull;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::lock::Lock;
use crate::registry::{Client, Options, Reference, DOCKER_LIST, DOCKER_MANIFEST, MANIFEST_TYPES};

pub use pull::pull;

/// The environment variable naming the base registry when `--base-registry` is not given.
pub const ENV: &str = "INFRAGEN_BASE_REGISTRY";

/// Where base images come from: `HOST[:PORT][/PREFIX]`, and how to talk to it.
#[derive(Debug, Clone)]
pub struct BaseRegistry {
    /// `HOST[:PORT][/PREFIX]`, without a trailing `/`.
    pub base: String,
    /// Plain HTTP, auth file.
    pub options: Options,
}

/// A base image pinned at lock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// Digest of the image manifest for the target platform.
    pub digest: String,
    /// Digest of the index the tag named, when it named one.
    pub index: Option<String>,
}

impl BaseRegistry {
    /// `--base-registry` when given, else `$INFRAGEN_BASE_REGISTRY` when set and not empty.
    pub fn from_args(arg: Option<&str>, options: Options) -> Result<Option<Self>> {
        let env = std::env::var(ENV).ok().filter(|v| !v.is_empty());
        let (value, from) = match (arg, env) {
            (Some(a), _) => (a.to_owned(), "--base-registry"),
            (None, Some(e)) => (e, ENV),
            (None, None) => return Ok(None),
        };
        Self::parse(&value, options).context(from).map(Some)
    }

    /// Parses `HOST[:PORT][/PREFIX]`: the host is written out (never a default registry).
    pub fn parse(s: &str, options: Options) -> Result<Self> {
        let base = s.trim_end_matches('/');
        if base.is_empty() || base.contains(['@', ' ']) {
            bail!("`{s}` is not `HOST[:PORT][/PREFIX]`");
        }
        // A reference below it must parse: that checks the host and the prefix's grammar.
        let probe = format!("{base}/x");
        let r = Reference::parse(&probe)
            .with_context(|| format!("`{s}` is not `HOST[:PORT][/PREFIX]`"))?;
        if r.tag.is_some() {
            bail!("`{s}` is not `HOST[:PORT][/PREFIX]`: it has a tag");
        }
        Ok(Self {
            base: base.to_owned(),
            options,
        })
    }

    /// The reference of base image `name:tag` in this registry.
    pub fn reference(&self, name: &str, tag: &str) -> Result<Reference> {
        Reference::parse(&format!("{}/{name}:{tag}", self.base))
    }

    /// A client of this registry's host.
    pub fn client(&self) -> Result<Client> {
        let host = self.base.split('/').next().unwrap_or(&self.base);
        Client::new(host, &self.options)
    }
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The digest of the `linux/<arch>` image manifest listed in an index (OCI image index or
/// Docker manifest list); an error listing the platforms it has otherwise.
pub fn pick_platform(index: &[u8], arch: &str) -> Result<String> {
    let index: Index = serde_json::from_slice(index).context("not a valid image index")?;
    let found = index.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            && m.media_type != DOCKER_LIST
            && m.media_type != crate::oci::layout::INDEX_MEDIA_TYPE
    });
    if let Some(m) = found {
        return Ok(m.digest.clone());
    }
    let platforms: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|m| m.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    bail!(
        "it has no linux/{arch} image (platforms: {})",
        if platforms.is_empty() {
            "none named".to_owned()
        } else {
            platforms.join(", ")
        }
    )
}

/// Resolves `name:tag` in `registry` to the digest of its `linux/<arch>` image manifest (and
/// the index digest when the tag names a multi-platform index).
pub fn resolve(client: &mut Client, r: &Reference, arch: &str) -> Result<Pinned> {
    let tag = r.tag.as_deref().unwrap_or("latest");
    let (media_type, bytes, digest) = client.get_manifest(&r.repo, tag, MANIFEST_TYPES)?;
    if is_index(&media_type, &bytes) {
        let picked = pick_platform(&bytes, arch)?;
        let (mt, _, d) = client.get_manifest(&r.repo, &picked, IMAGE_MANIFEST_TYPES)?;
        if !IMAGE_MANIFEST_TYPES.contains(&mt.as_str()) {
            bail!("the linux/{arch} entry {picked} of the index is `{mt}`, not an image manifest");
        }
        return Ok(Pinned {
            digest: d.to_string(),
            index: Some(digest.to_string()),
        });
    }
    if !IMAGE_MANIFEST_TYPES.contains(&media_type.as_str()) {
        bail!("its manifest is `{media_type}`, not an OCI or Docker schema 2 image manifest");
    }
    Ok(Pinned {
        digest: digest.to_string(),
        index: None,
    })
}

/// Pins every base image of `lock` from `registry` (for `lock.arch`). Returns one line per base
/// image that could not be pinned (unreachable registry, missing image, no such platform): it
/// keeps the pin it had, or stays unpinned; never a made-up digest.
pub fn pin(lock: &mut Lock, registry: &BaseRegistry) -> Vec<String> {
    let mut client = None;
    let mut problems = Vec::new();
    let arch = lock.arch.clone();
    for base in lock.images.values_mut().filter_map(|e| e.base.as_mut()) {
        let name = format!("{}:{}", base.name, base.tag);
        let pinned = registry.reference(&base.name, &base.tag).and_then(|r| {
            if client.is_none() {
                client = Some(registry.client()?);
            }
            resolve(client.as_mut().expect("just made"), &r, &arch)
        });
        match pinned {
            Ok(p) => {
                base.digest = Some(p.digest);
                base.index = p.index;
            }
            Err(e) => problems.push(format!(
                "base image `{name}` is not pinned from `{}`: {e:#}; {}",
                registry.base,
                match &base.digest {
                    Some(d) => format!("the previous pin {d} is kept"),
                    None => "it stays unpinned".to_owned(),
                }
            )),
        }
    }
    problems
}

/// Checks every base image of `lock` pinned to an image of the layout `dir` (`lock --bases`)
/// whole, as `build` does (`oci::layout::check_image`: every blob, digest, size and layer
/// entry), copying nothing. Returns how many were checked; the first that fails is an error
/// naming it, and the caller writes no lock.
pub fn check_imported(lock: &Lock, dir: &std::path::Path) -> Result<usize> {
    let refs = crate::oci::layout::refs(dir)?;
    let mut checked = std::collections::BTreeSet::new();
    for base in lock.images.values().filter_map(|e| e.base.as_ref()) {
        let reference = format!("{}:{}", base.name, base.tag);
        let Some(digest) = base
            .digest
            .as_ref()
            .filter(|d| refs.get(&reference) == Some(d))
        else {
            continue;
        };
        if !checked.insert((reference.clone(), digest.clone())) {
            continue;
        }
        crate::oci::layout::check_image(dir, &reference, digest)
            .with_context(|| format!("base image `{reference}` ({digest}) refused"))?;
    }
    Ok(checked.len())
}

/// The media types of a single-platform image manifest this module takes.
pub const IMAGE_MANIFEST_TYPES: &[&str] =
    &[crate::oci::layout::MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST];

/// Whether a manifest is an index: by its media type, or by its content when the registry
/// did not say.
fn is_index(media_type: &str, bytes: &[u8]) -> bool {
    match media_type {
        DOCKER_LIST | crate::oci::layout::INDEX_MEDIA_TYPE => true,
        "" | "application/json" => serde_json::from_slice::<Index>(bytes).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_values() {
        let o = Options::default;
        let r = BaseRegistry::parse("127.0.0.1:5000/mirror/", o()).unwrap();
        assert_eq!(r.base, "127.0.0.1:5000/mirror");
        let got = r.reference("grafana/grafana-oss", "12.2.1").unwrap();
        assert_eq!(
            (got.host.as_str(), got.repo.as_str(), got.tag.as_deref()),
            (
                "127.0.0.1:5000",
                "mirror/grafana/grafana-oss",
                Some("12.2.1")
            )
        );
        for bad in [
            "",
            "grafana",
            "h.example/UPPER",
            "h.example:5000/a@sha256:x",
        ] {
            assert!(BaseRegistry::parse(bad, o()).is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms_are_picked_from_an_index() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let index = format!(
            r#"{{"manifests":[
              {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","platform":{{"architecture":"amd64","os":"windows"}}}},
              {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        assert_eq!(pick_platform(index.as_bytes(), "amd64").unwrap(), d('c'));
        assert_eq!(
            pick_platform(index.as_bytes(), "riscv64")
                .unwrap_err()
                .to_string(),
            "it has no linux/riscv64 image (platforms: linux/arm64/v8, windows/amd64, linux/amd64)"
        );
        assert!(is_index("", index.as_bytes()));
        assert!(!is_index(DOCKER_MANIFEST, index.as_bytes()));
    }
}
