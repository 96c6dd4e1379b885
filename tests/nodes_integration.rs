//! Node files checked by the programs that read them (integration tier: it runs `chronyd`,
//! `apt-get` and `openssl`): a regular node's chrony client configuration parses and opens no
//! server, its APT source is read by apt as the flat repository `repo sync` makes, and its CA
//! verifies the nginx certificate the infra host serves for the home domain. The packages are
//! made here (`tests/common/hermetic.rs`). The fast node tests: `tests/nodes.rs`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

const FILE: &str = "tests/nodes_integration.rs";

const PROFILE: &str = "
all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    pg-meta:
      hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } }
      vars: { pg_cluster: pg-meta }
  vars:
    admin_ip: 10.10.10.10
    node_ntp_servers: ['pool pool.ntp.org iburst', 'server ${admin_ip} iburst']
";

/// Builds [`PROFILE`] from the made packages into `dir/out`, PKI state in `dir/pki`.
fn build(dir: &Path) {
    let repo = common::hermetic::repo(&dir.join("hermetic"));
    let pki = dir.join("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    let profile = dir.join("p.yml");
    fs::write(&profile, PROFILE).unwrap();
    let o = common::infragen()
        .arg("build")
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--lock")
        .arg(&repo.lock)
        .arg("--pki")
        .arg(&pki)
        .arg("--repo")
        .arg(&repo.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .output()
        .unwrap();
    common::ok(&o, "build");
}

/// Runs `cmd`; its standard output, standard error and success.
fn run(cmd: &mut Command) -> (String, String, bool) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.success(),
    )
}

#[test]
fn node_files_are_read_by_chronyd_apt_and_openssl() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    common::tier::require(
        FILE,
        &[
            ("chronyd", "chrony"),
            ("apt-get", "apt"),
            ("openssl", "openssl"),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let node = tmp.path().join("out/10.10.10.11/node");

    // chrony: `-p` parses the file and prints the configuration it read, or fails naming the
    // line; a configuration with a bad directive must fail (the check can fail).
    let chrony = node.join("chrony.conf");
    let (out, err, ok) = run(Command::new("chronyd").arg("-p").arg("-f").arg(&chrony));
    assert!(ok, "chronyd -p: {err}");
    assert_eq!(out, fs::read_to_string(&chrony).unwrap());
    assert!(!out.lines().any(|l| l.starts_with("allow")), "{out}");
    let bad = tmp.path().join("bad-chrony.conf");
    fs::write(&bad, format!("{out}nonsense 1\n")).unwrap();
    let (_, err, ok) = run(Command::new("chronyd").arg("-p").arg("-f").arg(&bad));
    assert!(!ok && err.contains("Invalid directive"), "{err}");

    // APT: the deb822 source alone, read by apt; it asks the flat repository (suite `./`).
    let parts = tmp.path().join("apt/sources.list.d");
    let lists = tmp.path().join("apt/lists");
    fs::create_dir_all(&parts).unwrap();
    fs::create_dir_all(lists.join("partial")).unwrap();
    let apt = |source: &str| {
        fs::write(parts.join("infragen.sources"), source).unwrap();
        run(Command::new("apt-get")
            .args([
                "update",
                "--print-uris",
                "-o",
                "Dir::Etc::SourceList=/dev/null",
            ])
            .arg(format!("-oDir::Etc::SourceParts={}", parts.display()))
            .arg(format!("-oDir::State::Lists={}", lists.display())))
    };
    let source = fs::read_to_string(node.join("infragen.sources")).unwrap();
    let (out, err, ok) = apt(&source);
    assert!(ok && !err.contains("E:"), "apt-get: {err}");
    assert!(
        out.contains("'http://10.10.10.10/pigsty/./InRelease'")
            && out.contains("'http://10.10.10.10/pigsty/./Packages"),
        "{out}"
    );
    let (_, err, _) = apt(&source.replace("Suites:", "Suite:"));
    assert!(
        err.contains("Malformed entry"),
        "apt must refuse a bad source: {err}"
    );

    // The CA installed on the node verifies the nginx certificate, issued for the home domain.
    let ca = node.join("infragen-ca.crt");
    let cert = tmp.path().join("pki/nginx/pigsty.crt");
    let (out, err, ok) = run(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .arg(&cert));
    assert!(ok, "openssl verify: {out}{err}");
    let (out, err, ok) = run(Command::new("openssl")
        .args(["x509", "-noout", "-checkhost", "i.pigsty", "-in"])
        .arg(&cert));
    assert!(ok && out.contains("does match"), "{out}{err}");
}
