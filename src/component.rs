//! The INFRA components and their port parameters: the facts about a component that every
//! stage shares, one [`Description`] per component (its name, the parameter that enables it, its
//! image recipe, its ports, its checker), below the plan that reads their values, the recipes
//! that build their images, the renderers and the checkers.
//!
//! It owns no values: a host's ports are [`crate::plan::Ports`], read by the plan.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The eleven INFRA components infragen renders for every infra host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// nginx: portal, reverse proxy, local repository.
    Nginx,
    /// Grafana.
    Grafana,
    /// `VictoriaMetrics`.
    Vmetrics,
    /// `VictoriaLogs`.
    Vlogs,
    /// `VictoriaTraces`.
    Vtraces,
    /// vmalert.
    Vmalert,
    /// Alertmanager.
    Alertmanager,
    /// Blackbox exporter.
    Blackbox,
    /// dnsmasq.
    Dnsmasq,
    /// chrony.
    Chrony,
    /// The nginx exporter: nginx's `stub_status` as Prometheus metrics (`nginx_*`).
    NginxExporter,
}

impl Component {
    /// Every component, in render order.
    pub const ALL: [Component; 11] = [
        Self::Nginx,
        Self::Grafana,
        Self::Vmetrics,
        Self::Vlogs,
        Self::Vtraces,
        Self::Vmalert,
        Self::Alertmanager,
        Self::Blackbox,
        Self::Dnsmasq,
        Self::Chrony,
        Self::NginxExporter,
    ];

    /// What the component is: its one description in [`DESCRIPTIONS`].
    pub fn describe(self) -> &'static Description {
        let d = &DESCRIPTIONS[self as usize];
        debug_assert_eq!(d.component, self);
        d
    }

    /// The component's name: directory, image and unit suffix (`infra-<name>`).
    pub fn name(self) -> &'static str {
        self.describe().name
    }

    /// The parameter that enables it.
    pub fn flag(self) -> &'static str {
        self.describe().enabled_by
    }
}

/// Everything about one component that is not code of its own: the stages read these facts
/// from here, so that adding a component adds one entry (plus its templates, recipe, settings,
/// renderer and checker: see docs/architecture.md, "Adding a component").
#[derive(Debug)]
pub struct Description {
    /// The component described (the entry's place in [`DESCRIPTIONS`] is its enum order).
    pub component: Component,
    /// Directory, image and unit suffix (`infra-<name>`).
    pub name: &'static str,
    /// The boolean parameter that enables it.
    pub enabled_by: &'static str,
    /// Its image recipe, `images/<name>/image.yml` (embedded).
    pub recipe: &'static str,
    /// The ports it listens on, which no other enabled component of the host may share, in
    /// the order they are checked.
    pub ports: &'static [Port],
    /// The real program that checks its rendered configuration.
    pub checker: Checker,
}

/// A port a component listens on.
#[derive(Debug)]
pub struct Port {
    /// Its parameter.
    pub param: PortParam,
    /// The boolean parameter without which the port is not used (`alertmanager_cluster`).
    pub only_with: Option<&'static str>,
}

/// How a component's rendered configuration is checked.
#[derive(Debug)]
pub struct Checker {
    /// What reports call the check (`nginx -t`).
    pub name: &'static str,
    /// The names the checking program may have on `PATH`, the first one preferred; none for a
    /// check infragen makes itself.
    pub programs: &'static [&'static str],
}

const fn port(param: PortParam) -> Port {
    Port {
        param,
        only_with: None,
    }
}

