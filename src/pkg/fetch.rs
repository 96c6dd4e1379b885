//! Getting bytes: APT sources from this machine's configuration, signed repository metadata,
//! and `.deb` files through a cache keyed by sha256.
//!
//! The default upstream is whatever `/etc/apt/sources.list{,.d}` says; no mirror is named in
//! infragen. Metadata is trusted only through the chain `InRelease` (checked by `gpgv` against
//! the source's `Signed-By` keyring) → `Packages` (sha256 in Release) → `.deb` (sha256 in
//! Packages, then in the lock). Unsigned metadata is refused unless explicitly allowed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

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

/// [`get`] with `downloader`.
pub fn get_with(downloader: &Downloader, url: &str) -> Result<Vec<u8>> {
    match file_path(url) {
        Some(path) => match fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(NotFound(url.to_owned()).into())
            }
            read => read.with_context(|| format!("reading {url}")),
        },
        None => downloader.get(url),
    }
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
/// newest `Date:` of its Release files; fetched with `downloader`.
pub fn packages(
    source: &Source,
    arch: &str,
    trust: Trust,
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
        let (release, date) = release(source, &dists, trust, downloader)?;
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
                let bytes = get_with(downloader, &url)?;
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

fn release(
    source: &Source,
    dists: &str,
    trust: Trust,
    downloader: &Downloader,
) -> Result<(apt::Release, Option<u64>)> {
    let url = join(dists, "InRelease");
    let text = match get_with(downloader, &url) {
        Ok(bytes) if source.trusted => apt::strip_clearsign(&String::from_utf8_lossy(&bytes))
            .map_err(|e| anyhow!("{url}: {e}"))?,
        Ok(bytes) => verify_signed(&url, &bytes, source.signed_by.as_deref())?,
        Err(_) => {
            let url = join(dists, "Release");
            let bytes = get_with(downloader, &url)?;
            if !source.trusted && trust == Trust::Signed {
                bail!("{url}: repository metadata is not signed (no InRelease)\nhint: pass --allow-unsigned to accept it; package digests are still checked");
            }
            String::from_utf8(bytes).with_context(|| format!("{url}: not UTF-8"))?
        }
    };
    let date = apt::release_date(&text);
    Ok((
        apt::parse_release(&text).map_err(|e| anyhow!("{url}: {e}"))?,
        date,
    ))
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

    /// The package file with `sha256`, from the cache, a local repository, or the sources
    /// ([`Cache::fetch`]). Whatever the origin, the bytes must hash to `sha256` or they are
    /// refused. When every source answers 404, the error is [`Vanished`], naming `name` and
    /// `version`. `progress` follows a download from a source (not a package found in the cache
    /// or a local repository).
    #[allow(clippy::too_many_arguments)] // the lock's facts of one package, where to look, progress
    pub fn deb(
        &self,
        name: &str,
        version: &str,
        filename: &str,
        sha256: &str,
        local: &[PathBuf],
        sources: &[Source],
        progress: Progress<'_>,
    ) -> Result<Vec<u8>> {
        let cached = self.path(sha256);
        if let Ok(bytes) = fs::read(&cached) {
            if self::sha256(&bytes) == sha256 {
                return Ok(bytes);
            }
        }
        let path = self.fetch(
            name, version, filename, sha256, None, local, sources, progress,
        )?;
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if self::sha256(&bytes) != sha256 {
            bail!(
                "{}: changed after it was verified (sha256 {sha256} expected)",
                path.display()
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
                copy_verified(&p, &cached, sha256, name)?;
                return Ok(cached);
            }
            tried.push(p.display().to_string());
        }
        let expected = Expected { sha256, size };
        let mut gone = Vec::new();
        for s in sources {
            let url = join(&s.uri, filename);
            let got = match file_path(&url) {
                Some(p) => copy_verified(p, &cached, sha256, name),
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

/// Copies `src` to `dest` atomically, hashed on the way; refused (nothing written) unless it
/// hashes to `sha256`, the lock's for package `name`.
fn copy_verified(src: &Path, dest: &Path, sha256: &str, name: &str) -> Result<()> {
    let mut from = match fs::File::open(src) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotFound(format!("file:{}", src.display())).into())
        }
        opened => opened.with_context(|| format!("reading {}", src.display()))?,
    };
    let mut to = HashWriter::new(AtomicFile::create(dest, 0o644)?);
    std::io::copy(&mut from, &mut to).with_context(|| format!("copying {}", src.display()))?;
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
                &[local.path().to_path_buf()],
                sources,
                &mut |_, _| {},
            )
            .unwrap_err()
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
