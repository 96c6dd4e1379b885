//! `infra_portal`: every entry read into a [`Portal`] and checked key by key (unknown keys,
//! domains, paths, auth, log, raw config through `config`, upstream endpoint), a domain served
//! twice, and the `home` entry the default server needs.

use crate::yaml::Value;

use super::{config, Portal, PortalKind, SslMode};
use crate::keypath;
use crate::plan::check;
use crate::plan::read::Reader;
use crate::profile::kind;

pub(super) fn portal(
    r: &mut Reader,
    admin_ip: &str,
    home_root: &str,
    sslmode: SslMode,
    have_users: bool,
) -> Vec<Portal> {
    let Some(var) = r.var("infra_portal") else {
        return Vec::new();
    };
    let Some(map) = var.value.as_mapping() else {
        r.problem(
            &var.path,
            format!(
                "expected a mapping of portal entries, found {}",
                kind(&var.value)
            ),
        );
        return Vec::new();
    };
    let cx = Context {
        admin_ip,
        home_root,
        sslmode,
        have_users,
    };
    let mut out: Vec<Portal> = Vec::new();
    let mut seen_domains: Vec<(String, String)> = Vec::new();
    for (k, v) in map {
        let name = k.as_str().unwrap_or_default().to_owned();
        let path = keypath::join(&var.path, &name);
        if let Err(e) = check::name(&name) {
            r.problem(&path, e);
            continue;
        }
        let Some(entry) = v.as_mapping() else {
            r.problem(&path, format!("expected a mapping, found {}", kind(v)));
            continue;
        };
        if let Some(p) = entry_portal(r, &name, &path, entry, &cx) {
            for d in std::iter::once(&p.domain).chain(&p.domains) {
                if let Some((_, other)) = seen_domains.iter().find(|(sd, _)| sd == d) {
                    r.problem(
                        &keypath::join(&path, "domain"),
                        format!("domain `{d}` is also served by portal entry `{other}`"),
                    );
                }
                seen_domains.push((d.clone(), name.clone()));
            }
            out.push(p);
        }
    }
    let has_home = map
        .get("home")
        .and_then(|h| h.get("domain"))
        .and_then(Value::as_str)
        .is_some_and(|d| !d.is_empty());
    if !has_home {
        r.problem(
            &var.path,
            "`infra_portal` needs a `home` entry with a `domain` (the default server)",
        );
    }
    out.sort_by_key(|p| (p.name != "home", p.name.clone()));
    out
}

/// Portal entry keys infragen reads; any other key is an error (a typo would silently do nothing).
const ENTRY_KEYS: &[&str] = &[
    "domain",
    "domains",
    "endpoint",
    "scheme",
    "websocket",
    "path",
    "index",
    "cert",
    "key",
    "certbot",
    "enforce_https",
    "auth",
    "realm",
    "log",
    "config",
    "conf",
    "name",
];

/// What every entry is read against: the admin address (`${admin_ip}` in endpoints), the home
/// entry's default root, the TLS mode and whether `nginx_users` has anyone to authenticate.
struct Context<'a> {
    admin_ip: &'a str,
    home_root: &'a str,
    sslmode: SslMode,
    have_users: bool,
}

/// One portal entry being read: its name, key path and mapping, and whether it is still good.
struct Entry<'a> {
    name: &'a str,
    path: &'a str,
    map: &'a crate::yaml::Mapping,
    ok: bool,
}

