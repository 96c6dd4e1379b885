//! OCI image layouts: the image config, the manifest and `index.json` (image-spec 1.1), all
//! written as canonical JSON into a [`BlobStore`].
//!
//! Owns what the documents say. It does not build layers (`layer`) or decide which images a
//! host gets (`bundle`). Times come from the caller (`SOURCE_DATE_EPOCH` or the lock), never
//! from the clock.
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/config.md>

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::blob::{hex, write_atomic, BlobStore, OciError};
use super::json::to_canonical;
use super::layer::{Layer, MEDIA_TYPE as LAYER_MEDIA_TYPE};

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

/// A list written as a set-like map, every value `{}` (`ExposedPorts`, `Volumes`); the
/// canonical writer sorts the keys.
fn as_set<S: serde::Serializer>(items: &&[String], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Empty {}
    s.collect_map(items.iter().map(|i| (i, Empty {})))
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
}

impl From<&Layer> for LayerRef {
    fn from(l: &Layer) -> Self {
        LayerRef {
            digest: l.digest.clone(),
            diff_id: l.diff_id.clone(),
            size: l.size,
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
            media_type: LAYER_MEDIA_TYPE.to_owned(),
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
/// manifest's descriptor. Blobs already in the store are not rewritten; a [`LayerRef`]'s blob
/// must be there already.
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
    let store = BlobStore::open(dir)?;
    let mut manifests = Vec::with_capacity(refs.len());
    for (name, descriptor) in refs {
        if !valid_ref_name(name) {
            return Err(OciError::InvalidRefName(name.clone()));
        }
        if !store.has(&descriptor.digest)? {
            return Err(OciError::MissingBlob {
                digest: descriptor.digest.clone(),
                root: dir.to_path_buf(),
            });
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
    write_atomic(dir, &dir.join("index.json"), &to_canonical(&index)?)
}

/// Media types of gzip-compressed tar layers that an imported image may use: the OCI one and
/// Docker's, which has the same bytes.
const GZIP_LAYER_TYPES: [&str; 2] = [
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
    let source = BlobStore::open(dir)?;
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
                "`{reference}` lists {} layers but its config {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
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
    let mut hasher = Sha256::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(gz), &mut hasher)?;
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
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

/// `epoch` (seconds since 1970-01-01 UTC) as RFC 3339 in UTC: `1970-01-01T00:00:00Z`.
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::layer::{build, LayerEntry};

    #[test]
    fn rfc3339_known_instants() {
        for (epoch, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(epoch), want, "{epoch}");
        }
    }

    #[test]
    fn civil_from_days_walks_every_day() {
        // Day by day from 1970 to 2400 the date advances by exactly one calendar day.
        let leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..157_000 {
            let next = civil_from_days(days);
            let (y, m, d) = prev;
            let month_len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let want = if d < month_len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, want, "day {days}");
            prev = next;
        }
    }

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

    fn spec() -> ImageSpec {
        ImageSpec {
            architecture: "amd64".into(),
            os: "linux".into(),
            user: Some("nginx".into()),
            entrypoint: vec!["/usr/sbin/nginx".into()],
            cmd: vec!["-g".into(), "daemon off;".into()],
            env: vec!["PATH=/usr/bin".into()],
            working_dir: Some("/".into()),
            exposed_ports: vec!["80/tcp".into(), "443/tcp".into()],
            volumes: vec!["/var/log/nginx".into()],
            labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            stop_signal: Some("SIGQUIT".into()),
            created: rfc3339(0),
            annotations: BTreeMap::from([("org.opencontainers.image.version".into(), "1".into())]),
        }
    }

    #[test]
    fn documents_parse_as_oci_spec_types() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let layer = build(vec![LayerEntry::file("etc/x", "x", 0o644)], 0).unwrap();
        let desc = write_image(&store, &spec(), std::slice::from_ref(&layer)).unwrap();
        assert_eq!(desc.media_type, MANIFEST_MEDIA_TYPE);

        let manifest_bytes = store.get(&desc.digest).unwrap();
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest.layers().len(), 1);
        assert_eq!(manifest.layers()[0].digest().to_string(), layer.digest);
        let config_digest = manifest.config().digest().to_string();
        let config_bytes = store.get(&config_digest).unwrap();
        let config: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(config.rootfs().diff_ids(), &vec![layer.diff_id.clone()]);
        assert_eq!(config.history().as_ref().map(Vec::len), Some(1));
        let run = config.config().as_ref().unwrap();
        assert_eq!(run.user().as_deref(), Some("nginx"));
        assert_eq!(run.stop_signal().as_deref(), Some("SIGQUIT"));
        let text = String::from_utf8(config_bytes).unwrap();
        assert!(
            text.contains(r#""ExposedPorts":{"443/tcp":{},"80/tcp":{}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""Volumes":{"/var/log/nginx":{}}"#),
            "{text}"
        );

        write_index(
            dir.path(),
            &BTreeMap::from([("infra-nginx".to_owned(), desc.clone())]),
        )
        .unwrap();
        let index_bytes = std::fs::read(dir.path().join("index.json")).unwrap();
        let index: oci_spec::image::ImageIndex = serde_json::from_slice(&index_bytes).unwrap();
        assert_eq!(index.manifests()[0].digest().to_string(), desc.digest);
        assert_eq!(
            String::from_utf8(index_bytes).unwrap(),
            format!(
                r#"{{"manifests":[{{"annotations":{{"{REF_NAME}":"infra-nginx"}},"digest":"{}","mediaType":"{MANIFEST_MEDIA_TYPE}","size":{}}}],"mediaType":"{INDEX_MEDIA_TYPE}","schemaVersion":2}}"#,
                desc.digest, desc.size
            )
        );
        assert!(store.fsck().unwrap().is_empty());
    }

