//! A large inventory in Pigsty's shape, generated: three infra nodes, an etcd and a MinIO
//! cluster, and PostgreSQL clusters of four hosts, each cluster with the business users,
//! databases, HBA rules, services and VIP a real Pigsty cluster definition carries. Shared by
//! `tests/big_profile.rs` (it loads) and `benches/big_profile.rs` (how fast).

use std::fmt::Write as _;

/// Hosts per PostgreSQL cluster.
pub const CLUSTER: usize = 4;

/// The inventory with `clusters` PostgreSQL clusters (`clusters * 4` PostgreSQL hosts, plus 12
/// others). 25,000 clusters (100,012 hosts) make about 50 MB.
pub fn text(clusters: usize) -> String {
    let mut s = String::with_capacity(clusters * 2048 + 4096);
    s.push_str("all:\n  children:\n    infra:\n      hosts:\n");
    for i in 1..=3 {
        let _ = writeln!(s, "        10.20.0.{i}: {{ infra_seq: {i} }}");
    }
    s.push_str("      vars: { repo_enabled: true }\n");
    s.push_str("    etcd:\n      vars: { etcd_cluster: etcd }\n      hosts:\n");
    for i in 1..=5 {
        let _ = writeln!(s, "        10.20.1.{i}: {{ etcd_seq: {i} }}");
    }
    s.push_str("    minio:\n      vars: { minio_cluster: minio }\n      hosts:\n");
    for i in 1..=4 {
        let _ = writeln!(s, "        10.20.2.{i}: {{ minio_seq: {i} }}");
    }
    for c in 0..clusters {
        cluster(&mut s, c);
    }
    s.push_str(
        "  vars:\n    version: v3.6.0\n    admin_ip: 10.20.0.1\n    region: default\n    \
         alertmanager_cluster: true\n    node_tune: oltp\n    pg_conf: oltp.yml\n    \
         pg_version: 17\n    patroni_mode: default\n    pgbackrest_method: local\n",
    );
    s
}

/// The address of PostgreSQL host `n` (0-based): `10.100.0.1` onwards, 250 a /24.
pub fn address(n: usize) -> String {
    format!(
        "10.{}.{}.{}",
        100 + n / 62_500,
        (n / 250) % 250,
        n % 250 + 1
    )
}

/// One cluster, `pg-c<c>`, as Pigsty's `pg-test` example writes one.
fn cluster(s: &mut String, c: usize) {
    let _ = writeln!(s, "    pg-c{c}:\n      hosts:");
    for m in 0..CLUSTER {
        let role = if m == 0 { "primary" } else { "replica" };
        let _ = writeln!(
            s,
            "        {}: {{ pg_seq: {}, pg_role: {role}, pg_offline_query: {} }}",
            address(c * CLUSTER + m),
            m + 1,
            m == CLUSTER - 1
        );
    }
    let vip = address(c * CLUSTER);
    let _ = write!(
        s,
        r#"      vars:
        pg_cluster: pg-c{c}
        pg_vip_enabled: true
        pg_vip_address: {vip}/24
        pg_vip_interface: eth1
        pg_users:
          - {{ name: dbuser_c{c}, password: DBUser.C{c}, pgbouncer: true, roles: [ dbrole_readwrite ], comment: owner of database c{c} }}
          - {{ name: dbuser_c{c}_ro, password: DBUser.C{c}.RO, pgbouncer: true, roles: [ dbrole_readonly ], comment: read-only user of c{c} }}
          - {{ name: dbuser_c{c}_etl, password: DBUser.C{c}.ETL, pgbouncer: false, roles: [ dbrole_offline ], connlimit: 8, comment: nightly extracts }}
        pg_databases:
          - name: c{c}
            owner: dbuser_c{c}
            revokeconn: true
            comment: business database of cluster c{c}
            schemas: [ app, audit ]
            extensions:
              - {{ name: postgis, schema: public }}
              - {{ name: timescaledb }}
              - {{ name: pg_stat_statements }}
            pool_mode: transaction
            pool_size_reserve: 32
        pg_hba_rules:
          - {{ user: dbuser_c{c}, db: c{c}, addr: intra, auth: pwd, title: 'business access from the intranet' }}
          - {{ user: dbuser_c{c}_ro, db: c{c}, addr: world, auth: ssl, title: 'read-only access over TLS' }}
        pg_services:
          - {{ name: standby, port: 5435, ip: "*", selector: "[]", backup: "[? pg_role == `primary`]", dest: default, check: /sync, maxconn: 5000 }}
        pg_parameters: {{ max_connections: 500, shared_buffers: 8GB, work_mem: 32MB, log_min_duration_statement: 1000 }}
        pg_default_roles_extra: [ dbrole_offline ]
        pg_libs: 'timescaledb, pg_stat_statements, auto_explain'
"#
    );
}
