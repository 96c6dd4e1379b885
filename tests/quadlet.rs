//! The podman runtime's Quadlet files, checked by Quadlet itself.
//!
//! Debian 12's podman (4.3) has no Quadlet, so the generator is taken from the next Debian
//! release's `podman` package, fetched from this machine's own Debian mirror (the bookworm source
//! of its APT configuration, suite `trixie`), with the whole chain verified: `InRelease` signed
//! (gpgv, the source's keyring), `Packages` by the Release digest, the `.deb` by the Packages
//! digest; read with infragen's own `.deb` reader. The generator runs in `-dryrun` mode over every
//! `.container` of a single-node bundle: each must turn into a service running its image from the
//! generation's OCI layout with the same volumes, and a planted unknown key must be refused (the
//! check can fail).

mod common;

use common::{ok, root};

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use infragen::pkg::fetch::{self, AptConfig, Cache, Trust};

/// Quadlet from the next release's podman, extracted once and cached.
fn quadlet() -> PathBuf {
    // the tests' own cache (`target/tmp`), never the user's
    let cache = common::test_cache_home().join("infragen-test");
    let sources = AptConfig::default().sources().expect("APT sources");
    let mut source = sources
        .iter()
        .find(|s| {
            s.suites.iter().any(|x| x == "bookworm") && s.components.iter().any(|c| c == "main")
        })
        .expect("a bookworm main source in /etc/apt")
        .clone();
    source.suites = vec!["trixie".to_owned()];
    source.components = vec!["main".to_owned()];
    let (packages, _) = fetch::packages(
        &source,
        "amd64",
        fetch::Checks {
            trust: Trust::Signed,
            clock: infragen::pkg::apt::validity::Clock::now(),
        },
        &fetch::Downloader::default(),
    )
    .expect("trixie index");
    let podman = packages
        .iter()
        .find(|p| p.name == "podman")
        .expect("podman in trixie");
    let bin = cache.join(format!("quadlet-{}", podman.version));
    if bin.is_file() {
        return bin;
    }
    let bytes = Cache::new(&cache)
        .deb(
            "podman",
            &podman.version,
            &podman.filename,
            &podman.sha256,
            podman.size,
            &[],
            &[source],
            &mut |_, _| {},
        )
        .expect("podman .deb");
    let deb = infragen::pkg::deb::read(&bytes, &infragen::pkg::deb::Limits::default())
        .expect("podman .deb reads");
    let content = deb
        .entries
        .iter()
        .find_map(|e| match (&e.kind, e.path.as_str()) {
            (infragen::pkg::deb::Kind::File(b), "usr/libexec/podman/quadlet") => Some(b.clone()),
            _ => None,
        })
        .expect("usr/libexec/podman/quadlet in podman");
    fs::create_dir_all(&cache).unwrap();
    let part = cache.join(".quadlet.part");
    fs::write(&part, content).unwrap();
    fs::set_permissions(&part, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&part, &bin).unwrap();
    bin
}

fn dry_run(quadlet: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    Command::new(quadlet)
        .arg("-dryrun")
        .env("QUADLET_UNIT_DIRS", dir)
        .output()
        .expect("quadlet runs")
}

#[test]
fn quadlet_turns_every_container_file_into_a_service() {
    common::tier::binary(common::tier::Tier::Integration, "tests/quadlet.rs");
    let quadlet = quadlet();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("single.yml");
    fs::write(
        &profile,
        fs::read_to_string(root().join("profiles/single-node.yml"))
            .unwrap()
            .replace("10.10.10.", "127.0.54."),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = common::infragen()
        .args(["build", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .arg("--lock")
        .arg(common::lock())
        .arg("--pki")
        .arg(dir.path().join("pki"))
        .output()
        .unwrap();
    ok(&o, "build");
    let bundle = out.join("127.0.54.10");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let o = dry_run(&quadlet, &bundle.join("quadlet"));
    let stdout = ok(&o, "quadlet -dryrun");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !stderr.contains("unsupported") && !stderr.contains("error"),
        "{stderr}"
    );
    let mut services = 0;
    for (c, m) in manifest["components"].as_object().unwrap() {
        let quadlet_file = bundle.join(format!("quadlet/infra-{c}.container"));
        if !quadlet_file.is_file() {
            continue;
        }
        services += 1;
        let unit = stdout
            .split(&format!("---infra-{c}.service---\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no service for {c}:\n{stdout}"))
            .split("\n---")
            .next()
            .unwrap();
        let exec = unit
            .lines()
            .find(|l| l.starts_with("ExecStart=/usr/bin/podman run "))
            .unwrap_or_else(|| panic!("{c}: no podman run\n{unit}"));
        assert!(
            exec.ends_with(&format!(" oci:/var/lib/infragen/current/oci:infra-{c}")),
            "{exec}"
        );
        assert!(
            exec.contains("--network host") && exec.contains("--read-only"),
            "{exec}"
        );
        for v in m["data"].as_array().unwrap() {
            let volume = format!(
                "-v {}:{}",
                v["host"].as_str().unwrap(),
                v["path"].as_str().unwrap()
            );
            assert!(exec.contains(&volume), "{c}: {volume}\n{exec}");
        }
        for d in m["config_dirs"].as_array().unwrap() {
            let d = d.as_str().unwrap();
            let volume = format!("-v /var/lib/infragen/live/{c}{d}:{d}:ro");
            assert!(exec.contains(&volume), "{c}: {volume}\n{exec}");
        }
    }
    assert!(services >= 7, "{services} services");

    // The canary: an unknown key makes Quadlet refuse the file.
    let bad = dir.path().join("bad");
    fs::create_dir_all(&bad).unwrap();
    let text = fs::read_to_string(bundle.join("quadlet/infra-nginx.container")).unwrap();
    fs::write(
        bad.join("infra-nginx.container"),
        text.replace("[Container]\n", "[Container]\nNoSuchKey=1\n"),
    )
    .unwrap();
    let o = dry_run(&quadlet, &bad);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !o.status.success() || !all.contains("---infra-nginx.service---"),
        "an unknown key was accepted:\n{all}"
    );
}
