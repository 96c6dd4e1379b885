//! Where a push goes: the [`Sink`] trait, and its implementation by the registry client.
//! The static tree (`tree`) is the other one.

use std::path::Path;

use anyhow::Result;

use crate::manifest::Digest;
use crate::registry::{Client, Pushed, Stats, MANIFEST_TYPES};

/// A place that takes blobs and manifests by repository, as a registry does.
pub trait Sink {
    /// Where it is, for messages (`127.0.0.1:5000`, `/www/registry`).
    fn describe(&self) -> String;
    /// The digest of manifest `reference` (tag or digest) of `repo`, `None` when absent.
    fn manifest_digest(&mut self, repo: &str, reference: &str) -> Result<Option<Digest>>;
    /// Puts the blob `digest` of `size` bytes, read from `source`, into `repo` (skipped when
    /// there; mounted or linked from another repository when possible). `progress` is told the
    /// bytes sent so far and `size`, as a transfer goes.
    fn put_blob(
        &mut self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Path,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Pushed>;
    /// Puts manifest `bytes` of `media_type` as `reference` (a tag or its digest) of `repo`.
    fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest>;
    /// The media type and bytes of manifest `reference` of `repo`, `None` when absent.
    fn get_manifest(&mut self, repo: &str, reference: &str) -> Result<Option<(String, Vec<u8>)>>;
    /// Request counts, for a sink that makes requests.
    fn stats(&self) -> Option<&Stats> {
        None
    }
    /// The registry host signatures name (`None` for a tree whose host is whoever serves it).
    fn registry_host(&self) -> Option<String> {
        None
    }
}

impl Sink for Client {
    fn describe(&self) -> String {
        self.host().to_owned()
    }

    fn manifest_digest(&mut self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        Client::manifest_digest(self, repo, reference)
    }

    fn put_blob(
        &mut self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Path,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Pushed> {
        self.push_blob_with(repo, digest, size, source, progress)
    }

    fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        Client::put_manifest(self, repo, reference, media_type, bytes)
    }

    fn get_manifest(&mut self, repo: &str, reference: &str) -> Result<Option<(String, Vec<u8>)>> {
        if Client::manifest_digest(self, repo, reference)?.is_none() {
            return Ok(None);
        }
        let (media_type, bytes, _) = Client::get_manifest(self, repo, reference, MANIFEST_TYPES)?;
        Ok(Some((media_type, bytes)))
    }

    fn stats(&self) -> Option<&Stats> {
        Some(&self.stats)
    }

    fn registry_host(&self) -> Option<String> {
        Some(self.host().to_owned())
    }
}
