//! OCI image layouts: the image config, the manifest and `index.json` (image-spec 1.1), all
//! written as canonical JSON into a [`BlobStore`](super::blob::BlobStore).
//!
//! Owns what the documents say. It does not build layers (`layer`) or decide which images a
//! host gets (`bundle`). Times come from the caller (`SOURCE_DATE_EPOCH` or the lock), never
//! from the clock.
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/config.md>
//!
//! Split by direction: `write` makes the config, the manifest and `index.json` of an
//! [`ImageSpec`], `read` takes an image back out of another layout (imported base images) after
//! `check` has held every entry of its layers to the safe-extraction rules, and `date` bounds
//! and formats creation times. The types they share live here.

mod check;
mod date;
mod read;
#[cfg(test)]
mod tests;
mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::layer::Layer;

pub use date::{check_epoch, parse_epoch, rfc3339, shown, LAST_EPOCH};
pub use read::{check_image, image_layers, pinned, read_image, refs, GZIP_LAYER_TYPES, MAX_LAYERS};
pub use write::{config_json, index_json, write_image, write_index};

/// Media type of an image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation naming an image in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What an image is, apart from its layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    /// CPU architecture in Go's naming (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// `user[:group]` the process runs as.
    pub user: Option<String>,
    /// Entrypoint argv.
    pub entrypoint: Vec<String>,
    /// Default arguments.
    pub cmd: Vec<String>,
    /// `NAME=value` environment entries, in the order given.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Exposed ports as `port/proto` (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Volume mount points.
    pub volumes: Vec<String>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Signal that stops the process (`SIGTERM`).
    pub stop_signal: Option<String>,
    /// Creation time, RFC 3339 (see [`rfc3339`]).
    pub created: String,
    /// Manifest annotations (`org.opencontainers.image.version`, `.source`, `.created`).
    pub annotations: BTreeMap<String, String>,
}

/// A reference to a blob with its media type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the blob.
    pub media_type: String,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// A layer already in the store, known by its digests (a cached or imported layer).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerRef {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Media type of the blob (`…tar+gzip`, `…tar+zstd`).
    pub media_type: String,
}

impl From<&Layer> for LayerRef {
    fn from(l: &Layer) -> Self {
        LayerRef {
            digest: l.digest.clone(),
            diff_id: l.diff_id.clone(),
            size: l.size,
            media_type: l.media_type.clone(),
        }
    }
}

/// What [`write_image`] needs of a layer: a [`Layer`] just built (its blob is stored) or a
/// [`LayerRef`] (its blob must already be in the store).
pub trait ImageLayer {
    /// The layer's descriptor in the manifest.
    fn descriptor(&self) -> Descriptor;
    /// `sha256:<hex>` of the uncompressed tar, for the config's `rootfs.diff_ids`.
    fn diff_id(&self) -> &str;
    /// The blob, when the caller holds it.
    fn blob(&self) -> Option<&[u8]>;
}

impl ImageLayer for Layer {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }
    fn diff_id(&self) -> &str {
        &self.diff_id
    }
    fn blob(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

impl ImageLayer for LayerRef {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }
    fn diff_id(&self) -> &str {
        &self.diff_id
    }
    fn blob(&self) -> Option<&[u8]> {
        None
    }
}