impl Entry<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    fn at(&self, key: &str) -> String {
        keypath::join(self.path, key)
    }

    /// A problem at `key` that makes the entry unusable.
    fn refuse(&mut self, r: &mut Reader, key: &str, message: impl Into<String>) {
        r.problem(&self.at(key), message.into());
        self.ok = false;
    }

    fn string(&self, r: &mut Reader, key: &str) -> Option<String> {
        r.string_value(self.get(key)?, &self.at(key))
    }

    /// A boolean key (YAML 1.1 spellings too), `default` when absent or malformed.
    fn flag(&self, r: &mut Reader, key: &str, default: bool) -> bool {
        match self.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s))
                if ["yes", "true", "on"].contains(&s.to_ascii_lowercase().as_str()) =>
            {
                true
            }
            Some(Value::String(s))
                if ["no", "false", "off"].contains(&s.to_ascii_lowercase().as_str()) =>
            {
                false
            }
            Some(other) => {
                r.problem(
                    &self.at(key),
                    format!("expected a boolean, found {}", kind(other)),
                );
                default
            }
        }
    }

    /// An absolute path (a problem, and none, when it is not).
    fn checked_path(&self, r: &mut Reader, key: &str) -> Option<String> {
        let s = self.string(r, key)?;
        match check::abs_path(&s) {
            Ok(()) => Some(s),
            Err(e) => {
                r.problem(&self.at(key), e);
                None
            }
        }
    }

    /// A name-like string key (`certbot`, `log`), checked when present.
    fn checked_name(&mut self, r: &mut Reader, key: &str) -> Option<String> {
        let value = self.string(r, key);
        if let Some(v) = &value {
            if let Err(e) = check::name(v) {
                self.refuse(r, key, e);
            }
        }
        value
    }

    /// Unknown keys, and `conf`, which infragen does not support.
    fn check_keys(&mut self, r: &mut Reader) {
        for (k, _) in self.map {
            let key = k.as_str().unwrap_or_default();
            if !ENTRY_KEYS.contains(&key) {
                let hint = if key == "schema" {
                    "; did you mean `scheme`?"
                } else {
                    ""
                };
                let message = format!("unknown portal entry key `{key}`{hint}");
                self.refuse(r, key, message);
            }
        }
        if self.get("conf").is_some() {
            self.refuse(
                r,
                "conf",
                "custom nginx templates (`conf`) are not supported; use `path` or `endpoint` with `config`",
            );
        }
    }

    /// The extra `domains`, each checked (the main `domain` is checked here too).
    fn domains(&mut self, r: &mut Reader, domain: &str) -> Vec<String> {
        if let Err(e) = check::domain(domain) {
            self.refuse(r, "domain", e);
        }
        let mut domains = Vec::new();
        if let Some(v) = self.get("domains") {
            for (d, p) in r.strings_value(v, &self.at("domains")) {
                match check::domain(&d) {
                    Ok(()) => domains.push(d),
                    Err(e) => {
                        r.problem(&p, e);
                        self.ok = false;
                    }
                }
            }
        }
        domains
    }

    /// The basic-auth realm when `auth` is on (which needs users).
    fn realm(&mut self, r: &mut Reader, have_users: bool) -> Option<String> {
        if !self.flag(r, "auth", false) {
            return None;
        }
        let default = if self.name == "home" {
            "Pigsty Home Auth".to_owned()
        } else {
            format!("Auth {}", self.name)
        };
        let realm = self.string(r, "realm").unwrap_or(default);
        if let Err(e) = check::nginx_quoted(&realm) {
            self.refuse(r, "realm", e);
        }
        if !have_users {
            self.refuse(r, "auth", "basic auth is on but `nginx_users` is empty");
        }
        Some(realm)
    }

    /// What the entry serves: the home page, a directory (`path`) or an upstream (`endpoint`);
    /// none, with a problem, when it names neither.
    fn kind(&mut self, r: &mut Reader, cx: &Context) -> Option<PortalKind> {
        let index = self.flag(r, "index", self.name == "home");
        let websocket = self.flag(r, "websocket", false);
        if self.name == "home" {
            let root = self
                .checked_path(r, "path")
                .unwrap_or_else(|| cx.home_root.to_owned());
            return Some(PortalKind::Home { root, index });
        }
        if let Some(root) = self.checked_path(r, "path") {
            return Some(PortalKind::Path { root, index });
        }
        let Some(endpoint) = self.string(r, "endpoint") else {
            r.problem(
                self.path,
                format!(
                    "portal entry `{}` has a `domain` but neither `path` nor `endpoint`",
                    self.name
                ),
            );
            return None;
        };
        let endpoint = endpoint.replace("${admin_ip}", cx.admin_ip);
        if let Err(e) = check_endpoint(&endpoint) {
            self.refuse(r, "endpoint", e);
        }
        let scheme = self
            .string(r, "scheme")
            .unwrap_or_else(|| "http".to_owned());
        if scheme != "http" && scheme != "https" {
            self.refuse(
                r,
                "scheme",
                format!("`{scheme}` is not one of `http`, `https`"),
            );
        }
        Some(PortalKind::Endpoint {
            endpoint,
            scheme,
            websocket,
        })
    }

    /// The raw nginx `config`, checked against the roots the entry may serve.
    fn config(&mut self, r: &mut Reader, kind: &PortalKind, home_root: &str) -> Option<String> {
        let config = string_multiline(r, self.get("config"), &self.at("config"))?;
        let entry_root = match kind {
            PortalKind::Home { root, .. } | PortalKind::Path { root, .. } => Some(root.as_str()),
            PortalKind::Endpoint { .. } => None,
        };
        let roots = config::Roots {
            home: home_root,
            path: entry_root,
        };
        for e in config::check(&config, &roots) {
            self.refuse(r, "config", e);
        }
        Some(config)
    }
}

