//! Reading an image back out of another OCI layout (an imported base image): the refs of its
//! `index.json`, and its layers checked against the pinned manifest digest and the config.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::check::Tree;
use super::{LayerRef, REF_NAME};
use crate::oci::blob::{BlobStore, OciError, MAX_DOCUMENT};
use crate::oci::layer::{MEDIA_TYPE as LAYER_MEDIA_TYPE, ZSTD_MEDIA_TYPE};

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

/// Reads a document of the layout at `dir` (`index.json`) whole: a regular file, reached
/// without following a symlink, at most [`MAX_DOCUMENT`] bytes.
fn read_document(dir: &Path, name: &str) -> Result<Vec<u8>, OciError> {
    let path = dir.join(name);
    let refused =
        |e: anyhow::Error| OciError::io("read", &path, std::io::Error::other(format!("{e:#}")));
    let root = crate::fsx::Root::open(dir, crate::fsx::Links::Refuse).map_err(refused)?;
    let file = root.open_file(Path::new(name)).map_err(refused)?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| OciError::io("read", &path, e))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(layout_error(
            dir,
            format!("{name} is larger than {MAX_DOCUMENT} bytes"),
        ));
    }
    Ok(bytes)
}

/// The images named in `dir/index.json`: ref name → manifest digest. Entries without a
/// `org.opencontainers.image.ref.name` annotation are left out.
pub fn refs(dir: &Path) -> Result<BTreeMap<String, String>, OciError> {
    let bytes = read_document(dir, "index.json")?;
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

/// Checks that `reference` in the layout at `dir` names the manifest `digest` (the pin).
pub fn pinned(dir: &Path, reference: &str, digest: &str) -> Result<(), OciError> {
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
    Ok(())
}

/// Imports the layers of the image `reference` from the layout at `dir` into `store`, after
/// checking that the reference names the manifest `digest` (the pin) and the image as
/// [`image_layers`] does.
pub fn read_image(
    dir: &Path,
    reference: &str,
    digest: &str,
    store: &BlobStore,
) -> Result<Vec<LayerRef>, OciError> {
    pinned(dir, reference, digest)?;
    image_layers(&BlobStore::open(dir)?, reference, digest, store)
}

/// Checks the image `reference` of the layout at `dir` as [`read_image`] does, and copies
/// nothing: `infragen lock --bases` checks what it pins.
pub fn check_image(dir: &Path, reference: &str, digest: &str) -> Result<Vec<LayerRef>, OciError> {
    pinned(dir, reference, digest)?;
    verify(&BlobStore::open(dir)?, reference, digest, None)
}

/// Copies the layers of the image whose manifest is `digest` in `source` into `store` (which
/// may be `source` itself) once the whole image is checked: every layer a gzip-compressed tar
/// (OCI's or Docker's media type: the same bytes), every blob a regular file of the size its
/// descriptor says, hashing to its digest, its tar to the config's `diff_id`, and every entry
/// of every layer within the safe-extraction rules (`check`). Blobs are streamed, never read
/// whole; nothing is copied unless the whole image passes. `reference` names the image in errors.
pub fn image_layers(
    source: &BlobStore,
    reference: &str,
    digest: &str,
    store: &BlobStore,
) -> Result<Vec<LayerRef>, OciError> {
    let copy = (source.root() != store.root()).then_some(store);
    verify(source, reference, digest, copy)
}

/// Most layers an image read from elsewhere may have (real images have a few dozen at most).
pub const MAX_LAYERS: usize = 128;

/// The manifest's layers and the config's `diff_ids` of image `digest` in `source`.
fn documents(
    source: &BlobStore,
    reference: &str,
    digest: &str,
) -> Result<Vec<(oci_spec::image::Descriptor, String)>, OciError> {
    let dir = source.root();
    let manifest: oci_spec::image::ImageManifest =
        read_json(dir, &format!("manifest {digest}"), &source.get(digest)?)?;
    let config_digest = manifest.config().digest().to_string();
    let config: oci_spec::image::ImageConfiguration = read_json(
        dir,
        &format!("config {config_digest}"),
        &source.get_sized(&config_digest, Some(manifest.config().size()))?,
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
    if diff_ids.len() > MAX_LAYERS {
        return Err(layout_error(
            dir,
            format!("`{reference}` has more than {MAX_LAYERS} layers"),
        ));
    }
    for layer in manifest.layers() {
        let media_type = layer.media_type().to_string();
        if !GZIP_LAYER_TYPES.contains(&media_type.as_str()) && media_type != ZSTD_MEDIA_TYPE {
            return Err(layout_error(
                dir,
                format!("layer {} of `{reference}` is `{media_type}`; only gzip- or zstd-compressed tar layers are taken", layer.digest()),
            ));
        }
    }
    Ok(manifest
        .layers()
        .iter()
        .cloned()
        .zip(diff_ids.iter().cloned())
        .collect())
}

/// Checks image `digest` of `source` whole (see [`image_layers`]); copies its layer blobs into
/// `copy` once all of it passed.
fn verify(
    source: &BlobStore,
    reference: &str,
    digest: &str,
    copy: Option<&BlobStore>,
) -> Result<Vec<LayerRef>, OciError> {
    let dir = source.root();
    let mut tree = Tree::default();
    let mut out = Vec::new();
    let mut copies = Vec::new();
    for (i, (layer, diff_id)) in documents(source, reference, digest)?.iter().enumerate() {
        let layer_digest = layer.digest().to_string();
        let sink = match copy {
            Some(store) if !store.has(&layer_digest)? => Some(copy_into(store, &layer_digest)?),
            _ => None,
        };
        let zstd = layer.media_type().to_string() == ZSTD_MEDIA_TYPE;
        let sink = one_layer(
            source,
            (&layer_digest, layer.size(), zstd),
            diff_id,
            &mut tree,
            i,
            sink,
        )
        .map_err(|e| layout_error(dir, format!("layer {layer_digest}: {e:#}")))?;
        copies.extend(sink);
        out.push(LayerRef {
            digest: layer_digest,
            diff_id: diff_id.clone(),
            size: layer.size(),
            // Docker's gzip type is written as OCI's: the same bytes
            media_type: if zstd {
                ZSTD_MEDIA_TYPE
            } else {
                LAYER_MEDIA_TYPE
            }
            .to_owned(),
        });
    }
    tree.finish()
        .map_err(|(i, why)| layout_error(dir, format!("layer {}: {why}", out[i].digest)))?;
    for c in copies {
        c.commit().map_err(|e| write_error(dir, &e))?;
    }
    Ok(out)
}

/// A temporary file in `store` that becomes blob `digest` when committed.
fn copy_into(store: &BlobStore, digest: &str) -> Result<crate::fsx::AtomicFile, OciError> {
    let path = store.path(digest)?;
    crate::fsx::AtomicFile::create(&path, 0o644).map_err(|e| write_error(&path, &e))
}

/// An error of the filesystem layer while writing at `path`.
fn write_error(path: &Path, e: &anyhow::Error) -> OciError {
    OciError::io("write", path, std::io::Error::other(format!("{e:#}")))
}

/// Streams layer `digest` of `source` (its descriptor says `size` bytes, zstd-compressed when
/// `zstd`, else gzip) through the decoder and the tar reader into `tree` (as layer `index`),
/// and into `sink` when given: never more than `size + 1` bytes are read. Returns the sink to
/// commit.
fn one_layer(
    source: &BlobStore,
    (digest, size, zstd): (&str, u64, bool),
    diff_id: &str,
    tree: &mut Tree,
    index: usize,
    mut sink: Option<crate::fsx::AtomicFile>,
) -> anyhow::Result<Option<crate::fsx::AtomicFile>> {
    let (file, on_disk) = source.open_blob(digest)?;
    if on_disk != size {
        anyhow::bail!("the blob is {on_disk} bytes, its descriptor says {size}; nothing read");
    }
    let reader = Copy {
        inner: file.take(size + 1),
        sink: sink.as_mut(),
    };
    let got = crate::extraction::stream(reader, crate::extraction::LIMITS, |tar| {
        tree.layer(tar, index)
    })?;
    if got.size != size {
        anyhow::bail!("the blob grew to more than its {size} bytes while it was read; refused");
    }
    if got.blob.as_str() != digest {
        anyhow::bail!("the blob hashes to {}", got.blob);
    }
    if zstd && !got.zstd {
        anyhow::bail!("the blob is not zstd-compressed, as its media type says");
    }
    if !zstd && !got.gzip {
        anyhow::bail!("the blob is not gzip-compressed, as its media type says");
    }
    if got.tar.as_str() != diff_id {
        anyhow::bail!("it uncompresses to {}, its config says {diff_id}", got.tar);
    }
    Ok(sink)
}

/// A reader that writes what it reads into a sink (the store's copy of a blob being checked).
struct Copy<'a, R> {
    inner: R,
    sink: Option<&'a mut crate::fsx::AtomicFile>,
}

impl<R: Read> Read for Copy<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = self.sink.as_mut() {
            std::io::Write::write_all(*s, &buf[..n])?;
        }
        Ok(n)
    }
}
