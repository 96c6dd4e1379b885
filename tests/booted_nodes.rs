//! A regular node wired to its infra (issue 14), on two booted systemds sharing this machine's
//! network: an infra host at 127.0.55.10 (single-node, with its local package repository filled
//! by `infragen repo sync`) and a PostgreSQL node of the same profile at 127.0.55.11 that
//! activates its node bundle. Run alone with `cargo test --test booted_nodes` (root; debootstrap,
//! systemd-container).
//!
//! Checked inside the node: `getent hosts i.pigsty` gives `admin_ip`; a name only the infra's
//! dnsmasq knows resolves through the node's resolver; `chronyc sources` lists the infra node
//! (chrony runs with `-x`: it never steers this machine's clock); `apt-get update` reads the
//! infra node's local repository; `curl https://i.pigsty/` verifies without `-k`. Then: a change
//! of `node_etc_hosts` changes only the managed block; a probe that fails (a DNS server where
//! none answers) rolls the node back, as a first activation and as a later one; `activate
//! --remove` leaves `/etc/hosts`, the resolver's and chrony's configuration, the APT sources and
//! the trust store byte for byte as they were before the first activation.

mod common;

use common::booted::Machine;
use common::{enrol, ok, root};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const INFRA: &str = "127.0.55.10";
const NODE: &str = "127.0.55.11";

fn booted_tier() {
    common::tier::binary(common::tier::Tier::Booted, "tests/booted_nodes.rs");
    common::tier::require_root("tests/booted_nodes.rs");
    common::tier::require(
        "tests/booted_nodes.rs",
        &[
            ("systemd-nspawn", "systemd-container"),
            ("debootstrap", "debootstrap"),
        ],
    );
}

/// The infra host's root: the booted tier's usual one (shared cache tarball).
fn infra_root(dest: &Path) {
    common::debian::root(
        dest,
        &["systemd", "systemd-sysv", "dbus", "systemd-container"],
        "debian-bookworm-systemd-container.tar",
    );
}

/// A regular node's root: what Pigsty's NODE module relies on being there.
fn node_root(dest: &Path) {
    common::debian::root(
        dest,
        &[
            "systemd",
            "systemd-sysv",
            "dbus",
            "chrony",
            "ca-certificates",
            "curl",
        ],
        "debian-bookworm-node.tar",
    );
}

/// single-node on 127.0.55.10 with the components that run here, plus one PostgreSQL node, its
/// NTP and DNS pointed at the infra node, a DNS record only dnsmasq knows, and `extra` global
/// settings.
fn profile(extra: &str) -> String {
    let base = fs::read_to_string(root().join("profiles/single-node.yml"))
        .unwrap()
        .replace("10.10.10.", "127.0.55.");
    let vars = format!(
        "\n  vars:\n    grafana_enabled: false\n    vlogs_enabled: false\n    vtraces_enabled: false\n    chrony_control_clock: false\n    node_repo_modules: local\n{extra}"
    );
    let text = base
        .replacen("\n  vars:\n", &vars, 1)
        .replacen("'pool pool.ntp.org iburst'", "'server ${admin_ip} iburst'", 1)
        .replacen("adm.pigsty api.pigsty", "adm.pigsty api.pigsty dnsonly.pigsty", 1)
        .replacen(
            "\n  children:\n",
            &format!("\n  children:\n    pg-test:\n      hosts:\n        {NODE}: {{ pg_seq: 1, pg_role: primary }}\n      vars:\n        pg_cluster: pg-test\n"),
            1,
        );
    assert!(
        text.contains("pg-test") && text.contains("dnsonly"),
        "{text}"
    );
    text
}

/// Builds `text` (signed by the test key); returns its output directory.
fn build(dir: &Path, name: &str, text: &str) -> PathBuf {
    let pdir = dir.join(name);
    fs::create_dir_all(&pdir).unwrap();
    let profile = pdir.join("profile.yml");
    fs::write(&profile, text).unwrap();
    let out = pdir.join("out");
    common::build_signed(&profile, &out, &dir.join("pki"), &format!("build {name}"));
    for host in [INFRA, NODE] {
        assert!(
            out.join(host).join("manifest.json").is_file(),
            "{name}: no bundle for {host}"
        );
    }
    out
}

