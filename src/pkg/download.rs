//! HTTP downloads of packages and their metadata: streamed, resumed, retried, checked.
//!
//! A `.deb` is streamed into a temporary file beside its place in the cache
//! ([`crate::fsx::AtomicFile::resume`]: `.<name>.partial`), hashed on the way, and renamed into
//! place only when its sha256 (and size, when known) match. A transfer cut mid-body goes on
//! from where it stopped with a `Range` request, in the same run or, when every try failed on
//! the connection, in the next one (the bytes kept are hashed again first); the hash checked
//! at the end is still the whole file's, a server that ignores `Range` sends the file again
//! from its start, and kept bytes that do not lead to the right file are thrown away and the
//! file fetched once more whole. Connection errors, timeouts and `5xx`
//! answers are tried again, [`ATTEMPTS`] times in all, with a backoff; a `4xx` answer and a
//! hash or size mismatch never are. Metadata (`InRelease`, `Packages`) is read into memory,
//! bounded by [`MAX_METADATA`], with the same retries: its callers parse it whole.
//!
//! It does not decide what to download or where the cache is (`fetch`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use url::Url;

use crate::digest::Hasher;
use crate::fsx::AtomicFile;
use crate::net::{self, Proxies, Timeouts};

/// How many times one download is tried (the first time included).
pub const ATTEMPTS: u32 = 3;

/// The wait before the second try; it doubles before each further one.
pub const BACKOFF: Duration = Duration::from_millis(500);

/// The largest metadata file read into memory.
pub const MAX_METADATA: u64 = 512 << 20;

/// Told how a download goes: bytes so far, and the total when it is known. Called after each
/// piece written, and with what is already there when a transfer resumes.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// What a downloaded file must be.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Its sha256, in hex.
    pub sha256: &'a str,
    /// Its size in bytes, when known.
    pub size: Option<u64>,
}

/// A download that arrived whole but is not the file expected: its sha256 differs. Never
/// retried; nothing of it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was downloaded.
    pub url: String,
    /// The sha256 (hex) of what came.
    pub got: String,
    /// The sha256 (hex) expected.
    pub expected: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: sha256 {} does not match the expected {}; nothing kept",
            self.url, self.got, self.expected
        )
    }
}

impl std::error::Error for Mismatch {}

/// Downloads over HTTP(S) with the proxies of the environment and the profile.
#[derive(Debug, Clone)]
pub struct Downloader {
    agent: ureq::Agent,
    proxies: Proxies,
    /// How many times one download is tried ([`ATTEMPTS`]).
    pub attempts: u32,
    /// The wait before the second try ([`BACKOFF`]).
    pub backoff: Duration,
}

impl Default for Downloader {
    /// A downloader with the environment's proxies.
    fn default() -> Self {
        Self::new(Proxies::from_env())
    }
}

/// Why one try failed: worth another, or final.
enum Failure {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

impl Failure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Retry(e) | Failure::Fatal(e) => e,
        }
    }
}

/// A file being downloaded: the temporary file, the hash and count of what it holds.
struct Partial {
    file: AtomicFile,
    hasher: Hasher,
    done: u64,
}

impl Partial {
    /// Takes the `held` bytes an earlier run left in the file as downloaded (hashing them),
    /// or empties the file when they are more than the file expected.
    fn take_held(&mut self, held: u64, expected: Expected<'_>) -> std::io::Result<()> {
        if expected.size.is_some_and(|s| held > s) {
            return self.restart();
        }
        let f = self.file.file();
        f.seek(SeekFrom::Start(0))?;
        let copied = std::io::copy(&mut f.take(held), &mut self.hasher)?;
        if copied != held {
            return self.restart();
        }
        self.done = held;
        Ok(())
    }

    /// Empties the file, to receive it again from its start.
    fn restart(&mut self) -> std::io::Result<()> {
        self.file.file().set_len(0)?;
        self.file.file().seek(SeekFrom::Start(0))?;
        self.hasher = Hasher::new();
        self.done = 0;
        Ok(())
    }
}

/// A URL that is not there: the server answered 404 Not Found, or a `file:` path does not exist.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.starts_with("file:") {
            write!(f, "reading {}: no such file", self.0)
        } else {
            write!(f, "fetching {}: the server answered 404 Not Found", self.0)
        }
    }
}

