//! Getting bytes: APT sources from this machine's configuration, signed repository metadata,
//! and `.deb` files through a cache keyed by sha256.
//!
//! The default upstream is whatever `/etc/apt/sources.list{,.d}` says; no mirror is named in
//! infragen. Metadata is trusted only through the chain `InRelease` (checked by `gpgv` against
//! the source's `Signed-By` keyring) → `Packages` (size and sha256 in Release) → `.deb` (size
//! and sha256 in Packages, then in the lock). Unsigned metadata is refused unless explicitly
//! allowed; a Release is taken only for the suite asked and while its dates are valid
//! (`apt::validity`), as apt does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use super::apt::validity::{self, Clock};
use super::apt::{self, Package, Source};
pub use super::download::{Downloader, Expected, Mismatch, NotFound, Progress};
use crate::digest::{HashWriter, Hasher};
use crate::fsx::AtomicFile;

/// Where APT configuration lives (a test may point it elsewhere), and the proxies its
/// sources are reached through.
pub struct AptConfig {
    /// `/etc/apt` usually.
    pub etc: PathBuf,
    /// The environment's proxies, with the profile's `proxy_env` over them when a profile is
    /// given.
    pub proxies: crate::net::Proxies,
}

impl Default for AptConfig {
    fn default() -> Self {
        Self {
            etc: PathBuf::from("/etc/apt"),
            proxies: crate::net::Proxies::from_env(),
        }
    }
}

impl AptConfig {
    /// Every `deb` source of the machine's configuration, in file order.
    pub fn sources(&self) -> Result<Vec<Source>> {
        let mut out = Vec::new();
        let list = self.etc.join("sources.list");
        if list.exists() {
            let text =
                fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
            out.extend(apt::parse_sources_list(&text).with_context(|| list.display().to_string())?);
        }
        let dir = self.etc.join("sources.list.d");
        if dir.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for f in files {
                let text =
                    || fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()));
                match f.extension().and_then(|e| e.to_str()) {
                    Some("list") => out.extend(
                        apt::parse_sources_list(&text()?)
                            .with_context(|| f.display().to_string())?,
                    ),
                    Some("sources") => out.extend(
                        apt::parse_deb822_sources(&text()?)
                            .with_context(|| f.display().to_string())?,
                    ),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

/// A locked package that every APT source answered [`NotFound`] for: the mirror dropped the
/// pinned version (a security update replaced it). Says which, and what to run.
#[derive(Debug)]
pub struct Vanished {
    /// `Package:`.
    pub name: String,
    /// `Version:`.
    pub version: String,
    /// Where it was looked for.
    pub urls: Vec<String>,
}

impl std::fmt::Display for Vanished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "package `{}` {} is not on the mirror any more (404 Not Found: {}): the lock pins a \
             version the mirror has dropped\nhint: run `infragen lock` to pin the versions the \
             mirror has now (pass the same --lock), then build again; `infragen repo sync` keeps \
             a local copy of the pinned packages",
            self.name,
            self.version,
            self.urls.join(", ")
        )
    }
}

impl std::error::Error for Vanished {}

/// Reads a URL (`http(s)://` or `file:`) or fails with the URL in the message; HTTP through
/// the environment's proxies, retried ([`Downloader::get`]).
pub fn get(url: &str) -> Result<Vec<u8>> {
    get_with(&Downloader::default(), url)
}

/// [`get`] with `downloader`: at most [`MAX_METADATA`](crate::pkg::download::MAX_METADATA)
/// bytes, from a `file:` URL as from HTTP.
pub fn get_with(downloader: &Downloader, url: &str) -> Result<Vec<u8>> {
    get_at_most_with(downloader, url, crate::pkg::download::MAX_METADATA)
}

