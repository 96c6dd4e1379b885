//! Getting bytes: APT sources from this machine's configuration, signed repository metadata,
//! and `.deb` files through a cache keyed by sha256.
//!
//! The default upstream is whatever `/etc/apt/sources.list{,.d}` says; no mirror is named in
//! infragen. Metadata is trusted only through the chain `InRelease` (checked by `gpgv` against
//! the source's `Signed-By` keyring) → `Packages` (sha256 in Release) → `.deb` (sha256 in
//! Packages, then in the lock). Unsigned metadata is refused unless explicitly allowed.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use super::apt::{self, Package, Source};

/// Where APT configuration lives (a test may point it elsewhere).
pub struct AptConfig {
    /// `/etc/apt` usually.
    pub etc: PathBuf,
}

impl Default for AptConfig {
    fn default() -> Self {
        Self {
            etc: PathBuf::from("/etc/apt"),
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

/// Reads a URL (`http(s)://` or `file:`) or fails with the URL in the message.
pub fn get(url: &str) -> Result<Vec<u8>> {
    if let Some(path) = url
        .strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))
    {
        return fs::read(path).with_context(|| format!("reading {url}"));
    }
    let response = ureq::get(url)
        .timeout(std::time::Duration::from_secs(120))
        .call()
        .map_err(|e| anyhow!("fetching {url}: {e}"))?;
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(4 << 30)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {url}"))?;
    Ok(bytes)
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
/// newest `Date:` of its Release files.
pub fn packages(source: &Source, arch: &str, trust: Trust) -> Result<(Vec<Package>, Option<u64>)> {
    let mut all = Vec::new();
    let mut newest: Option<u64> = None;
    for suite in &source.suites {
        let flat = suite.ends_with('/');
        let dists = match suite.as_str() {
            "./" | "/" => source.uri.trim_end_matches('/').to_owned(),
            _ if flat => join(&source.uri, suite),
            _ => join(&source.uri, &format!("dists/{suite}")),
        };
        let (release, date) = release(source, &dists, trust)?;
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
                let bytes = get(&url)?;
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

fn release(source: &Source, dists: &str, trust: Trust) -> Result<(apt::Release, Option<u64>)> {
    let url = join(dists, "InRelease");
    let text = match get(&url) {
        Ok(bytes) if source.trusted => apt::strip_clearsign(&String::from_utf8_lossy(&bytes))
            .map_err(|e| anyhow!("{url}: {e}"))?,
        Ok(bytes) => verify_signed(&url, &bytes, source.signed_by.as_deref())?,
        Err(_) => {
            let url = join(dists, "Release");
            let bytes = get(&url)?;
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

/// The `.deb` cache: `<dir>/<sha256>.deb`, verified on every read.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache rooted at `dir` (created when needed).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
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

    /// The package file with `sha256`, from the cache, a local repository, or the sources.
    /// Whatever the origin, the bytes must hash to `sha256` or they are refused.
    pub fn deb(
        &self,
        name: &str,
        filename: &str,
        sha256: &str,
        local: &[PathBuf],
        sources: &[Source],
    ) -> Result<Vec<u8>> {
        let cached = self.dir.join("debs").join(format!("{sha256}.deb"));
        if let Ok(bytes) = fs::read(&cached) {
            if self::sha256(&bytes) == sha256 {
                return Ok(bytes);
            }
        }
        let base = filename.rsplit('/').next().unwrap_or(filename);
        let mut tried = Vec::new();
        for dir in local {
            let p = dir.join(base);
            if let Ok(bytes) = fs::read(&p) {
                if self::sha256(&bytes) == sha256 {
                    Self::store(&cached, &bytes)?;
                    return Ok(bytes);
                }
                bail!(
                    "{}: sha256 {} does not match the lock's {sha256} for `{name}`",
                    p.display(),
                    self::sha256(&bytes)
                );
            }
            tried.push(p.display().to_string());
        }
        for s in sources {
            let url = join(&s.uri, filename);
            match get(&url) {
                Ok(bytes) => {
                    let got = self::sha256(&bytes);
                    if got != sha256 {
                        bail!(
                            "{url}: sha256 {got} does not match the lock's {sha256} for `{name}`"
                        );
                    }
                    Self::store(&cached, &bytes)?;
                    return Ok(bytes);
                }
                Err(e) => tried.push(format!("{e:#}")),
            }
        }
        bail!("package `{name}` ({filename}, sha256 {sha256}) is not available:\n  {}\nhint: run `infragen lock` if the mirror moved on, or fill a local repository with `infragen repo sync`", tried.join("\n  "))
    }

    fn store(path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path.parent().expect("has parent");
        fs::create_dir_all(dir)?;
        crate::fsx::write_file_atomic(path, bytes, 0o644)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