/// One description per component, in the order of [`Component::ALL`].
pub const DESCRIPTIONS: [Description; 11] = [
    Description {
        component: Component::Nginx,
        name: "nginx",
        enabled_by: "nginx_enabled",
        recipe: include_str!("../images/nginx/image.yml"),
        ports: &[port(PortParam::NginxPort), port(PortParam::NginxSslPort)],
        checker: Checker {
            name: "nginx -t",
            programs: &["nginx"],
        },
    },
    Description {
        component: Component::Grafana,
        name: "grafana",
        enabled_by: "grafana_enabled",
        recipe: include_str!("../images/grafana/image.yml"),
        ports: &[port(PortParam::GrafanaPort)],
        checker: Checker {
            name: "grafana.ini + provisioning keys (built-in)",
            programs: &[],
        },
    },
    Description {
        component: Component::Vmetrics,
        name: "vmetrics",
        enabled_by: "vmetrics_enabled",
        recipe: include_str!("../images/vmetrics/image.yml"),
        ports: &[port(PortParam::VmetricsPort)],
        checker: Checker {
            name: "victoria-metrics -dryRun",
            programs: &["victoria-metrics"],
        },
    },
    Description {
        component: Component::Vlogs,
        name: "vlogs",
        enabled_by: "vlogs_enabled",
        recipe: include_str!("../images/vlogs/image.yml"),
        ports: &[port(PortParam::VlogsPort)],
        checker: Checker {
            name: "flags (built-in; Debian ships no binary)",
            programs: &[],
        },
    },
    Description {
        component: Component::Vtraces,
        name: "vtraces",
        enabled_by: "vtraces_enabled",
        recipe: include_str!("../images/vtraces/image.yml"),
        ports: &[port(PortParam::VtracesPort)],
        checker: Checker {
            name: "flags (built-in; Debian ships no binary)",
            programs: &[],
        },
    },
    Description {
        component: Component::Vmalert,
        name: "vmalert",
        enabled_by: "vmalert_enabled",
        recipe: include_str!("../images/vmalert/image.yml"),
        ports: &[port(PortParam::VmalertPort)],
        checker: Checker {
            name: "vmalert -dryRun",
            programs: &["vmalert"],
        },
    },
    Description {
        component: Component::Alertmanager,
        name: "alertmanager",
        enabled_by: "alertmanager_enabled",
        recipe: include_str!("../images/alertmanager/image.yml"),
        ports: &[
            port(PortParam::AlertmanagerPort),
            Port {
                param: PortParam::AlertmanagerClusterPort,
                only_with: Some("alertmanager_cluster"),
            },
        ],
        checker: Checker {
            name: "amtool check-config",
            programs: &["amtool"],
        },
    },
    Description {
        component: Component::Blackbox,
        name: "blackbox",
        enabled_by: "blackbox_enabled",
        recipe: include_str!("../images/blackbox/image.yml"),
        ports: &[port(PortParam::BlackboxPort)],
        checker: Checker {
            name: "blackbox_exporter --config.check",
            programs: &["blackbox_exporter", "prometheus-blackbox-exporter"],
        },
    },
    Description {
        component: Component::Dnsmasq,
        name: "dnsmasq",
        enabled_by: "dns_enabled",
        recipe: include_str!("../images/dnsmasq/image.yml"),
        ports: &[port(PortParam::DnsPort)],
        checker: Checker {
            name: "dnsmasq --test",
            programs: &["dnsmasq"],
        },
    },
    Description {
        component: Component::Chrony,
        name: "chrony",
        enabled_by: "node_ntp_enabled",
        recipe: include_str!("../images/chrony/image.yml"),
        ports: &[],
        checker: Checker {
            name: "chronyd -p",
            programs: &["chronyd"],
        },
    },
    Description {
        component: Component::NginxExporter,
        name: "nginxexporter",
        enabled_by: "nginx_exporter_enabled",
        recipe: include_str!("../images/nginxexporter/image.yml"),
        ports: &[port(PortParam::NginxExporterPort)],
        // It has no configuration file and no check mode: its flags are parsed by the program
        // itself, which `-version` then makes exit before it connects or listens.
        checker: Checker {
            name: "prometheus-nginx-exporter <flags> -version",
            programs: &["prometheus-nginx-exporter", "nginx_exporter"],
        },
    },
];

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A port parameter of an infra host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PortParam {
    NginxPort,
    NginxSslPort,
    NginxExporterPort,
    GrafanaPort,
    VmetricsPort,
    VlogsPort,
    VtracesPort,
    VmalertPort,
    AlertmanagerPort,
    AlertmanagerClusterPort,
    BlackboxPort,
    DnsPort,
    CodePort,
    JupyterPort,
}

impl PortParam {
    /// Every port parameter.
    pub const ALL: [PortParam; 14] = [
        PortParam::NginxPort,
        PortParam::NginxSslPort,
        PortParam::NginxExporterPort,
        PortParam::GrafanaPort,
        PortParam::VmetricsPort,
        PortParam::VlogsPort,
        PortParam::VtracesPort,
        PortParam::VmalertPort,
        PortParam::AlertmanagerPort,
        PortParam::AlertmanagerClusterPort,
        PortParam::BlackboxPort,
        PortParam::DnsPort,
        PortParam::CodePort,
        PortParam::JupyterPort,
    ];

    /// The parameter's name in a profile.
    pub fn name(self) -> &'static str {
        match self {
            PortParam::NginxPort => "nginx_port",
            PortParam::NginxSslPort => "nginx_ssl_port",
            PortParam::NginxExporterPort => "nginx_exporter_port",
            PortParam::GrafanaPort => "grafana_port",
            PortParam::VmetricsPort => "vmetrics_port",
            PortParam::VlogsPort => "vlogs_port",
            PortParam::VtracesPort => "vtraces_port",
            PortParam::VmalertPort => "vmalert_port",
            PortParam::AlertmanagerPort => "alertmanager_port",
            PortParam::AlertmanagerClusterPort => "alertmanager_cluster_port",
            PortParam::BlackboxPort => "blackbox_port",
            PortParam::DnsPort => "dns_port",
            PortParam::CodePort => "code_port",
            PortParam::JupyterPort => "jupyter_port",
        }
    }
}

impl std::fmt::Display for PortParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_has_its_own_description_in_order() {
        for (i, c) in Component::ALL.into_iter().enumerate() {
            let d = c.describe();
            assert_eq!(d.component, c);
            assert_eq!(c as usize, i, "{c}: ALL is in enum order");
            // The embedded recipe is the component's own file.
            let file = format!("{}/images/{}/image.yml", env!("CARGO_MANIFEST_DIR"), d.name);
            assert_eq!(d.recipe, std::fs::read_to_string(&file).unwrap(), "{file}");
        }
        let mut params: Vec<PortParam> = DESCRIPTIONS
            .iter()
            .flat_map(|d| d.ports.iter().map(|p| p.param))
            .collect();
        let n = params.len();
        params.sort();
        params.dedup();
        assert_eq!(params.len(), n, "a port parameter belongs to one component");
    }
}