/// [`get_with`], refused as soon as the body is longer than `max` bytes: a `file:` one by its
/// size before it is read, an HTTP one while it arrives.
pub fn get_at_most_with(downloader: &Downloader, url: &str, max: u64) -> Result<Vec<u8>> {
    let Some(path) = file_path(url) else {
        return downloader.get_at_most(url, max);
    };
    // Without waiting (a fifo never blocks), and only a regular file is read.
    let opened = {
        use std::os::unix::fs::OpenOptionsExt as _;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
            .open(path)
    };
    let file = match opened {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotFound(url.to_owned()).into())
        }
        opened => opened.with_context(|| format!("reading {url}"))?,
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        bail!("{url}: not a regular file; refused");
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut bytes)
        .with_context(|| format!("reading {url}"))?;
    if bytes.len() as u64 > max {
        bail!("{url}: larger than {max} bytes; refused");
    }
    Ok(bytes)
}

/// The path of a `file:` URL.
fn file_path(url: &str) -> Option<&Path> {
    url.strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))
        .map(Path::new)
}

fn join(base: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

/// The hex sha256 of `bytes` (the name callers in `profile` and the tests use).
pub use crate::digest::sha256_hex as sha256;

/// How metadata signatures are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Require a valid signature (or `trusted=yes` on the source).
    Signed,
    /// Accept unsigned metadata (`--allow-unsigned`): the sha256 chain still holds.
    AllowUnsigned,
}

/// What reading a source checks besides the sha256 chain: signatures, and the time its Release
/// files' `Date` and `Valid-Until` are measured against.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// How signatures are handled.
    pub trust: Trust,
    /// This machine's clock, or a snapshot time given on purpose.
    pub clock: Clock,
}

/// Verifies a clearsigned `InRelease` with `gpgv` against `keyring`; returns the signed text.
pub fn verify_signed(url: &str, bytes: &[u8], keyring: Option<&str>) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("InRelease");
    fs::write(&file, bytes)?;
    let mut cmd = Command::new("gpgv");
    if let Some(k) = keyring {
        cmd.arg("--keyring").arg(k);
    } else {
        bail!("{url}: the source has no `Signed-By` keyring to verify it against\nhint: add Signed-By to the source, or pass --allow-unsigned");
    }
    let out = cmd
        .arg(&file)
        .output()
        .context("running gpgv (install the `gpgv` package)")?;
    if !out.status.success() {
        bail!(
            "{url}: signature check failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8(bytes.to_vec()).with_context(|| format!("{url}: not UTF-8"))?;
    apt::strip_clearsign(&text).map_err(|e| anyhow!("{url}: {e}"))
}

/// Every package of `source` for `arch`, with the chain Release → Packages verified, and the
/// newest `Date:` of its Release files; fetched with `downloader`. Each Release must be
/// signed (as `checks` says), be for the suite asked (its `Suite` or `Codename`), and be
/// valid at `checks.clock` ([`validity::check`]); each index must have the size and sha256
/// its Release lists (a longer one is not read past that size).
pub fn packages(
    source: &Source,
    arch: &str,
    checks: Checks,
    downloader: &Downloader,
) -> Result<(Vec<Package>, Option<u64>)> {
    let mut all = Vec::new();
    let mut newest: Option<u64> = None;
    for suite in &source.suites {
        let flat = suite.ends_with('/');
        let dists = match suite.as_str() {
            "./" | "/" => source.uri.trim_end_matches('/').to_owned(),
            _ if flat => join(&source.uri, suite),
            _ => join(&source.uri, &format!("dists/{suite}")),
        };
        let (release, date, url) = release(source, &dists, checks.trust, downloader)?;
        if !flat {
            same_suite(&url, suite, &release)?;
        }
        if let Err(stale) = validity::check(release.date, release.valid_until, checks.clock) {
            bail!("{url}: {stale}\nhint: {}", stale_hint(checks.clock));
        }
        newest = newest.max(date);
        let components: Vec<String> = if flat {
            vec![String::new()]
        } else {
            source.components.clone()
        };
        for comp in components {
            let base = if flat {
                String::new()
            } else {
                format!("{comp}/binary-{arch}/")
            };
            let mut found = false;
            for name in ["Packages.xz", "Packages.gz", "Packages"] {
                let rel = format!("{base}{name}");
                if !release.sha256.contains_key(&rel) {
                    continue;
                }
                let url = join(&dists, &rel);
                let size = release.sha256.get(&rel).map_or(0, |(size, _)| *size);
                let bytes = get_at_most_with(downloader, &url, size)
                    .with_context(|| format!("`{rel}`: the Release lists it with {size} bytes"))?;
                apt::verify(&rel, &bytes, &release).map_err(|e| anyhow!("{url}: {e}"))?;
                let text = apt::decompress(name, &bytes).map_err(|e| anyhow!("{url}: {e}"))?;
                let text = String::from_utf8(text).with_context(|| format!("{url}: not UTF-8"))?;
                all.extend(apt::parse_packages(&text).map_err(|e| anyhow!("{url}: {e}"))?);
                found = true;
                break;
            }
            if !found {
                bail!("{dists}: the Release file lists no Packages index for `{base}`");
            }
        }
    }
    Ok((all, newest))
}

/// Refuses a Release that is for another suite than the `suite` asked: apt takes it when the
/// request is its `Suite` or its `Codename`.
fn same_suite(url: &str, suite: &str, release: &apt::Release) -> Result<()> {
    let named = |f: &Option<String>| f.as_deref() == Some(suite);
    if named(&release.suite) || named(&release.codename) {
        return Ok(());
    }
    let show = |f: &Option<String>| f.as_deref().map_or("none".to_owned(), |v| format!("`{v}`"));
    bail!(
        "{url}: the Release is for suite {} (codename {}), not `{suite}` as the source asks",
        show(&release.suite),
        show(&release.codename)
    )
}

/// What to do about a Release refused for its dates.
fn stale_hint(clock: Clock) -> &'static str {
    if clock.snapshot {
        "the time given with --apt-snapshot-at is outside this Release's validity: give the time the snapshot was taken"
    } else {
        "an old repository state served again, or a wrong clock on this machine; to resolve against a known snapshot on purpose, pass --apt-snapshot-at <RFC 3339 time>"
    }
}

