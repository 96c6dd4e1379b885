//! The image configuration of one component on one host: entrypoint and flags, user, exposed
//! ports, labels and annotations (the flags are the plan's, [`crate::plan::HostPlan::flags`]).

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
) -> anyhow::Result<layout::ImageSpec> {
    let flags = h.flags(c, r);
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
    let created = layout::rfc3339(epoch)?;
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
    Ok(layout::ImageSpec {
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
    })
}