/// Copies `bundle` into `m` as `/root/<name>` and runs `infragen activate` on it with `flags`.
fn activate(m: &Machine, bundle: &Path, name: &str, flags: &[&str]) -> Output {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    enrol(&m.root(), manifest["host"].as_str().unwrap());
    let inside = m.root().join("root").join(name);
    let _ = fs::remove_dir_all(&inside);
    ok(
        &std::process::Command::new("cp")
            .arg("-a")
            .arg(bundle)
            .arg(&inside)
            .output()
            .unwrap(),
        "copy bundle",
    );
    let path = format!("/root/{name}");
    let mut args = vec!["infragen", "activate", &path, "--health-timeout", "20"];
    args.extend_from_slice(flags);
    m.run(&args)
}

/// What the node's files infragen may own hold: every file and link (recursively) of
/// `/etc/hosts`, `/etc/resolv.conf`, `/etc/chrony`, `/etc/apt/sources.list.d`,
/// `/etc/systemd/resolved.conf.d`, `/usr/local/share/ca-certificates` and `/etc/ssl/certs`, by
/// sha256 (a link by its target), with modes.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for top in [
        "etc/hosts",
        "etc/resolv.conf",
        "etc/chrony",
        "etc/apt/sources.list.d",
        "etc/systemd/resolved.conf.d",
        "usr/local/share/ca-certificates",
        "etc/ssl/certs",
    ] {
        let at = root.join(top);
        if fs::symlink_metadata(&at).is_err() {
            continue;
        }
        for e in walkdir::WalkDir::new(&at).sort_by_file_name() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            let key = e.path().strip_prefix(root).unwrap().display().to_string();
            let value = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(e.path()).unwrap().display())
            } else if m.is_file() {
                use std::os::unix::fs::PermissionsExt as _;
                format!(
                    "{:o} {}",
                    m.permissions().mode() & 0o7777,
                    infragen::digest::sha256_hex(&fs::read(e.path()).unwrap())
                )
            } else {
                "dir".to_owned()
            };
            out.insert(key, value);
        }
    }
    out
}

/// The keys whose values differ between two snapshots.
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn inside(m: &Machine, args: &[&str]) -> String {
    ok(&m.run(args), &args.join(" "))
}

/// `/etc/hosts` without the managed block.
fn unmanaged(root: &Path) -> String {
    let text = fs::read_to_string(root.join("etc/hosts")).unwrap();
    let begin = text
        .find(infragen::activate::BLOCK_BEGIN)
        .expect("a managed block");
    let end = text[begin..].find(infragen::activate::BLOCK_END).unwrap()
        + begin
        + infragen::activate::BLOCK_END.len();
    format!("{}{}", &text[..begin], &text[end..])
}

