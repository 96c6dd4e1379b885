//! Reading an image back out of another OCI layout (an imported base image): the refs of its
//! `index.json`, and its layers checked against the pinned manifest digest and the config.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{LayerRef, REF_NAME};
use crate::oci::blob::{BlobStore, OciError};
use crate::oci::layer::MEDIA_TYPE as LAYER_MEDIA_TYPE;

/// Media types of gzip-compressed tar layers that an imported image may use: the OCI one and
/// Docker's, which has the same bytes.
pub const GZIP_LAYER_TYPES: [&str; 2] = [
    LAYER_MEDIA_TYPE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

fn layout_error(dir: &Path, reason: impl Into<String>) -> OciError {
    OciError::Layout {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    what: &str,
    bytes: &[u8],
) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|e| layout_error(dir, format!("{what}: {e}")))
}

/// The images named in `dir/index.json`: ref name → manifest digest. Entries without a
/// `org.opencontainers.image.ref.name` annotation are left out.
pub fn refs(dir: &Path) -> Result<BTreeMap<String, String>, OciError> {
    let path = dir.join("index.json");
    let bytes = fs::read(&path).map_err(|e| OciError::io("read", &path, e))?;
    let index: oci_spec::image::ImageIndex = read_json(dir, "index.json", &bytes)?;
    Ok(index
        .manifests()
        .iter()
        .filter_map(|m| {
            let name = m.annotations().as_ref()?.get(REF_NAME)?;
            Some((name.clone(), m.digest().to_string()))
        })
        .collect())
}

/// Imports the layers of the image `reference` from the layout at `dir` into `store`, after
/// checking that the reference names the manifest `digest` (the pin) and that every layer
/// blob and its uncompressed tar hash to what the manifest and config say.
pub fn read_image(
    dir: &Path,
    reference: &str,
    digest: &str,
    store: &BlobStore,
) -> Result<Vec<LayerRef>, OciError> {
    let found = refs(dir)?;
    let Some(named) = found.get(reference) else {
        return Err(layout_error(
            dir,
            format!("no image is named `{reference}` in index.json"),
        ));
    };
    if named != digest {
        return Err(layout_error(
            dir,
            format!("`{reference}` is `{named}`, but `{digest}` is pinned\nhint: import the pinned image, or update the pin"),
        ));
    }
    image_layers(&BlobStore::open(dir)?, reference, digest, store)
}

/// Copies the layers of the image whose manifest is `digest` in `source` into `store` (which
/// may be `source` itself), after checking that every layer is a gzip-compressed tar (OCI's or
/// Docker's media type: the same bytes) and that its blob and its uncompressed tar hash to
/// what the manifest and the config say. `reference` names the image in errors.
pub fn image_layers(
    source: &BlobStore,
    reference: &str,
    digest: &str,
    store: &BlobStore,
) -> Result<Vec<LayerRef>, OciError> {
    let dir = source.root();
    let manifest: oci_spec::image::ImageManifest =
        read_json(dir, &format!("manifest {digest}"), &source.get(digest)?)?;
    let config_digest = manifest.config().digest().to_string();
    let config: oci_spec::image::ImageConfiguration = read_json(
        dir,
        &format!("config {config_digest}"),
        &source.get(&config_digest)?,
    )?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(layout_error(
            dir,
            format!(
                "`{reference}` lists {} but its config {}",
                crate::plural::count(manifest.layers().len(), "layer"),
                crate::plural::count(diff_ids.len(), "diff_id")
            ),
        ));
    }
    let mut out = Vec::with_capacity(diff_ids.len());
    for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let layer_digest = layer.digest().to_string();
        let media_type = layer.media_type().to_string();
        if !GZIP_LAYER_TYPES.contains(&media_type.as_str()) {
            return Err(layout_error(
                dir,
                format!("layer {layer_digest} of `{reference}` is `{media_type}`; only gzip-compressed tar layers are taken"),
            ));
        }
        let bytes = source.get(&layer_digest)?;
        let actual = tar_digest(&bytes)
            .map_err(|e| layout_error(dir, format!("layer {layer_digest}: {e}")))?;
        if actual != *diff_id {
            return Err(layout_error(
                dir,
                format!("layer {layer_digest} uncompresses to {actual}, its config says {diff_id}"),
            ));
        }
        store.put(&bytes)?;
        out.push(LayerRef {
            digest: layer_digest,
            diff_id: actual,
            size: bytes.len() as u64,
        });
    }
    Ok(out)
}

/// `sha256:<hex>` of the tar inside a gzip blob.
fn tar_digest(gz: &[u8]) -> std::io::Result<String> {
    let mut hasher = crate::digest::Hasher::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(gz), &mut hasher)?;
    Ok(hasher.finish().into_string())
}
