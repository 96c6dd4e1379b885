//! The data modules' dashboards: `pgsql-cluster` and `pgsql-instance` (`pg_exporter`,
//! `pgbouncer_exporter`, Patroni), `etcd-overview`, `minio-overview` (`MinIO`'s v3 metrics) and
//! `redis-overview` (`redis_exporter`), labelled as `plan::targets` labels their targets.

use super::model::Kind::{Gauge, Stat, Table, Timeseries};
use super::model::{cell, field, var, Board, Link, Panel, Row};
use super::{top_links, v};

/// Every data-module dashboard.
pub fn boards() -> Vec<Board> {
    vec![pgsql_cluster(), pgsql_instance(), etcd(), minio(), redis()]
}

fn board(
    uid: &'static str,
    title: &'static str,
    folder: &'static str,
    description: &'static str,
) -> Board {
    Board {
        uid,
        title,
        folder,
        tags: &[],
        description,
        vars: Vec::new(),
        links: top_links(),
        rows: Vec::new(),
    }
}

fn pgsql_cluster() -> Board {
    let to_ins = |value: String| Link::to("PGSQL instance", "pgsql-instance", &[("ins", &value)]);
    let members = Panel::new(Table, "Members", "none")
        .q(r#"pg_up{cls="$cls"}"#, "up")
        .q(r#"max by (ins, ip) (pg_in_recovery{cls="$cls"})"#, "replica")
        .q(r#"sum by (ins, ip) (pg_db_numbackends{cls="$cls"})"#, "backends")
        .q(r#"max by (ins, ip) (pgbouncer_up{cls="$cls"})"#, "pgbouncer")
        .q(r#"max by (ins, ip) (patroni_up{cls="$cls"})"#, "patroni")
        .link(to_ins(cell("ins")))
        .size(24, 8)
        .desc("Every instance of the cluster: exporter up, replica (1) or primary (0), backends, pgbouncer and Patroni up. Click a row for the instance.");
    let graphs = vec![
        Panel::new(Timeseries, "Commits", "short")
            .q(
                r#"sum by (ins) (rate(pg_db_xact_commit{cls="$cls"}[$__rate_interval]))"#,
                "{{ins}}",
            )
            .link(to_ins(field("ins")))
            .desc("Transactions committed per second, per instance."),
        Panel::new(Timeseries, "Backends", "none")
            .q(r#"sum by (ins) (pg_db_numbackends{cls="$cls"})"#, "{{ins}}")
            .link(to_ins(field("ins")))
            .desc("Server processes connected, per instance."),
        Panel::new(Timeseries, "Replication lag", "s")
            .q(
                r#"max by (ins, appname) (pg_repl_replay_lag{cls="$cls"})"#,
                "{{ins}} → {{appname}}",
            )
            .desc("Replay lag of each replica as its upstream reports it."),
    ];
    let mut b = board("pgsql-cluster", "PGSQL Cluster", "pgsql", "One PostgreSQL cluster (`var-cls`): members, roles, commits, backends, replication lag; drills down to pgsql-instance.");
    b.tags = &["pgsql", "cluster"];
    b.vars = vec![v("cls", "Cluster", "pg_up", "cls")];
    b.rows = vec![
        Row {
            title: "Members",
            panels: vec![members],
        },
        Row {
            title: "Workload",
            panels: graphs,
        },
    ];
    b
}

fn pgsql_instance() -> Board {
    let s = r#"ins="$ins""#;
    let summary = vec![
        Panel::new(Stat, "Exporter", "none")
            .q(format!("pg_up{{{s}}}"), "{{ins}}")
            .up_down()
            .size(4, 4)
            .desc("Whether pg_exporter reaches the server."),
        Panel::new(Stat, "Role", "none")
            .q(format!("pg_in_recovery{{{s}}}"), "{{ins}}")
            .size(4, 4)
            .role()
            .desc("Primary or replica (`pg_in_recovery`)."),
        Panel::new(Stat, "Uptime", "s")
            .q(format!("pg_uptime{{{s}}}"), "{{ins}}")
            .size(4, 4)
            .desc("Time since the postmaster started."),
        Panel::new(Gauge, "Connections used", "percentunit")
            .q(
                format!("sum(pg_db_numbackends{{{s}}}) / max(pg_setting_max_connections{{{s}}})"),
                "used",
            )
            .range(0.0, 1.0)
            .thresholds(&[(0.7, "orange"), (0.9, "red")])
            .size(4, 4)
            .desc("Backends over `max_connections`."),
        Panel::new(Stat, "pgbouncer", "none")
            .q(format!("pgbouncer_up{{{s}}}"), "{{ins}}")
            .up_down()
            .size(4, 4)
            .desc("Whether pgbouncer_exporter reaches pgbouncer."),
        Panel::new(Stat, "Patroni", "none")
            .q(format!("patroni_up{{{s}}}"), "{{ins}}")
            .up_down()
            .size(4, 4)
            .desc("Whether Patroni runs this instance (Patroni's own metric)."),
    ];
    let work = vec![
        Panel::new(Timeseries, "Transactions", "short")
            .q(format!("sum(rate(pg_db_xact_commit{{{s}}}[$__rate_interval]))"), "commit")
            .q(format!("sum(rate(pg_db_xact_rollback{{{s}}}[$__rate_interval]))"), "rollback")
            .desc("Commits and rollbacks per second, every database."),
        Panel::new(Timeseries, "Rows", "short")
            .q(format!("sum(rate(pg_db_tup_fetched{{{s}}}[$__rate_interval]))"), "fetched")
            .q(format!("sum(rate(pg_db_tup_inserted{{{s}}}[$__rate_interval]))"), "inserted")
            .q(format!("sum(rate(pg_db_tup_updated{{{s}}}[$__rate_interval]))"), "updated")
            .q(format!("sum(rate(pg_db_tup_deleted{{{s}}}[$__rate_interval]))"), "deleted")
            .desc("Rows fetched and changed per second, every database."),
        Panel::new(Timeseries, "Cache hit ratio", "percentunit")
            .q(format!("sum(rate(pg_db_blks_hit{{{s}}}[$__rate_interval])) / (sum(rate(pg_db_blks_hit{{{s}}}[$__rate_interval])) + sum(rate(pg_db_blks_read{{{s}}}[$__rate_interval])))"), "hit ratio")
            .range(0.0, 1.0)
            .desc("Share of block reads served from shared buffers."),
        Panel::new(Timeseries, "Backends by database", "none")
            .q(format!("pg_db_numbackends{{{s}}}"), "{{datname}}")
            .desc("Server processes connected, per database."),
        Panel::new(Timeseries, "Transaction ID age", "short")
            .q(format!("pg_db_age{{{s}}}"), "{{datname}}")
            .desc("Age of each database's oldest transaction ID (wraparound at 2^31)."),
        Panel::new(Timeseries, "Replication lag", "s")
            .q(format!("pg_repl_replay_lag{{{s}}}"), "{{appname}}")
            .desc("Replay lag of each replica this instance feeds."),
    ];
    let mut b = board("pgsql-instance", "PGSQL Instance", "pgsql", "One PostgreSQL instance (`var-ins`): role, uptime, connections, transactions, rows, cache, XID age, replication, pgbouncer and Patroni.");
    b.tags = &["pgsql", "instance"];
    b.vars = vec![
        v("ins", "Instance", "pg_up", "ins"),
        v("ip", "IP", r#"pg_up{ins="$ins"}"#, "ip"),
        v("cls", "Cluster", r#"pg_up{ins="$ins"}"#, "cls"),
    ];
    b.links.push(Link::to(
        "PGSQL Cluster",
        "pgsql-cluster",
        &[("cls", &var("cls"))],
    ));
    b.links
        .push(Link::to("Node", "node-instance", &[("id", &var("ip"))]));
    b.rows = vec![
        Row {
            title: "Summary",
            panels: summary,
        },
        Row {
            title: "Workload",
            panels: work,
        },
    ];
    b
}

fn etcd() -> Board {
    let s = r#"job="etcd", cls="$cls""#;
    let node = Link::to("Node", "node-instance", &[("id", &cell("ip"))]);
    let members = Panel::new(Table, "Members", "none")
        .q(format!("up{{{s}}}"), "up")
        .q(format!("max by (ins, ip) (etcd_server_has_leader{{{s}}})"), "has leader")
        .q(format!("max by (ins, ip) (etcd_server_is_leader{{{s}}})"), "leader")
        .q(format!("max by (ins, ip) (etcd_mvcc_db_total_size_in_bytes{{{s}}})"), "db bytes")
        .link(node)
        .size(24, 7)
        .desc("Every member: scrape up, whether it sees a leader, whether it is the leader, database size. Click a row for its node.");
    let graphs = vec![
        Panel::new(Timeseries, "Leader changes", "short")
            .q(format!("sum by (ins) (increase(etcd_server_leader_changes_seen_total{{{s}}}[1h]))"), "{{ins}}")
            .desc("Leader changes seen in the last hour, per member."),
        Panel::new(Timeseries, "Database size", "bytes")
            .q(format!("etcd_mvcc_db_total_size_in_bytes{{{s}}}"), "{{ins}}")
            .q(format!("max(etcd_server_quota_backend_bytes{{{s}}})"), "quota")
            .desc("Backend database size per member, against the quota."),
        Panel::new(Timeseries, "WAL fsync p99", "s")
            .q(format!("histogram_quantile(0.99, sum by (ins, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{{{s}}}[$__rate_interval])))"), "{{ins}}")
            .desc("99th percentile of WAL fsync time per member: disk latency."),
        Panel::new(Timeseries, "Proposals", "short")
            .q(format!("sum by (ins) (rate(etcd_server_proposals_committed_total{{{s}}}[$__rate_interval]))"), "{{ins}} committed")
            .q(format!("sum by (ins) (rate(etcd_server_proposals_failed_total{{{s}}}[$__rate_interval]))"), "{{ins}} failed")
            .size(12, 8)
            .desc("Raft proposals committed and failed per second."),
        Panel::new(Timeseries, "Peer round trip p99", "s")
            .q(format!("histogram_quantile(0.99, sum by (ins, le) (rate(etcd_network_peer_round_trip_time_seconds_bucket{{{s}}}[$__rate_interval])))"), "{{ins}}")
            .size(12, 8)
            .desc("99th percentile of round trips between members."),
    ];
    let mut b = board("etcd-overview", "Etcd Overview", "infra", "One etcd cluster (`var-cls`): members, leader, database size, WAL fsync, proposals, peer latency.");
    b.tags = &["etcd", "overview"];
    b.vars = vec![v("cls", "Cluster", r#"up{job="etcd"}"#, "cls")];
    b.rows = vec![
        Row {
            title: "Members",
            panels: vec![members],
        },
        Row {
            title: "Raft and disk",
            panels: graphs,
        },
    ];
    b
}

fn minio() -> Board {
    let s = r#"job="minio", cls="$cls""#;
    let panels = vec![
        Panel::new(Stat, "Members up", "none").q(format!("up{{{s}}}"), "{{ins}}").up_down().size(8, 4)
            .link(Link::to("Node", "node-instance", &[("id", &field("ip"))]))
            .desc("Scrape status of each MinIO server; click for its node."),
        Panel::new(Stat, "Nodes offline", "none").q(format!("max(minio_cluster_health_nodes_offline_count{{{s}}})"), "offline")
            .thresholds(&[(1.0, "red")]).size(4, 4)
            .desc("Servers the cluster sees offline."),
        Panel::new(Stat, "Drives offline", "none").q(format!("max(minio_cluster_health_drives_offline_count{{{s}}})"), "offline")
            .thresholds(&[(1.0, "red")]).size(4, 4)
            .desc("Drives the cluster sees offline."),
        Panel::new(Gauge, "Space used", "percentunit")
            .q(format!("1 - max(minio_cluster_health_capacity_usable_free_bytes{{{s}}}) / max(minio_cluster_health_capacity_usable_total_bytes{{{s}}})"), "used")
            .range(0.0, 1.0).thresholds(&[(0.8, "orange"), (0.9, "red")]).size(8, 4)
            .desc("Usable capacity in use."),
        Panel::new(Timeseries, "Usable capacity", "bytes")
            .q(format!("max(minio_cluster_health_capacity_usable_total_bytes{{{s}}})"), "total")
            .q(format!("max(minio_cluster_health_capacity_usable_free_bytes{{{s}}})"), "free")
            .size(12, 8)
            .desc("Usable capacity and free space over time."),
        Panel::new(Timeseries, "Erasure sets", "none")
            .q(format!("min by (pool, set) (minio_cluster_erasure_set_overall_health{{{s}}})"), "pool {{pool}} set {{set}}")
            .size(12, 8)
            .desc("Health of each erasure set (1 healthy, 0 not)."),
    ];
    let mut b = board(
        "minio-overview",
        "MinIO Overview",
        "minio",
        "One MinIO cluster (`var-cls`): servers and drives online, capacity, erasure-set health.",
    );
    b.tags = &["minio", "overview"];
    b.vars = vec![v("cls", "Cluster", r#"up{job="minio"}"#, "cls")];
    b.rows = vec![Row {
        title: "Cluster",
        panels,
    }];
    b
}

fn redis() -> Board {
    let s = r#"cls="$cls""#;
    let members = Panel::new(Table, "Instances", "none")
        .q(format!("redis_up{{{s}}}"), "up")
        .q(format!("max by (ins, ip) (redis_connected_clients{{{s}}})"), "clients")
        .q(format!("max by (ins, ip) (redis_memory_used_bytes{{{s}}})"), "memory bytes")
        .q(format!("sum by (ins, ip) (rate(redis_commands_processed_total{{{s}}}[$__rate_interval]))"), "commands/s")
        .link(Link::to("Node", "node-instance", &[("id", &cell("ip"))]))
        .size(24, 7)
        .desc("Every Redis instance of the cluster: up, clients, memory, commands per second. Click a row for its node.");
    let graphs = vec![
        Panel::new(Timeseries, "Commands", "short")
            .q(format!("sum by (ins) (rate(redis_commands_processed_total{{{s}}}[$__rate_interval]))"), "{{ins}}")
            .desc("Commands processed per second."),
        Panel::new(Timeseries, "Memory", "bytes")
            .q(format!("redis_memory_used_bytes{{{s}}}"), "{{ins}}")
            .desc("Memory used per instance."),
        Panel::new(Timeseries, "Hit ratio", "percentunit")
            .q(format!("sum by (ins) (rate(redis_keyspace_hits_total{{{s}}}[$__rate_interval])) / (sum by (ins) (rate(redis_keyspace_hits_total{{{s}}}[$__rate_interval])) + sum by (ins) (rate(redis_keyspace_misses_total{{{s}}}[$__rate_interval])))"), "{{ins}}")
            .range(0.0, 1.0)
            .desc("Share of key lookups that found the key."),
        Panel::new(Timeseries, "Evicted and expired keys", "short")
            .q(format!("sum by (ins) (rate(redis_evicted_keys_total{{{s}}}[$__rate_interval]))"), "{{ins}} evicted")
            .q(format!("sum by (ins) (rate(redis_expired_keys_total{{{s}}}[$__rate_interval]))"), "{{ins}} expired")
            .size(12, 8)
            .desc("Keys evicted for memory and expired per second."),
        Panel::new(Timeseries, "Network", "Bps")
            .q(format!("sum by (ins) (rate(redis_net_input_bytes_total{{{s}}}[$__rate_interval]))"), "{{ins}} in")
            .q(format!("sum by (ins) (rate(redis_net_output_bytes_total{{{s}}}[$__rate_interval]))"), "{{ins}} out")
            .size(12, 8)
            .desc("Bytes in and out per second."),
    ];
    let mut b = board("redis-overview", "Redis Overview", "redis", "One Redis cluster (`var-cls`): instances up, clients, memory, commands, hit ratio, evictions, network.");
    b.tags = &["redis", "overview"];
    b.vars = vec![v("cls", "Cluster", "redis_up", "cls")];
    b.rows = vec![
        Row {
            title: "Instances",
            panels: vec![members],
        },
        Row {
            title: "Workload",
            panels: graphs,
        },
    ];
    b
}
