//! Image references, `host[:port]/path[:tag][@sha256:hex]`, parsed strictly.
//!
//! The host is always written out: a first component that does not look like a host (it has
//! no `.` or `:` and is not `localhost`) is an error, never a default registry. Path components
//! and tags follow the distribution spec's grammar.
//! <https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests>

use std::fmt;

use anyhow::{bail, Result};

use crate::manifest::Digest;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// `host` or `host:port`.
    pub host: String,
    /// The repository path (`infragen/bundle`).
    pub repo: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// The digest, when given.
    pub digest: Option<Digest>,
}

/// Longest repository name the distribution spec guarantees registries accept, host included.
const MAX_NAME: usize = 255;

impl Reference {
    /// Parses `host[:port]/path[:tag][@sha256:hex]`.
    pub fn parse(s: &str) -> Result<Self> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|e| bad(s, &e.to_string()))?),
            ),
            None => (s, None),
        };
        let Some((host, path)) = rest.split_once('/') else {
            bail!(
                "`{s}` names no registry host\nhint: write the host explicitly, e.g. `127.0.0.1:5000/{s}`"
            );
        };
        if !looks_like_host(host) {
            bail!(
                "`{s}`: `{host}` is not a registry host (no `.`, no `:port`, not `localhost`)\nhint: infragen never defaults to a registry; write the host explicitly, e.g. `{host}.example:5000/{path}`"
            );
        }
        check_host(s, host)?;
        // A tag is after the last `:` of the last path component.
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repo, tag) = match last.rsplit_once(':') {
            Some((_, t)) => (&path[..path.len() - t.len() - 1], Some(t.to_owned())),
            None => (path, None),
        };
        check_repo(repo).map_err(|e| bad(s, &e))?;
        if host.len() + 1 + repo.len() > MAX_NAME {
            return Err(bad(
                s,
                &format!("the name is longer than {MAX_NAME} characters"),
            ));
        }
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad(
                    s,
                    &format!("`{t}` is not a tag (`[A-Za-z0-9_][A-Za-z0-9._-]`, at most 128)"),
                ));
            }
        }
        Ok(Self {
            host: host.to_owned(),
            repo: repo.to_owned(),
            tag,
            digest,
        })
    }

    /// The same registry, repository `<repo>/<name>`, without tag or digest.
    pub fn join(&self, name: &str) -> Result<Self> {
        let repo = format!("{}/{name}", self.repo);
        check_repo(&repo).map_err(|e| bad(&format!("{}/{repo}", self.host), &e))?;
        Ok(Self {
            host: self.host.clone(),
            repo,
            tag: None,
            digest: None,
        })
    }

    /// The tag or digest to fetch: the digest when both are given.
    pub fn reference(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(Digest::to_string)
            .or_else(|| self.tag.clone())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn bad(s: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!("`{s}` is not an image reference: {why}")
}

fn looks_like_host(h: &str) -> bool {
    h.contains('.') || h.contains(':') || h == "localhost"
}

fn check_host(s: &str, host: &str) -> Result<()> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(bad(s, &format!("`{host}` has an unclosed `[`")));
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(s, &format!("`{v6}` is not an IPv6 address")));
        }
        (None, after.strip_prefix(':').map(str::to_owned))
    } else {
        match host.split_once(':') {
            Some((n, p)) => (Some(n), Some(p.to_owned())),
            None => (Some(host), None),
        }
    };
    if let Some(n) = name {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !n.split('.').all(label_ok) {
            return Err(bad(s, &format!("`{n}` is not a host name or address")));
        }
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad(s, &format!("`{p}` is not a port")));
        }
    }
    Ok(())
}

/// Checks a repository path: `/`-separated components of `[a-z0-9]+` runs joined by `.`, `_`,
/// `__` or runs of `-`.
pub fn check_repo(repo: &str) -> std::result::Result<(), String> {
    if repo.is_empty() {
        return Err("the repository path is empty".into());
    }
    for c in repo.split('/') {
        if !valid_component(c) {
            return Err(format!(
                "`{c}` is not a repository path component (lowercase letters and digits, joined by `.`, `_`, `__` or `-`)"
            ));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    let runs: Vec<&str> = c.split(alnum).collect();
    !c.is_empty()
        && runs.first().is_some_and(|r| r.is_empty())
        && runs.last().is_some_and(|r| r.is_empty())
        && runs[1..runs.len() - 1].iter().all(|sep| {
            sep.is_empty()
                || *sep == "."
                || *sep == "_"
                || *sep == "__"
                || sep.bytes().all(|b| b == b'-')
        })
}

/// Whether `t` is a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let mut b = t.bytes();
    b.next()
        .is_some_and(|f| f.is_ascii_alphanumeric() || f == b'_')
        && t.len() <= 128
        && b.all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (input, host, repo, tag, digest) in [
            (
                "127.0.0.1:5000/infragen/bundle",
                "127.0.0.1:5000",
                "infragen/bundle",
                None,
                false,
            ),
            ("localhost/a:v1", "localhost", "a", Some("v1"), false),
            (
                "reg.example/a/b-c/d__e:1.0_x",
                "reg.example",
                "a/b-c/d__e",
                Some("1.0_x"),
                false,
            ),
            (
                &format!("reg.example:443/a@{d}"),
                "reg.example:443",
                "a",
                None,
                true,
            ),
            (
                &format!("reg.example/a:t@{d}"),
                "reg.example",
                "a",
                Some("t"),
                true,
            ),
            ("[::1]:5000/x", "[::1]:5000", "x", None, false),
            (
                "host.example/a.b/c---d",
                "host.example",
                "a.b/c---d",
                None,
                false,
            ),
        ] {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(r.host, host, "{input}");
            assert_eq!(r.repo, repo, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.is_some(), digest, "{input}");
            assert_eq!(r.to_string(), input);
        }
    }

    #[test]
    fn malformed_references_say_why() {
        for (input, message) in [
            ("infragen/bundle", "`infragen` is not a registry host"),
            ("bundle", "names no registry host"),
            ("Reg.example/A", "`A` is not a repository path component"),
            ("reg.example/a//b", "`` is not a repository path component"),
            ("reg.example/a-", "`a-` is not a repository path component"),
            (
                "reg.example/a..b",
                "`a..b` is not a repository path component",
            ),
            (
                "reg.example/a___b",
                "`a___b` is not a repository path component",
            ),
            ("reg.example/a:-x", "`-x` is not a tag"),
            ("reg.example/a@sha256:xyz", "is not a sha256 digest"),
            ("reg.example:99999/a", "`99999` is not a port"),
            ("reg.example:0/a", "`0` is not a port"),
            ("reg_x.example/a", "`reg_x.example` is not a host name"),
            ("reg.example/", "the repository path is empty"),
            ("[zz]:1/a", "`zz` is not an IPv6 address"),
        ] {
            let e = format!("{:#}", Reference::parse(input).unwrap_err());
            assert!(e.contains(message), "{input}: {e}");
        }
        let long = format!("reg.example/a:{}", "t".repeat(129));
        assert!(Reference::parse(&long).is_err());
        let name = format!("reg.example/{}", "a".repeat(250));
        assert!(Reference::parse(&name).is_err());
    }

    #[test]
    fn tags_and_joins() {
        for ok in ["a", "_", "A1._-", &"x".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", &"x".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        let r = Reference::parse("127.0.0.1:5000/infragen").unwrap();
        assert_eq!(
            r.join("infra-nginx").unwrap().to_string(),
            "127.0.0.1:5000/infragen/infra-nginx"
        );
        assert!(r.join("Bad").is_err());
    }
}
