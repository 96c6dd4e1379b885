//! Node bundles (issue 14, docs/nodes.md), fast tier: every node of an inventory gets a bundle
//! directory, a regular node's holds its node part alone (no component, no image), an infra
//! host's holds its node part beside its components; the node files' exact bytes and probes
//! for one small profile; bad NODE parameters refused with their key path. Builds use the
//! packages made by `tests/common/hermetic.rs` (no network, no tool).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use infragen::manifest::{Manifest, NodeProbe, Place, When};

/// The made repository, once per test binary.
fn hermetic() -> &'static common::hermetic::Repo {
    static REPO: std::sync::OnceLock<common::hermetic::Repo> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-hermetic-")
            .tempdir()
            .expect("temp dir")
            .keep();
        common::hermetic::repo(&dir)
    })
}

/// `infragen build` of `profile` from the made packages into `dir/out` (signed with the test
/// key), with a copy of the committed throwaway PKI in `dir/pki`; returns `dir/out`.
fn build(dir: &Path, profile: &str) -> PathBuf {
    let repo = hermetic();
    let pki = dir.join("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    let out = dir.join("out");
    let o = common::infragen()
        .arg("build")
        .args(["--profile", profile, "--out"])
        .arg(&out)
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--lock")
        .arg(&repo.lock)
        .arg("--pki")
        .arg(&pki)
        .arg("--repo")
        .arg(&repo.dir)
        .arg("--sign-key")
        .arg(&common::signing_key().0)
        .env_remove("SOURCE_DATE_EPOCH")
        // Only the made repository serves these packages (tests/golden.rs says why).
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .output()
        .expect("run infragen");
    common::ok(&o, &format!("build {profile}"));
    out
}

/// The hosts of an inventory, as the profile loader reads them (not the plan under test).
fn inventory_hosts(profile: &str) -> BTreeSet<String> {
    let inv = infragen::profile::load(profile, &[]).expect("the profile loads");
    inv.all_hosts().into_iter().map(str::to_owned).collect()
}

/// The directories of `out` that hold `what` (a file or directory name).
fn dirs_with(out: &Path, what: &str) -> BTreeSet<String> {
    fs::read_dir(out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join(what).exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// `small-prod`, `large-prod` and every fixture inventory render node files for every host.
#[test]
fn every_inventory_renders_node_files_for_every_host() {
    let mut profiles: Vec<String> = ["small-prod", "large-prod", "three-node"]
        .iter()
        .map(|p| common::root().join("profiles").join(format!("{p}.yml")))
        .chain(common::inventories())
        .map(|p| p.display().to_string())
        .collect();
    profiles.dedup();
    if common::shared_inventories().is_empty() {
        common::tier::loud(
            "SKIPPED Pigsty's own inventories in nodes::every_inventory_renders_node_files_for_every_host: ../shared/fixtures/pigsty is absent (a clone alone); our fixtures ran",
        );
    }
    for profile in &profiles {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let o = common::infragen()
            .args(["render", "--profile", profile, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        common::ok(&o, &format!("render {profile}"));
        let hosts = inventory_hosts(profile);
        assert!(!hosts.is_empty(), "{profile}");
        assert_eq!(dirs_with(&out, "node"), hosts, "{profile}");
    }
}

/// `large-prod`, `three-node` and every fixture inventory built (from the made packages): a
/// bundle for every host of the inventory, each with a node part.
#[test]
fn every_inventory_builds_a_bundle_for_every_node() {
    let profiles: Vec<PathBuf> = ["large-prod", "three-node"]
        .iter()
        .map(|p| common::root().join("profiles").join(format!("{p}.yml")))
        .chain(common::inventories())
        .collect();
    if common::shared_inventories().is_empty() {
        common::tier::loud(
            "SKIPPED Pigsty's own inventories in nodes::every_inventory_builds_a_bundle_for_every_node: ../shared/fixtures/pigsty is absent (a clone alone); our fixtures ran",
        );
    }
    for profile in &profiles {
        let profile = profile.to_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = build(tmp.path(), profile);
        let hosts = inventory_hosts(profile);
        assert_eq!(dirs_with(&out, "manifest.json"), hosts, "{profile}");
        for host in &hosts {
            let m =
                Manifest::parse(&fs::read(out.join(host).join("manifest.json")).unwrap()).unwrap();
            assert!(m.node.is_some(), "{profile}: {host} has no node part");
        }
    }
}

/// `small-prod` built: a bundle for every host; regular nodes' bundles hold a node part and
/// nothing else, are verified by `infragen verify` and laid out by `repo images`.
#[test]
fn small_prod_builds_a_bundle_for_every_node() {
    let profile = common::root().join("profiles/small-prod.yml");
    let profile = profile.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = build(tmp.path(), profile);
    let hosts = inventory_hosts(profile);
    assert_eq!(dirs_with(&out, "manifest.json"), hosts);
    let infra: BTreeSet<&str> = ["10.10.10.11", "10.10.10.12"].into();
    for host in &hosts {
        let dir = out.join(host);
        let m = Manifest::parse(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(&m.host, host);
        let node = m
            .node
            .as_ref()
            .unwrap_or_else(|| panic!("{host}: no node part"));
        assert!(node.files.contains_key("/etc/hosts"), "{host}");
        assert!(
            node.files
                .contains_key("/usr/local/share/ca-certificates/infragen-ca.crt"),
            "{host}"
        );
        if infra.contains(host.as_str()) {
            assert!(!m.components.is_empty(), "{host}");
            // Infra hosts: the hosts probe alone; chrony is their own component.
            assert!(
                matches!(node.probes[..], [NodeProbe::Hosts { .. }]),
                "{host}: {:?}",
                node.probes
            );
            assert!(
                !node.files.contains_key("/etc/chrony/chrony.conf"),
                "{host}"
            );
            assert!(dir.join("oci/index.json").is_file(), "{host}");
        } else {
            assert!(m.components.is_empty() && m.incomplete.is_empty(), "{host}");
            assert!(m.recipients.is_none(), "{host}: nothing to seal");
            assert!(node.files.contains_key("/etc/chrony/chrony.conf"), "{host}");
            // Only the node files, the manifest and its signature.
            let mut entries: Vec<String> = walkdir::WalkDir::new(&dir)
                .min_depth(1)
                .into_iter()
                .map(|e| e.unwrap())
                .filter(|e| e.file_type().is_file())
                .map(|e| e.path().strip_prefix(&dir).unwrap().display().to_string())
                .collect();
            entries.sort();
            let mut want: Vec<String> = m.files.keys().cloned().collect();
            want.extend(["manifest.json".to_owned(), "manifest.sig".to_owned()]);
            want.sort();
            assert_eq!(entries, want, "{host}");
            assert!(m.files.keys().all(|f| f.starts_with("node/")), "{host}");
            assert!(m.files.values().all(|f| f.mode == 0o644), "{host}");
        }
        let o = common::infragen()
            .arg("verify")
            .arg(&dir)
            .arg("--key")
            .arg(&common::signing_key().1)
            .output()
            .unwrap();
        common::ok(&o, &format!("verify {host}"));
    }
    // The admin node (10.10.10.10, a controller, no infra host) drops its own NTP source;
    // the others sync from it.
    let chrony = |h: &str| fs::read_to_string(out.join(h).join("node/chrony.conf")).unwrap();
    assert!(!chrony("10.10.10.10").contains("10.10.10.10"));
    assert!(chrony("10.10.10.21").contains("server 10.10.10.10 iburst\n"));
    // `repo images` lays out regular nodes' bundles (no image to push for them). Only theirs:
    // the infra hosts' secrets are in clear (no `infragen_host_key`), which it refuses.
    let regular = tmp.path().join("regular");
    for host in hosts.iter().filter(|h| !infra.contains(h.as_str())) {
        common::copy_tree(&out.join(host), &regular.join(host));
    }
    let registry = tmp.path().join("registry");
    let o = common::infragen()
        .args(["repo", "images", "--profile", profile, "--images"])
        .arg(&regular)
        .arg("--registry-dir")
        .arg(&registry)
        .output()
        .unwrap();
    common::ok(&o, "repo images");
    let tags = registry.join("v2/infragen/bundle/manifests");
    for host in hosts.iter().filter(|h| !infra.contains(h.as_str())) {
        assert!(tags.join(host).is_file(), "no bundle tag for {host}");
    }
}

const SMALL: &str = "
all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    pg-meta:
      hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } }
      vars: { pg_cluster: pg-meta }
  vars:
    admin_ip: 10.10.10.10
    infra_portal: { home: { domain: i.pigsty } }
    node_etc_hosts: ['${admin_ip} sss.pigsty', '10.10.10.11 pg-meta-1']
    node_ntp_servers: ['pool pool.ntp.org iburst', 'server ${admin_ip} iburst']
";

/// The exact node files, host paths, places and probes of one infra node and one pgsql node.
#[test]
fn a_small_profile_gives_these_node_files_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("small.yml");
    fs::write(&profile, SMALL).unwrap();
    let out = build(tmp.path(), profile.to_str().unwrap());
    let ca = fs::read_to_string(common::pki::committed().join("ca/ca.crt")).unwrap();
    let read = |h: &str, f: &str| fs::read_to_string(out.join(h).join("node").join(f)).unwrap();
    let hosts = "10.10.10.10 i.pigsty\n10.10.10.10 sss.pigsty\n10.10.10.11 pg-meta-1\n";
    let expected: BTreeMap<&str, String> = [
        ("hosts", hosts.to_owned()),
        (
            "resolv.conf",
            "options single-request-reopen timeout:1\nnameserver 10.10.10.10\n".to_owned(),
        ),
        ("resolved.conf", "[Resolve]\nDNS=10.10.10.10\n".to_owned()),
        (
            "chrony.conf",
            "pool pool.ntp.org iburst\nserver 10.10.10.10 iburst\ndriftfile /var/lib/chrony/chrony.drift\nmakestep 1 3\nlogdir /var/log/chrony\n".to_owned(),
        ),
        (
            "infragen.sources",
            "Types: deb\nURIs: http://10.10.10.10/pigsty/\nSuites: ./\nTrusted: yes\n".to_owned(),
        ),
        ("infragen-ca.crt", ca.clone()),
    ]
    .into();
    let names: BTreeSet<String> = fs::read_dir(out.join("10.10.10.11/node"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, expected.keys().map(|k| (*k).to_owned()).collect());
    for (name, want) in &expected {
        assert_eq!(&read("10.10.10.11", name), want, "10.10.10.11 node/{name}");
    }
    // The infra node: the same, but no chrony client (its chrony is a component).
    for name in [
        "hosts",
        "resolv.conf",
        "resolved.conf",
        "infragen.sources",
        "infragen-ca.crt",
    ] {
        assert_eq!(
            &read("10.10.10.10", name),
            &expected[name],
            "10.10.10.10 node/{name}"
        );
    }
    assert!(!out.join("10.10.10.10/node/chrony.conf").exists());

    let manifest =
        |h: &str| Manifest::parse(&fs::read(out.join(h).join("manifest.json")).unwrap()).unwrap();
    let m = manifest("10.10.10.11");
    let node = m.node.unwrap();
    let placed: Vec<(&str, &str, Place, When, u32)> = node
        .files
        .iter()
        .map(|(p, f)| (p.as_str(), f.source.as_str(), f.place, f.when, f.mode))
        .collect();
    assert_eq!(
        placed,
        [
            (
                "/etc/apt/sources.list.d/infragen.sources",
                "node/infragen.sources",
                Place::Whole,
                When::Always,
                0o644
            ),
            (
                "/etc/chrony/chrony.conf",
                "node/chrony.conf",
                Place::Whole,
                When::Always,
                0o644
            ),
            (
                "/etc/hosts",
                "node/hosts",
                Place::Block,
                When::Always,
                0o644
            ),
            (
                "/etc/resolv.conf",
                "node/resolv.conf",
                Place::Top,
                When::NoResolved,
                0o644
            ),
            (
                "/etc/systemd/resolved.conf.d/infragen.conf",
                "node/resolved.conf",
                Place::Whole,
                When::Resolved,
                0o644
            ),
            (
                "/usr/local/share/ca-certificates/infragen-ca.crt",
                "node/infragen-ca.crt",
                Place::Whole,
                When::Always,
                0o644
            ),
        ]
    );
    for f in node.files.values() {
        let listed = &m.files[&f.source];
        assert_eq!(listed.mode, 0o644);
        assert_eq!(
            listed.digest.as_str(),
            format!(
                "sha256:{}",
                infragen::digest::sha256_hex(
                    &fs::read(out.join("10.10.10.11").join(&f.source)).unwrap()
                )
            )
        );
    }
    assert_eq!(
        node.probes,
        [
            NodeProbe::Hosts {
                name: "i.pigsty".into(),
                address: "10.10.10.10".into()
            },
            NodeProbe::Dns {
                server: "10.10.10.10:53".into(),
                name: "i.pigsty".into(),
                address: "10.10.10.10".into()
            },
            NodeProbe::Chrony {
                sources: vec!["10.10.10.10".into()]
            },
            NodeProbe::Apt {
                source: "/etc/apt/sources.list.d/infragen.sources".into()
            },
            NodeProbe::Https {
                url: "https://i.pigsty/".into()
            },
        ]
    );
    let infra = manifest("10.10.10.10").node.unwrap();
    assert_eq!(
        infra.probes,
        [NodeProbe::Hosts {
            name: "i.pigsty".into(),
            address: "10.10.10.10".into()
        }]
    );
}

/// `overwrite`: the whole `resolv.conf`, and every query to these servers under resolved.
#[test]
fn overwrite_places_the_whole_resolver_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("small.yml");
    fs::write(
        &profile,
        format!("{SMALL}    node_dns_method: overwrite\n    node_dns_servers: ['${{admin_ip}}', '10.10.10.11']\n"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = common::infragen()
        .args(["render", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    common::ok(&o, "render");
    assert_eq!(
        fs::read_to_string(out.join("10.10.10.11/node/resolved.conf")).unwrap(),
        "[Resolve]\nDNS=10.10.10.10 10.10.10.11\nDomains=~.\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("10.10.10.11/node/resolv.conf")).unwrap(),
        "options single-request-reopen timeout:1\nnameserver 10.10.10.10\nnameserver 10.10.10.11\n"
    );
}

/// Bad NODE parameters: exit 2, each named by file, line and key path.
#[test]
fn bad_node_parameters_name_their_key_path() {
    let cases = [
        (
            "    node_dns_method: bogus\n",
            "p.yml:12:22: all.vars.node_dns_method: `bogus` is not one of `add`, `overwrite`, `none`",
        ),
        (
            "    node_dns_servers: ['${admin_ip}', 'ns.example']\n",
            "p.yml:12:39: all.vars.node_dns_servers[1]: `ns.example` is not an IP address (a name server is an address)",
        ),
        (
            "    node_etc_hosts: { own: 10.10.10.9 }\n",
            "p.yml:12:21: all.vars.node_etc_hosts: expected a list of strings, found a mapping",
        ),
    ];
    for (extra, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let profile = tmp.path().join("p.yml");
        let text = SMALL.replace(
            "    node_etc_hosts: ['${admin_ip} sss.pigsty', '10.10.10.11 pg-meta-1']\n",
            "",
        );
        fs::write(&profile, format!("{text}{extra}")).unwrap();
        let o = common::infragen()
            .args(["check", "--profile"])
            .arg(&profile)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err}");
    }
}

/// `check` counts the other nodes; `--json` lists them, as docs/json-schema.json says.
#[test]
fn check_counts_and_lists_the_other_nodes() {
    let profile = common::root().join("profiles/small-prod.yml");
    let o = common::infragen()
        .args(["check", "--profile"])
        .arg(&profile)
        .output()
        .unwrap();
    let text = common::ok(&o, "check");
    assert!(
        text.contains(
            "\n  11 other nodes: node part only (hosts, resolver, chrony, APT source, CA)\n"
        ),
        "{text}"
    );
    let o = common::infragen()
        .args(["check", "--json", "--profile"])
        .arg(&profile)
        .output()
        .unwrap();
    let lines = common::schema::check_lines(
        &common::schema::documented(),
        &common::ok(&o, "check --json"),
    );
    let result = lines.last().unwrap();
    let nodes: BTreeSet<String> = result["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut want = inventory_hosts(profile.to_str().unwrap());
    want.remove("10.10.10.11");
    want.remove("10.10.10.12");
    assert_eq!(nodes, want);
}

/// A host key on the infra host and on the pgsql node: the infra bundle is sealed and keeps its
/// node part; the node's bundle has no secret, so nothing is sealed, and `push`-side checks
/// accept it.
#[test]
fn sealing_leaves_node_parts_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let key = |name: &str| {
        let root = tmp.path().join(name);
        fs::create_dir(&root).unwrap();
        let o = common::infragen()
            .args(["host", "init", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        common::ok(&o, "host init").trim().to_owned()
    };
    let (infra_key, node_key) = (key("infra-root"), key("node-root"));
    assert!(infra_key.starts_with("age1") && node_key.starts_with("age1"));
    let text = SMALL
        .replace(
            "10.10.10.10: { infra_seq: 1 }",
            &format!("10.10.10.10: {{ infra_seq: 1, infragen_host_key: {infra_key} }}"),
        )
        .replace(
            "10.10.10.11: { pg_seq: 1,",
            &format!("10.10.10.11: {{ infragen_host_key: {node_key}, pg_seq: 1,"),
        );
    assert_ne!(text, SMALL);
    let profile = tmp.path().join("sealed.yml");
    fs::write(&profile, text).unwrap();
    let out = build(tmp.path(), profile.to_str().unwrap());
    let manifest =
        |h: &str| Manifest::parse(&fs::read(out.join(h).join("manifest.json")).unwrap()).unwrap();
    let infra = manifest("10.10.10.10");
    assert_eq!(infra.recipients.as_deref(), Some(&[infra_key][..]));
    assert!(infra.node.is_some());
    assert!(
        infra
            .files
            .keys()
            .any(|f| f.starts_with("secrets/")
                && Path::new(f).extension().is_some_and(|e| e == "age"))
    );
    let node = manifest("10.10.10.11");
    assert!(node.recipients.is_none() && node.node.is_some());
    infragen::ship::check_secrets(&infra).unwrap();
    infragen::ship::check_secrets(&node).unwrap();
}
