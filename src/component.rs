//! The INFRA components and their port parameters: the facts about a component that every
//! stage shares (its name, the parameter that enables it, the names of its ports), below the plan
//! that reads their values, the recipes that build their images and the lock that pins them.
//!
//! It owns no values: a host's ports are [`crate::plan::Ports`], read by the plan.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The ten INFRA components infragen renders for every infra host.
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
}

impl Component {
    /// Every component, in render order.
    pub const ALL: [Component; 10] = [
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
    ];

    /// The component's name: directory, image and unit suffix (`infra-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Grafana => "grafana",
            Self::Vmetrics => "vmetrics",
            Self::Vlogs => "vlogs",
            Self::Vtraces => "vtraces",
            Self::Vmalert => "vmalert",
            Self::Alertmanager => "alertmanager",
            Self::Blackbox => "blackbox",
            Self::Dnsmasq => "dnsmasq",
            Self::Chrony => "chrony",
        }
    }

    /// The parameter that enables it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Nginx => "nginx_enabled",
            Self::Grafana => "grafana_enabled",
            Self::Vmetrics => "vmetrics_enabled",
            Self::Vlogs => "vlogs_enabled",
            Self::Vtraces => "vtraces_enabled",
            Self::Vmalert => "vmalert_enabled",
            Self::Alertmanager => "alertmanager_enabled",
            Self::Blackbox => "blackbox_enabled",
            Self::Dnsmasq => "dns_enabled",
            Self::Chrony => "node_ntp_enabled",
        }
    }
}

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
