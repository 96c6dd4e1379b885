//! nginx settings: the portal (`infra_portal`), SSL mode, basic-auth users, home-page cards.
//!
//! Follows docs/pigsty-infra.md §6: `home` is the default server with the fixed path routes;
//! every other entry with a `domain` is a domain-based server serving a `path` or proxying an
//! `endpoint`. Entries without a domain render nothing, as in Pigsty.
//!
//! The types, [`nginx`] and the basic-auth users live here; `entries` reads and checks the
//! `infra_portal` entries, `config` holds an entry's raw nginx `config` to an allow-list,
//! [`nginx_lex`] reads nginx syntax, `cards` the home-page service cards.

mod cards;
mod config;
mod entries;
pub mod nginx_lex;

use super::check;
use super::read::Reader;
use crate::keypath;
use crate::profile::kind;

use cards::cards;
use entries::portal;

/// `nginx_sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// HTTP only.
    Disable,
    /// HTTP and HTTPS.
    Enable,
    /// HTTPS, with HTTP redirected (home is never redirected).
    Enforce,
}

/// What a portal server does at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalKind {
    /// The default server with the built-in routes; `root` is its web root.
    Home {
        /// Web root.
        root: String,
        /// Autoindex on `/` (default on; `index: false` turns it off and keeps auth there).
        index: bool,
    },
    /// A static site.
    Path {
        /// Directory served.
        root: String,
        /// Autoindex.
        index: bool,
    },
    /// A reverse proxy to one upstream.
    Endpoint {
        /// `host:port` (or `unix:/path`), `${admin_ip}` expanded.
        endpoint: String,
        /// `http` or `https`.
        scheme: String,
        /// WebSocket upgrade headers.
        websocket: bool,
    },
}

/// One `infra_portal` entry with a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// Map key: file name, upstream name.
    pub name: String,
    /// Primary `server_name`.
    pub domain: String,
    /// Extra `server_name` aliases.
    pub domains: Vec<String>,
    /// What it serves.
    pub kind: PortalKind,
    /// Explicit certificate path, else the shared server certificate.
    pub cert: Option<String>,
    /// Explicit key path, else the shared server key (a credential).
    pub key: Option<String>,
    /// Let's Encrypt certificate name: adds the ACME challenge location.
    pub certbot: Option<String>,
    /// HTTPS only, HTTP redirected.
    pub enforce_https: bool,
    /// Basic auth realm, when auth is on.
    pub realm: Option<String>,
    /// Access log file name under `/var/log/nginx/`.
    pub log: Option<String>,
    /// Raw nginx text appended to the server block, checked by `config` (docs/portal-config.md).
    pub config: Option<String>,
}

/// A home-page service card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Card {
    /// Title.
    pub name: String,
    /// Link.
    pub url: String,
    /// One line.
    pub desc: String,
    /// Icon key.
    pub icon: String,
}

/// nginx on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nginx {
    /// SSL mode.
    pub sslmode: SslMode,
    /// `nginx_home`.
    pub home: String,
    /// The local repository directory name under `repo_home`, when this host serves it.
    pub repo: Option<(String, String)>,
    /// `/nginx` `stub_status`.
    pub stub_status: bool,
    /// Portal servers, `home` first.
    pub portal: Vec<Portal>,
    /// Basic-auth user names (passwords are secrets).
    pub users: Vec<String>,
    /// Home-page cards.
    pub cards: Vec<Card>,
}

/// Reads nginx settings (for an infra host with nginx enabled); basic-auth passwords go to `secrets`.
pub fn nginx(r: &mut Reader, admin_ip: &str, secrets: &mut Vec<(String, String)>) -> Nginx {
    let sslmode = match r
        .choice("nginx_sslmode", &["enable", "disable", "enforce"])
        .as_str()
    {
        "disable" => SslMode::Disable,
        "enforce" => SslMode::Enforce,
        _ => SslMode::Enable,
    };
    let home = r.path("nginx_home");
    let repo = if r.bool("repo_enabled") {
        let repo_home = r.path("repo_home");
        let name_var = r.var("repo_name");
        let name = r.string("repo_name");
        if let Err(e) = check::name(&name) {
            r.problem(&name_var.map(|v| v.path.clone()).unwrap_or_default(), e);
        }
        Some((repo_home, name))
    } else {
        None
    };
    let stub_status = r.bool("nginx_exporter_enabled");
    let users = users(r, secrets);
    let portal = portal(r, admin_ip, &home, sslmode, !users.is_empty());
    let mut all_cards = cards(r, "infra_services");
    all_cards.extend(cards(r, "infra_extra_services"));
    Nginx {
        sslmode,
        home,
        repo,
        stub_status,
        portal,
        users,
        cards: all_cards,
    }
}

fn users(r: &mut Reader, secrets: &mut Vec<(String, String)>) -> Vec<String> {
    let Some(var) = r.var("nginx_users") else {
        return Vec::new();
    };
    if var.value.is_null() {
        return Vec::new();
    }
    let Some(map) = var.value.as_mapping() else {
        r.problem(
            &var.path,
            format!(
                "expected a mapping of user name to password, found {}",
                kind(&var.value)
            ),
        );
        return Vec::new();
    };
    let mut names = Vec::new();
    for (k, v) in map {
        let name = k.as_str().map_or_else(
            || {
                crate::yaml::to_string(k)
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            },
            str::to_owned,
        );
        let path = keypath::join(&var.path, &name);
        if name.is_empty()
            || name.contains(':')
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            r.problem(
                &path,
                format!("`{name}` is not a valid user name (no `:` or white space)"),
            );
            continue;
        }
        let Some(password) = r.string_value(v, &path) else {
            continue;
        };
        if password.is_empty() {
            r.problem(&path, "empty password");
            continue;
        }
        secrets.push((name.clone(), password));
        names.push(name);
    }
    names.sort();
    names
}
