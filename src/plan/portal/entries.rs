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
        if let Some(p) = entry_portal(
            r, &name, &path, entry, admin_ip, home_root, sslmode, have_users,
        ) {
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

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn entry_portal(
    r: &mut Reader,
    name: &str,
    path: &str,
    entry: &crate::yaml::Mapping,
    admin_ip: &str,
    home_root: &str,
    sslmode: SslMode,
    have_users: bool,
) -> Option<Portal> {
    let mut ok = true;
    let get = |key: &str| entry.get(key);
    for (k, _) in entry {
        let key = k.as_str().unwrap_or_default();
        if !ENTRY_KEYS.contains(&key) {
            let hint = if key == "schema" {
                "; did you mean `scheme`?"
            } else {
                ""
            };
            r.problem(
                &keypath::join(path, key),
                format!("unknown portal entry key `{key}`{hint}"),
            );
            ok = false;
        }
    }
    if get("conf").is_some() {
        r.problem(
            &keypath::join(path, "conf"),
            "custom nginx templates (`conf`) are not supported; use `path` or `endpoint` with `config`",
        );
        ok = false;
    }
    let string = |r: &mut Reader, key: &str| -> Option<String> {
        let v = get(key)?;
        r.string_value(v, &keypath::join(path, key))
    };
    let flag = |r: &mut Reader, key: &str, default: bool| -> bool {
        match get(key) {
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
                    &keypath::join(path, key),
                    format!("expected a boolean, found {}", kind(other)),
                );
                default
            }
        }
    };
    let domain = string(r, "domain").unwrap_or_default();
    if domain.is_empty() {
        return None; // inert reference, as in Pigsty
    }
    if let Err(e) = check::domain(&domain) {
        r.problem(&keypath::join(path, "domain"), e);
        ok = false;
    }
    let mut domains = Vec::new();
    if let Some(v) = get("domains") {
        for (d, p) in r.strings_value(v, &keypath::join(path, "domains")) {
            match check::domain(&d) {
                Ok(()) => domains.push(d),
                Err(e) => {
                    r.problem(&p, e);
                    ok = false;
                }
            }
        }
    }
    let checked_path = |r: &mut Reader, key: &str| -> Option<String> {
        let s = string(r, key)?;
        match check::abs_path(&s) {
            Ok(()) => Some(s),
            Err(e) => {
                r.problem(&keypath::join(path, key), e);
                None
            }
        }
    };
    let cert = checked_path(r, "cert");
    let key = checked_path(r, "key");
    let certbot = string(r, "certbot").filter(|s| !s.is_empty());
    if let Some(c) = &certbot {
        if let Err(e) = check::name(c) {
            r.problem(&keypath::join(path, "certbot"), e);
            ok = false;
        }
    }
    let auth = flag(r, "auth", false);
    let realm = if auth {
        let default = if name == "home" {
            "Pigsty Home Auth".to_owned()
        } else {
            format!("Auth {name}")
        };
        let realm = string(r, "realm").unwrap_or(default);
        if let Err(e) = check::nginx_quoted(&realm) {
            r.problem(&keypath::join(path, "realm"), e);
            ok = false;
        }
        if !have_users {
            r.problem(
                &keypath::join(path, "auth"),
                "basic auth is on but `nginx_users` is empty",
            );
            ok = false;
        }
        Some(realm)
    } else {
        None
    };
    let log = string(r, "log");
    if let Some(l) = &log {
        if let Err(e) = check::name(l) {
            r.problem(&keypath::join(path, "log"), e);
            ok = false;
        }
    }
    let enforce_https = name != "home" && flag(r, "enforce_https", false);
    if enforce_https && sslmode == SslMode::Disable {
        r.problem(
            &keypath::join(path, "enforce_https"),
            "`enforce_https` needs HTTPS, but `nginx_sslmode` is `disable`",
        );
        ok = false;
    }
    let index_default = name == "home";
    let index = flag(r, "index", index_default);
    let websocket = flag(r, "websocket", false);
    let kind = if name == "home" {
        let root = checked_path(r, "path").unwrap_or_else(|| home_root.to_owned());
        PortalKind::Home { root, index }
    } else if let Some(root) = checked_path(r, "path") {
        PortalKind::Path { root, index }
    } else if let Some(endpoint) = string(r, "endpoint") {
        let endpoint = endpoint.replace("${admin_ip}", admin_ip);
        if let Err(e) = check_endpoint(&endpoint) {
            r.problem(&keypath::join(path, "endpoint"), e);
            ok = false;
        }
        let scheme = string(r, "scheme").unwrap_or_else(|| "http".to_owned());
        if scheme != "http" && scheme != "https" {
            r.problem(
                &keypath::join(path, "scheme"),
                format!("`{scheme}` is not one of `http`, `https`"),
            );
            ok = false;
        }
        PortalKind::Endpoint {
            endpoint,
            scheme,
            websocket,
        }
    } else {
        r.problem(
            path,
            format!("portal entry `{name}` has a `domain` but neither `path` nor `endpoint`"),
        );
        return None;
    };
    let config = string_multiline(r, get("config"), &keypath::join(path, "config"));
    if let Some(c) = &config {
        let entry_root = match &kind {
            PortalKind::Home { root, .. } | PortalKind::Path { root, .. } => Some(root.as_str()),
            PortalKind::Endpoint { .. } => None,
        };
        let roots = config::Roots {
            home: home_root,
            path: entry_root,
        };
        for e in config::check(c, &roots) {
            r.problem(&keypath::join(path, "config"), e);
            ok = false;
        }
    }
    ok.then(|| Portal {
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
