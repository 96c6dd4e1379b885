//! The HTTP agents infragen downloads and pushes with: timeouts per phase and the proxy, if
//! any, for each URL. Package downloads (`pkg::fetch`) and the registry client (`registry`)
//! build their `ureq` agents here; what they fetch, and how they check it, is theirs.
//!
//! Proxies come from the profile's `proxy_env` (Pigsty's parameter: `http_proxy`,
//! `https_proxy`, `all_proxy`, `no_proxy`), over the same variables in the environment (lower
//! case first, then upper case). `no_proxy` takes host names (`example.com` also matches its
//! subdomains; `.example.com` and `*.example.com` only them), host prefixes (`mirrors.*`),
//! addresses and CIDR blocks (`10.0.0.0/8`), and `*`. Loopback (`localhost`, 127.0.0.0/8,
//! `::1`) is always reached directly.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use url::Url;

/// A response, its body not read yet.
pub type Response = ureq::http::Response<ureq::Body>;

/// The value of header `name` of `resp`, when it is text.
pub fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The user agent of every request.
pub const USER_AGENT: &str = concat!("infragen/", env!("CARGO_PKG_VERSION"));

/// How long each phase of a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Resolving the host and opening the connection (TLS handshake included).
    pub connect: Duration,
    /// From the request sent to the response's headers (the first byte of the answer).
    pub response: Duration,
    /// The longest wait for any one read of the body (a stalled transfer), or write of the
    /// request body.
    pub idle: Duration,
}

impl Timeouts {
    /// Package downloads: 30 s to connect, 60 s for the headers, 60 s without a byte.
    pub const DOWNLOAD: Timeouts = Timeouts {
        connect: Duration::from_secs(30),
        response: Duration::from_secs(60),
        idle: Duration::from_secs(60),
    };
}

/// The variables a proxy setting may come from, in the order they are looked at.
const VARS: [&str; 4] = ["http_proxy", "https_proxy", "all_proxy", "no_proxy"];

/// Which proxy each URL goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// `http_proxy`, and where it came from (`$http_proxy`, `proxy_env.http_proxy`).
    http: Option<(String, String)>,
    /// `https_proxy`, and where it came from.
    https: Option<(String, String)>,
    /// `all_proxy`, for either scheme when the scheme's own is unset.
    all: Option<(String, String)>,
    /// `no_proxy`, split at commas.
    no_proxy: Vec<String>,
}

impl Proxies {
    /// Proxies from this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Proxies from variables `get` returns (`http_proxy`, then `HTTP_PROXY`, and so on);
    /// empty values are unset.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut p = Self::default();
        for name in VARS {
            let upper = name.to_ascii_uppercase();
            let found = [name, upper.as_str()].into_iter().find_map(|n| {
                get(n)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, format!("${n}")))
            });
            p.set(name, found);
        }
        p
    }

    /// These proxies with the profile's `proxy_env` over them: a key it sets replaces the
    /// environment's value. Other keys (Pigsty passes the whole map to its hosts' environment)
    /// are ignored here.
    #[must_use]
    pub fn with_profile(mut self, proxy_env: &BTreeMap<String, String>) -> Self {
        for name in VARS {
            let upper = name.to_ascii_uppercase();
            let found = [name, upper.as_str()].into_iter().find_map(|n| {
                proxy_env
                    .get(n)
                    .map(|v| (v.trim().to_owned(), format!("proxy_env.{n}")))
            });
            if let Some((v, from)) = found {
                self.set(name, (!v.is_empty()).then_some((v, from)));
            }
        }
        self
    }

    fn set(&mut self, name: &str, value: Option<(String, String)>) {
        match name {
            "http_proxy" => self.http = value,
            "https_proxy" => self.https = value,
            "all_proxy" => self.all = value,
            _ => {
                self.no_proxy = value
                    .map(|(v, _)| {
                        v.split(',')
                            .map(|e| e.trim().to_ascii_lowercase())
                            .filter(|e| !e.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
    }

    /// The proxy `url` goes through, `None` for a direct connection; an error names the
    /// variable or `proxy_env` key whose value is not a proxy URL.
    pub fn for_url(&self, url: &Url) -> Result<Option<ureq::Proxy>> {
        let chosen = match url.scheme() {
            "https" => self.https.as_ref().or(self.all.as_ref()),
            "http" => self.http.as_ref().or(self.all.as_ref()),
            _ => None,
        };
        let Some((value, from)) = chosen else {
            return Ok(None);
        };
        if url.host_str().is_none_or(|h| self.direct(h)) {
            return Ok(None);
        }
        match ureq::Proxy::new(value) {
            Ok(p) => Ok(Some(p)),
            Err(e) => bail!("{from}: `{value}` is not a proxy URL: {e}\nhint: write it as `http://HOST:PORT` (or `https://`, `socks5://`)"),
        }
    }

    /// Whether `host` (a name, an address, or `[v6]`) is reached without a proxy: loopback
    /// always, and whatever `no_proxy` names.
    pub fn direct(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        if host == "localhost"
            || host.ends_with(".localhost")
            || ip.is_some_and(|i| i.is_loopback())
        {
            return true;
        }
        self.no_proxy.iter().any(|entry| matches(entry, &host, ip))
    }
}

/// Whether one `no_proxy` entry covers `host` (lower case, `ip` when it is an address).
fn matches(entry: &str, host: &str, ip: Option<IpAddr>) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some(ip) = ip {
        return match entry.split_once('/') {
            Some((net, bits)) => in_block(ip, net, bits),
            None => entry.trim_start_matches('[').trim_end_matches(']').parse() == Ok(ip),
        };
    }
    // A port on an entry (`host:3128`) is not a host name's part.
    let entry = match entry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => entry,
    };
    if let Some(prefix) = entry.strip_suffix('*') {
        return !prefix.is_empty() && host.starts_with(prefix);
    }
    if let Some(suffix) = entry
        .strip_prefix('*')
        .or_else(|| entry.starts_with('.').then_some(entry))
    {
        return host.ends_with(suffix) && host.len() > suffix.len();
    }
    host == entry
        || host
            .strip_suffix(entry)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether `ip` is in the block `net/bits`.
fn in_block(ip: IpAddr, net: &str, bits: &str) -> bool {
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match (ip, net.parse::<IpAddr>()) {
        (IpAddr::V4(a), Ok(IpAddr::V4(n))) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), Ok(IpAddr::V6(n))) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// An agent with `timeouts` that follows no redirect (callers that follow them do it
/// themselves, to decide what a redirect may carry), reports every status as a response (not
/// an error), decompresses nothing (sizes and digests are of the bytes sent), and connects
/// directly: the proxy is chosen per request ([`Proxies::for_url`], [`configure`]).
pub fn agent(timeouts: &Timeouts, https_only: bool) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.response))
        .timeout_per_read(Some(timeouts.idle))
        .timeout_per_write(Some(timeouts.idle))
        .https_only(https_only)
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .user_agent(USER_AGENT)
        .build()
        .new_agent()
}

