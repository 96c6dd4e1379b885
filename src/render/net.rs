//! dnsmasq and chrony.

use anyhow::Result;
use serde_json::json;

use super::{template, Head};
use crate::plan::HostPlan;
use crate::tree::Tree;

/// `etc/dnsmasq.conf` and one hosts file per record set under `etc/dnsmasq.d/pigsty/`.
pub fn dnsmasq(h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let d = h.dnsmasq.as_ref().expect("enabled");
    let listen: Vec<String> = d.listen.iter().map(ToString::to_string).collect();
    t.add(
        "etc/dnsmasq.conf",
        0o644,
        template(
            "dnsmasq.conf",
            &json!({
                "host": head.host, "source": head.source, "port": d.port, "listen": listen,
            }),
        )?,
    );
    // The drop-in directory exists in the image (the checker reads it empty); at run time the
    // host's directory is bound over it.
    t.add(
        "etc/dnsmasq.d/local/README",
        0o644,
        "Operator drop-ins: *.conf files here are read by dnsmasq at its start (conf-dir).\n\
         At run time this directory is the host's <infra_data>/dnsmasq/etc/dnsmasq.d/local/.\n",
    );
    for (name, lines) in &d.records {
        let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        if text.is_empty() {
            text.push_str("# no records\n");
        }
        t.add(format!("etc/dnsmasq.d/pigsty/{name}"), 0o644, text);
    }
    Ok(())
}

/// `etc/chrony/chrony.conf` and the flags (`-x` when chrony must not set the clock).
pub fn chrony(h: &HostPlan, head: &Head, t: &mut Tree) -> Result<()> {
    let c = h.chrony.as_ref().expect("enabled");
    t.add(
        "etc/chrony/chrony.conf",
        0o644,
        template(
            "chrony.conf",
            &json!({
                "host": head.host, "source": head.source, "sources": c.sources, "allow": c.allow,
                "bind": c.bind.to_string(), "control_clock": c.control_clock,
            }),
        )?,
    );
    let flags = c.flags();
    super::env_file(t, head, crate::plan::Component::Chrony, &flags)
}