/// One portal entry; none when it is inert (no `domain`, as in Pigsty) or has a problem.
fn entry_portal(
    r: &mut Reader,
    name: &str,
    path: &str,
    map: &crate::yaml::Mapping,
    cx: &Context,
) -> Option<Portal> {
    let mut e = Entry {
        name,
        path,
        map,
        ok: true,
    };
    e.check_keys(r);
    let domain = e.string(r, "domain").unwrap_or_default();
    if domain.is_empty() {
        return None; // inert reference, as in Pigsty
    }
    let domains = e.domains(r, &domain);
    let cert = e.checked_path(r, "cert");
    let key = e.checked_path(r, "key");
    let certbot = e.string(r, "certbot").filter(|s| !s.is_empty());
    if let Some(c) = &certbot {
        if let Err(err) = check::name(c) {
            e.refuse(r, "certbot", err);
        }
    }
    let realm = e.realm(r, cx.have_users);
    let log = e.checked_name(r, "log");
    let enforce_https = name != "home" && e.flag(r, "enforce_https", false);
    if enforce_https && cx.sslmode == SslMode::Disable {
        e.refuse(
            r,
            "enforce_https",
            "`enforce_https` needs HTTPS, but `nginx_sslmode` is `disable`",
        );
    }
    let kind = e.kind(r, cx)?;
    let config = e.config(r, &kind, cx.home_root);
    e.ok.then(|| Portal {
        name: name.to_owned(),
        domain,
        domains,
        kind,
        cert,
        key,
        certbot,
        enforce_https,
        realm,
        log,
        config,
    })
}

/// `config` may span lines (a YAML block scalar).
fn string_multiline(r: &mut Reader, v: Option<&Value>, path: &str) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim_end().to_owned()),
        Value::Null => None,
        other => {
            r.problem(path, format!("expected a string, found {}", kind(other)));
            None
        }
    }
}

/// An upstream address: `host:port` with a DNS name or IPv4, `[v6]:port`, or `unix:/path`.
fn check_endpoint(s: &str) -> Result<(), String> {
    if let Some(p) = s.strip_prefix("unix:") {
        return check::abs_path(p);
    }
    let bad = || format!("`{s}` is not a valid endpoint (expected `host:port`)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.parse::<std::net::IpAddr>().is_ok() || check::hostname(host).is_ok() {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn endpoints() {
        for ok in [
            "10.0.0.1:8885",
            "grafana.pigsty:3000",
            "unix:/run/app.sock",
            "[::1]:80",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "a b:80",
            "x:0",
            "x:99999",
            "h:80; include /etc",
            "{}:1",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
