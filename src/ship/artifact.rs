//! A bundle as an OCI artifact: one image manifest whose layers are the bundle's files.
//!
//! `artifactType` is [`ARTIFACT_TYPE`], the config is the OCI empty descriptor, each layer is
//! one file of the bundle (everything but `oci/blobs/`, which travel as the images' own blobs)
//! with its path in `org.opencontainers.image.title`, sorted by path. The document is
//! canonical JSON: the same bundle always gives the same artifact digest. [`bundle_files`] is
//! the inverse, for the pull side, and checks everything a host will turn into a path.
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidelines-for-artifact-usage>

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::manifest::Digest;
use crate::oci::layout::MANIFEST_MEDIA_TYPE;

/// The artifact type of a bundle.
pub const ARTIFACT_TYPE: &str = "application/vnd.infragen.bundle.v1";
/// The media type of each bundle file.
pub const FILE_MEDIA_TYPE: &str = "application/vnd.infragen.file.v1";
/// The media type of the empty config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The digest of the empty config, `{}`.
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The empty config's bytes.
pub const EMPTY: &[u8] = b"{}";
/// The annotation holding a file's path in the bundle.
pub const TITLE: &str = "org.opencontainers.image.title";
/// The manifest annotation naming the host.
pub const HOST: &str = "dev.infragen.host";
/// The manifest annotation holding the generation id.
pub const GENERATION: &str = "dev.infragen.generation";
/// The most files an artifact may list.
pub const MAX_FILES: usize = 10_000;

/// One file of a bundle as the artifact lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BundleFile {
    /// Its path relative to the bundle directory.
    pub path: String,
    /// Its content digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // `artifactType` is the spec's name