    #[test]
    fn images_are_read_back_from_another_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        let source = BlobStore::open(&from).unwrap();
        let layers = [
            build(vec![LayerEntry::file("a", "1", 0o644)], 0).unwrap(),
            build(vec![LayerEntry::file("b", "2", 0o644)], 0).unwrap(),
        ];
        let desc = write_image(&source, &spec(), &layers).unwrap();
        let name = "grafana/grafana:11.0".to_owned();
        write_index(&from, &BTreeMap::from([(name.clone(), desc.clone())])).unwrap();
        assert_eq!(
            refs(&from).unwrap(),
            BTreeMap::from([(name.clone(), desc.digest.clone())])
        );

        let store = BlobStore::open(&to).unwrap();
        let got = read_image(&from, &name, &desc.digest, &store).unwrap();
        let want: Vec<LayerRef> = layers.iter().map(LayerRef::from).collect();
        assert_eq!(got, want);
        // The imported refs build the same image as the layers they came from.
        assert_eq!(write_image(&store, &spec(), &got).unwrap(), desc);

        let wrong = crate::oci::blob::sha256_digest(b"other");
        let err = read_image(&from, &name, &wrong, &store).unwrap_err();
        assert!(err.to_string().contains("is pinned"), "{err}");
        let err = read_image(&from, "absent", &desc.digest, &store).unwrap_err();
        assert!(
            err.to_string().contains("no image is named `absent`"),
            "{err}"
        );

        // A layer ref whose blob is not in the store is an error, not a dangling manifest.
        let empty = BlobStore::open(tmp.path().join("empty")).unwrap();
        assert!(matches!(
            write_image(&empty, &spec(), &got),
            Err(OciError::MissingBlob { .. })
        ));
    }

    #[test]
    fn index_rejects_bad_refs_and_missing_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: crate::oci::blob::sha256_digest(b"nothing"),
            size: 7,
        };
        let err = write_index(
            dir.path(),
            &BTreeMap::from([("ok".into(), missing.clone())]),
        );
        assert!(matches!(err, Err(OciError::MissingBlob { .. })));
        let err = write_index(dir.path(), &BTreeMap::from([("bad name".into(), missing)]));
        assert!(matches!(err, Err(OciError::InvalidRefName(_))));
        assert!(!dir.path().join("index.json").exists());
    }
}
