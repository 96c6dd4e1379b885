//! nginx: main config, one server file per portal entry, portal pages, `mime.types`.

use std::net::IpAddr;

use anyhow::Result;
use serde_json::{json, Value};

use super::{credentials_dir, template, Head};
use crate::plan::{Component, HostPlan, Plan, Portal, PortalKind, SslMode};
use crate::tree::Tree;

/// The shared server certificate (public) and its key (a credential).
const CERT: &str = "/etc/nginx/cert/pigsty.crt";

fn addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

/// Renders nginx for one host.
pub fn render(plan: &Plan, h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let n = h.nginx.as_ref().expect("enabled");
    t.add("etc/nginx/nginx.conf", 0o644, template("nginx.conf", head)?);
    t.add(
        "etc/nginx/mime.types",
        0o644,
        include_str!("../../images/nginx/mime.types"),
    );
    t.add(
        "etc/nginx/html/404.html",
        0o644,
        include_str!("../../images/nginx/404.html"),
    );
    for p in &n.portal {
        let ctx = server(h, n, p, head);
        let name = match p.kind {
            PortalKind::Home { .. } => "home.conf",
            PortalKind::Path { .. } => "path.conf",
            PortalKind::Endpoint { .. } => "endpoint.conf",
        };
        t.add(
            format!("etc/nginx/conf.d/{}.conf", p.name),
            0o644,
            template(name, &ctx)?,
        );
    }
    let home_domain = n
        .portal
        .iter()
        .find(|p| p.name == "home")
        .map_or("", |p| p.domain.as_str());
    let infra: Vec<Value> = plan
        .infra
        .iter()
        .map(|i| {
            let comps: Vec<&str> = i.enabled.iter().map(|c| c.name()).collect();
            let link = if i.ports.nginx == 80 { i.ip.to_string() } else { addr(i.ip, i.ports.nginx) };
            json!({"seq": i.seq, "ip": i.ip.to_string(), "link": link, "components": comps.join(" "), "self": i.ip == h.ip})
        })
        .collect();
    t.add(
        "etc/nginx/html/index.html",
        0o644,
        template(
            "index.html",
            &json!({
                "home_domain": home_domain, "seq": h.seq, "host": head.host, "is_admin": h.is_admin,
                "version": h.version, "cards": n.cards, "infra": infra, "source": head.source,
                "inventory_hosts": plan.inventory_hosts, "plural": plan.inventory_hosts != 1,
                "dashboards": crate::content::dashboards::portal(&crate::content::dashboards(plan)),
            }),
        )?,
    );
    Ok(())
}

/// The template context of one portal server.
fn server(h: &HostPlan, n: &crate::plan::Nginx, p: &Portal, head: &Head) -> Value {
    let home = matches!(p.kind, PortalKind::Home { .. });
    let https = n.sslmode != SslMode::Disable;
    let enforce = !home && https && (n.sslmode == SslMode::Enforce || p.enforce_https);
    let default = if home { " default_server" } else { "" };
    let mut listen = Vec::new();
    if !enforce {
        listen.push(format!("{}{default}", addr(h.ip, h.ports.nginx)));
    }
    if https {
        listen.push(format!("{} ssl{default}", addr(h.ip, h.ports.nginx_ssl)));
    }
    let creds = credentials_dir(Component::Nginx);
    let tls = https.then(|| {
        json!({
            "cert": p.cert.clone().unwrap_or_else(|| CERT.to_owned()),
            "key": p.key.clone().unwrap_or_else(|| format!("{creds}/pigsty.key")),
        })
    });
    let mut names = vec![p.domain.clone()];
    names.extend(p.domains.iter().cloned());
    let redirect = enforce.then(|| {
        let suffix = if h.ports.nginx_ssl == 443 {
            String::new()
        } else {
            format!(":{}", h.ports.nginx_ssl)
        };
        json!({"listen": addr(h.ip, h.ports.nginx), "port_suffix": suffix})
    });
    let access_log = match &p.kind {
        PortalKind::Endpoint { .. } => {
            Some(p.log.clone().unwrap_or_else(|| format!("{}.log", p.name)))
        }
        PortalKind::Path { .. } => p.log.clone(),
        PortalKind::Home { .. } => None,
    };
    let config = p.config.as_ref().map(|c| {
        c.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut ctx = json!({
        "host": head.host, "name": p.name, "listen": listen, "server_names": names.join(" "),
        "tls": tls, "access_log": access_log, "realm": p.realm, "htpasswd": format!("{creds}/htpasswd"),
        "certbot": p.certbot.is_some(), "acme_root": format!("{}/acme", n.home), "redirect": redirect,
        "config": config,
    });
    let o = ctx.as_object_mut().expect("object");
    match &p.kind {
        PortalKind::Home { root, index } => home_context(h, n, root, *index, o),
        PortalKind::Path { root, index } => {
            o.insert("root".into(), json!(root));
            o.insert("index".into(), json!(index));
        }
        PortalKind::Endpoint {
            endpoint,
            scheme,
            websocket,
        } => {
            o.insert("endpoint".into(), json!(endpoint));
            o.insert("scheme".into(), json!(scheme));
            o.insert("websocket".into(), json!(websocket));
        }
    }
    ctx
}

/// The home server's own context: its root, the backends of the components the host runs,
/// Grafana, nginx's status page, the local repository and the code and notebook ports.
fn home_context(
    h: &HostPlan,
    n: &crate::plan::Nginx,
    root: &str,
    index: bool,
    o: &mut serde_json::Map<String, Value>,
) {
    let url = |port: u16| format!("http://{}", addr(h.ip, port));
    let mut backends = Vec::new();
    for (c, prefix, port) in [
        (Component::Vmetrics, "vmetrics", h.ports.vmetrics),
        (Component::Vlogs, "vlogs", h.ports.vlogs),
        (Component::Vtraces, "vtraces", h.ports.vtraces),
        (Component::Vmalert, "vmalert", h.ports.vmalert),
        (Component::Alertmanager, "alertmgr", h.ports.alertmanager),
        (Component::Blackbox, "blackbox", h.ports.blackbox),
    ] {
        if h.enabled().contains(&c) {
            backends.push(json!({"prefix": prefix, "url": url(port)}));
        }
    }
    let grafana = h.grafana.is_some().then(|| url(h.ports.grafana));
    let repo = n
        .repo
        .as_ref()
        .map(|(home, name)| json!({"home": home, "name": name}));
    o.insert("root".into(), json!(root));
    o.insert("index".into(), json!(index));
    o.insert("backends".into(), json!(backends));
    o.insert("grafana".into(), json!(grafana));
    o.insert("stub_status".into(), json!(n.stub_status));
    o.insert("repo".into(), json!(repo));
    o.insert("code_port".into(), json!(h.ports.code));
    o.insert("jupyter_port".into(), json!(h.ports.jupyter));
}

/// The nginx exporter: its flags as `etc/default/nginxexporter` (it has no configuration file).
pub fn exporter(h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let e = h.nginx_exporter.as_ref().expect("enabled");
    super::env_file(t, head, Component::NginxExporter, &e.flags)
}
