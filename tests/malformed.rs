//! Malformed profiles: every one is rejected by `infragen render` with exit code 2, an exact
//! message on stderr (`file:line:column` first, for YAML syntax as for every bad value, then
//! the key path and host), and nothing written: no `out` directory and no staging directory
//! beside it.
//!
//! Table-driven: the helpers come first, then the table. Each case writes its profile to a
//! fresh temporary directory, so the path in messages is replaced by `{file}` before comparing.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// One malformed profile and the whole stderr it must produce, line by line.
struct Case {
    name: &'static str,
    profile: String,
    stderr: &'static [&'static str],
}

fn case(name: &'static str, profile: impl Into<String>, stderr: &'static [&'static str]) -> Case {
    Case {
        name,
        profile: profile.into(),
        stderr,
    }
}

/// Indents every line of `text` by `n` spaces (so the table can write YAML at column 0).
fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().flat_map(|l| [pad.as_str(), l, "\n"]).collect()
}

/// A profile whose infra group lists `hosts` (YAML lines at column 0), plus `extra_groups`
/// (more `all.children` entries at column 0) and `vars` appended to `all.vars` after
/// `admin_ip: 10.0.0.1`.
fn profile(hosts: &str, extra_groups: &str, vars: &str) -> String {
    format!(
        "all:\n  children:\n    infra:\n      hosts:\n{}{}  vars:\n    admin_ip: 10.0.0.1\n{}",
        indent(hosts, 8),
        indent(extra_groups, 4),
        indent(vars, 4)
    )
}

/// One infra host, 10.0.0.1 (the admin node), with `vars` added to `all.vars`.
fn with_vars(vars: &str) -> String {
    profile("10.0.0.1: { infra_seq: 1 }", "", vars)
}

/// Infra hosts as given, no extra vars.
fn with_hosts(hosts: &str) -> String {
    profile(hosts, "", "")
}

/// A valid `home` portal entry plus an `app` entry with the flow-mapping body `app`.
fn with_app(app: &str) -> String {
    with_vars(&format!(
        "infra_portal:\n  home: {{ domain: i.pigsty }}\n  app: {{ {app} }}"
    ))
}

/// Nine anchored lists of ten, each item an alias of the list before: 10^9 values expanded.
fn laughs() -> String {
    let mut text = format!("a0: &a0 [{}]\n", ["x"; 10].join(", "));
    for i in 1..9 {
        let items = vec![format!("*a{}", i - 1); 10].join(", ");
        writeln!(text, "a{i}: &a{i} [{items}]").expect("write to a String");
    }
    text
}

