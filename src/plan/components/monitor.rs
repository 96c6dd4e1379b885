//! The command lines of the monitoring components: `VictoriaMetrics`, `VictoriaLogs` and
//! `VictoriaTraces`, vmalert, Alertmanager and the blackbox exporter. Each reads its own
//! parameters and its peers' ports; [`super::host`] calls one only for an enabled component.

use std::net::IpAddr;

use super::super::read::Reader;
use super::super::{Component, InfraNode};
use super::lists::pgrds;
use super::{listen, url, Alertmanager, Blackbox, NginxExporter, Victoria, Vmalert, Vmetrics};
use crate::duration::Duration;

/// `VictoriaMetrics` on `node`, scraping every `scrape_interval`.
pub(super) fn vmetrics(r: &mut Reader, node: &InfraNode, scrape_interval: Duration) -> Vmetrics {
    let (ip, p) = (node.ip, node.ports);
    let mut flags = vec![
        "-storageDataPath=/infra/metrics".to_owned(),
        format!("-httpListenAddr={}", listen(ip, p.vmetrics)),
        "-promscrape.config=/etc/vmetrics/prometheus.yml".to_owned(),
    ];
    flags.extend(r.flags("vmetrics_options"));
    let metrics_path = r.path("exporter_metrics_path");
    let scrape_timeout = r.duration("vmetrics_scrape_timeout");
    // Prometheus refuses such a config; vmagent would silently cut the timeout.
    if scrape_timeout.millis() > scrape_interval.millis() && scrape_interval.millis() != Some(0) {
        let path = r
            .var("vmetrics_scrape_timeout")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(
            &path,
            format!(
                "scrape timeout `{scrape_timeout}` is longer than the scrape interval \
                 `{scrape_interval}`"
            ),
        );
    }
    Vmetrics {
        flags,
        scrape_interval,
        scrape_timeout,
        metrics_path,
        minio_https: r.bool("minio_https"),
        patroni_ssl: r.bool("patroni_ssl_enabled"),
        redis_exporter_port: r.port("redis_exporter_port"),
        blackbox: listen(ip, p.blackbox),
        pgrds: pgrds(r, ip),
    }
}

/// `VictoriaLogs` or `VictoriaTraces`: data under `/infra/<dir>`, listening on `port`, plus the
/// profile's `options` parameter.
pub(super) fn victoria(
    r: &mut Reader,
    ip: IpAddr,
    dir: &str,
    port: u16,
    options: &str,
) -> Victoria {
    let mut flags = vec![
        format!("-storageDataPath=/infra/{dir}"),
        format!("-httpListenAddr={}", listen(ip, port)),
    ];
    flags.extend(r.flags(options));
    Victoria { flags }
}

/// The infra hosts that run Alertmanager, and whether they form a cluster
/// (`alertmanager_cluster`).
pub(super) struct Alerting<'a> {
    /// Every infra host with Alertmanager enabled.
    pub peers: Vec<&'a InfraNode>,
    /// `alertmanager_cluster`.
    pub clustered: bool,
}

/// vmalert on `node`: reads and writes the local `VictoriaMetrics`, notifies the Alertmanagers
/// of `alerting`, evaluates every `interval`; links point at the portal's `home_domain`.
pub(super) fn vmalert(
    r: &mut Reader,
    node: &InfraNode,
    alerting: &Alerting,
    interval: Duration,
    home_domain: &str,
) -> Vmalert {
    let (ip, p) = (node.ip, node.ports);
    let vm = url(ip, p.vmetrics);
    let mut flags = vec![
        format!("-datasource.url={vm}"),
        format!("-remoteRead.url={vm}"),
        format!("-remoteWrite.url={vm}"),
    ];
    // Clustered: notify every peer. Otherwise the local Alertmanager, or, when this host runs
    // none, every infra host's (vmalert 1.79, Debian's, has no `-notifier.blackhole`).
    let peers = &alerting.peers;
    let local: Vec<&InfraNode> = peers.iter().copied().filter(|n| n.ip == ip).collect();
    let notify = if alerting.clustered || local.is_empty() {
        peers.clone()
    } else {
        local
    };
    if notify.is_empty() {
        let path = r
            .var("vmalert_enabled")
            .map(|v| v.path.clone())
            .unwrap_or_default();
        r.problem(
            &path,
            "vmalert needs an Alertmanager: enable `alertmanager_enabled` on an infra host or \
             disable vmalert",
        );
    }
    flags.extend(
        notify
            .iter()
            .map(|n| format!("-notifier.url={}", url(n.ip, n.ports.alertmanager))),
    );
    flags.push(format!("-httpListenAddr={}", listen(ip, p.vmalert)));
    flags.push("-rule=/etc/vmalert/rules/*.yml".to_owned());
    flags.push(format!("-evaluationInterval={interval}"));
    flags.push(format!("-external.url=http://{home_domain}/vmalert"));
    flags.extend(r.flags("vmalert_options"));
    Vmalert {
        flags,
        agent_ports: agent_ports(r),
    }
}