/// Renders a `ureq` error for people: a timeout says which phase timed out.
pub fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            format!("timed out: {io}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::from_vars(|n| vars.get(n).cloned())
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_url(&Url::parse(url).unwrap())
            .unwrap()
            .map(|p| format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn each_scheme_takes_its_own_variable_then_all_proxy() {
        let p = proxies(&[
            ("http_proxy", "http://plain.example:3128"),
            ("HTTPS_PROXY", "http://tls.example:3129"),
        ]);
        assert_eq!(
            via(&p, "http://deb.example/x").as_deref(),
            Some("plain.example:3128")
        );
        assert_eq!(
            via(&p, "https://deb.example/x").as_deref(),
            Some("tls.example:3129")
        );
        let all = proxies(&[("ALL_PROXY", "socks5://s.example:1080")]);
        assert_eq!(
            via(&all, "https://r.example/").as_deref(),
            Some("s.example:1080")
        );
        assert_eq!(via(&proxies(&[]), "https://r.example/"), None);
        // Lower case wins over upper case; an empty value is unset.
        let both = proxies(&[
            ("http_proxy", "http://lower.example:1"),
            ("HTTP_PROXY", "http://upper.example:2"),
            ("https_proxy", ""),
        ]);
        assert_eq!(
            via(&both, "http://d.example/").as_deref(),
            Some("lower.example:1")
        );
        assert_eq!(via(&both, "https://d.example/"), None);
    }

    #[test]
    fn loopback_is_always_direct_and_no_proxy_is_honoured() {
        let p = proxies(&[
            ("all_proxy", "http://proxy.example:3128"),
            (
                "no_proxy",
                "corp.example, .internal.example,*.svc.example,mirrors.*,10.0.0.0/8,192.168.1.7,fd00::/8,cache.example:8080",
            ),
        ]);
        for direct in [
            "http://127.0.52.1:5000/",
            "http://localhost/",
            "http://[::1]:80/",
            "http://corp.example/",
            "http://a.corp.example/",
            "http://b.internal.example/",
            "http://c.svc.example/",
            "https://mirrors.example.org/debian",
            "http://10.2.3.4/",
            "http://192.168.1.7/",
            "http://[fd00::1]/",
            "http://cache.example/",
        ] {
            assert_eq!(via(&p, direct), None, "{direct}");
        }
        for proxied in [
            "http://notcorp.example/",
            "http://internal.example/",
            "http://svc.example/",
            "http://deb.mirrors.example/",
            "http://11.0.0.1/",
            "http://192.168.1.8/",
            "http://[fe80::1]/",
        ] {
            assert_eq!(
                via(&p, proxied).as_deref(),
                Some("proxy.example:3128"),
                "{proxied}"
            );
        }
        assert_eq!(
            via(
                &proxies(&[("all_proxy", "http://p.example:1"), ("NO_PROXY", "*")]),
                "http://x.example/"
            ),
            None
        );
    }

    #[test]
    fn the_profile_overrides_the_environment_and_bad_values_are_named() {
        let env = proxies(&[
            ("https_proxy", "http://env.example:1"),
            ("no_proxy", "a.example"),
        ]);
        let profile: BTreeMap<String, String> = [
            ("https_proxy", "http://profile.example:2"),
            ("no_proxy", "b.example"),
            ("SOME_OTHER", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let p = env.with_profile(&profile);
        assert_eq!(
            via(&p, "https://a.example/").as_deref(),
            Some("profile.example:2")
        );
        assert_eq!(via(&p, "https://b.example/"), None);
        // An empty value in the profile turns the environment's off.
        let off: BTreeMap<String, String> = [("https_proxy".to_owned(), String::new())].into();
        assert_eq!(
            via(&p.clone().with_profile(&off), "https://a.example/"),
            None
        );
        let bad: BTreeMap<String, String> =
            [("https_proxy".to_owned(), "ftp://x.example".to_owned())].into();
        let e = p
            .with_profile(&bad)
            .for_url(&Url::parse("https://a.example/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("proxy_env.https_proxy: `ftp://x.example` is not a proxy URL"),
            "{e}"
        );
    }
}
