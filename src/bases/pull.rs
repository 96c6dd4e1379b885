//! Pulling a pinned base image into the build's blob store: the manifest by its digest, then
//! each config and layer blob the store lacks, hashed while streamed to a temporary file in the
//! store and renamed to its digest only when it matches. A blob already in the store is never
//! fetched again; the manifest goes in last.

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::IMAGE_MANIFEST_TYPES;
use crate::manifest::Digest;
use crate::oci::blob::BlobStore;
use crate::oci::layout::{CONFIG_MEDIA_TYPE, GZIP_LAYER_TYPES};
use crate::registry::{Client, Reference};

/// Docker's image config media type (the same document as OCI's).
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

#[derive(Deserialize)]
struct Manifest {
    config: Blob,
    layers: Vec<Blob>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Blob {
    media_type: String,
    digest: String,
    size: u64,
}

/// Makes sure the image manifest `digest` of `r` and every blob it names are in `store`,
/// fetching what is missing from `client`; returns how many blobs were fetched (the manifest
/// included). Layers must be gzip-compressed tars (OCI or Docker media type): anything else is
/// refused before any of its bytes are fetched.
pub fn pull(client: &mut Client, r: &Reference, digest: &str, store: &BlobStore) -> Result<usize> {
    let mut fetched = 0;
    let bytes = if store.has(digest)? {
        store.get(digest)?
    } else {
        let (media_type, bytes, _) = client.get_manifest(&r.repo, digest, IMAGE_MANIFEST_TYPES)?;
        if !IMAGE_MANIFEST_TYPES.contains(&media_type.as_str()) {
            bail!(
                "manifest {digest} is `{media_type}`, not an OCI or Docker schema 2 image manifest"
            );
        }
        fetched += 1;
        bytes
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("manifest {digest} is not an image manifest"))?;
    if ![CONFIG_MEDIA_TYPE, DOCKER_CONFIG].contains(&manifest.config.media_type.as_str()) {
        bail!(
            "the config {} is `{}`, not an image config",
            manifest.config.digest,
            manifest.config.media_type
        );
    }
    for l in &manifest.layers {
        if !GZIP_LAYER_TYPES.contains(&l.media_type.as_str())
            && l.media_type != crate::oci::layer::ZSTD_MEDIA_TYPE
        {
            bail!(
                "layer {} is `{}`; only gzip- or zstd-compressed tar layers are taken",
                l.digest,
                l.media_type
            );
        }
    }
    for b in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if store.has(&b.digest)? {
            continue;
        }
        fetch(client, r, b, store)?;
        fetched += 1;
    }
    // Last, so that a manifest in the store means its blobs were fetched too.
    store.put(&bytes)?;
    Ok(fetched)
}

/// Streams one blob into the store: nothing named by its digest unless it matches.
fn fetch(client: &mut Client, r: &Reference, b: &Blob, store: &BlobStore) -> Result<()> {
    let digest = Digest::parse(&b.digest)?;
    let dest = store.path(&b.digest)?;
    let mut tmp = crate::fsx::AtomicFile::create(&dest, 0o644)?;
    client.get_blob_to(&r.repo, &digest, b.size, &mut tmp)?;
    tmp.commit()
}
