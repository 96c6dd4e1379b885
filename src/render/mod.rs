//! Render: a plan becomes file trees, one per infra host and component, and every node's node
//! files (`node`).
//!
//! Text formats (nginx, ini, dnsmasq, chrony, env files, HTML) come from handlebars templates
//! under `images/<component>/`, in strict mode with HTML escaping off (an explicit `html`
//! helper escapes where HTML needs it). YAML and JSON come from serializers, never templates.
//! Layout of the returned tree: `<host>/<component>/<path in the component's root>` for
//! configuration, `<host>/secrets/<component>/<credential>` (mode 0600) for secrets, which
//! services read as systemd credentials under `/run/credentials/infra-<component>.service/`;
//! `<host>/node/<name>` for the node files of every host of the inventory (infra hosts too).

mod monitor;
mod net;
mod nginx;
pub mod node;

use std::sync::OnceLock;

use anyhow::{Context, Result};
use handlebars::Handlebars;
use serde::Serialize;

use crate::plan::{Component, HostPlan, Plan};
use crate::tree::Tree;

/// The templates, embedded: `(name, text)`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "nginx.conf",
        include_str!("../../images/nginx/nginx.conf.hbs"),
    ),
    ("tls", include_str!("../../images/nginx/tls.hbs")),
    ("common", include_str!("../../images/nginx/common.hbs")),
    ("redirect", include_str!("../../images/nginx/redirect.hbs")),
    (
        "home.conf",
        include_str!("../../images/nginx/home.conf.hbs"),
    ),
    (
        "path.conf",
        include_str!("../../images/nginx/path.conf.hbs"),
    ),
    (
        "endpoint.conf",
        include_str!("../../images/nginx/endpoint.conf.hbs"),
    ),
    (
        "index.html",
        include_str!("../../images/nginx/index.html.hbs"),
    ),
    (
        "grafana.ini",
        include_str!("../../images/grafana/grafana.ini.hbs"),
    ),
    (
        "dnsmasq.conf",
        include_str!("../../images/dnsmasq/dnsmasq.conf.hbs"),
    ),
    (
        "chrony.conf",
        include_str!("../../images/chrony/chrony.conf.hbs"),
    ),
    ("env", include_str!("../../images/common/env.hbs")),
    ("unit.service", include_str!("../../units/service.hbs")),
    ("unit.nspawn", include_str!("../../units/nspawn.hbs")),
    ("unit.container", include_str!("../../units/container.hbs")),
];

/// Compiles the templates on a thread of their own, so that the caller can load and plan the
/// profile meanwhile (compiling them is a tenth of a no-change rebuild); [`template`] waits
/// for it when it comes first.
pub fn prepare() {
    std::thread::spawn(|| {
        registry();
    });
}

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.register_helper("html", Box::new(html_helper));
        for (name, text) in TEMPLATES {
            hb.register_template_string(name, *text)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        hb
    })
}

/// `{{html x}}`: HTML-escapes one value.
fn html_helper(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let v = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let s = match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    out.write(&handlebars::html_escape(&s))?;
    Ok(())
}

/// Renders template `name` with `ctx`.
pub fn template(name: &str, ctx: &impl Serialize) -> Result<String> {
    registry()
        .render(name, ctx)
        .with_context(|| format!("rendering template `{name}`"))
}

/// YAML from a serializer, with a one-line comment header.
pub fn yaml(header: &str, value: &impl Serialize) -> Result<String> {
    Ok(format!("# {header}\n{}", crate::yaml::to_string(value)?))
}

/// Where a component reads its credentials at run time.
pub fn credentials_dir(c: Component) -> String {
    format!("/run/credentials/infra-{}.service", c.name())
}

/// Common template context: who and where.
#[derive(Serialize)]
pub struct Head<'a> {
    /// The infra host's address.
    pub host: String,
    /// The profile's name.
    pub source: &'a str,
}

/// Renders every infra host of `plan` (`<host>/…`) and every node's node files
/// (`<host>/node/…`).
pub fn plan(plan: &Plan) -> Result<Tree> {
    let mut tree = Tree::default();
    for host in &plan.hosts {
        tree.graft(&host.ip.to_string(), self::host(plan, host)?);
    }
    node::plan(plan, &mut tree);
    Ok(tree)
}

/// Renders one infra host: `<component>/…` and `secrets/<component>/…`.
pub fn host(plan: &Plan, h: &HostPlan) -> Result<Tree> {
    let mut tree = Tree::default();
    for c in h.enabled() {
        let sub = component(plan, h, c).with_context(|| format!("host {}: component {c}", h.ip))?;
        tree.graft(c.name(), sub);
    }
    for ((c, name), secret) in &h.secrets {
        if h.enabled().contains(c) {
            tree.add(
                format!("secrets/{}/{name}", c.name()),
                0o600,
                secret.0.as_bytes(),
            );
        }
    }
    Ok(tree)
}

/// Renders one component of one host.
pub fn component(plan: &Plan, h: &HostPlan, c: Component) -> Result<Tree> {
    let head = Head {
        host: h.ip.to_string(),
        source: &plan.name,
    };
    let mut t = Tree::default();
    match c {
        Component::Nginx => nginx::render(plan, h, &head, &mut t)?,
        Component::Grafana => monitor::grafana(plan, h, &head, &mut t)?,
        Component::Vmetrics => monitor::vmetrics(plan, h, &head, &mut t)?,
        Component::Vlogs | Component::Vtraces => monitor::victoria(h, c, &head, &mut t)?,
        Component::Vmalert => monitor::vmalert(plan, h, &head, &mut t)?,
        Component::Alertmanager => monitor::alertmanager(h, &head, &mut t)?,
        Component::Blackbox => monitor::blackbox(h, &head, &mut t)?,
        Component::Dnsmasq => net::dnsmasq(h, &head, &mut t)?,
        Component::Chrony => net::chrony(h, &head, &mut t)?,
        Component::NginxExporter => nginx::exporter(h, &head, &mut t)?,
    }
    Ok(t)
}

/// `etc/default/<component>`: the flags as one environment variable, for `EnvironmentFile=`.
pub fn env_file(t: &mut Tree, head: &Head, c: Component, flags: &[String]) -> Result<()> {
    let var = format!("{}_OPTS", c.name().to_ascii_uppercase());
    let text = template(
        "env",
        &serde_json::json!({
            "component": c.name(), "host": head.host, "source": head.source, "var": var, "flags": flags.join(" "),
        }),
    )?;
    t.add(format!("etc/default/{}", c.name()), 0o644, text);
    Ok(())
}
