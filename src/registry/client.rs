//! The HTTP side of the client: one [`Client`] per registry host, every request counted in
//! [`Stats`], a `401` answered once by the challenge it carries (basic credentials, or a
//! bearer token fetched and cached per scope), and registry errors rendered with their codes.
//!
//! Manifest and tag operations live here; blob transfers are in `blob`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use url::Url;

use super::auth::{self, Challenge, Credentials};
use super::Stats;
use crate::manifest::Digest;
use crate::net::{self, Proxies, Timeouts};
pub(super) use crate::net::{header, Response};

/// The largest manifest this client reads.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Default size of one `PATCH` when a blob is uploaded in chunks.
pub const DEFAULT_CHUNK: u64 = 16 << 20;

/// The slowest transfer a request may make: past its grace period, a body must have come at
/// this rate on average, or the request fails (a registry dripping a byte a second never trips
/// a per-read timeout).
pub const MIN_RATE: u64 = 64 << 10;

/// The grace period of every request, and the longest wait for any one read or write, unless
/// `$INFRAGEN_REGISTRY_TIMEOUT` (seconds) says otherwise.
pub const GRACE: Duration = Duration::from_secs(60);

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// The environment variable overriding [`GRACE`] (whole seconds, at least 1).
pub const TIMEOUT_ENV: &str = "INFRAGEN_REGISTRY_TIMEOUT";

/// The grace period: [`GRACE`], or `$INFRAGEN_REGISTRY_TIMEOUT` seconds.
fn grace() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(GRACE, Duration::from_secs)
}

/// The overall deadline of a request that moves at most `bytes`: the grace period plus their
/// time at [`MIN_RATE`].
fn deadline(grace: Duration, bytes: u64) -> Duration {
    grace + Duration::from_secs(bytes / MIN_RATE + 1)
}

/// A response body that must keep up [`MIN_RATE`] after the grace period, counted from when
/// the request was sent: a slow drip is refused early, not only at the request's deadline.
pub(super) struct Paced<R> {
    inner: R,
    start: std::time::Instant,
    grace: Duration,
    read: u64,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let elapsed = self.start.elapsed();
        if n > 0 && elapsed > deadline(self.grace, self.read) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the registry sends too slowly: {} bytes in {} s (after {} s, at least {} KiB/s are required)",
                    self.read,
                    elapsed.as_secs(),
                    self.grace.as_secs(),
                    MIN_RATE >> 10
                ),
            ));
        }
        Ok(n)
    }
}

/// The body of `resp`, paced (see [`Paced`]) from `start`.
pub(super) fn paced(resp: Response, start: std::time::Instant) -> Paced<impl Read> {
    Paced {
        inner: resp.into_body().into_reader(),
        start,
        grace: grace(),
        read: 0,
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Talk plain HTTP instead of HTTPS (only when asked).
    pub plain_http: bool,
    /// The auth file to use instead of the default search (`--authfile`).
    pub authfile: Option<PathBuf>,
    /// Blobs larger than this are uploaded in `PATCH` chunks of this size.
    pub chunk_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            plain_http: false,
            authfile: None,
            chunk_size: DEFAULT_CHUNK,
        }
    }
}

/// A request body: nothing, bytes, or a range of a file (reopened if the request is retried).
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

/// A client of one registry host (OCI distribution spec v1.1).
pub struct Client {
    /// Whether it talks plain HTTP.
    pub plain_http: bool,
    /// Blobs larger than this are uploaded in chunks.
    pub chunk_size: u64,
    /// What it has sent and received so far.
    pub stats: Stats,
    host: String,
    agent: ureq::Agent,
    /// The proxies of the environment (`https_proxy`, `no_proxy`, …).
    proxies: Proxies,
    credentials: Option<Credentials>,
    /// Tokens by `realm service scope`.
    tokens: BTreeMap<String, String>,
    /// The `Authorization` value last accepted per repository.
    authorization: BTreeMap<String, String>,
    /// Repositories each blob is known to be in (pushed, mounted or seen).
    pub(super) known: BTreeMap<Digest, BTreeSet<String>>,
    /// The grace period of each request ([`GRACE`]).
    grace: Duration,
    /// When the last request was sent (what its body's pace is measured from).
    pub(super) sent: std::time::Instant,
}