#[test]
fn a_regular_node_wired_to_its_infra_on_booted_systemds() {
    booted_tier();
    let dir = tempfile::Builder::new()
        .prefix("infragen-booted-nodes-")
        .tempdir()
        .unwrap();
    let dir = dir.path();
    let text = profile("");
    let first = build(dir, "first", &text);
    let bad_dns = "    node_dns_servers: ['127.0.55.99']\n";
    let failing = build(dir, "failing", &profile(bad_dns));

    // The infra host first: the node's probes ask it.
    fs::create_dir_all(dir.join("infra")).unwrap();
    let infra = Machine::boot(&dir.join("infra"), "infragen-test-nodes-infra", infra_root);
    ok(
        &activate(&infra, &first.join(INFRA), "first", &[]),
        "activate the infra host",
    );
    // Its local repository, filled as Pigsty's repo is: every locked package and an index.
    ok(
        &common::infragen()
            .args(["repo", "sync", "--profile"])
            .arg(dir.join("first/profile.yml"))
            .arg("--lock")
            .arg(common::lock())
            .arg("--dir")
            .arg(infra.root().join("www/pigsty"))
            .output()
            .unwrap(),
        "repo sync",
    );

    fs::create_dir_all(dir.join("node")).unwrap();
    let node = Machine::boot(&dir.join("node"), "infragen-test-nodes-pg", node_root);
    // chrony in a container has no CAP_SYS_TIME: it runs with -x, never steering this
    // machine's clock (the test's setting, as Pigsty's NODE module would install chrony).
    let dropin = node.root().join("etc/systemd/system/chrony.service.d");
    fs::create_dir_all(&dropin).unwrap();
    fs::write(
        dropin.join("test.conf"),
        "[Unit]\nConditionCapability=\n[Service]\nExecStart=\nExecStart=!/usr/sbin/chronyd -x\n",
    )
    .unwrap();
    inside(&node, &["systemctl", "daemon-reload"]);
    inside(&node, &["systemctl", "restart", "chrony.service"]);
    let before = snapshot(&node.root());
    assert!(
        before.contains_key("etc/ssl/certs/ca-certificates.crt"),
        "{before:?}"
    );

    // A first activation whose probe fails gives every file back.
    let o = activate(&node, &failing.join(NODE), "failing", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    eprintln!("a failing first activation:\n{err}");
    assert!(
        err.contains("the node part failed its probe") && err.contains("127.0.55.99"),
        "{err}"
    );
    assert_eq!(
        changed(&before, &snapshot(&node.root())),
        Vec::<String>::new()
    );

    // The node bundle: every probe passes, then each thing is checked again from inside.
    let o = activate(&node, &first.join(NODE), "first", &[]);
    ok(&o, "activate the node");
    eprintln!(
        "the node's activation:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let hosts = inside(&node, &["getent", "hosts", "i.pigsty"]);
    assert_eq!(hosts.split_whitespace().next(), Some(INFRA), "{hosts}");
    let through_dns = inside(&node, &["getent", "hosts", "dnsonly.pigsty"]);
    assert_eq!(
        through_dns.split_whitespace().next(),
        Some(INFRA),
        "{through_dns}"
    );
    assert!(
        !fs::read_to_string(node.root().join("etc/hosts"))
            .unwrap()
            .contains("dnsonly"),
        "dnsonly.pigsty must come from dnsmasq, not /etc/hosts"
    );
    let sources = inside(&node, &["chronyc", "-n", "sources"]);
    assert!(sources.contains(INFRA), "{sources}");
    let update = inside(
        &node,
        &[
            "apt-get",
            "update",
            "--error-on=any",
            "-oDir::Etc::SourceList=/dev/null",
        ],
    );
    assert!(
        update.contains(&format!("http://{INFRA}/pigsty")),
        "{update}"
    );
    inside(
        &node,
        &[
            "curl",
            "-sS",
            "--fail",
            "-o",
            "/dev/null",
            "https://i.pigsty/",
        ],
    );
    let status = inside(&node, &["infragen", "status"]);
    assert!(
        status.contains("/etc/hosts") && status.contains("infragen-ca.crt"),
        "{status}"
    );
    let wired = snapshot(&node.root());

    // node_etc_hosts changed: only the managed block of /etc/hosts changes.
    let second = build(
        dir,
        "second",
        &profile("    node_etc_hosts: ['127.0.55.10 extra.pigsty']\n"),
    );
    let unmanaged_before = unmanaged(&node.root());
    ok(
        &activate(&node, &second.join(NODE), "second", &[]),
        "activate the second",
    );
    assert_eq!(changed(&wired, &snapshot(&node.root())), ["etc/hosts"]);
    assert_eq!(unmanaged(&node.root()), unmanaged_before);
    let extra = inside(&node, &["getent", "hosts", "extra.pigsty"]);
    assert_eq!(extra.split_whitespace().next(), Some(INFRA), "{extra}");
    let after_second = snapshot(&node.root());

    // A probe that fails rolls the node back: it resolves as before.
    let third = build(
        dir,
        "third",
        &profile(&format!(
            "    node_etc_hosts: ['127.0.55.10 extra.pigsty']\n{bad_dns}"
        )),
    );
    let o = activate(&node, &third.join(NODE), "third", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    eprintln!("a failing later activation:\n{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(
        changed(&after_second, &snapshot(&node.root())),
        Vec::<String>::new()
    );
    let again = inside(&node, &["getent", "hosts", "dnsonly.pigsty"]);
    assert_eq!(again.split_whitespace().next(), Some(INFRA), "{again}");

    // Removed from the profile: its last bundle with --remove gives everything back.
    let removed = ok(
        &activate(&node, &second.join(NODE), "remove", &["--remove", "--json"]),
        "activate --remove",
    );
    let lines = common::schema::check_lines(&common::schema::documented(), &removed);
    let result = lines.last().expect("a result line");
    assert_eq!(result["removed"], true, "{removed}");
    assert_eq!(
        result["files"].as_array().map(Vec::len),
        Some(5),
        "{removed}"
    );
    assert_eq!(
        changed(&before, &snapshot(&node.root())),
        Vec::<String>::new()
    );
    let status = inside(&node, &["infragen", "status"]);
    assert!(status.contains("no generation is active"), "{status}");
}
