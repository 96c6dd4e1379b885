//! Blob transfers: `HEAD` to skip what is there, a cross-repository mount when the client knows
//! a repository that has the blob, else an upload (monolithic up to the chunk size, `PATCH`
//! chunks above it); downloads hashed while written and renamed only when the digest matches.
//! <https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-blobs>

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::Digest as _;
use url::Url;

use super::client::{check_header_digest, drain, header, Body, Client, Response};
use crate::manifest::Digest;

/// What pushing a blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The repository had it already.
    Skipped,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

impl Client {
    fn remember(&mut self, repo: &str, digest: &Digest) {
        self.known
            .entry(digest.clone())
            .or_default()
            .insert(repo.to_owned());
    }

    /// The size of blob `digest` in `repo`, by `HEAD`; `None` when the registry does not have it.
    pub fn blob_exists(&mut self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(&format!("{repo}/blobs/{digest}"))?;
        let resp = self.send("HEAD", &url, &[], Body::Empty, repo)?;
        match resp.status().as_u16() {
            200 => {
                self.remember(repo, digest);
                Ok(header(&resp, "content-length").and_then(|l| l.parse().ok()))
            }
            404 => Ok(None),
            _ => Err(self.unexpected(resp, &format!("`HEAD {url}`"))),
        }
    }

    /// Pushes the blob `digest` of `size` bytes, read from `source`, into `repo`.
    pub fn push_blob(
        &mut self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Path,
    ) -> Result<Pushed> {
        self.push_blob_with(repo, digest, size, source, &mut |_, _| {})
    }

    /// [`Client::push_blob`], telling `progress` the bytes the registry has taken and `size`:
    /// after each chunk of a chunked upload (a blob larger than [`Client::chunk_size`]), and
    /// once the blob is uploaded. A blob skipped or mounted sends no bytes and reports none.
    pub fn push_blob_with(
        &mut self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Path,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Pushed> {
        if self.known.get(digest).is_some_and(|r| r.contains(repo)) {
            return Ok(Pushed::Skipped);
        }
        let on_disk = std::fs::metadata(source)
            .with_context(|| format!("reading `{}`", source.display()))?
            .len();
        if on_disk != size {
            bail!(
                "`{}` is {on_disk} bytes, but blob {digest} is {size}",
                source.display()
            );
        }
        if self.blob_exists(repo, digest)?.is_some() {
            return Ok(Pushed::Skipped);
        }
        let from = self
            .known
            .get(digest)
            .and_then(|r| r.iter().next())
            .cloned();
        let mut start = self.url(&format!("{repo}/blobs/uploads/"))?;
        if let Some(from) = &from {
            start
                .query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", from);
        }
        let resp = self.send("POST", &start, &[], Body::Empty, repo)?;
        match resp.status().as_u16() {
            201 if from.is_some() => {
                drain(resp);
                self.remember(repo, digest);
                return Ok(Pushed::Mounted);
            }
            202 => {}
            _ => return Err(self.unexpected(resp, &format!("`POST {start}`"))),
        }
        let location = location(&resp, &start)?;
        drain(resp);
        let location = if size > self.chunk_size {
            self.upload_chunks(repo, digest, size, source, location, progress)?
        } else {
            location
        };
        let mut put = location.clone();
        put.query_pairs_mut().append_pair("digest", digest.as_str());
        let body = if size > self.chunk_size {
            Body::Empty
        } else {
            Body::File {
                path: source,
                offset: 0,
                len: size,
            }
        };
        let resp = self.send(
            "PUT",
            &put,
            &[("Content-Type", "application/octet-stream")],
            body,
            repo,
        )?;
        if resp.status() != 201 {
            return Err(self.unexpected(resp, &format!("the upload of blob {digest} to `{repo}`")));
        }
        check_header_digest(&resp, digest, &put)?;
        drain(resp);
        self.remember(repo, digest);
        if size <= self.chunk_size {
            progress(size, Some(size));
        }
        Ok(Pushed::Uploaded)
    }

    /// Sends blob `digest` (`size` bytes of `source`) in chunks of [`Self::chunk_size`] to the
    /// upload session at `location`; returns where the session continues (for the final `PUT`).
    fn upload_chunks(
        &mut self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Path,
        mut location: Url,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Url> {
        let mut offset = 0;
        while offset < size {
            let len = self.chunk_size.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let resp = self.send(
                "PATCH",
                &location,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Body::File {
                    path: source,
                    offset,
                    len,
                },
                repo,
            )?;
            if resp.status() != 202 {
                return Err(
                    self.unexpected(resp, &format!("`PATCH` of blob {digest} bytes {range}"))
                );
            }
            location = self::location(&resp, &location)?;
            drain(resp);
            offset += len;
            progress(offset, Some(size));
        }
        Ok(location)
    }

    /// Downloads blob `digest` of `repo` into `dest`: written to a temporary file beside it,
    /// hashed on the way, renamed only when the size and digest match. More bytes than
    /// `expected_size` are refused without being written.
    pub fn get_blob(
        &mut self,
        repo: &str,
        digest: &Digest,
        expected_size: u64,
        dest: &Path,
    ) -> Result<()> {
        let mut tmp = crate::fsx::AtomicFile::create(dest, 0o644)?;
        self.get_blob_to(repo, digest, expected_size, &mut tmp)?;
        tmp.commit()
    }

    /// Streams blob `digest` of `repo` into `out`, hashing on the way; an error when the size
    /// or digest differs (the caller discards what was written: it names no content). Never
    /// more than `expected_size` bytes are written.
    pub fn get_blob_to(
        &mut self,
        repo: &str,
        digest: &Digest,
        expected_size: u64,
        out: &mut dyn Write,
    ) -> Result<()> {
        let url = self.url(&format!("{repo}/blobs/{digest}"))?;
        let resp = self.send_sized("GET", &url, &[], Body::Empty, repo, expected_size)?;
        if resp.status() != 200 {
            return Err(self.unexpected(resp, &format!("`GET {url}`")));
        }
        let mut reader = super::client::paced(resp, self.sent).take(expected_size + 1);
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("reading blob {digest} from `{url}`"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            self.stats.bytes_down += n as u64;
            if total > expected_size {
                bail!("blob {digest} from registry `{}` is larger than the {expected_size} bytes expected; nothing written\nhint: the registry or something between it and us serves other content under this digest", self.host());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("writing blob {digest}"))?;
        }
        let got = Digest::from_hasher(hasher);
        if total != expected_size || &got != digest {
            bail!("blob {digest} from registry `{}` is {total} bytes hashing to {got}, not {expected_size} bytes hashing to {digest}; nothing written\nhint: the registry or something between it and us serves other content under this digest", self.host());
        }
        Ok(())
    }
}

/// The `Location` of an upload answer, resolved against the request URL. It must stay on the
/// registry (same scheme, host and port): the upload goes on with the registry's
/// `Authorization`, which another host must never receive.
fn location(resp: &Response, base: &Url) -> Result<Url> {
    let Some(l) = header(resp, "location") else {
        bail!("registry answered `{base}` without a `Location`");
    };
    let url = base
        .join(l)
        .with_context(|| format!("`Location: {l}` is not a URL"))?;
    if url.origin() != base.origin() {
        bail!("registry answered `{base}` with `Location: {l}`, off the registry; refused (the upload would carry the registry's credentials there)");
    }
    Ok(url)
}