struct Artifact {
    schema_version: u32,
    media_type: String,
    artifact_type: String,
    config: Config,
    layers: Vec<Layer>,
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Layer {
    media_type: String,
    digest: Digest,
    size: u64,
    annotations: BTreeMap<String, String>,
}

/// The artifact manifest of the bundle of `host` at `generation` holding `files`, as
/// canonical JSON (files sorted by path, whatever order they come in).
pub fn bundle_artifact(host: &str, generation: &str, files: &[BundleFile]) -> Vec<u8> {
    let mut files = files.to_vec();
    files.sort();
    let artifact = Artifact {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        artifact_type: ARTIFACT_TYPE.to_owned(),
        config: Config {
            media_type: EMPTY_MEDIA_TYPE.to_owned(),
            digest: EMPTY_DIGEST.to_owned(),
            size: 2,
            data: Some("e30=".to_owned()),
        },
        layers: files
            .into_iter()
            .map(|f| Layer {
                media_type: FILE_MEDIA_TYPE.to_owned(),
                digest: f.digest,
                size: f.size,
                annotations: BTreeMap::from([(TITLE.to_owned(), f.path)]),
            })
            .collect(),
        annotations: BTreeMap::from([
            (HOST.to_owned(), host.to_owned()),
            (GENERATION.to_owned(), generation.to_owned()),
        ]),
    };
    crate::oci::json::to_canonical(&artifact).expect("an artifact serialises")
}

/// The files a bundle artifact lists, after checking that it is one: the artifact type, the
/// empty config, at most [`MAX_FILES`] layers of [`FILE_MEDIA_TYPE`], each titled by a plain
/// relative path (no `..`, not absolute, no duplicates), the host and generation annotations.
pub fn bundle_files(bytes: &[u8]) -> Result<Vec<BundleFile>> {
    let a: Artifact = serde_json::from_slice(bytes).context("not a bundle artifact manifest")?;
    if a.schema_version != 2 || a.media_type != MANIFEST_MEDIA_TYPE {
        bail!("bundle artifact: not an OCI image manifest (`schemaVersion` 2, `mediaType` `{MANIFEST_MEDIA_TYPE}`)");
    }
    if a.artifact_type != ARTIFACT_TYPE {
        bail!(
            "bundle artifact: `artifactType` is `{}`, not `{ARTIFACT_TYPE}`",
            a.artifact_type
        );
    }
    if a.config.media_type != EMPTY_MEDIA_TYPE
        || a.config.digest != EMPTY_DIGEST
        || a.config.size != 2
    {
        bail!("bundle artifact: the config is not the OCI empty descriptor");
    }
    if !a.annotations.contains_key(HOST) || !a.annotations.contains_key(GENERATION) {
        bail!("bundle artifact: the annotations `{HOST}` and `{GENERATION}` are required");
    }
    if a.layers.len() > MAX_FILES {
        bail!(
            "bundle artifact: {} files, more than the {MAX_FILES} allowed",
            a.layers.len()
        );
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(a.layers.len());
    for (i, l) in a.layers.into_iter().enumerate() {
        if l.media_type != FILE_MEDIA_TYPE {
            bail!(
                "bundle artifact: layer {i} is `{}`, not `{FILE_MEDIA_TYPE}`",
                l.media_type
            );
        }
        let Some(path) = l.annotations.get(TITLE) else {
            bail!("bundle artifact: layer {i} has no `{TITLE}`");
        };
        if !crate::manifest::plain_relative(path) {
            bail!(
                "bundle artifact: layer {i}: `{}` is not a plain relative path",
                path.escape_debug()
            );
        }
        if path.starts_with("oci/blobs/") {
            bail!("bundle artifact: layer {i}: `{path}` is an image blob, which travels with its image");
        }
        if !seen.insert(path.clone()) {
            bail!("bundle artifact: `{path}` is listed twice");
        }
        out.push(BundleFile {
            path: path.clone(),
            digest: l.digest,
            size: l.size,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn files() -> Vec<BundleFile> {
        [
            "units/infra-nginx.service",
            "manifest.json",
            "oci/index.json",
        ]
        .iter()
        .map(|p| BundleFile {
            path: (*p).to_owned(),
            digest: Digest::of(p.as_bytes()),
            size: p.len() as u64,
        })
        .collect()
    }

    #[test]
    fn the_artifact_is_canonical_sorted_and_inverts() {
        let mut f = files();
        let a = bundle_artifact("10.10.10.10", &"a".repeat(64), &f);
        f.reverse();
        assert_eq!(
            a,
            bundle_artifact("10.10.10.10", &"a".repeat(64), &f),
            "order does not matter"
        );
        assert_eq!(crate::manifest::Digest::of(EMPTY).as_str(), EMPTY_DIGEST);
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["artifactType"], ARTIFACT_TYPE);
        assert_eq!(v["config"]["data"], "e30=");
        assert_eq!(v["layers"][0]["annotations"][TITLE], "manifest.json");
        assert_eq!(v["annotations"][HOST], "10.10.10.10");
        assert_eq!(crate::oci::json::canonical(&v), a);
        let mut back = bundle_files(&a).unwrap();
        back.sort();
        f.sort();
        assert_eq!(back, f);
    }

    #[test]
    fn malformed_artifacts_are_refused() {
        let good: Value = serde_json::from_slice(&bundle_artifact("h", "g", &files())).unwrap();
        for (pointer, value, why) in [
            ("/artifactType", json!("x"), "`artifactType` is `x`"),
            (
                "/config/digest",
                json!(Digest::of(b"x").to_string()),
                "empty descriptor",
            ),
            (
                "/layers/0/annotations/org.opencontainers.image.title",
                json!("../etc/passwd"),
                "not a plain relative path",
            ),
            (
                "/layers/0/annotations/org.opencontainers.image.title",
                json!("/etc/passwd"),
                "not a plain relative path",
            ),
            (
                "/layers/0/annotations/org.opencontainers.image.title",
                json!("a/./b"),
                "not a plain relative path",
            ),
            (
                "/layers/0/annotations/org.opencontainers.image.title",
                json!("oci/index.json"),
                "listed twice",
            ),
            (
                "/layers/0/annotations/org.opencontainers.image.title",
                json!(format!("oci/blobs/sha256/{}", "a".repeat(64))),
                "image blob",
            ),
            (
                "/layers/0/mediaType",
                json!("text/plain"),
                "not `application/vnd.infragen.file.v1`",
            ),
            ("/layers/0/digest", json!("md5:x"), "not a bundle artifact"),
            ("/annotations", json!({}), "are required"),
            ("/extra", json!(1), "not a bundle artifact"),
        ] {
            let mut bad = good.clone();
            if let Some(slot) = bad.pointer_mut(pointer) {
                *slot = value;
            } else {
                bad["extra"] = value;
            }
            let e = format!(
                "{:#}",
                bundle_files(&serde_json::to_vec(&bad).unwrap()).unwrap_err()
            );
            assert!(e.contains(why), "{pointer}: {e}");
        }
        let mut many = good.clone();
        let layer = many["layers"][0].clone();
        many["layers"] = Value::Array(vec![layer; MAX_FILES + 1]);
        let e = format!(
            "{:#}",
            bundle_files(&serde_json::to_vec(&many).unwrap()).unwrap_err()
        );
        assert!(e.contains("more than the 10000 allowed"), "{e}");
    }
}