impl std::error::Error for NotFound {}

impl Downloader {
    /// A downloader through `proxies`.
    pub fn new(proxies: Proxies) -> Self {
        Self {
            agent: net::agent(&Timeouts::DOWNLOAD, false),
            proxies,
            attempts: ATTEMPTS,
            backoff: BACKOFF,
        }
    }

    /// Tries `once` up to [`Downloader::attempts`] times, waiting between tries; the last
    /// failure is a [`Failure::Retry`] when every try failed in a way worth another.
    fn retry<T>(
        &self,
        url: &str,
        mut once: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut wait = self.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            match once() {
                Err(Failure::Retry(e)) if tries >= self.attempts.max(1) => {
                    return Err(Failure::Retry(e.context(format!(
                        "fetching {url}: gave up after {}",
                        crate::plural::count(tries, "attempt")
                    ))));
                }
                Err(Failure::Retry(_)) => {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                done => return done,
            }
        }
    }

    /// Sends `GET url` (from byte `from` on, when not 0); an answer that is not `2xx` is a
    /// failure, to retry when the server may recover (`5xx`, `408`, `429`).
    fn send(&self, url: &str, from: u64) -> Result<net::Response, Failure> {
        let parsed = Url::parse(url)
            .map_err(|e| Failure::Fatal(anyhow!("fetching {url}: not a URL: {e}")))?;
        let proxy = self.proxies.for_url(&parsed).map_err(Failure::Fatal)?;
        let mut req = self.agent.get(url);
        if from > 0 {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let resp = req.config().proxy(proxy).build().call().map_err(|e| {
            let retry = matches!(
                e,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::HostNotFound
                    | ureq::Error::Protocol(_)
            );
            let e = anyhow!("fetching {url}: {}", net::describe(&e));
            if retry {
                Failure::Retry(e)
            } else {
                Failure::Fatal(e)
            }
        })?;
        let status = resp.status();
        if status.is_success() || (from > 0 && status == 416) {
            return Ok(resp);
        }
        if status == 404 {
            return Err(Failure::Fatal(NotFound(url.to_owned()).into()));
        }
        let e = anyhow!(
            "fetching {url}: the server answered {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        if status.is_server_error() || status == 408 || status == 429 {
            Err(Failure::Retry(e))
        } else {
            Err(Failure::Fatal(e))
        }
    }

    /// The body of `url`, at most [`MAX_METADATA`] bytes.
    pub fn get(&self, url: &str) -> Result<Vec<u8>> {
        self.get_at_most(url, MAX_METADATA)
    }

    /// The body of `url`, refused as soon as it is longer than `max` bytes (a `Packages` index
    /// longer than its Release says is not read to its end).
    pub fn get_at_most(&self, url: &str, max: u64) -> Result<Vec<u8>> {
        let max = max.min(MAX_METADATA);
        let got = self.retry(url, || {
            let resp = self.send(url, 0)?;
            let mut bytes = Vec::new();
            resp.into_body()
                .into_reader()
                .take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::Retry(anyhow!("reading {url}: {e}")))?;
            if bytes.len() as u64 > max {
                return Err(Failure::Fatal(anyhow!(
                    "{url}: larger than {max} bytes; refused"
                )));
            }
            Ok(bytes)
        });
        got.map_err(Failure::into_error)
    }

