//! The command lines the plan gives its components: the flags of a component whose recipe says
//! `args: flags`, read by the image configuration, the bundle's units and the rendered env files
//! alike, so that every runtime starts a component the same way.

use crate::image::Recipe;

use super::{Chrony, Component, HostPlan};

impl HostPlan {
    /// The plan's flags for component `c` when its recipe `r` says `args: flags`; else none.
    pub fn flags(&self, c: Component, r: &Recipe) -> Vec<String> {
        if r.args.as_deref() != Some("flags") {
            return Vec::new();
        }
        self.own_flags(c).unwrap_or_default()
    }

    /// The flags the plan computed for component `c`, whatever its recipe says: none for a
    /// component that is disabled or configured by files alone (the checkers read these).
    pub fn own_flags(&self, c: Component) -> Option<Vec<String>> {
        match c {
            Component::Vmetrics => self.vmetrics.as_ref().map(|v| v.flags.clone()),
            Component::Vlogs => self.vlogs.as_ref().map(|v| v.flags.clone()),
            Component::Vtraces => self.vtraces.as_ref().map(|v| v.flags.clone()),
            Component::Vmalert => self.vmalert.as_ref().map(|v| v.flags.clone()),
            Component::Alertmanager => self.alertmanager.as_ref().map(|v| v.flags.clone()),
            Component::Blackbox => self.blackbox.as_ref().map(|v| v.flags.clone()),
            Component::Chrony => self.chrony.as_ref().map(Chrony::flags),
            Component::NginxExporter => self.nginx_exporter.as_ref().map(|v| v.flags.clone()),
            Component::Nginx | Component::Grafana | Component::Dnsmasq => None,
        }
    }
}

impl Chrony {
    /// chronyd's flags: foreground, the rendered config, `-x` when it must not set the clock.
    pub fn flags(&self) -> Vec<String> {
        // -U: start as an unprivileged user (the unit grants only the capabilities it needs).
        let mut f = vec![
            "-d".to_owned(),
            "-U".to_owned(),
            "-f".to_owned(),
            "/etc/chrony/chrony.conf".to_owned(),
        ];
        if !self.control_clock {
            f.push("-x".to_owned());
        }
        f
    }
}
