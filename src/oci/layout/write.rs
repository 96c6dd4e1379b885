//! Writing an image: the config document of an [`ImageSpec`] over its layers, its manifest, and
//! `index.json` naming each manifest by a checked ref name, all as canonical JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{
    Descriptor, ImageLayer, ImageSpec, CONFIG_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    REF_NAME,
};
use crate::oci::blob::{write_atomic, BlobStore, OciError};
use crate::oci::json::to_canonical;

/// A list written as a set-like map, every value `{}` (`ExposedPorts`, `Volumes`); the
/// canonical writer sorts the keys.
fn as_set<S: serde::Serializer>(items: &&[String], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Empty {}
    s.collect_map(items.iter().map(|i| (i, Empty {})))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "as_set")]
    exposed_ports: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    env: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "as_set")]
    volumes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<&'a str>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: &'static str,
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    config: RunConfig<'a>,
    rootfs: RootFs<'a>,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry<'a> {
    #[serde(flatten)]
    descriptor: &'a Descriptor,
    annotations: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<IndexEntry<'a>>,
}

/// The image config document of `spec` over `layers`, as canonical JSON.
pub fn config_json(spec: &ImageSpec, layers: &[impl ImageLayer]) -> Result<Vec<u8>, OciError> {
    let config = ImageConfig {
        created: &spec.created,
        architecture: &spec.architecture,
        os: &spec.os,
        config: RunConfig {
            user: spec.user.as_deref(),
            exposed_ports: &spec.exposed_ports,
            env: &spec.env,
            entrypoint: &spec.entrypoint,
            cmd: &spec.cmd,
            volumes: &spec.volumes,
            working_dir: spec.working_dir.as_deref(),
            labels: &spec.labels,
            stop_signal: spec.stop_signal.as_deref(),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(ImageLayer::diff_id).collect(),
        },
        history: layers
            .iter()
            .map(|_| History {
                created: &spec.created,
                created_by: "infragen",
            })
            .collect(),
    };
    to_canonical(&config)
}

/// Writes the layers, the config and the manifest of one image into `store`; returns the
/// manifest's descriptor. Blobs already in the store are not rewritten; a
/// [`LayerRef`](super::LayerRef)'s blob must be there already.
pub fn write_image(
    store: &BlobStore,
    spec: &ImageSpec,
    layers: &[impl ImageLayer],
) -> Result<Descriptor, OciError> {
    let mut layer_descriptors = Vec::with_capacity(layers.len());
    for layer in layers {
        let descriptor = layer.descriptor();
        if !store.has(&descriptor.digest)? {
            let Some(bytes) = layer.blob() else {
                return Err(OciError::MissingBlob {
                    digest: descriptor.digest,
                    root: store.root().to_path_buf(),
                });
            };
            let stored = store.put(bytes)?;
            if stored.digest != descriptor.digest {
                return Err(OciError::DigestMismatch {
                    path: store.path(&stored.digest)?,
                    expected: descriptor.digest,
                    actual: stored.digest,
                });
            }
        }
        layer_descriptors.push(descriptor);
    }
    let config = store.put(&config_json(spec, layers)?)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            digest: config.digest,
            size: config.size,
        },
        layers: layer_descriptors,
        annotations: &spec.annotations,
    };
    let stored = store.put(&to_canonical(&manifest)?)?;
    Ok(Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        digest: stored.digest,
        size: stored.size,
    })
}

/// Writes `dir/index.json` atomically, naming each manifest by its ref (sorted by name).
/// Every manifest must already be in the layout's blob store.
pub fn write_index(dir: &Path, refs: &BTreeMap<String, Descriptor>) -> Result<(), OciError> {
    let bytes = index_json(refs)?;
    let store = BlobStore::open(dir)?;
    for descriptor in refs.values() {
        if !store.has(&descriptor.digest)? {
            return Err(OciError::MissingBlob {
                digest: descriptor.digest.clone(),
                root: dir.to_path_buf(),
            });
        }
    }
    write_atomic(dir, &dir.join("index.json"), &bytes)
}

/// The `index.json` naming each manifest by its ref (sorted by name), as canonical JSON; the
/// caller sees that every manifest is in the layout.
pub fn index_json(refs: &BTreeMap<String, Descriptor>) -> Result<Vec<u8>, OciError> {
    let mut manifests = Vec::with_capacity(refs.len());
    for (name, descriptor) in refs {
        if !valid_ref_name(name) {
            return Err(OciError::InvalidRefName(name.clone()));
        }
        manifests.push(IndexEntry {
            descriptor,
            annotations: BTreeMap::from([(REF_NAME, name.as_str())]),
        });
    }
    let index = Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests,
    };
    to_canonical(&index)
}

/// The grammar of `org.opencontainers.image.ref.name`: `/`-separated components, each runs
/// of letters and digits joined by one separator (`-`, `.`, `_`, `:`, `@`, `+`, or `--`).
/// <https://github.com/opencontainers/image-spec/blob/v1.1.0/annotations.md>
fn valid_ref_name(name: &str) -> bool {
    name.split('/').all(|component| {
        // Splitting on alphanumerics leaves the separators between them: the first and last
        // runs must be empty (start and end alphanumeric), the others a valid separator.
        let inner: Vec<&str> = component
            .split(|c: char| c.is_ascii_alphanumeric())
            .collect();
        // A component without alphanumerics fails the first check, before the slice.
        !component.is_empty()
            && inner.first().is_some_and(|s| s.is_empty())
            && inner.last().is_some_and(|s| s.is_empty())
            && inner[1..inner.len() - 1]
                .iter()
                .all(|s| s.is_empty() || *s == "--" || (s.len() == 1 && "-._:@+".contains(*s)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for ok in ["infra-nginx", "a", "v1.0", "x/y:1", "a--b"] {
            assert!(valid_ref_name(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a b", "a//b", "a..b", "a-.b", "a---b", "é", "/a",
        ] {
            assert!(!valid_ref_name(bad), "{bad}");
        }
    }
}
