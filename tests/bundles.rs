//! Per-host bundles: units checked by systemd (`systemd-analyze verify`, `security --offline`),
//! certificates by `openssl verify`, a secret scan over every artifact, components run by
//! `systemd-nspawn` from their `.nspawn` files and answering their health probes on
//! 127.0.0.0/8, and manifests that list and verify every file.
//!
//! Needs systemd-analyze, systemd-nspawn (systemd-container), openssl, umoci (`.ci/run`).

mod common;

use common::{artifact_texts, dns_a, ok, root};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds `profile` into `dir/out` with its own PKI state in `dir/pki`.
fn build(profile: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("out");
    let mut args = vec![
        "build",
        "--profile",
        profile,
        "--out",
        out.to_str().unwrap(),
    ];
    let lock = common::lock().to_path_buf();
    let pki = dir.join("pki");
    args.extend([
        "--lock",
        lock.to_str().unwrap(),
        "--pki",
        pki.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    let o = common::infragen()
        .args(&args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    ok(&o, &format!("build {profile}"));
    out
}

/// The infra hosts' bundles of `out` (the other nodes' bundles hold a node part alone, no
/// image: tests/nodes.rs).
fn hosts(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("oci").is_dir())
        .collect();
    v.sort();
    v
}

fn profiles() -> Vec<String> {
    let mut v = vec!["three-node".to_owned()];
    // our Pigsty-dialect fixtures, and Pigsty's own when ../shared is present
    for f in common::inventories() {
        v.push(f.display().to_string());
    }
    v
}

/// docs/reliability.md budgets.
fn budget(unit: &str) -> f64 {
    match unit {
        "infra-nginx.service" | "infra-dnsmasq.service" | "infra-blackbox.service" => 1.5,
        "infra-chrony.service" => 2.0,
        _ => 1.0,
    }
}

#[test]
fn every_unit_verifies_cleanly_and_scores_within_its_budget() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bundles.rs");
    let mut table =
        String::from("unit                              host           exposure  budget\n");
    for profile in profiles() {
        let dir = tempfile::tempdir().unwrap();
        let out = build(&profile, dir.path(), &[]);
        for host in hosts(&out) {
            let units = host.join("units");
            let mut names: Vec<String> = fs::read_dir(&units)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert!(names.len() >= 7, "{}: {names:?}", host.display());
            for name in names {
                let path = units.join(&name);
                let o = Command::new("systemd-analyze")
                    .arg("verify")
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(
                    o.status.success() && o.stderr.is_empty(),
                    "{}: systemd-analyze verify:\n{}",
                    path.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                let o = Command::new("systemd-analyze")
                    .args(["security", "--offline=yes", "--no-pager"])
                    .arg(&path)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                let score: f64 = text
                    .lines()
                    .find_map(|l| l.split("Overall exposure level for ").nth(1))
                    .and_then(|rest| rest.split(": ").nth(1))
                    .and_then(|s| s.split_whitespace().next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no score for {}:\n{text}", path.display()));
                let _ = writeln!(
                    table,
                    "{name:<33} {:<14} {score:>8.1} {:>7.1}",
                    host.file_name().unwrap().to_string_lossy(),
                    budget(&name)
                );
                assert!(
                    score <= budget(&name),
                    "{name}: exposure {score} over its budget {}\n{text}",
                    budget(&name)
                );
            }
        }
    }
    println!("{table}");
}

fn openssl(args: &[&str]) -> String {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    ok(&o, &format!("openssl {args:?}"))
}

fn sans(cert: &Path) -> Vec<String> {
    let text = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        cert.to_str().unwrap(),
    ]);
    let mut v: Vec<String> = text
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().replace("IP Address:", "IP:"))
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn certificates_verify_match_the_profile_and_survive_rebuilds() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bundles.rs");
    let dir = tempfile::tempdir().unwrap();
    let out = build("three-node", dir.path(), &[]);
    let pki = dir.path().join("pki");
    let ca = pki.join("ca/ca.crt");
    let nginx = pki.join("nginx/pigsty.crt");
    assert!(openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        nginx.to_str().unwrap()
    ])
    .contains(": OK"));
    let mut want = vec![
        "DNS:adm.pigsty",
        "DNS:i.pigsty",
        "DNS:localhost",
        "IP:10.10.10.10",
        "IP:10.10.10.11",
        "IP:10.10.10.12",
    ];
    want.sort_unstable();
    assert_eq!(sans(&nginx), want);
    for seq in 1..=3 {
        let node = pki.join(format!("infra/infra-{seq}.crt"));
        assert!(openssl(&[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            node.to_str().unwrap()
        ])
        .contains(": OK"));
        let ip = format!("IP:10.10.10.{}", 9 + seq);
        let mut want = vec!["DNS:localhost".to_owned(), "IP:127.0.0.1".to_owned(), ip];
        want.sort();
        assert_eq!(sans(&node), want);
    }
    let key_mode = fs::metadata(pki.join("nginx/pigsty.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    let before: BTreeMap<String, Vec<u8>> = ["ca/ca.crt", "nginx/pigsty.crt", "infra/infra-1.crt"]
        .iter()
        .map(|p| ((*p).to_owned(), fs::read(pki.join(p)).unwrap()))
        .collect();
    let manifest_before = fs::read(out.join("10.10.10.10/manifest.json")).unwrap();
    let out = build("three-node", dir.path(), &[]);
    for (p, bytes) in &before {
        assert_eq!(&fs::read(pki.join(p)).unwrap(), bytes, "{p} was reissued");
    }
    assert_eq!(
        fs::read(out.join("10.10.10.10/manifest.json")).unwrap(),
        manifest_before,
        "same inputs, same manifest"
    );
}

#[test]
fn no_secret_appears_in_any_artifact() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bundles.rs");
    let dir = tempfile::tempdir().unwrap();
    let secrets = [
        "Graf-Admin-7f3e9c1d",
        "Meta-View-2b8a4e6f",
        "Basic-Auth-5d1c9e7a",
        "postgres://grafana:Db-Pw-8e2f4a@10.10.10.10/grafana",
    ];
    let text = fs::read_to_string(root().join("profiles/single-node.yml")).unwrap();
    let profile = text.replacen(
        "\n  vars:\n",
        &format!(
            "\n  vars:\n    grafana_admin_password: {}\n    grafana_view_password: {}\n    nginx_users: {{ ops: {} }}\n    grafana_pgurl: '{}'\n",
            secrets[0], secrets[1], secrets[2], secrets[3]
        ),
        1,
    );
    let path = dir.path().join("secret.yml");
    // The profile's own `grafana_admin_password` line would be a duplicate key: drop it.
    let profile: String = profile
        .lines()
        .filter(|l| !l.trim_start().starts_with("grafana_admin_password: pigsty"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&path, profile).unwrap();
    let out = build(path.to_str().unwrap(), dir.path(), &[]);
    let key = fs::read_to_string(dir.path().join("pki/nginx/pigsty.key")).unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut needles: Vec<&str> = secrets.to_vec();
    needles.push(&key_body[..40]);
    let mut scanned = 0;
    for host in hosts(&out) {
        let stored = fs::read_to_string(host.join("secrets/grafana/admin-password")).unwrap();
        assert_eq!(stored, secrets[0], "the secret is in the secrets area");
        // Basic-auth passwords are not even there: htpasswd holds SHA-512 crypt hashes.
        let htpasswd = fs::read_to_string(host.join("secrets/nginx/htpasswd")).unwrap();
        assert!(
            htpasswd.starts_with("ops:$6$") && !htpasswd.contains(secrets[2]),
            "{htpasswd}"
        );
        for (rel, bytes, mode) in artifact_texts(&host) {
            scanned += 1;
            for needle in &needles {
                let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                assert!(!found, "secret `{needle}` found in {rel} (mode {mode:o})");
            }
        }
        let unit = fs::read_to_string(host.join("units/infra-nginx.service")).unwrap();
        assert!(
            unit.contains("LoadCredential=htpasswd:") && !unit.contains("Environment="),
            "{unit}"
        );
    }
    assert!(scanned > 50, "scanned {scanned} files");
}

/// Runs `component` of the bundle `host` with systemd-nspawn from its `.nspawn` file, with the
/// host paths it names (under /var/lib/infragen, /data/infra, /www) moved into `dir`.
struct Machine {
    child: std::process::Child,
    log: PathBuf,
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nspawn(host: &Path, component: &str, dir: &Path) -> Machine {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(host.join("manifest.json")).unwrap()).unwrap();
    let m = &manifest["components"][component];
    let name = format!("infra-{component}");
    let machines = dir.join("machines");
    let unpacked = dir.join(format!("unpack-{component}"));
    let o = Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:{name}", host.join("oci").display()),
        ])
        .arg(&unpacked)
        .output()
        .unwrap();
    ok(&o, "umoci unpack");
    fs::create_dir_all(&machines).unwrap();
    let rootfs = machines.join(&name);
    fs::rename(unpacked.join("rootfs"), &rootfs).unwrap();
    let state = dir.join("state");
    for d in m["config_dirs"].as_array().unwrap() {
        let d = d.as_str().unwrap();
        let live = state.join(format!("live/{component}{d}"));
        fs::create_dir_all(live.parent().unwrap()).unwrap();
        let o = Command::new("cp")
            .arg("-a")
            .arg(rootfs.join(d.trim_start_matches('/')))
            .arg(&live)
            .output()
            .unwrap();
        ok(&o, "copy live config");
    }
    let uid = m["user"]["uid"].as_u64().unwrap().to_string();
    let creds = state.join(format!("secrets/{component}"));
    fs::create_dir_all(&creds).unwrap();
    if let Ok(entries) = fs::read_dir(host.join("secrets").join(component)) {
        for e in entries {
            let e = e.unwrap();
            fs::copy(e.path(), creds.join(e.file_name())).unwrap();
        }
    }
    ok(
        &Command::new("chown")
            .args(["-R", &format!("{uid}:{uid}")])
            .arg(&creds)
            .output()
            .unwrap(),
        "chown",
    );
    let data = dir.join("data");
    for v in m["data"].as_array().unwrap() {
        let p = data.join(v["host"].as_str().unwrap().trim_start_matches('/'));
        fs::create_dir_all(&p).unwrap();
        ok(
            &Command::new("chown")
                .args(["-R", &format!("{uid}:{uid}")])
                .arg(&p)
                .output()
                .unwrap(),
            "chown",
        );
    }
    let settings = fs::read_to_string(host.join(format!("nspawn/{name}.nspawn"))).unwrap();
    let settings = settings
        .replace("/var/lib/infragen/", &format!("{}/", state.display()))
        .replace("=/data/", &format!("={}/data/", data.display()))
        .replace("=/www:", &format!("={}/www:", data.display()));
    fs::create_dir_all(data.join("www")).unwrap();
    fs::write(machines.join(format!("{name}.nspawn")), settings).unwrap();
    let log = dir.join(format!("{name}.log"));
    let child = Command::new("systemd-nspawn")
        .args([
            "--settings=trusted",
            "--register=no",
            "--keep-unit",
            "--quiet",
            "-M",
            &name,
            "-D",
        ])
        .arg(&rootfs)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(dir.join(format!("{name}.err"))).unwrap())
        .spawn()
        .expect("systemd-nspawn (apt-get install systemd-container)");
    Machine { child, log }
}