impl Client {
    /// A client of `host` (`host[:port]`); reads credentials for it from the auth files.
    pub fn new(host: &str, options: &Options) -> Result<Self> {
        let files = auth::auth_files(options.authfile.as_deref());
        let credentials = auth::lookup(host, &files, options.authfile.is_some())?;
        let grace = grace();
        // Redirects are followed by `send_sized`, not by `ureq`; without `--plain-http` any
        // request that is not HTTPS is refused.
        let agent = net::agent(
            &Timeouts {
                connect: Duration::from_secs(15),
                response: grace,
                idle: grace,
            },
            !options.plain_http,
        );
        Ok(Self {
            plain_http: options.plain_http,
            chunk_size: options.chunk_size.max(1),
            stats: Stats::default(),
            host: host.to_owned(),
            agent,
            proxies: Proxies::from_env(),
            credentials,
            tokens: BTreeMap::new(),
            authorization: BTreeMap::new(),
            known: BTreeMap::new(),
            grace,
            sent: std::time::Instant::now(),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `<scheme>://<host>/v2/<path>`.
    pub(super) fn url(&self, path: &str) -> Result<Url> {
        let scheme = if self.plain_http { "http" } else { "https" };
        let s = format!("{scheme}://{}/v2/{path}", self.host);
        Url::parse(&s).with_context(|| format!("`{s}` is not a URL"))
    }

    /// Sends one request for `repo`, answering a `401` once with what its challenge asks for.
    /// Returns the response whatever its status. Its answer may be at most a manifest's size
    /// (what its deadline allows for).
    pub(super) fn send(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Body<'_>,
        repo: &str,
    ) -> Result<Response> {
        self.send_sized(method, url, headers, body, repo, MAX_MANIFEST)
    }

    /// [`Client::send`] of a request whose answer may be `down` bytes: its overall deadline is
    /// the grace period plus the time to move the larger of its body and `down` at [`MIN_RATE`].
    pub(super) fn send_sized(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Body<'_>,
        repo: &str,
        down: u64,
    ) -> Result<Response> {
        let mut resp = self.send_authorized(method, url, headers, body, repo, down)?;
        // Redirects of `GET` and `HEAD` (registries send blob downloads to storage) are
        // followed here, not by `ureq`, which panics on a `Location` without a host: at most
        // [`MAX_REDIRECTS`], only to HTTPS (or HTTP with `--plain-http`), and never with the
        // `Authorization` the registry was sent. The content is checked by digest as ever.
        let mut at = url.clone();
        for hop in 0..=MAX_REDIRECTS {
            if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308)
                || !(method == "GET" || method == "HEAD")
            {
                return Ok(resp);
            }
            let Some(location) = header(&resp, "location").map(str::to_owned) else {
                return Ok(resp);
            };
            drain(resp);
            if hop == MAX_REDIRECTS {
                bail!(
                    "registry `{}` redirected `{method} {url}` more than {MAX_REDIRECTS} times",
                    self.host
                );
            }
            let next = at.join(&location).ok().filter(|u| {
                u.host_str().is_some()
                    && (u.scheme() == "https" || (u.scheme() == "http" && self.plain_http))
            });
            let Some(next) = next else {
                bail!(
                    "registry `{}` redirected `{method} {url}` to `{location}`: only {} locations are followed; refused",
                    self.host,
                    if self.plain_http { "http(s)://" } else { "https://" }
                );
            };
            let timeout = deadline(self.grace, if method == "HEAD" { 0 } else { down });
            resp = self.call(method, &next, headers, None, Body::Empty, timeout)?;
            at = next;
        }
        unreachable!("the loop returns or bails by its last hop")
    }

    /// [`Client::send_sized`] without following redirects.
    fn send_authorized(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Body<'_>,
        repo: &str,
        down: u64,
    ) -> Result<Response> {
        let mut retried = false;
        loop {
            let authorization = self.authorization.get(repo).cloned();
            let down = if method == "HEAD" { 0 } else { down };
            let timeout = deadline(self.grace, body.len().max(down));
            let resp = self.call(
                method,
                url,
                headers,
                authorization.as_deref(),
                body,
                timeout,
            )?;
            if resp.status() != 401 || retried {
                if resp.status() == 401 {
                    bail!(
                        "registry `{}` refused the credentials for `{method} {url}`\nhint: check the entry for `{}` in the auth file (`--authfile`, `$REGISTRY_AUTH_FILE`, `~/.config/containers/auth.json`)",
                        self.host,
                        self.host
                    );
                }
                return Ok(resp);
            }
            retried = true;
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(auth::parse_challenge)
                .collect::<Result<_>>()?;
            drain(resp);
            let value = self.answer(&challenges, method, url)?;
            self.authorization.insert(repo.to_owned(), value);
        }
    }

    /// One request, counted, within `timeout` overall; transport errors become errors naming
    /// the request. Goes through the environment's proxy for `url`, if any.
    fn call(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        body: Body<'_>,
        timeout: Duration,
    ) -> Result<Response> {
        *self.stats.requests.entry(method.to_owned()).or_default() += 1;
        self.stats.bytes_up += body.len();
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let proxy = self.proxies.for_url(url)?;
        let invalid = || format!("`{method} {url}` is not a valid request");
        self.sent = std::time::Instant::now();
        let result = match body {
            Body::Empty if method == "GET" || method == "HEAD" => {
                self.run(req.body(()).with_context(invalid)?, timeout, proxy)
            }
            Body::Empty => self.run(
                req.header("Content-Length", "0")
                    .body(&[][..])
                    .with_context(invalid)?,
                timeout,
                proxy,
            ),
            Body::Bytes(b) => self.run(req.body(b).with_context(invalid)?, timeout, proxy),
            Body::File { path, offset, len } => {
                let mut f = std::fs::File::open(path)
                    .with_context(|| format!("opening `{}`", path.display()))?;
                f.seek(SeekFrom::Start(offset))
                    .with_context(|| format!("reading `{}`", path.display()))?;
                let req = req
                    .header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_owned_reader(f.take(len)))
                    .with_context(invalid)?;
                self.run(req, timeout, proxy)
            }
        };
        result.map_err(|e| {
            anyhow!(
                "cannot reach registry `{}` (`{method} {url}`): {}{}",
                self.host,
                net::describe(&e),
                if self.plain_http || matches!(e, ureq::Error::RequireHttpsOnly(_)) {
                    ""
                } else {
                    "\nhint: a registry without TLS needs `--plain-http`"
                }
            )
        })
    }

    /// Runs `req` within `timeout`, through `proxy` when there is one.
    fn run(
        &self,
        req: ureq::http::Request<impl ureq::AsSendBody>,
        timeout: Duration,
        proxy: Option<ureq::Proxy>,
    ) -> Result<Response, ureq::Error> {
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(timeout))
            .proxy(proxy)
            .build();
        self.agent.run(req)
    }