/// The ports of the agents whose `*_up` alert records vmalert's rules name.
fn agent_ports(r: &mut Reader) -> Vec<(String, u16)> {
    [
        ("node_up", "node_exporter_port"),
        ("haproxy_up", "haproxy_exporter_port"),
        ("keepalived_exporter_up", "vip_exporter_port"),
        ("docker_up", "docker_exporter_port"),
        ("vector_up", "vector_port"),
        ("pg_exporter_agent_up", "pg_exporter_port"),
        ("pgbouncer_exporter_agent_up", "pgbouncer_exporter_port"),
        ("pgbackrest_exporter_agent_up", "pgbackrest_exporter_port"),
        ("patroni_up", "patroni_port"),
    ]
    .into_iter()
    .map(|(record, param)| (record.to_owned(), r.port(param)))
    .collect()
}

/// Alertmanager on `node`: alone, or gossiping with the other peers of `alerting`.
pub(super) fn alertmanager(
    r: &mut Reader,
    node: &InfraNode,
    alerting: &Alerting,
    home_domain: &str,
) -> Alertmanager {
    let (ip, p) = (node.ip, node.ports);
    let mut flags = vec![
        "--config.file=/etc/alertmanager/alertmanager.yml".to_owned(),
        format!("--web.listen-address={}", listen(ip, p.alertmanager)),
        "--storage.path=/infra/alertmgr".to_owned(),
        format!("--web.external-url=http://{home_domain}/alertmgr"),
        "--web.route-prefix=/".to_owned(),
    ];
    if alerting.clustered {
        let cluster = listen(ip, p.alertmanager_cluster);
        flags.push(format!("--cluster.listen-address={cluster}"));
        flags.push(format!("--cluster.advertise-address={cluster}"));
        for peer in alerting.peers.iter().filter(|n| n.ip != ip) {
            flags.push(format!(
                "--cluster.peer={}",
                listen(peer.ip, peer.ports.alertmanager_cluster)
            ));
        }
    } else {
        flags.push("--cluster.listen-address=".to_owned());
    }
    flags.extend(r.flags("alertmanager_options"));
    Alertmanager { flags }
}

/// The blackbox exporter on `node`.
pub(super) fn blackbox(r: &mut Reader, node: &InfraNode) -> Blackbox {
    let mut flags = vec![
        "--config.file=/etc/blackbox/blackbox.yml".to_owned(),
        format!(
            "--web.listen-address={}",
            listen(node.ip, node.ports.blackbox)
        ),
    ];
    flags.extend(r.flags("blackbox_options"));
    Blackbox { flags }
}

/// The nginx exporter on `node`: it reads nginx's `stub_status` at `/nginx` of the home server,
/// through the host's own address (the location allows nothing else), and serves the metrics
/// on `nginx_exporter_port`. Pigsty reads `http://127.0.0.1:80/nginx`; every infragen service
/// binds to the host address instead (docs/profiles.md), and `nginx_port` is honoured.
pub(super) fn nginx_exporter(node: &InfraNode) -> NginxExporter {
    let p = node.ports;
    NginxExporter {
        flags: vec![
            format!(
                "-nginx.scrape-uri=http://{}/nginx",
                listen(node.ip, p.nginx)
            ),
            format!("-web.listen-address={}", listen(node.ip, p.nginx_exporter)),
            // nginx may still be starting: wait for it rather than fail the first start.
            "-nginx.retries=30".to_owned(),
            "-nginx.retry-interval=1s".to_owned(),
        ],
    }
}

/// Which infra hosts run Alertmanager, for vmalert and Alertmanager itself.
pub(super) fn alerting<'a>(r: &mut Reader, infra: &'a [InfraNode]) -> Alerting<'a> {
    let clustered = r.bool("alertmanager_cluster");
    let peers = infra
        .iter()
        .filter(|n| n.enabled.contains(&Component::Alertmanager))
        .collect();
    Alerting { peers, clustered }
}
