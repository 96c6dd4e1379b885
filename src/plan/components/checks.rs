//! Host-wide parameter checks: parameters accepted for compatibility are still typed and
//! checked, and two enabled components of one host may not share a port.
//!
//! They only report problems through the [`Reader`]; they build no settings.

use std::collections::BTreeMap;

use crate::plan::read::Reader;
use crate::plan::{check, Component, InfraNode, Ports};

/// Parameters infragen accepts for compatibility (or uses in later stages) are still typed, so a
/// bad value is reported now rather than ignored.
pub(super) fn compatible(r: &mut Reader) {
    for name in [
        "ca_create",
        "repo_remove",
        "nginx_clean",
        "certbot_sign",
        "vmetrics_clean",
        "vlogs_clean",
        "vtraces_clean",
        "grafana_clean",
    ] {
        r.bool(name);
    }
    for name in ["nginx_data", "repo_home"] {
        r.path(name);
    }
    r.choice("region", &["default", "china", "europe"]);
    let cn = r.string("ca_cn");
    if let Err(e) = check::nginx_quoted(&cn).and_then(|()| {
        if cn.is_empty() {
            Err("empty".into())
        } else {
            Ok(())
        }
    }) {
        let path = r.var("ca_cn").map(|v| v.path.clone()).unwrap_or_default();
        r.problem(&path, format!("`ca_cn`: {e}"));
    }
    let email = r.string("certbot_email");
    let ok = email
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && check::domain(domain).is_ok())
        && !email.chars().any(char::is_whitespace);
    if !ok {
        let path = r
            .var("certbot_email")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(&path, format!("`{email}` is not an e-mail address"));
    }
}

/// Two enabled components of one host may not share a port (the ports each one listens on are
/// in its [`Description`](crate::component::Description)).
pub(super) fn check_ports(r: &mut Reader, p: &Ports, node: &InfraNode) {
    let mut used: Vec<(u16, &str)> = Vec::new();
    // The switches of conditional ports (`alertmanager_cluster`), read once, before any port.
    let switches: BTreeMap<&str, bool> = Component::ALL
        .iter()
        .flat_map(|c| c.describe().ports)
        .filter_map(|port| port.only_with)
        .map(|s| (s, r.bool(s)))
        .collect();
    let switches = &switches;
    let list = Component::ALL.iter().flat_map(|c| {
        let on = node.enabled.contains(c);
        c.describe().ports.iter().map(move |port| {
            let used = on && port.only_with.is_none_or(|s| switches[s]);
            (used, p.get(port.param), port.param.name())
        })
    });
    for (enabled, port, name) in list {
        if !enabled || port == 0 {
            continue;
        }
        if let Some((_, other)) = used.iter().find(|(q, _)| *q == port) {
            // Blame the one the profile sets (a default is never the mistake).
            let (blamed, with) = if r.is_set(name) || !r.is_set(other) {
                (name, *other)
            } else {
                (*other, name)
            };
            let path = r.var(blamed).map(|v| v.path.clone()).unwrap_or_default();
            r.problem(
                &path,
                format!("port {port} of `{blamed}` is already used by `{with}` on this host"),
            );
        }
        used.push((port, name));
    }
}