    /// The `Authorization` value that answers `challenges` (a bearer challenge preferred).
    fn answer(&mut self, challenges: &[Challenge], method: &str, url: &Url) -> Result<String> {
        let host = self.host.clone();
        let no_credentials = || {
            anyhow!(
                "registry `{host}` asks for credentials for `{method} {url}`, and no auth file names it\nhint: log in with `podman login {host}` or pass `--authfile FILE`"
            )
        };
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            Challenge::Basic => None,
        });
        let Some((realm, service, scope)) = bearer else {
            if challenges.contains(&Challenge::Basic) {
                return self
                    .credentials
                    .as_ref()
                    .map(Credentials::basic)
                    .ok_or_else(no_credentials);
            }
            bail!(
                "registry `{}` answered 401 to `{method} {url}` without a challenge (`WWW-Authenticate`)",
                self.host
            );
        };
        let key = format!(
            "{realm} {} {}",
            service.as_deref().unwrap_or(""),
            scope.as_deref().unwrap_or("")
        );
        if let Some(t) = self.tokens.get(&key) {
            return Ok(format!("Bearer {t}"));
        }
        let mut token_url =
            Url::parse(realm).with_context(|| format!("token realm `{realm}` is not a URL"))?;
        check_realm(&self.host, self.plain_http, &token_url)?;
        {
            let mut q = token_url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
        }
        let basic = self.credentials.as_ref().map(Credentials::basic);
        let timeout = deadline(self.grace, 1 << 20);
        let resp = self.call(
            "GET",
            &token_url,
            &[],
            basic.as_deref(),
            Body::Empty,
            timeout,
        )?;
        if resp.status() != 200 {
            if resp.status() == 401 && self.credentials.is_none() {
                return Err(no_credentials());
            }
            bail!(
                "token server `{token_url}` answered {} for registry `{}`",
                resp.status().as_u16(),
                self.host
            );
        }
        let bytes = read_limited(resp, 1 << 20, &mut self.stats.bytes_down, self.sent)
            .with_context(|| format!("reading the token from `{token_url}`"))?;
        let t: Token = serde_json::from_slice(&bytes)
            .with_context(|| format!("the answer of token server `{token_url}`"))?;
        let Some(token) = t.token.or(t.access_token) else {
            bail!("token server `{token_url}` answered without a `token`");
        };
        self.tokens.insert(key, token.clone());
        Ok(format!("Bearer {token}"))
    }
}