fn release(
    source: &Source,
    dists: &str,
    trust: Trust,
    downloader: &Downloader,
) -> Result<(apt::Release, Option<u64>, String)> {
    let mut url = join(dists, "InRelease");
    let text = match get_with(downloader, &url) {
        Ok(bytes) if source.trusted => apt::strip_clearsign(&String::from_utf8_lossy(&bytes))
            .map_err(|e| anyhow!("{url}: {e}"))?,
        Ok(bytes) => verify_signed(&url, &bytes, source.signed_by.as_deref())?,
        Err(_) => {
            url = join(dists, "Release");
            let bytes = get_with(downloader, &url)?;
            if !source.trusted && trust == Trust::Signed {
                bail!("{url}: repository metadata is not signed (no InRelease)\nhint: pass --allow-unsigned to accept it; package digests are still checked");
            }
            String::from_utf8(bytes).with_context(|| format!("{url}: not UTF-8"))?
        }
    };
    let release = apt::parse_release(&text).map_err(|e| anyhow!("{url}: {e}"))?;
    let date = release.date.and_then(|d| u64::try_from(d).ok());
    Ok((release, date, url))
}

/// The `.deb` cache: `<dir>/debs/<sha256>.deb`, verified on every read.
pub struct Cache {
    dir: PathBuf,
    downloader: Downloader,
}

