//! The image configuration of one component on one host: entrypoint and flags, user, exposed
//! ports, labels and annotations; with the flag and port look-ups the bundle shares.

use std::collections::BTreeMap;

use crate::image::Recipe;
use crate::oci::layout;
use crate::plan::{Component, HostPlan, Plan, PortParam};

/// The image configuration: entrypoint with the plan's flags, user, ports, volumes, labels.
pub(super) fn image_spec(
    plan: &Plan,
    h: &HostPlan,
    c: Component,
    r: &Recipe,
    epoch: u64,
) -> layout::ImageSpec {
    let flags = flags(h, c, r);
    let mut exposed = Vec::new();
    for p in &r.ports {
        let port = h.ports.get(*p);
        if *p == PortParam::DnsPort {
            exposed.push(format!("{port}/udp"));
        }
        exposed.push(format!("{port}/tcp"));
    }
    if c == Component::Chrony {
        exposed.push("123/udp".to_owned());
    }
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        format!("infra-{}", c.name()),
    );
    if let Some(sig) = &r.reload {
        labels.insert("io.infragen.reload-signal".to_owned(), sig.clone());
    }
    let created = layout::rfc3339(epoch);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_owned(),
        created.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.ref.name".to_owned(),
        format!("infra-{}", c.name()),
    );
    annotations.insert(
        "org.opencontainers.image.source".to_owned(),
        plan.name.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.version".to_owned(),
        format!("{} infragen-{}", h.version, env!("CARGO_PKG_VERSION")),
    );
    layout::ImageSpec {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        user: Some(format!("{}:{}", r.user.uid, r.user.gid)),
        entrypoint: r.entrypoint.clone(),
        cmd: flags,
        env: r.env.clone(),
        working_dir: Some("/".to_owned()),
        exposed_ports: exposed,
        volumes: r.volumes.clone(),
        labels,
        stop_signal: None,
        created,
        annotations,
    }
}

/// The plan's flags for a component whose recipe says `args: flags`.
pub fn flags(h: &HostPlan, c: Component, r: &Recipe) -> Vec<String> {
    if r.args.as_deref() != Some("flags") {
        return Vec::new();
    }
    match c {
        Component::Vmetrics => h.vmetrics.as_ref().map(|v| v.flags.clone()),
        Component::Vlogs => h.vlogs.as_ref().map(|v| v.flags.clone()),
        Component::Vtraces => h.vtraces.as_ref().map(|v| v.flags.clone()),
        Component::Vmalert => h.vmalert.as_ref().map(|v| v.flags.clone()),
        Component::Alertmanager => h.alertmanager.as_ref().map(|v| v.flags.clone()),
        Component::Blackbox => h.blackbox.as_ref().map(|v| v.flags.clone()),
        Component::Chrony => h.chrony.as_ref().map(|v| chrony_flags(v.control_clock)),
        _ => None,
    }
    .unwrap_or_default()
}

/// chronyd's flags: foreground, the rendered config, `-x` when it must not set the clock.
pub fn chrony_flags(control_clock: bool) -> Vec<String> {
    // -U: start as an unprivileged user (the unit grants only the capabilities it needs).
    let mut f = vec![
        "-d".to_owned(),
        "-U".to_owned(),
        "-f".to_owned(),
        "/etc/chrony/chrony.conf".to_owned(),
    ];
    if !control_clock {
        f.push("-x".to_owned());
    }
    f
}
