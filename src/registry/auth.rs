//! Registry credentials and challenges: where `user:pass` comes from, and what a `401` asks for.
//!
//! Credentials are read from the first auth file that names the host, in the order of
//! containers-auth.json(5): `--authfile`, `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`,
//! `~/.docker/config.json`. Challenges are parsed here as pure functions; fetching a token is
//! the client's.
//! <https://distribution.github.io/distribution/spec/auth/token/>

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;

/// A user name and password for basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (or identity token).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: <hidden> }}",
            self.user
        )
    }
}

impl Credentials {
    /// The `Authorization` header value for basic authentication.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

/// The auth files to look in, in order: `authfile` alone when given.
pub fn auth_files(authfile: Option<&Path>) -> Vec<PathBuf> {
    if let Some(f) = authfile {
        return vec![f.to_path_buf()];
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    if let Some(home) = env("HOME") {
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    files
}

/// The credentials for `host` from the first of `files` that names it. A file given with
/// `--authfile` must exist; the others may be absent. A file that exists but does not parse is
/// an error naming it.
pub fn lookup(host: &str, files: &[PathBuf], explicit: bool) -> Result<Option<Credentials>> {
    for f in files {
        let text = match std::fs::read(f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("reading auth file `{}`", f.display()))
            }
        };
        if let Some(c) =
            find(&text, host).with_context(|| format!("auth file `{}`", f.display()))?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The credentials for `host` in one auth file's bytes. Keys may be `host`, or a URL whose
/// host part is `host` (`https://host/v1/`, as docker writes them).
pub fn find(bytes: &[u8], host: &str) -> Result<Option<Credentials>> {
    let file: AuthFile =
        serde_json::from_slice(bytes).context("not an auth file (JSON with `auths`)")?;
    for (key, entry) in &file.auths {
        let bare = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let bare = bare.split('/').next().unwrap_or(bare);
        if bare != host {
            continue;
        }
        let Some(auth) = &entry.auth else { continue };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            bail!("`auths.{key}.auth` is not base64 of `user:password`");
        };
        return Ok(Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }));
    }
    Ok(None)
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send basic credentials.
    Basic,
    /// Fetch a token from `realm` for `service` and `scope`, then send it.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter, when given.
        service: Option<String>,
        /// The `scope` parameter, when given.
        scope: Option<String>,
    },
}

/// Parses one `WWW-Authenticate` header value: `Basic realm="…"` or
/// `Bearer realm="…",service="…",scope="…"` (quoted or bare values, in any order).
pub fn parse_challenge(header: &str) -> Result<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest)
        .with_context(|| format!("`WWW-Authenticate: {header}` does not parse"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let Some(realm) = params.get("realm").cloned() else {
                bail!("`WWW-Authenticate: {header}`: a bearer challenge without a `realm`");
            };
            Ok(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        other => bail!("`WWW-Authenticate: {header}`: scheme `{other}` is not `Basic` or `Bearer`"),
    }
}

/// `key=value` pairs separated by commas; values bare or quoted with `\` escapes.
fn parse_params(s: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains([' ', ',', '"']) {
            bail!("`{key}` is not a parameter name");
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => bail!("the value of `{key}` has no closing quote"),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            let trimmed = value.trim().len();
            value.truncate(trimmed);
            let lead = value.len() - value.trim_start().len();
            value.drain(..lead);
        }
        out.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            )
            .unwrap(),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        // Bare values, other order, spaces, escapes, unknown parameters.
        assert_eq!(
            parse_challenge(
                r#"bearer scope="x:\"y\"", realm=http://127.0.0.1/t , error="insufficient_scope""#
            )
            .unwrap(),
            Challenge::Bearer {
                realm: "http://127.0.0.1/t".into(),
                service: None,
                scope: Some(r#"x:"y""#.into()),
            }
        );
        for (bad, why) in [
            ("Bearer service=x", "without a `realm`"),
            (r#"Bearer realm="x"#, "no closing quote"),
            ("Negotiate abc", "is not `Basic` or `Bearer`"),
        ] {
            let e = format!("{:#}", parse_challenge(bad).unwrap_err());
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn auth_files_are_searched_by_host() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        let file = format!(
            r#"{{"auths":{{"https://reg.example/v1/":{{"auth":"{b64}"}},"other.example":{{}}}}}}"#
        );
        let c = find(file.as_bytes(), "reg.example").unwrap().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("u", "p:w"));
        assert_eq!(c.basic(), format!("Basic {b64}"));
        assert!(find(file.as_bytes(), "other.example").unwrap().is_none());
        assert!(find(file.as_bytes(), "reg").unwrap().is_none());
        assert!(find(br#"{"auths":{"h.example":{"auth":"!!"}}}"#, "h.example").is_err());
        assert!(find(b"not json", "h.example").is_err());
        assert!(!format!("{c:?}").contains("p:w"));

        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.json");
        let second = dir.path().join("second.json");
        std::fs::write(&second, &file).unwrap();
        let files = [first.clone(), second];
        assert_eq!(lookup("reg.example", &files, false).unwrap(), Some(c));
        assert!(
            lookup("reg.example", &[first], true).is_err(),
            "--authfile must exist"
        );
    }
}