/// Where a registry's bearer challenge may send this client (with the user's credentials, when
/// it has some): an `https` realm on any host (registries delegate to token servers elsewhere,
/// as Docker Hub does), an `http` realm only for a `--plain-http` registry and only on the
/// registry's own host name. Anything else is refused before a request is made.
pub fn check_realm(registry: &str, plain_http: bool, realm: &Url) -> Result<()> {
    let registry_name = Url::parse(&format!("http://{registry}/"))
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| registry.to_owned());
    match realm.scheme() {
        "https" => Ok(()),
        "http" if plain_http && realm.host_str() == Some(registry_name.as_str()) => Ok(()),
        "http" if plain_http => bail!(
            "registry `{registry}` sends its token requests to `{realm}`, plain HTTP on another host; refused, no credentials sent\nhint: a plain-HTTP token server must be on the registry's own host"
        ),
        "http" => bail!(
            "registry `{registry}` (HTTPS) sends its token requests to `{realm}`, plain HTTP; refused, no credentials sent"
        ),
        other => bail!(
            "registry `{registry}` sends its token requests to `{realm}`: scheme `{other}` is not HTTP(S); refused"
        ),
    }
}

/// A token server's answer (`token`, or `access_token` as in OAuth 2).
#[derive(serde::Deserialize)]
struct Token {
    token: Option<String>,
    access_token: Option<String>,
}

impl Client {
    /// An error for an unexpected answer, with the registry's error codes when it gave them.
    pub(super) fn unexpected(&mut self, resp: Response, what: &str) -> anyhow::Error {
        let status = resp.status().as_u16();
        let body =
            read_limited(resp, 64 << 10, &mut self.stats.bytes_down, self.sent).unwrap_or_default();
        anyhow!(
            "registry `{}` answered {status} to {what}{}",
            self.host,
            error_codes(&body)
        )
    }

    /// Uploads `bytes` as the manifest `reference` (a tag or the digest of `bytes`) of `repo`;
    /// returns its digest, checked against `Docker-Content-Digest` when the registry sends it.
    pub fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            bail!("manifest for `{repo}@{reference}` hashes to {digest}, not to its reference");
        }
        let url = self.url(&format!("{repo}/manifests/{reference}"))?;
        let resp = self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            Body::Bytes(bytes),
            repo,
        )?;
        if resp.status() != 201 {
            return Err(self.unexpected(resp, &format!("the manifest `{repo}:{reference}`")));
        }
        check_header_digest(&resp, &digest, &url)?;
        drain(resp);
        Ok(digest)
    }

    /// Fetches manifest `reference` (tag or digest) of `repo`, accepting `accept`; returns its
    /// media type, bytes and digest. A digest reference must match the bytes; for a tag the
    /// digest is computed, and checked against `Docker-Content-Digest` when sent.
    pub fn get_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<(String, Vec<u8>, Digest)> {
        let url = self.url(&format!("{repo}/manifests/{reference}"))?;
        let accept = accept.join(", ");
        let resp = self.send("GET", &url, &[("Accept", &accept)], Body::Empty, repo)?;
        if resp.status() != 200 {
            return Err(self.unexpected(resp, &format!("`GET {url}`")));
        }
        let media_type = header(&resp, "content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let sent_digest = header(&resp, "docker-content-digest").map(str::to_owned);
        let bytes = read_limited(resp, MAX_MANIFEST, &mut self.stats.bytes_down, self.sent)
            .with_context(|| format!("manifest `{repo}:{reference}`"))?;
        let digest = Digest::of(&bytes);
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            bail!("manifest `{repo}@{reference}` from registry `{}` hashes to {digest}\nhint: the registry or something between it and us altered the manifest", self.host);
        }
        if let Some(h) = sent_digest {
            if h != digest.as_str() {
                bail!("manifest `{repo}:{reference}` from registry `{}` hashes to {digest}, but the registry says {h}", self.host);
            }
        }
        Ok((media_type, bytes, digest))
    }

    /// The digest of manifest `reference` of `repo`, by `HEAD` (a `GET` when the registry
    /// does not say); `None` when the registry does not have it.
    pub fn manifest_digest(&mut self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        let url = self.url(&format!("{repo}/manifests/{reference}"))?;
        let accept = super::MANIFEST_TYPES.join(", ");
        let resp = self.send("HEAD", &url, &[("Accept", &accept)], Body::Empty, repo)?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.unexpected(resp, &format!("`HEAD {url}`"))),
        }
        match header(&resp, "docker-content-digest").map(Digest::parse) {
            Some(Ok(d)) => {
                if reference.starts_with("sha256:") && d.as_str() != reference {
                    bail!("registry `{}` says `{repo}@{reference}` is {d}", self.host);
                }
                Ok(Some(d))
            }
            _ => Ok(Some(
                self.get_manifest(repo, reference, super::MANIFEST_TYPES)?.2,
            )),
        }
    }

    /// The digest tag `tag` of `repo` points to.
    pub fn resolve(&mut self, repo: &str, tag: &str) -> Result<Digest> {
        self.manifest_digest(repo, tag)?
            .ok_or_else(|| anyhow!("registry `{}` has no manifest `{repo}:{tag}`", self.host))
    }

    /// The tags of `repo`, following `Link` pagination.
    pub fn tags(&mut self, repo: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct List {
            tags: Option<Vec<String>>,
        }
        let mut url = self.url(&format!("{repo}/tags/list"))?;
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let resp = self.send("GET", &url, &[], Body::Empty, repo)?;
            if resp.status() != 200 {
                return Err(self.unexpected(resp, &format!("`GET {url}`")));
            }
            let next = header(&resp, "link").and_then(next_link).map(str::to_owned);
            let bytes = read_limited(resp, MAX_MANIFEST, &mut self.stats.bytes_down, self.sent)?;
            let list: List = serde_json::from_slice(&bytes)
                .with_context(|| format!("the tag list of `{repo}`"))?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = url.join(&n).context("the `Link` of a tag list")?,
                None => return Ok(tags),
            }
        }
        bail!("the tag list of `{repo}` has more than 1000 pages")
    }
}

