//! Host-wide parameter checks: parameters accepted for compatibility are still typed and
//! checked, and two enabled components of one host may not share a port.
//!
//! They only report problems through the [`Reader`]; they build no settings.

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
        let path = r.var("ca_cn").map(|v| v.path).unwrap_or_default();
        r.problem(&path, format!("`ca_cn`: {e}"));
    }
    let email = r.string("certbot_email");
    let ok = email
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && check::domain(domain).is_ok())
        && !email.chars().any(char::is_whitespace);
    if !ok {
        let path = r.var("certbot_email").map(|v| v.path).unwrap_or_default();
        r.problem(&path, format!("`{email}` is not an e-mail address"));
    }
}

/// Two enabled components of one host may not share a port.
pub(super) fn check_ports(r: &mut Reader, p: &Ports, node: &InfraNode) {
    let on = |c: Component| node.enabled.contains(&c);
    let mut used: Vec<(u16, &str)> = Vec::new();
    let clustered = r.bool("alertmanager_cluster");
    let list = [
        (on(Component::Nginx), p.nginx, "nginx_port"),
        (on(Component::Nginx), p.nginx_ssl, "nginx_ssl_port"),
        (on(Component::Grafana), p.grafana, "grafana_port"),
        (on(Component::Vmetrics), p.vmetrics, "vmetrics_port"),
        (on(Component::Vlogs), p.vlogs, "vlogs_port"),
        (on(Component::Vtraces), p.vtraces, "vtraces_port"),
        (on(Component::Vmalert), p.vmalert, "vmalert_port"),
        (
            on(Component::Alertmanager),
            p.alertmanager,
            "alertmanager_port",
        ),
        (
            on(Component::Alertmanager) && clustered,
            p.alertmanager_cluster,
            "alertmanager_cluster_port",
        ),
        (on(Component::Blackbox), p.blackbox, "blackbox_port"),
        (on(Component::Dnsmasq), p.dns, "dns_port"),
    ];
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
            let path = r.var(blamed).map(|v| v.path).unwrap_or_default();
            r.problem(
                &path,
                format!("port {port} of `{blamed}` is already used by `{with}` on this host"),
            );
        }
        used.push((port, name));
    }
}