impl Cache {
    /// A cache rooted at `dir` (created when needed), downloading through the environment's
    /// proxies.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            downloader: Downloader::default(),
        }
    }

    /// This cache, downloading with `downloader` (the profile's proxies).
    #[must_use]
    pub fn with_downloader(mut self, downloader: Downloader) -> Self {
        self.downloader = downloader;
        self
    }

    /// The default cache: `$XDG_CACHE_HOME/infragen` or `~/.cache/infragen`.
    pub fn default_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("infragen");
        }
        std::env::var_os("HOME").map_or_else(
            || PathBuf::from("/var/cache/infragen"),
            |h| PathBuf::from(h).join(".cache/infragen"),
        )
    }

    /// Where the package with `sha256` is kept.
    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join("debs").join(format!("{sha256}.deb"))
    }

    /// The package file with `sha256` and `size` bytes, from the cache, a local repository, or
    /// the sources ([`Cache::fetch`]). Whatever the origin, the bytes must be `size` long and
    /// hash to `sha256` or they are refused, naming the package. When every source answers
    /// 404, the error is [`Vanished`], naming `name` and `version`. `progress` follows a
    /// download from a source (not a package found in the cache or a local repository).
    #[allow(clippy::too_many_arguments)] // the lock's facts of one package, where to look, progress
    pub fn deb(
        &self,
        name: &str,
        version: &str,
        filename: &str,
        sha256: &str,
        size: u64,
        local: &[PathBuf],
        sources: &[Source],
        progress: Progress<'_>,
    ) -> Result<Vec<u8>> {
        let cached = self.path(sha256);
        let bytes = match fs::read(&cached) {
            Ok(bytes) if self::sha256(&bytes) == sha256 => bytes,
            _ => {
                let path = self.fetch(
                    name,
                    version,
                    filename,
                    sha256,
                    Some(size),
                    local,
                    sources,
                    progress,
                )?;
                let bytes =
                    fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                if self::sha256(&bytes) != sha256 {
                    bail!(
                        "{}: changed after it was verified (sha256 {sha256} expected)",
                        path.display()
                    );
                }
                bytes
            }
        };
        if bytes.len() as u64 != size {
            bail!(
                "package `{name}` {version} ({filename}): {} bytes with sha256 {sha256}, the lock says {size} bytes\nhint: the lock does not describe this file; run `infragen lock` again",
                bytes.len()
            );
        }
        Ok(bytes)
    }

    /// Puts the package with `sha256` (and `size`, when known) in the cache unless it is there
    /// already, and returns its path: copied from a local repository, else downloaded from the
    /// first source that has it (streamed, resumed, retried: [`Downloader::download`]).
    /// `progress` follows a download. Nothing unverified is ever left in the cache. When every
    /// source answers 404, the error is [`Vanished`], naming `name` and `version`.
    #[allow(clippy::too_many_arguments)] // the lock's facts of one package, and where to look
    pub fn fetch(
        &self,
        name: &str,
        version: &str,
        filename: &str,
        sha256: &str,
        size: Option<u64>,
        local: &[PathBuf],
        sources: &[Source],
        progress: Progress<'_>,
    ) -> Result<PathBuf> {
        let cached = self.path(sha256);
        if hash_file(&cached).ok().as_deref() == Some(sha256) {
            return Ok(cached);
        }
        let dir = cached.parent().expect("has parent");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let base = filename.rsplit('/').next().unwrap_or(filename);
        let mut tried = Vec::new();
        for dir in local {
            let p = dir.join(base);
            if p.exists() {
                copy_verified(&p, &cached, expected_of(sha256, size), name)?;
                return Ok(cached);
            }
            tried.push(p.display().to_string());
        }
        let expected = expected_of(sha256, size);
        let mut gone = Vec::new();
        for s in sources {
            let url = join(&s.uri, filename);
            let got = match file_path(&url) {
                Some(p) => copy_verified(p, &cached, expected, name),
                None => self
                    .downloader
                    .download(&url, &cached, expected, &mut *progress),
            };
            match got {
                Ok(()) => return Ok(cached),
                // A source serving other bytes under this name is not tried around.
                Err(e) if e.downcast_ref::<Mismatch>().is_some() => {
                    let m = e.downcast_ref::<Mismatch>().expect("checked");
                    bail!(
                        "{url}: sha256 {} does not match the lock's {sha256} for `{name}`",
                        m.got
                    );
                }
                Err(e) if e.is::<NotFound>() => gone.push(url),
                Err(e) => tried.push(format!("{e:#}")),
            }
        }
        if !gone.is_empty() && tried.len() == local.len() {
            return Err(Vanished {
                name: name.to_owned(),
                version: version.to_owned(),
                urls: gone,
            }
            .into());
        }
        tried.extend(gone.iter().map(|u| format!("{u}: 404 Not Found")));
        bail!("package `{name}` {version} ({filename}, sha256 {sha256}) is not available:\n  {}\nhint: run `infragen lock` if the mirror moved on, or fill a local repository with `infragen repo sync`", tried.join("\n  "))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The hex sha256 of the file at `path`, read in pieces.
fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut h = Hasher::new();
    std::io::copy(&mut fs::File::open(path)?, &mut h)?;
    Ok(h.finish().hex().to_owned())
}

