//! A client of OCI registries (distribution spec v1.1) over `ureq` (agents from `net`):
//! references, credentials, manifests, blobs and tags, with every request counted.
//!
//! Owns the wire: what to send to a registry and how to check what comes back (digests, sizes,
//! limits). It does not decide what to push (`ship`) or what a host pulls (`activate`).
//! HTTPS by default; plain HTTP only when asked.
//! <https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md>

mod auth;
mod blob;
mod client;
mod reference;

use std::collections::BTreeMap;
use std::fmt;

pub use auth::{auth_files, lookup, parse_challenge, Challenge, Credentials};
pub use blob::Pushed;
pub use client::{
    check_realm, Client, Options, DEFAULT_CHUNK, GRACE, MAX_MANIFEST, MIN_RATE, TIMEOUT_ENV,
};
pub use reference::{check_repo, valid_tag, Reference};

/// Media type of a Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of a Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest media types a client accepts when it resolves a tag.
pub const MANIFEST_TYPES: &[&str] = &[
    crate::oci::layout::MANIFEST_MEDIA_TYPE,
    crate::oci::layout::INDEX_MEDIA_TYPE,
    DOCKER_MANIFEST,
    DOCKER_LIST,
];

/// What a client has sent and received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests by method (`GET`, `HEAD`, `POST`, `PATCH`, `PUT`), token requests included.
    pub requests: BTreeMap<String, u64>,
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Response body bytes read.
    pub bytes_down: u64,
}

impl Stats {
    /// Requests made with `method`.
    pub fn count(&self, method: &str) -> u64 {
        self.requests.get(method).copied().unwrap_or(0)
    }

    /// Every request made.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(f, "{total} request{}", if total == 1 { "" } else { "s" })?;
        if total > 0 {
            let each: Vec<String> = self
                .requests
                .iter()
                .map(|(m, n)| format!("{n} {m}"))
                .collect();
            write!(f, " ({})", each.join(", "))?;
        }
        write!(
            f,
            ", {} up, {} down",
            crate::plural::bytes(self.bytes_up),
            crate::plural::bytes(self.bytes_down)
        )
    }
}