    /// Downloads `url` into `dest` (whose directory exists): streamed into a temporary file
    /// beside it, renamed into place only when it is `expected`. What an interrupted run left
    /// in that file (`.<name>.partial`) is hashed and gone on from with `Range`. When every try
    /// failed on the connection, what came is kept there for the next run; on any other error
    /// nothing is left at `dest` or beside it.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        expected: Expected<'_>,
        progress: Progress<'_>,
    ) -> Result<()> {
        let (file, held) = match AtomicFile::resume(dest, 0o644)? {
            Some(resumed) => resumed,
            // Another process is downloading the same file: this one makes its own.
            None => (AtomicFile::create(dest, 0o644)?, 0),
        };
        let mut partial = Partial {
            file,
            hasher: Hasher::new(),
            done: 0,
        };
        if held > 0 {
            partial
                .take_held(held, expected)
                .with_context(|| format!("reading what an earlier run downloaded of {url}"))?;
        }
        let mut result = self.retry(url, || self.transfer(url, &mut partial, expected, progress));
        if held > 0 && !usable(&partial, expected, &result) {
            // The bytes of an earlier run may be of another file: once more from the start.
            partial.restart().context("emptying the partial download")?;
            result = self.retry(url, || self.transfer(url, &mut partial, expected, progress));
        }
        match result {
            Err(Failure::Retry(e)) => {
                if partial.done > 0 {
                    partial.file.keep();
                }
                Err(e)
            }
            Err(Failure::Fatal(e)) => Err(e),
            Ok(()) => {
                let got = partial.hasher.clone().finish();
                if got.hex() != expected.sha256 {
                    return Err(Mismatch {
                        url: url.to_owned(),
                        got: got.hex().to_owned(),
                        expected: expected.sha256.to_owned(),
                    }
                    .into());
                }
                partial.file.commit()
            }
        }
    }

    /// One try: the rest of the file (all of it when nothing is there yet) appended to
    /// `partial`. Ends `Ok` when the server has sent everything.
    fn transfer(
        &self,
        url: &str,
        partial: &mut Partial,
        expected: Expected<'_>,
        progress: Progress<'_>,
    ) -> Result<(), Failure> {
        let fatal =
            |e: std::io::Error| Failure::Fatal(anyhow!("writing the download of {url}: {e}"));
        let resp = self.send(url, partial.done)?;
        match resp.status().as_u16() {
            // The range is past the end: what is there is not a prefix of this file.
            416 => {
                let e = anyhow!(
                    "fetching {url}: the server refused to resume at byte {}",
                    partial.done
                );
                partial.restart().map_err(fatal)?;
                return Err(Failure::Retry(e));
            }
            206 if resumes_at(&resp, partial.done) => {}
            // Another range than the one asked: its bytes fit nowhere; the next try asks for all.
            206 => {
                partial.restart().map_err(fatal)?;
                return Err(Failure::Retry(anyhow!(
                    "fetching {url}: the server answered another range than the one asked"
                )));
            }
            // A whole answer (the server ignores `Range`): from the start.
            _ if partial.done > 0 => partial.restart().map_err(fatal)?,
            _ => {}
        }
        let length = net::header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
        let total = length.map(|l| l + partial.done).or(expected.size);
        if let (Some(t), Some(size)) = (total, expected.size) {
            if t != size {
                return Err(Failure::Fatal(anyhow!(
                    "{url}: the server sends {t} bytes, {size} were expected; nothing kept"
                )));
            }
        }
        progress(partial.done, total);
        let mut body = resp.into_body().into_reader();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::Retry(anyhow!(
                        "fetching {url}: cut after {} bytes: {e}",
                        partial.done
                    )))
                }
            };
            if expected.size.is_some_and(|s| partial.done + n as u64 > s) {
                return Err(Failure::Fatal(anyhow!(
                    "{url}: more than the {} bytes expected; nothing kept",
                    expected.size.unwrap_or_default()
                )));
            }
            partial.file.write_all(&buf[..n]).map_err(fatal)?;
            partial.hasher.update(&buf[..n]);
            partial.done += n as u64;
            progress(partial.done, total);
        }
        match total {
            Some(t) if partial.done < t => Err(Failure::Retry(anyhow!(
                "fetching {url}: the connection closed after {} of {t} bytes",
                partial.done
            ))),
            _ => Ok(()),
        }
    }
}

/// Whether a `206` answer's `Content-Range` starts at byte `at`.
fn resumes_at(resp: &net::Response, at: u64) -> bool {
    net::header(resp, "content-range")
        .and_then(|r| r.strip_prefix("bytes "))
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(start, _)| start.trim().parse() == Ok(at))
}

/// Whether a resumed transfer that ended with `result` may stand: it holds the expected file,
/// or failed on the connection (what it holds is kept for later).
fn usable(partial: &Partial, expected: Expected<'_>, result: &Result<(), Failure>) -> bool {
    match result {
        Ok(()) => partial.hasher.clone().finish().hex() == expected.sha256,
        Err(Failure::Retry(_)) => true,
        Err(Failure::Fatal(_)) => false,
    }
}