fn expected_of(sha256: &str, size: Option<u64>) -> Expected<'_> {
    Expected { sha256, size }
}

/// Copies `src` to `dest` atomically, hashed on the way; refused (nothing written) unless it
/// has the size (checked before the copy) and sha256 `expected`, the lock's for package `name`.
fn copy_verified(src: &Path, dest: &Path, expected: Expected<'_>, name: &str) -> Result<()> {
    let sha256 = expected.sha256;
    let from = match fs::File::open(src) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotFound(format!("file:{}", src.display())).into())
        }
        opened => opened.with_context(|| format!("reading {}", src.display()))?,
    };
    if let Some(size) = expected.size {
        let len = from
            .metadata()
            .with_context(|| format!("reading {}", src.display()))?
            .len();
        if len != size {
            bail!(
                "{}: {len} bytes, the lock says {size} bytes for `{name}`; nothing copied",
                src.display()
            );
        }
    }
    let mut to = HashWriter::new(AtomicFile::create(dest, 0o644)?);
    std::io::copy(
        &mut std::io::Read::take(from, expected.size.unwrap_or(u64::MAX)),
        &mut to,
    )
    .with_context(|| format!("copying {}", src.display()))?;
    let got = to.digest();
    if got.hex() != sha256 {
        bail!(
            "{}: sha256 {} does not match the lock's {sha256} for `{name}`",
            src.display(),
            got.hex()
        );
    }
    to.into_inner().commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(uri: &str) -> Source {
        Source {
            uri: uri.to_owned(),
            suites: vec!["bookworm".to_owned()],
            components: vec!["main".to_owned()],
            signed_by: None,
            arch: None,
            trusted: false,
        }
    }

    /// A server on 127.0.0.1 answering every request with `status`; its base URL.
    fn server(status: &'static str) -> String {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        url
    }

    const FILE: &str = "pool/main/d/dnsmasq/dnsmasq-base_2.90-4~deb12u1_amd64.deb";

    fn fetch(sources: &[Source]) -> anyhow::Error {
        let cache = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        Cache::new(cache.path())
            .deb(
                "dnsmasq-base",
                "2.90-4~deb12u1",
                FILE,
                &"1".repeat(64),
                1,
                &[local.path().to_path_buf()],
                sources,
                &mut |_, _| {},
            )
            .unwrap_err()
    }

    #[test]
    fn a_release_must_be_for_the_suite_asked_by_suite_or_codename() {
        let r = |suite: Option<&str>, codename: Option<&str>| apt::Release {
            suite: suite.map(str::to_owned),
            codename: codename.map(str::to_owned),
            architectures: Vec::new(),
            components: Vec::new(),
            sha256: std::collections::BTreeMap::new(),
            date: None,
            valid_until: None,
        };
        let both = r(Some("stable"), Some("bookworm"));
        same_suite("u", "stable", &both).unwrap();
        same_suite("u", "bookworm", &both).unwrap();
        let e = same_suite(
            "file:/r/dists/bookworm/InRelease",
            "bookworm",
            &r(Some("stable"), Some("trixie")),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "file:/r/dists/bookworm/InRelease: the Release is for suite `stable` (codename \
             `trixie`), not `bookworm` as the source asks"
        );
        let e = same_suite("u", "bookworm", &r(None, None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "u: the Release is for suite none (codename none), not `bookworm` as the source asks"
        );
    }

    #[test]
    fn a_deb_whose_size_is_not_the_locks_is_refused_naming_it_and_nothing_is_cached() {
        let cache = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        let bytes = b"not really a package".to_vec();
        fs::write(local.path().join("p_1_amd64.deb"), &bytes).unwrap();
        let digest = sha256(&bytes);
        let get = |size: u64| {
            Cache::new(cache.path()).deb(
                "p",
                "1",
                "pool/p_1_amd64.deb",
                &digest,
                size,
                &[local.path().to_path_buf()],
                &[],
                &mut |_, _| {},
            )
        };
        let e = format!("{:#}", get(bytes.len() as u64 + 1).unwrap_err());
        assert_eq!(
            e,
            format!(
                "{}: 20 bytes, the lock says 21 bytes for `p`; nothing copied",
                local.path().join("p_1_amd64.deb").display()
            )
        );
        assert!(!cache
            .path()
            .join("debs")
            .join(format!("{digest}.deb"))
            .exists());
        assert_eq!(get(bytes.len() as u64).unwrap(), bytes);
        // Cached now, under its sha256: a lock claiming another size is still refused.
        let e = format!("{:#}", get(3).unwrap_err());
        assert_eq!(
            e,
            format!(
                "package `p` 1 (pool/p_1_amd64.deb): 20 bytes with sha256 {digest}, the lock \
                 says 3 bytes\nhint: the lock does not describe this file; run `infragen lock` again"
            )
        );
    }

    #[test]
    fn an_index_longer_than_its_release_says_is_not_read_past_that() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Packages");
        fs::write(&path, b"Package: a\n").unwrap();
        let url = format!("file:{}", path.display());
        let d = Downloader::default();
        assert_eq!(get_at_most_with(&d, &url, 11).unwrap(), b"Package: a\n");
        let e = get_at_most_with(&d, &url, 10).unwrap_err().to_string();
        assert_eq!(e, format!("{url}: larger than 10 bytes; refused"));
    }

    /// A `file:` source's metadata that is a fifo or a link to `/dev/zero` is refused at once.
    #[test]
    fn a_file_index_that_is_not_a_regular_file_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("InRelease");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let zero = dir.path().join("Release");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for path in [fifo, zero] {
            let url = format!("file:{}", path.display());
            let e = get_with(&Downloader::default(), &url)
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("{url}: not a regular file; refused"));
        }
    }

    #[test]
    fn a_package_every_source_answers_404_for_is_named_with_its_version_and_what_to_run() {
        let web = server("404 Not Found");
        let dir = tempfile::tempdir().unwrap();
        let file = format!("file:{}", dir.path().display());
        let e = fetch(&[source(&web), source(&file)]);
        let v = e.downcast_ref::<Vanished>().expect("Vanished");
        assert_eq!(
            v.urls,
            [format!("{web}/{FILE}"), format!("{file}/{FILE}")],
            "{e:#}"
        );
        let text = format!("{e:#}");
        assert!(
            text.starts_with(
                "package `dnsmasq-base` 2.90-4~deb12u1 is not on the mirror any more (404 Not Found: "
            ),
            "{text}"
        );
        assert!(text.contains("\nhint: run `infragen lock`"), "{text}");
    }

    #[test]
    fn any_other_failure_is_not_taken_for_a_vanished_package() {
        let web = server("404 Not Found");
        let broken = server("500 Internal Server Error");
        let e = fetch(&[source(&web), source(&broken)]);
        assert!(e.downcast_ref::<Vanished>().is_none(), "{e:#}");
        let text = format!("{e:#}");
        assert!(
            text.starts_with("package `dnsmasq-base` 2.90-4~deb12u1 (pool/"),
            "{text}"
        );
        assert!(
            text.contains("404 Not Found") && text.contains("500"),
            "{text}"
        );
    }
}
