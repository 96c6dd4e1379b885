//! Port parameters by name: the one place a parameter name (`grafana_port`) maps to a field of
//! [`Ports`], for the plan reading the profile and for recipes naming what a component exposes.
//!
//! A recipe names its ports as [`PortParam`]s, parsed strictly: a name that is not a port
//! parameter is refused when the recipe is read, never looked up later as port 0.

use super::read::Reader;
use super::{PortParam, Ports};

impl Ports {
    /// The value of port parameter `p` on this host.
    pub fn get(&self, p: PortParam) -> u16 {
        match p {
            PortParam::NginxPort => self.nginx,
            PortParam::NginxSslPort => self.nginx_ssl,
            PortParam::NginxExporterPort => self.nginx_exporter,
            PortParam::GrafanaPort => self.grafana,
            PortParam::VmetricsPort => self.vmetrics,
            PortParam::VlogsPort => self.vlogs,
            PortParam::VtracesPort => self.vtraces,
            PortParam::VmalertPort => self.vmalert,
            PortParam::AlertmanagerPort => self.alertmanager,
            PortParam::AlertmanagerClusterPort => self.alertmanager_cluster,
            PortParam::BlackboxPort => self.blackbox,
            PortParam::DnsPort => self.dns,
            PortParam::CodePort => self.code,
            PortParam::JupyterPort => self.jupyter,
        }
    }
}

/// Every port of one host, as the profile sets them.
pub(super) fn read(r: &mut Reader) -> Ports {
    let mut port = |p: PortParam| r.port(p.name());
    Ports {
        nginx: port(PortParam::NginxPort),
        nginx_ssl: port(PortParam::NginxSslPort),
        nginx_exporter: port(PortParam::NginxExporterPort),
        grafana: port(PortParam::GrafanaPort),
        vmetrics: port(PortParam::VmetricsPort),
        vlogs: port(PortParam::VlogsPort),
        vtraces: port(PortParam::VtracesPort),
        vmalert: port(PortParam::VmalertPort),
        alertmanager: port(PortParam::AlertmanagerPort),
        alertmanager_cluster: port(PortParam::AlertmanagerClusterPort),
        blackbox: port(PortParam::BlackboxPort),
        dns: port(PortParam::DnsPort),
        code: port(PortParam::CodePort),
        jupyter: port(PortParam::JupyterPort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parameters_and_parse_back() {
        for p in PortParam::ALL {
            assert!(crate::params::get(p.name()).is_some(), "{p}");
            let back: PortParam = crate::yaml::from_str_as(p.name()).unwrap();
            assert_eq!(back, p);
        }
        let e = crate::yaml::from_str_as::<PortParam>("grafana").unwrap_err();
        assert!(
            e.to_string().starts_with("unknown variant `grafana`"),
            "{e}"
        );
    }

    #[test]
    fn every_field_is_reachable() {
        // Distinct values per field: a look-up returning the wrong field shows.
        let ports = Ports {
            nginx: 1,
            nginx_ssl: 2,
            nginx_exporter: 3,
            grafana: 4,
            vmetrics: 5,
            vlogs: 6,
            vtraces: 7,
            vmalert: 8,
            alertmanager: 9,
            alertmanager_cluster: 10,
            blackbox: 11,
            dns: 12,
            code: 13,
            jupyter: 14,
        };
        let got: Vec<u16> = PortParam::ALL.iter().map(|p| ports.get(*p)).collect();
        assert_eq!(got, (1..=14).collect::<Vec<u16>>());
    }
}
