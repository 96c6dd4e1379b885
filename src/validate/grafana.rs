//! Grafana has no offline config checker, so its files are parsed here and every section, key
//! and provisioning field is checked against what Grafana documents (configuration reference
//! and "Provision Grafana", grafana.com/docs/grafana/latest/setup-grafana/configure-grafana/ and
//! …/administration/provisioning/). An unknown key is rejected: Grafana would silently ignore it.

use std::collections::BTreeSet;
use std::fs;

use crate::yaml::Value;

use super::{Outcome, Sandbox};

/// Documented `grafana.ini` keys, by section (the subset a profile can reach, plus neighbours).
const INI: &[(&str, &[&str])] = &[
    (
        "paths",
        &[
            "data",
            "temp_data_lifetime",
            "logs",
            "plugins",
            "provisioning",
        ],
    ),
    (
        "server",
        &[
            "protocol",
            "http_addr",
            "http_port",
            "domain",
            "enforce_domain",
            "root_url",
            "serve_from_sub_path",
            "router_logging",
            "static_root_path",
            "enable_gzip",
            "cert_file",
            "cert_key",
            "socket",
            "read_timeout",
        ],
    ),
    (
        "database",
        &[
            "type",
            "host",
            "name",
            "user",
            "password",
            "url",
            "path",
            "wal",
            "max_idle_conn",
            "max_open_conn",
            "conn_max_lifetime",
            "ssl_mode",
            "cache_mode",
        ],
    ),
    (
        "analytics",
        &[
            "reporting_enabled",
            "check_for_updates",
            "check_for_plugin_updates",
            "feedback_links_enabled",
        ],
    ),
    (
        "security",
        &[
            "disable_initial_admin_creation",
            "admin_user",
            "admin_password",
            "admin_email",
            "secret_key",
            "disable_gravatar",
            "allow_embedding",
            "cookie_secure",
            "cookie_samesite",
            "csrf_trusted_origins",
            "csrf_additional_headers",
            "disable_brute_force_login_protection",
        ],
    ),
    (
        "dashboards",
        &[
            "versions_to_keep",
            "min_refresh_interval",
            "default_home_dashboard_path",
        ],
    ),
    (
        "sql_datasources",
        &[
            "max_open_conns_default",
            "max_idle_conns_default",
            "max_conn_lifetime_default",
        ],
    ),
    (
        "users",
        &[
            "allow_sign_up",
            "allow_org_create",
            "auto_assign_org",
            "auto_assign_org_role",
            "default_theme",
            "default_language",
            "home_page",
        ],
    ),
    (
        "auth.anonymous",
        &["enabled", "org_name", "org_role", "hide_version"],
    ),
    (
        "auth.proxy",
        &[
            "enabled",
            "header_name",
            "header_property",
            "auto_sign_up",
            "sync_ttl",
            "whitelist",
            "headers",
            "enable_login_token",
        ],
    ),
    ("log", &["mode", "level", "filters"]),
    ("news", &["news_feed_enabled"]),
    (
        "plugins",
        &[
            "enable_alpha",
            "allow_loading_unsigned_plugins",
            "plugin_admin_enabled",
            "plugin_admin_external_manage_enabled",
            "public_key_retrieval_disabled",
            "plugin_catalog_url",
        ],
    ),
    ("unified_alerting", &["enabled"]),
    ("recording_rules", &["enabled", "timeout"]),
];

/// Documented datasource provisioning fields.
const DATASOURCE: &[&str] = &[
    "name",
    "type",
    "access",
    "orgId",
    "uid",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "jsonData",
    "secureJsonData",
    "version",
    "editable",
];

/// Documented dashboard provider fields.
const PROVIDER: &[&str] = &[
    "name",
    "orgId",
    "folder",
    "folderUid",
    "type",
    "disableDeletion",
    "updateIntervalSeconds",
    "allowUiUpdates",
    "options",
];