fn http_ok(url: &str, machine: &Machine) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let agent = common::distribution::direct(Duration::from_secs(2));
    loop {
        if let Ok(mut r) = agent.get(url).call() {
            if r.status() == 200 {
                return r.body_mut().read_to_string().unwrap_or_default();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200; log:\n{}",
            fs::read_to_string(&machine.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn nspawn_files_run_their_components_which_answer_health_probes() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bundles.rs");
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(root().join("profiles/single-node.yml"))
        .unwrap()
        .replace("10.10.10.", "127.0.33.");
    let profile = dir.path().join("single.yml");
    fs::write(&profile, text).unwrap();
    let out = build(profile.to_str().unwrap(), dir.path(), &[]);
    let host = out.join("127.0.33.10");
    {
        let m = nspawn(&host, "nginx", dir.path());
        let body = http_ok("http://127.0.33.10/", &m);
        assert!(body.contains("<h1>i.pigsty</h1>"), "{body}");
        // HTTPS with the issued certificate, checked against the CA
        let ca = fs::read(dir.path().join("pki/ca/ca.crt")).unwrap();
        let o = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                "127.0.33.10:443",
                "-servername",
                "i.pigsty",
                "-verify_return_error",
                "-CAfile",
            ])
            .arg(dir.path().join("pki/ca/ca.crt"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!ca.is_empty());
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Verify return code: 0 (ok)"),
            "{text}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    {
        let m = nspawn(&host, "vmetrics", dir.path());
        assert_eq!(http_ok("http://127.0.33.10:8428/health", &m).trim(), "OK");
    }
    {
        let m = nspawn(&host, "alertmanager", dir.path());
        http_ok("http://127.0.33.10:9059/-/healthy", &m);
    }
    {
        let m = nspawn(&host, "dnsmasq", dir.path());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(ip) = dns_a("127.0.33.10:53", "i.pigsty") {
                assert_eq!(ip, "127.0.33.10");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not answer; log:\n{}",
                fs::read_to_string(&m.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

#[test]
fn manifests_list_every_file_and_verify_finds_any_change() {
    common::tier::binary(common::tier::Tier::Integration, "tests/bundles.rs");
    let dir = tempfile::tempdir().unwrap();
    let out = build("single-node", dir.path(), &[]);
    let host = out.join("10.10.10.10");
    let verify = |what: &str| {
        common::infragen()
            .args(["verify"])
            .arg(&host)
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    ok(&verify("clean"), "verify");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(host.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest["files"].as_object().unwrap().len();
    let on_disk = walkdir::WalkDir::new(&host)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    assert_eq!(
        listed + 1,
        on_disk,
        "every file but manifest.json is listed"
    );
    assert_eq!(manifest["generation"].as_str().unwrap().len(), 64);
    // flip one byte of one blob
    let blob = fs::read_dir(host.join("oci/blobs/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::remove_file(&blob).unwrap(); // a hard link into the store: do not write through it
    fs::write(&blob, &bytes).unwrap();
    fs::write(host.join("units/extra.service"), "[Service]\n").unwrap();
    let o = verify("tampered");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let name = blob.file_name().unwrap().to_string_lossy();
    assert!(
        err.contains(&format!("oci/blobs/sha256/{name}: sha256 is")),
        "{err}"
    );
    assert!(
        err.contains("units/extra.service: not in the manifest"),
        "{err}"
    );
}