/// Runs one case; returns a description of every way it failed.
fn run(case: &Case) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("profile.yml");
    fs::write(&file, &case.profile).expect("write profile");
    let out = tmp.path().join("out");
    let output = common::infragen()
        .arg("render")
        .arg("--profile")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run infragen");

    let mut failures = Vec::new();
    if output.status.code() != Some(2) {
        failures.push(format!(
            "exit status {:?}, expected 2",
            output.status.code()
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr)
        .replace(file.to_str().expect("utf-8 path"), "{file}");
    let expected: String = case.stderr.iter().flat_map(|l| [*l, "\n"]).collect();
    if stderr != expected {
        failures.push(format!(
            "stderr differs\n--- expected\n{expected}--- actual\n{stderr}---"
        ));
    }
    if !output.stdout.is_empty() {
        failures.push(format!(
            "stdout not empty: {}",
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    if out.exists() {
        failures.push(format!("{} was written", out.display()));
    }
    failures.extend(
        leftovers(tmp.path())
            .into_iter()
            .map(|n| format!("stray entry `{n}` in the temp dir")),
    );
    failures
}

/// Entries of `dir` other than the profile itself (staging `.out.new-*`, `.out.old-*`, …).
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("read temp dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != "profile.yml")
        .collect()
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    vec![
        // ---- YAML syntax: file:line:column --------------------------------------------------
        case(
            "yaml: unclosed flow mapping",
            "all:\n  children:\n    infra:\n      hosts:\n        10.0.0.1: { infra_seq: 1\n  vars:\n    admin_ip: 10.0.0.1\n",
            &["error: {file}:6:7: invalid YAML: invalid indentation"],
        ),
        case(
            "yaml: unclosed flow sequence",
            "all:\n  vars: { dns_records: [10.0.0.1 a.pigsty }\n",
            &["error: {file}:2:43: invalid YAML: while parsing a flow sequence, expected ',' or ']'"],
        ),
        case(
            "yaml: tab indentation",
            "all:\n  children:\n    infra:\n\thosts: {}\n",
            &["error: {file}:4:2: invalid YAML: tabs disallowed within this context (block indentation)"],
        ),
        // The location is the second `admin_ip`; the message names the first.
        case(
            "yaml: duplicate key",
            "all:\n  vars:\n    admin_ip: 10.0.0.1\n    version: v4.5.0\n    admin_ip: 10.0.0.2\n",
            &["error: {file}:5:5: invalid YAML: all.vars.admin_ip: duplicate key; it is first set at line 3, column 5"],
        ),
        // ---- limits: size before parsing, nesting and aliases while parsing; refused at once --
        // One long line of brackets: the scanner reads ahead of the events and stops itself at
        // 255 flow levels, past our 64; the location is there.
        case(
            "limit: 400 KB of nested flow sequences",
            "[".repeat(400_000),
            &["error: {file}:1:256: nesting deeper than 64 levels"],
        ),
        case(
            "limit: 400 KB of nested flow mappings",
            "{a: ".repeat(100_000),
            &["error: {file}:1:1021: nesting deeper than 64 levels"],
        ),
        case(
            "limit: a deep block mapping",
            (0..800).map(|i| format!("{}a:\n", " ".repeat(i))).collect::<String>(),
            &["error: {file}:65:65: nesting deeper than 64 levels"],
        ),
        case(
            "limit: nesting inside a valid profile",
            with_vars(&format!("x: {}", "[".repeat(70))),
            &["error: {file}:8:69: nesting deeper than 64 levels"],
        ),
        // Aliases count every value they repeat: the classic form stops at the alias that goes
        // past the budget.
        case(
            "limit: aliases to aliases (billion laughs)",
            with_vars(&laughs()),
            &["error: {file}:13:14: profile repeats more than 200000 values through aliases (each use of an alias counts every value it repeats)"],
        ),
        // One list repeated by many aliases: 4 million values, refused at the 100th alias.
        case(
            "limit: one list repeated by 2000 aliases",
            with_vars(&format!("a: &a [{}]\nb: [{}]", vec!["x"; 2000].join(","), vec!["*a"; 2000].join(","))),
            &["error: {file}:9:306: profile repeats more than 200000 values through aliases (each use of an alias counts every value it repeats)"],
        ),
        case(
            "limit: over 64 MiB",
            with_vars(&format!("# {}", "x".repeat(64 << 20))),
            &["error: {file}: profile is 67108978 bytes; the limit is 64 MiB"],
        ),
        // ---- structure ------------------------------------------------------------------------
        case(
            "structure: a list, not a mapping",
            "- all\n- vars\n",
            &["error: {file}: 1 problem in profile", "  {file}:1:1: (top): a profile is a mapping with the key `all`"],
        ),
        case(
            "structure: a scalar, not a mapping",
            "all\n",
            &["error: {file}: 1 problem in profile", "  {file}:1:1: (top): a profile is a mapping with the key `all`"],
        ),
        case(
            "structure: empty file",
            "",
            &["error: {file}: 1 problem in profile", "  {file}:1:1: (top): a profile is a mapping with the key `all`"],
        ),
        case(
            "structure: missing `all`",
            "vars:\n  admin_ip: 10.0.0.1\n",
            &[
                "error: {file}: 2 problems in profile",
                "  {file}:1:1: all: missing; a profile starts with `all:`",
                "  {file}:1:1: vars: unknown top-level key; a profile has only `all`",
            ],
        ),
        case(
            "structure: `all` is a list",
            "all: [10.0.0.1]\n",
            &["error: {file}: 1 problem in profile", "  {file}:1:6: all: expected a mapping, found a list"],
        ),
        case(
            "structure: unknown top-level key",
            with_hosts("10.0.0.1: { infra_seq: 1 }") + "extra: 1\n",
            &["error: {file}: 1 problem in profile", "  {file}:8:1: extra: unknown top-level key; a profile has only `all`"],
        ),
        case(
            "structure: unknown key under `all`",
            with_hosts("10.0.0.1: { infra_seq: 1 }") + "  varz: {}\n",
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:3: all.varz: unknown key; `all` has `children`, `hosts` and `vars`",
            ],
        ),
        case(
            "structure: unknown group key",
            "all:\n  children:\n    infra:\n      hostz: { 10.0.0.1: { infra_seq: 1 } }\n",
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:4:7: all.children.infra.hostz: unknown key in group `infra`; a group has `hosts`, `vars` and `children`",
            ],
        ),
        case(
            "structure: infra group without hosts",
            "all:\n  children:\n    infra: { hosts: {} }\n  vars:\n    admin_ip: 10.0.0.1\n",
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:3:12: all.children.infra: the profile has no `infra` group with hosts; there is nothing to build",
            ],
        ),
        // ---- types ----------------------------------------------------------------------------
        case(
            "type: infra_seq is a list",
            with_hosts("10.0.0.1: { infra_seq: [1] }"),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:5:32: all.children.infra.hosts."10.0.0.1".infra_seq (host `10.0.0.1`): expected a non-negative integer, found a list"#,
            ],
        ),
        case(
            "type: infra_seq is a word",
            with_hosts("10.0.0.1: { infra_seq: one }"),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:5:32: all.children.infra.hosts."10.0.0.1".infra_seq (host `10.0.0.1`): expected a non-negative integer, found `one`"#,
            ],
        ),
        case(
            "type: nginx_port is `eighty`",
            with_vars("nginx_port: eighty"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:17: all.vars.nginx_port (host `10.0.0.1`): expected a non-negative integer, found `eighty`",
            ],
        ),
        case(
            "type: boolean given as a number",
            with_vars("grafana_enabled: 1"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:22: all.vars.grafana_enabled (host `10.0.0.1`): expected a boolean, found a number",
            ],
        ),
        case(
            "type: boolean given as an unknown word",
            with_vars("vlogs_enabled: maybe"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.vlogs_enabled (host `10.0.0.1`): expected a boolean, found `maybe`",
            ],
        ),
        case(
            "type: infra_portal is a list",
            with_vars("infra_portal: [home]"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:19: all.vars.infra_portal (host `10.0.0.1`): expected a mapping of portal entries, found a list",
            ],
        ),
        // ---- ports ----------------------------------------------------------------------------
        case(
            "port: 0",
            with_vars("nginx_port: 0"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:17: all.vars.nginx_port (host `10.0.0.1`): port out of range: `0` (expected 1 to 65535)",
            ],
        ),
        case(
            "port: 70000",
            with_vars("grafana_port: 70000"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:19: all.vars.grafana_port (host `10.0.0.1`): port out of range: `70000` (expected 1 to 65535)",
            ],
        ),
        case(
            "port: -1",
            with_vars("dns_port: -1"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:15: all.vars.dns_port (host `10.0.0.1`): expected a non-negative integer, found `-1`",
            ],
        ),
        // Blamed on the key the profile sets, never on a built-in default.
        case(
            "port: grafana_port on vmetrics' default port",
            with_vars("grafana_port: 8428"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:19: all.vars.grafana_port (host `10.0.0.1`): port 8428 of `grafana_port` is already used by `vmetrics_port` on this host",
            ],
        ),
        case(
            "port: nginx_ssl_port equal to nginx_port",
            with_vars("nginx_ssl_port: 80"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:21: all.vars.nginx_ssl_port (host `10.0.0.1`): port 80 of `nginx_ssl_port` is already used by `nginx_port` on this host",
            ],
        ),
        // ---- identity -------------------------------------------------------------------------
        case(
            "identity: duplicate infra_seq",
            with_hosts("10.0.0.1: { infra_seq: 1 }\n10.0.0.2: { infra_seq: 1 }"),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:6:32: all.children.infra.hosts."10.0.0.2".infra_seq (host `10.0.0.2`): duplicate `infra_seq` 1: host `10.0.0.1` has it too"#,
            ],
        ),
        case(
            "identity: missing infra_seq",
            with_hosts("10.0.0.1: { infra_seq: 1 }\n10.0.0.2: {}"),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:6:19: all.children.infra.hosts."10.0.0.2".infra_seq (host `10.0.0.2`): missing `infra_seq`: every infra host needs a unique integer identity"#,
            ],
        ),
        case(
            "identity: infra host key is not an IP",
            with_hosts("infra-1: { infra_seq: 1 }"),
            &[
                "error: {file}: 1 problem in profile",
                r"  {file}:5:18: all.children.infra.hosts.infra-1 (host `infra-1`): infra host key `infra-1` is not an IP address (Pigsty names hosts by address)",
            ],
        ),
        case(
            "identity: admin_ip is not an IP",
            profile("10.0.0.1: { infra_seq: 1 }", "", "").replace("admin_ip: 10.0.0.1", "admin_ip: 10.0.0.300"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:7:15: all.vars.admin_ip (host `10.0.0.1`): `10.0.0.300` is not an IP address",
            ],
        ),
        case(
            "identity: pg_cluster with a space",
            profile(
                "10.0.0.1: { infra_seq: 1 }",
                "pg-meta:\n  hosts: { 10.0.0.2: { pg_seq: 1, pg_role: primary } }\n  vars: { pg_cluster: \"pg meta\" }",
                "",
            ),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:27: all.children.pg-meta.vars.pg_cluster (host `10.0.0.2`): `pg meta` is not a valid domain name",
            ],
        ),
        // ---- durations and choices ------------------------------------------------------------
        case(
            "duration: `soon`",
            with_vars("vmetrics_scrape_interval: soon"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:31: all.vars.vmetrics_scrape_interval (host `10.0.0.1`): `soon` is not a duration (e.g. `10s`, `5m`, `397d`)",
            ],
        ),
        case(
            "choice: invalid nginx_sslmode",
            with_vars("nginx_sslmode: strict"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.nginx_sslmode (host `10.0.0.1`): `strict` is not one of `enable`, `disable`, `enforce`",
            ],
        ),
        // ---- secrets: age recipients ----------------------------------------------------------
        case(
            "age: a host key that is not a recipient",
            profile("10.0.0.1: { infra_seq: 1, infragen_host_key: age1notakey }", "", ""),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:5:54: all.children.infra.hosts.\"10.0.0.1\".infragen_host_key (host `10.0.0.1`): `age1notakey` is not an age X25519 recipient (`age1…`)",
            ],
        ),
        case(
            "age: a host key given as a list",
            with_vars("infragen_host_key: [age1x]"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:24: all.vars.infragen_host_key (host `10.0.0.1`): expected a string, found a list",
            ],
        ),
        case(
            "age: an identity where a recovery recipient goes",
            with_vars("infragen_recovery_keys: [AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQSKJ2AT]"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:30: all.vars.infragen_recovery_keys[0] (host `10.0.0.1`): `AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQSKJ2AT` is not an age X25519 recipient (`age1…`)",
            ],
        ),
        // ---- upstream images -------------------------------------------------------------------
        case(
            "upstream: no tag",
            with_vars("infragen_upstream_images: { vmetrics: victoriametrics/victoria-metrics }"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:43: all.vars.infragen_upstream_images.vmetrics (host `10.0.0.1`): `victoriametrics/victoria-metrics` is not `name:tag`: it has no tag",
            ],
        ),
        case(
            "upstream: a registry host in the name",
            with_vars("infragen_upstream_images: { vmetrics: \"mirror.example/victoriametrics/victoria-metrics:v1.110.0\" }"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:43: all.vars.infragen_upstream_images.vmetrics (host `10.0.0.1`): `mirror.example/victoriametrics/victoria-metrics:v1.110.0` is not `name:tag`: no registry host: the registry is `--base-registry`",
            ],
        ),
        case(
            "upstream: a component without an upstream recipe, one built on a base, an unknown one",
            with_vars("infragen_upstream_images:\n  alertmanager: \"prom/alertmanager:v0.28.0\"\n  grafana: \"grafana/grafana:12.2.1\"\n  vmetric: \"victoriametrics/victoria-metrics:v1.110.0\""),
            &[
                "error: {file}: 3 problems in profile",
                "  {file}:9:21: all.vars.infragen_upstream_images.alertmanager (host `10.0.0.1`): `alertmanager` cannot come from an upstream image: images/alertmanager/image.yml names no `upstream:` entrypoint (only `vmetrics` can)",
                "  {file}:10:16: all.vars.infragen_upstream_images.grafana (host `10.0.0.1`): `grafana` is built from its base image already (images/grafana/image.yml)",
                "  {file}:11:16: all.vars.infragen_upstream_images.vmetric (host `10.0.0.1`): `vmetric` is not a component; one of `vmetrics` can come from its upstream image",
            ],
        ),
        case(
            "upstream: a list",
            with_vars("infragen_upstream_images: [\"victoriametrics/victoria-metrics:v1.110.0\"]"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:31: all.vars.infragen_upstream_images (host `10.0.0.1`): expected a mapping of component to `name:tag`, found a list",
            ],
        ),
        case(
            "upstream: hosts that differ",
            profile(
                "10.0.0.1: { infra_seq: 1 }\n10.0.0.2: { infra_seq: 2, infragen_upstream_images: { vmetrics: \"victoriametrics/victoria-metrics:v1.111.0\" } }",
                "",
                "infragen_upstream_images: { vmetrics: \"victoriametrics/victoria-metrics:v1.110.0\" }",
            ),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:6:61: all.children.infra.hosts.\"10.0.0.2\".infragen_upstream_images (host `10.0.0.2`): differs from host `10.0.0.1`'s: an image is shared by every infra host, so every host takes the same upstream images",
            ],
        ),
        // ---- nginx portal ---------------------------------------------------------------------
        case(
            "portal: newline injected into a domain",
            with_app(r#"domain: "a.pigsty\nserver {", endpoint: "10.0.0.1:80""#),
            &[
                "error: {file}: 1 problem in profile",
                r"  {file}:10:22: all.vars.infra_portal.app.domain (host `10.0.0.1`): control character '\n' is not allowed",
            ],
        ),
        case(
            "portal: `;` in a domain",
            with_app(r#"domain: "a.pigsty;", endpoint: "10.0.0.1:80""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:22: all.vars.infra_portal.app.domain (host `10.0.0.1`): `a.pigsty;` is not a valid domain name",
            ],
        ),
        case(
            "portal: `{` in a domain",
            with_app(r#"domain: "a.pigsty{", endpoint: "10.0.0.1:80""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:22: all.vars.infra_portal.app.domain (host `10.0.0.1`): `a.pigsty{` is not a valid domain name",
            ],
        ),
        case(
            "portal: `}` in config closes the server block",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "} server { listen 81;""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: unexpected `}`: it closes a block this text did not open",
            ],
        ),
        case(
            "portal: `include` in config",
            with_app(r#"domain: a.pigsty, path: /www/a, config: "include /etc/passwd;""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:54: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `include` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
            ],
        ),
        case(
            "portal: config: a quoted `{` then `}` closes the server block",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: 'add_header X "{"; } "server" { listen 81; location / { root /; } }'"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: unexpected `}`: it closes a block this text did not open",
            ],
        ),
        case(
            "portal: config: a quoted `server` directive",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: '"server" { listen 81; location / { root /; } }'"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `server` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
            ],
        ),
        case(
            "portal: config: `include` of nginx's own files",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "location /x { include /etc/nginx/conf.d/*.conf; }""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `include` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
            ],
        ),
        case(
            "portal: config: a `#` comment hides a `}`",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "location /x {\n  return 200; # }\n""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: the `{` of `location` is never closed",
            ],
        ),
        case(
            "portal: config: a single-quoted `}`",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "location /x { add_header X '}';""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: the `{` of `location` is never closed",
            ],
        ),
        case(
            "portal: config: an escaped quote does not end a string",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: 'add_header X "a\"; }"; }'"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: unexpected `}`: it closes a block this text did not open",
            ],
        ),
        case(
            "portal: config: an escaped backslash ends a string",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: 'add_header X "a\\"; } "server" { listen 81;'"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: unexpected `}`: it closes a block this text did not open",
            ],
        ),
        case(
            "portal: config: an unterminated quote",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: 'add_header X "a; }'"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: unterminated `\"` string",
            ],
        ),
        case(
            "portal: config: `load_module`",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "load_module /usr/lib/nginx/modules/ngx_stream_module.so;""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `load_module` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
            ],
        ),
        case(
            "portal: config: a `*_by_lua_block`",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "location /x { access_by_lua_block { ngx.exit(200); } }""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `access_by_lua_block` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
            ],
        ),
        case(
            "portal: config: a last directive without `;`",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "client_max_body_size 10m; gzip on""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `gzip` does not end with `;`",
            ],
        ),
        case(
            "portal: config: `root` outside the nginx home",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", config: "location /x { root /etc; }""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:65: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: `root /etc` is outside the nginx home and this entry's path (`/www`)",
            ],
        ),
        case(
            "portal: config: every refused directive, by line",
            with_app(r#"domain: a.pigsty, path: /www/a, config: "listen 81;\nlocation / {\n  alias /;\n}""#),
            &[
                "error: {file}: 2 problems in profile",
                "  {file}:10:54: all.vars.infra_portal.app.config (host `10.0.0.1`): line 1: directive `listen` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
                "  {file}:10:54: all.vars.infra_portal.app.config (host `10.0.0.1`): line 3: directive `alias` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones); use `root`, which appends the request path and so cannot be escaped with `..`",
            ],
        ),
        case(
            "portal: endpoint without a port",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:42: all.vars.infra_portal.app.endpoint (host `10.0.0.1`): `10.0.0.1` is not a valid endpoint (expected `host:port`)",
            ],
        ),
        case(
            "portal: endpoint with `;`",
            with_app(r#"domain: a.pigsty, endpoint: "h:80; x""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:42: all.vars.infra_portal.app.endpoint (host `10.0.0.1`): `h:80; x` is not a valid endpoint (expected `host:port`)",
            ],
        ),
        case(
            "portal: unknown key `schema` (hint)",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:443", schema: https"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:58: all.vars.infra_portal.app.schema (host `10.0.0.1`): unknown portal entry key `schema`; did you mean `scheme`?",
            ],
        ),
        case(
            "portal: domain but neither path nor endpoint",
            with_app("domain: a.pigsty"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:12: all.vars.infra_portal.app (host `10.0.0.1`): portal entry `app` has a `domain` but neither `path` nor `endpoint`",
            ],
        ),
        case(
            "portal: enforce_https with nginx_sslmode disable",
            with_vars(
                "nginx_sslmode: disable\ninfra_portal:\n  home: { domain: i.pigsty }\n  app: { domain: a.pigsty, endpoint: \"10.0.0.1:80\", enforce_https: true }",
            ),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:11:72: all.vars.infra_portal.app.enforce_https (host `10.0.0.1`): `enforce_https` needs HTTPS, but `nginx_sslmode` is `disable`",
            ],
        ),
        case(
            "portal: auth without nginx_users",
            with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80", auth: true"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:63: all.vars.infra_portal.app.auth (host `10.0.0.1`): basic auth is on but `nginx_users` is empty",
            ],
        ),
        case(
            "portal: two entries with one domain",
            with_app(r#"domain: i.pigsty, endpoint: "10.0.0.1:80""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:10:22: all.vars.infra_portal.app.domain (host `10.0.0.1`): domain `i.pigsty` is also served by portal entry `home`",
            ],
        ),
        case(
            "portal: no home entry",
            with_vars("infra_portal:\n  home: { path: /www }"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:9:7: all.vars.infra_portal (host `10.0.0.1`): `infra_portal` needs a `home` entry with a `domain` (the default server)",
            ],
        ),
        case(
            "nginx: user name with `:`",
            with_vars(r#"nginx_users: { "bob:x": Hunter2pw }"#),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:8:29: all.vars.nginx_users."bob:x" (host `10.0.0.1`): `bob:x` is not a valid user name (no `:` or white space)"#,
            ],
        ),
        // ---- dnsmasq --------------------------------------------------------------------------
        case(
            "dnsmasq: record with an injected option line",
            with_vars(r#"dns_records: ["10.0.0.1 a.pigsty\ndhcp-script=/bin/sh"]"#),
            &[
                "error: {file}: 1 problem in profile",
                r"  {file}:8:19: all.vars.dns_records[0] (host `10.0.0.1`): control character '\n' is not allowed",
            ],
        ),
        case(
            "dnsmasq: record without an IP",
            with_vars(r#"dns_records: ["10.0.0.1 a.pigsty", "b.pigsty c.pigsty"]"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:40: all.vars.dns_records[1] (host `10.0.0.1`): `b.pigsty c.pigsty` is not a hosts line (`IP name…`)",
            ],
        ),
        // ---- chrony ---------------------------------------------------------------------------
        case(
            "chrony: source with an injected directive",
            with_vars(r#"node_ntp_servers: ["server x.pigsty iburst\nallow 0/0"]"#),
            &[
                "error: {file}: 1 problem in profile",
                r"  {file}:8:24: all.vars.node_ntp_servers[0] (host `10.0.0.1`): control character '\n' is not allowed",
            ],
        ),
        case(
            "chrony: `local stratum 1` is not a source",
            with_vars(r#"node_ntp_servers: ["local stratum 1"]"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:24: all.vars.node_ntp_servers[0] (host `10.0.0.1`): `local stratum 1` is not a chrony source (`server|pool|peer HOST [options]`)",
            ],
        ),
        case(
            "chrony: chrony_allow is not a network",
            with_vars(r#"chrony_allow: ["10.0.0.0/24", "10.0.0.0/abc"]"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:35: all.vars.chrony_allow[1] (host `10.0.0.1`): `10.0.0.0/abc` is not a network (`address/prefix`)",
            ],
        ),
        case(
            "chrony: an IPv4 prefix longer than 32",
            with_vars(r#"chrony_allow: ["10.0.0.0/33"]"#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.chrony_allow[0] (host `10.0.0.1`): `10.0.0.0/33` is not a network (`address/prefix`)",
            ],
        ),
        case(
            "identity: one IPv6 address written two ways",
            with_hosts("\"::1\": { infra_seq: 1 }\n\"0::1\": { infra_seq: 2 }"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:5:16: all.children.infra.hosts.\"::1\" (host `::1`): `::1` and `0::1` are the same address ::1",
            ],
        ),
        case(
            "port: dns_port on nginx's port",
            with_vars("dns_port: 80"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:15: all.vars.dns_port (host `10.0.0.1`): port 80 of `dns_port` is already used by `nginx_port` on this host",
            ],
        ),
        case(
            "durations: a zero scrape interval",
            with_vars("vmetrics_scrape_interval: 0s"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:31: all.vars.vmetrics_scrape_interval (host `10.0.0.1`): `0s` is not a duration (e.g. `10s`, `5m`, `397d`)",
            ],
        ),
        case(
            "compat: cert_validity is not a duration",
            with_vars("cert_validity: forever"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.cert_validity (host `10.0.0.1`): `forever` is not a duration (e.g. `10s`, `5m`, `397d`)",
            ],
        ),
        case(
            "durations: a sub-second certificate validity",
            with_vars("cert_validity: 500ms"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.cert_validity (host `10.0.0.1`): `500ms` is too short (at least `1d`)",
            ],
        ),
        case(
            "durations: a certificate validity past the CA's",
            with_vars("nginx_cert_validity: 200y"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:26: all.vars.nginx_cert_validity (host `10.0.0.1`): `200y` is too long (at most `36500d`)",
            ],
        ),
        case(
            "durations: a renewal window that is not a duration",
            with_vars("cert_renew_before: soon"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:24: all.vars.cert_renew_before (host `10.0.0.1`): `soon` is not a duration (e.g. `10s`, `5m`, `397d`)",
            ],
        ),
        case(
            "durations: a renewal window as long as the nginx certificate's validity",
            with_vars("cert_renew_before: 397d"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:24: all.vars.cert_renew_before (host `10.0.0.1`): renewal window `397d` is not shorter than `nginx_cert_validity` `397d`: every build would re-issue the certificate",
            ],
        ),
        case(
            "durations: a certificate validity inside the default renewal window",
            with_vars("cert_validity: 20d"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.cert_validity (host `10.0.0.1`): renewal window `30d` is not shorter than `cert_validity` `20d`: every build would re-issue the certificate",
            ],
        ),
        case(
            "durations: a scrape timeout longer than the interval",
            with_vars("vmetrics_scrape_timeout: 1m"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:30: all.vars.vmetrics_scrape_timeout (host `10.0.0.1`): scrape timeout `1m` is longer than the scrape interval `10s`",
            ],
        ),
        case(
            "compat: certbot_email is not an address",
            with_vars("certbot_email: nobody"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.certbot_email (host `10.0.0.1`): `nobody` is not an e-mail address",
            ],
        ),
        case(
            "portal: a service card linking to script",
            with_vars("infra_extra_services: [{ name: x, url: 'javascript:alert(1)' }]"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:44: all.vars.infra_extra_services[0].url (host `10.0.0.1`): `javascript:alert(1)` is not a link (a path or an http(s) URL)",
            ],
        ),
        // ---- flags (systemd environment files) -------------------------------------------------
        case(
            "flags: `$` in vmetrics_options",
            with_vars(r#"vmetrics_options: "-a=$HOME""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:23: all.vars.vmetrics_options (host `10.0.0.1`): `$` is not allowed in flag `-a=$HOME`",
            ],
        ),
        case(
            "flags: alertmanager_options word without `-`",
            with_vars(r#"alertmanager_options: "foo""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:27: all.vars.alertmanager_options (host `10.0.0.1`): `foo` is not a flag (flags start with `-`)",
            ],
        ),
        case(
            "flags: `%` (systemd specifier) in blackbox_options",
            with_vars(r#"blackbox_options: "--log.level=info --x=%h""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:23: all.vars.blackbox_options (host `10.0.0.1`): `%` is not allowed in flag `--x=%h`",
            ],
        ),
        // ---- paths ----------------------------------------------------------------------------
        case(
            "path: `;` in nginx_home",
            with_vars(r#"nginx_home: "/www;""#),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:17: all.vars.nginx_home (host `10.0.0.1`): `/www;` is not a safe absolute path (letters, digits and `/._-+@` only, no `..`)",
            ],
        ),
        case(
            "path: relative nginx_home",
            with_vars("nginx_home: www"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:17: all.vars.nginx_home (host `10.0.0.1`): `www` is not a safe absolute path (letters, digits and `/._-+@` only, no `..`)",
            ],
        ),
        // ---- everything at once ---------------------------------------------------------------
        // A value in `all.vars` that is wrong for several hosts is reported once, without a host.
        case(
            "several problems are reported together",
            profile(
                "10.0.0.1: { infra_seq: 1 }\n10.0.0.2: { infra_seq: 1 }\n10.0.0.3: {}",
                "",
                "nginx_port: 70000\nvmetrics_scrape_interval: soon\nnginx_sslmode: strict\ndns_records: [\"a.pigsty\"]",
            ),
            &[
                "error: {file}: 6 problems in profile",
                r#"  {file}:6:32: all.children.infra.hosts."10.0.0.2".infra_seq (host `10.0.0.2`): duplicate `infra_seq` 1: host `10.0.0.1` has it too"#,
                r#"  {file}:7:19: all.children.infra.hosts."10.0.0.3".infra_seq (host `10.0.0.3`): missing `infra_seq`: every infra host needs a unique integer identity"#,
                "  {file}:13:19: all.vars.dns_records[0]: `a.pigsty` is not a hosts line (`IP name…`)",
                "  {file}:10:17: all.vars.nginx_port: port out of range: `70000` (expected 1 to 65535)",
                "  {file}:12:20: all.vars.nginx_sslmode: `strict` is not one of `enable`, `disable`, `enforce`",
                "  {file}:11:31: all.vars.vmetrics_scrape_interval: `soon` is not a duration (e.g. `10s`, `5m`, `397d`)",
            ],
        ),
        // ---- positions: every problem starts with file:line:column of its key path ------------
        case(
            "position: duplicate key in a host's flow mapping",
            with_hosts("10.0.0.1: { infra_seq: 1, nginx_port: 80, infra_seq: 2 }"),
            &[r#"error: {file}:5:51: invalid YAML: all.children.infra.hosts."10.0.0.1".infra_seq: duplicate key; it is first set at line 5, column 21"#],
        ),
        case(
            "position: wrong type deep in a host var",
            with_hosts("10.0.0.1:\n  infra_seq: 1\n  infra_portal:\n    home: { domain: i.pigsty }\n    app:\n      domain: a.pigsty\n      endpoint: [ 10.0.0.1, 80 ]"),
            &[
                "error: {file}: 2 problems in profile",
                r#"  {file}:10:15: all.children.infra.hosts."10.0.0.1".infra_portal.app (host `10.0.0.1`): portal entry `app` has a `domain` but neither `path` nor `endpoint`"#,
                r#"  {file}:11:25: all.children.infra.hosts."10.0.0.1".infra_portal.app.endpoint (host `10.0.0.1`): expected a string, found a list"#,
            ],
        ),
        case(
            "position: bad duration in a block host var",
            with_hosts("10.0.0.1:\n  infra_seq: 1\n  cert_validity: 500ms"),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:7:26: all.children.infra.hosts."10.0.0.1".cert_validity (host `10.0.0.1`): `500ms` is too short (at least `1d`)"#,
            ],
        ),
        case(
            "position: bad address in a host var",
            with_hosts("10.0.0.1: { infra_seq: 1, admin_ip: 10.0.0.256 }"),
            &[
                "error: {file}: 1 problem in profile",
                r#"  {file}:5:45: all.children.infra.hosts."10.0.0.1".admin_ip (host `10.0.0.1`): `10.0.0.256` is not an IP address"#,
            ],
        ),
        // YAML 1.1, as Ansible reads it: `off` is a boolean, not the word.
        case(
            "position: a YAML 1.1 boolean where a word is expected",
            with_vars("nginx_sslmode: off"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:20: all.vars.nginx_sslmode (host `10.0.0.1`): `false` is not one of `enable`, `disable`, `enforce`",
            ],
        ),
        case(
            "position: merge key of a scalar",
            with_vars("grafana_port: 3000\n<<: 1"),
            &["error: {file}:9:5: invalid YAML: a merge key `<<` takes a mapping or a list of mappings, found a number"],
        ),
        case(
            "position: a merged value is reported where it is written",
            with_vars("ports: &p { nginx_port: 99999 }\n<<: *p"),
            &[
                "error: {file}: 1 problem in profile",
                "  {file}:8:29: all.vars.nginx_port (host `10.0.0.1`): port out of range: `99999` (expected 1 to 65535)",
            ],
        ),
    ]
}