pub fn check(sb: &Sandbox) -> Outcome {
    let mut problems = Vec::new();
    let ini_path = "/etc/grafana/grafana.ini";
    match fs::read_to_string(sb.path(ini_path)) {
        Ok(text) => problems.extend(ini(&text).into_iter().map(|p| format!("{ini_path}:{p}"))),
        Err(e) => problems.push(format!("{ini_path}: {e}")),
    }
    let ds = "/etc/grafana/provisioning/datasources/pigsty.yml";
    problems.extend(provisioning(
        sb,
        ds,
        "datasources",
        DATASOURCE,
        &["apiVersion", "datasources", "deleteDatasources", "prune"],
    ));
    let dash = "/etc/grafana/provisioning/dashboards/pigsty.yml";
    problems.extend(provisioning(
        sb,
        dash,
        "providers",
        PROVIDER,
        &["apiVersion", "providers"],
    ));
    if problems.is_empty() {
        Outcome::Accepted
    } else {
        Outcome::Rejected(problems.join("\n"))
    }
}

/// Problems of an ini text: `line: message`.
fn ini(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut section: Option<&str> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            match INI.iter().find(|(s, _)| *s == name) {
                Some((s, _)) => section = Some(s),
                None => out.push(format!("{n}: unknown section [{name}]")),
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            out.push(format!("{n}: not `key = value`: {line}"));
            continue;
        };
        let key = key.trim();
        let Some(s) = section else {
            out.push(format!("{n}: `{key}` outside a section"));
            continue;
        };
        let keys = INI
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, k)| *k)
            .unwrap_or_default();
        if !keys.contains(&key) {
            out.push(format!("{n}: unknown key `{key}` in [{s}]"));
        }
    }
    out
}

fn provisioning(
    sb: &Sandbox,
    path: &str,
    list: &str,
    fields: &[&str],
    top: &[&str],
) -> Vec<String> {
    let text = match fs::read_to_string(sb.path(path)) {
        Ok(t) => t,
        Err(e) => return vec![format!("{path}: {e}")],
    };
    let doc: Value = match crate::yaml::from_str(&text) {
        Ok(d) => d,
        Err(e) => return vec![format!("{path}:{}: {e}", e.at())],
    };
    let mut out = Vec::new();
    let Some(map) = doc.as_mapping() else {
        return vec![format!("{path}: not a mapping")];
    };
    for k in map.keys() {
        let k = k.as_str().unwrap_or_default();
        if !top.contains(&k) {
            out.push(format!("{path}: unknown top-level key `{k}`"));
        }
    }
    if doc.get("apiVersion").and_then(Value::as_u64) != Some(1) {
        out.push(format!("{path}: `apiVersion` must be 1"));
    }
    let mut names = BTreeSet::new();
    for (i, item) in doc
        .get(list)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(m) = item.as_mapping() else {
            out.push(format!("{path}: {list}[{i}] is not a mapping"));
            continue;
        };
        for k in m.keys() {
            let k = k.as_str().unwrap_or_default();
            if !fields.contains(&k) {
                out.push(format!("{path}: {list}[{i}]: unknown field `{k}`"));
            }
        }
        for required in ["name", "type"] {
            if !m.contains_key(required) {
                out.push(format!("{path}: {list}[{i}]: missing `{required}`"));
            }
        }
        if let Some(name) = m.get("name").and_then(Value::as_str) {
            if !names.insert(name.to_owned()) {
                out.push(format!("{path}: {list}[{i}]: duplicate name `{name}`"));
            }
        }
    }
    let defaults = doc.get(list).and_then(Value::as_sequence).map_or(0, |l| {
        l.iter()
            .filter(|d| d.get("isDefault") == Some(&Value::Bool(true)))
            .count()
    });
    if defaults > 1 {
        out.push(format!(
            "{path}: {defaults} datasources are marked `isDefault`; Grafana allows one"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ini;

    #[test]
    fn unknown_keys_and_sections_are_rejected() {
        assert!(ini("[server]\nhttp_port = 3000\n").is_empty());
        assert_eq!(
            ini("[server]\nhttp_prot = 3000\n"),
            ["2: unknown key `http_prot` in [server]"]
        );
        assert_eq!(ini("[servr]\n"), ["1: unknown section [servr]"]);
        assert_eq!(ini("x = 1\n"), ["1: `x` outside a section"]);
    }
}