/// The target of `<…>; rel="next"` in a `Link` header.
fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .contains("rel=\"next\"")
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// Checks `Docker-Content-Digest`, when present, against `digest`.
pub(super) fn check_header_digest(resp: &Response, digest: &Digest, url: &Url) -> Result<()> {
    if let Some(h) = header(resp, "docker-content-digest") {
        if h != digest.as_str() {
            bail!("`{url}`: the registry says {h}, the content is {digest}");
        }
    }
    Ok(())
}

/// Reads a response body of at most `limit` bytes, paced from `start`; more is an error.
pub(super) fn read_limited(
    resp: Response,
    limit: u64,
    counter: &mut u64,
    start: std::time::Instant,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    paced(resp, start).take(limit + 1).read_to_end(&mut bytes)?;
    *counter += bytes.len() as u64;
    if bytes.len() as u64 > limit {
        bail!("the answer is larger than {limit} bytes");
    }
    Ok(bytes)
}

/// Reads and drops a small body, so that the connection can be reused (within the request's
/// deadline).
pub(super) fn drain(resp: Response) {
    let _ = std::io::copy(
        &mut resp.into_body().into_reader().take(64 << 10),
        &mut std::io::sink(),
    );
}

/// ` (CODE: message; …)` from a distribution error body, or nothing.
fn error_codes(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => format!(
            ": {}",
            e.errors
                .iter()
                .map(|x| format!("{} ({})", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_realms_get_credentials_only_where_safe() {
        let ok = |reg: &str, plain: bool, realm: &str| {
            check_realm(reg, plain, &Url::parse(realm).unwrap()).is_ok()
        };
        assert!(ok("reg.example", false, "https://auth.example/token"));
        assert!(!ok("reg.example", false, "http://reg.example/token"));
        assert!(ok(
            "reg.example:5000",
            true,
            "http://reg.example:5001/token"
        ));
        assert!(ok("reg.example:5000", true, "https://auth.example/token"));
        assert!(!ok("reg.example:5000", true, "http://auth.example/token"));
        assert!(!ok("reg.example", true, "ftp://reg.example/token"));
    }

    #[test]
    fn links_and_error_bodies() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"<x>; rel="prev""#), None);
        assert_eq!(
            error_codes(
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
            ),
            ": BLOB_UNKNOWN (blob unknown to registry)"
        );
        assert_eq!(error_codes(b"<html>"), "");
    }
}