#[test]
fn malformed_profiles_are_rejected_with_exact_messages_and_write_nothing() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let mut report = String::new();
    for case in &cases {
        let failures = run(case);
        if !failures.is_empty() {
            writeln!(report, "\n=== {}\n{}", case.name, failures.join("\n"))
                .expect("write to a String");
        }
    }
    assert!(report.is_empty(), "{report}");
}

/// The helper profile itself is valid: every case fails only because of what it adds.
#[test]
fn base_profile_renders() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("profile.yml");
    fs::write(
        &file,
        with_app(r#"domain: a.pigsty, endpoint: "10.0.0.1:80""#),
    )
    .expect("write profile");
    let out = tmp.path().join("out");
    let status = common::infragen()
        .arg("render")
        .arg("--profile")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run infragen");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.join("10.0.0.1").is_dir());
}

/// A warning (a misspelt parameter) names its position too, and the profile still renders.
#[test]
fn warnings_name_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("profile.yml");
    fs::write(&file, with_vars("nginx_prot: 8080")).expect("write profile");
    let output = common::infragen()
        .arg("check")
        .arg("--profile")
        .arg(&file)
        .output()
        .expect("run infragen");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr)
        .replace(file.to_str().expect("utf-8 path"), "{file}");
    assert_eq!(
        stderr,
        "warning: {file}:8:5: all.vars.nginx_prot: unknown parameter `nginx_prot`; did you mean `nginx_port`?\n"
    );
}

/// A built-in profile's problems are located as `builtin:<name>:line:column`.
#[test]
fn builtin_profiles_report_builtin_name_line_and_column() {
    let (name, text) = infragen::profile::BUILTIN[0];
    let source = format!("builtin:{name}");
    let lines = text.lines().count();
    let err = infragen::profile::parse(&source, &format!("{text}\nextra: 1\n"))
        .expect_err("an unknown top-level key");
    assert_eq!(
        err.to_string(),
        format!(
            "{source}: 1 problem in profile\n  {source}:{}:1: extra: unknown top-level key; a profile has only `all`",
            lines + 2
        )
    );
}
