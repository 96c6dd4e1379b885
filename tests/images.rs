//! OCI images checked by real OCI tools: `skopeo inspect`, `umoci unpack`, and `runc` running
//! nginx (serving the rendered portal) and VictoriaMetrics (answering `/health`) on 127.0.0.0/8
//! addresses. Also reproducibility (two builds, different directories, caches, umask, time zone
//! and locale, identical digests; twenty concurrent builds), and refusal of tampered inputs (a
//! `.deb` not matching the lock, a stale lock, unsigned or inconsistent repository metadata, a
//! pinned package gone from the mirror).
//!
//! Real packages: the lock is resolved when the tests run (`common::lock`), so a security update
//! on Debian's mirror does not break them; golden digests come from made packages instead
//! (`tests/golden.rs`).
//!
//! Needs skopeo, umoci and runc (`.ci/run` installs them), and Debian's mirror.

mod common;

use common::runc::tool;
use common::{ok, root};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn lock_file() -> &'static Path {
    common::lock()
}

fn infragen(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::infragen();
    cmd.args(args).env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run infragen")
}

/// single-node moved to 127.0.31.x with plain HTTP, built once for every test here.
fn built() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-images-")
            .tempdir()
            .expect("tmp")
            .keep();
        let text = fs::read_to_string(root().join("profiles/single-node.yml")).expect("profile");
        let text = text.replace("nginx_sslmode: enable", "nginx_sslmode: disable");
        assert!(
            text.contains("nginx_sslmode: disable"),
            "single-node sets nginx_sslmode"
        );
        let profile = dir.join("single.yml");
        fs::write(&profile, text).expect("write profile");
        let out = dir.join("out");
        let o = infragen(
            &[
                "build",
                "--profile",
                profile.to_str().unwrap(),
                "--address-map",
                "10.10.10.=127.0.31.",
                "--out",
                out.to_str().unwrap(),
                "--lock",
                lock_file().to_str().unwrap(),
            ],
            &[],
        );
        ok(&o, "build single-node");
        out
    })
}

fn refs(layout: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json"))
            .expect("json");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .expect("ref")
                .to_owned()
        })
        .collect()
}

#[test]
fn every_image_is_accepted_by_skopeo_and_umoci() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let layout = built().join("127.0.31.10/oci");
    let names = refs(&layout);
    assert_eq!(
        names,
        [
            "infra-alertmanager",
            "infra-blackbox",
            "infra-chrony",
            "infra-dnsmasq",
            "infra-nginx",
            "infra-nginxexporter",
            "infra-vmalert",
            "infra-vmetrics"
        ]
    );
    let incomplete = fs::read_to_string(built().join("127.0.31.10/INCOMPLETE"))
        .expect("INCOMPLETE lists the base images");
    for c in ["infra-grafana", "infra-vlogs", "infra-vtraces"] {
        assert!(incomplete.contains(c), "{incomplete}");
    }
    let scratch = tempfile::tempdir().unwrap();
    for name in names {
        let o = Command::new(tool("skopeo"))
            .args(["inspect", &format!("oci:{}:{name}", layout.display())])
            .output()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&ok(&o, &format!("skopeo inspect {name}"))).unwrap();
        assert_eq!(json["Architecture"], "amd64");
        assert!(json["Layers"].as_array().unwrap().len() >= 3, "{name}");
        let bundle = scratch.path().join(&name);
        let o = Command::new(tool("umoci"))
            .args(["unpack", "--image", &format!("{}:{name}", layout.display())])
            .arg(&bundle)
            .output()
            .unwrap();
        ok(&o, &format!("umoci unpack {name}"));
        assert!(bundle.join("rootfs/etc/passwd").is_file(), "{name}");
    }
}

#[test]
fn every_image_of_three_node_is_accepted_by_skopeo_and_umoci() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = infragen(
        &[
            "build",
            "--profile",
            "three-node",
            "--out",
            out.to_str().unwrap(),
            "--lock",
            lock_file().to_str().unwrap(),
            "--pki",
            dir.path().join("pki").to_str().unwrap(),
        ],
        &[],
    );
    ok(&o, "build three-node");
    let mut checked = 0;
    for host in ["10.10.10.10", "10.10.10.11", "10.10.10.12"] {
        let layout = out.join(host).join("oci");
        let names = refs(&layout);
        assert_eq!(names.len(), 8, "{host}: every Debian-sourced component");
        for name in names {
            let o = Command::new(tool("skopeo"))
                .args(["inspect", &format!("oci:{}:{name}", layout.display())])
                .output()
                .unwrap();
            ok(&o, &format!("skopeo inspect {host} {name}"));
            let bundle = dir.path().join(format!("{host}-{name}"));
            let o = Command::new(tool("umoci"))
                .args(["unpack", "--image", &format!("{}:{name}", layout.display())])
                .arg(&bundle)
                .output()
                .unwrap();
            ok(&o, &format!("umoci unpack {host} {name}"));
            fs::remove_dir_all(&bundle).unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
}

/// Unpacks `name` and turns the spec into one runc runs here: host network, no rlimits, no
/// anonymous volumes (the image's own directories are used), `CAP_NET_BIND_SERVICE`.
fn runc_bundle(name: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join(name);
    let layout = built().join("127.0.31.10/oci");
    let o = Command::new(tool("umoci"))
        .args(["unpack", "--image", &format!("{}:{name}", layout.display())])
        .arg(&bundle)
        .output()
        .unwrap();
    ok(&o, "umoci unpack");
    common::runc::spec_for_here(&bundle);
    bundle
}

#[test]
fn nginx_image_serves_the_rendered_portal_under_runc() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let bundle = runc_bundle("infra-nginx", dir.path());
    let body = common::runc::serve_and_get(
        &bundle,
        &format!("infragen-test-nginx-{}", std::process::id()),
        "http://127.0.31.10:80/",
    );
    assert!(body.contains("<h1>i.pigsty</h1>"), "{body}");
    assert!(body.contains("infra node 1 · 127.0.31.10"), "{body}");
}

/// Bind-mounts a throwaway certificate where the scrape config's TLS jobs expect the host's
/// (bundles carry the real ones): `/etc/pki/{ca,infra}.crt` and the key as a credential.
fn mount_throwaway_pki(bundle: &Path, credentials: &str) {
    let pki = bundle.join("pki");
    let creds = bundle.join("creds");
    fs::create_dir_all(&pki).unwrap();
    fs::create_dir_all(&creds).unwrap();
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test",
        ])
        .arg("-keyout")
        .arg(creds.join("infra.key"))
        .arg("-out")
        .arg(pki.join("infra.crt"))
        .output()
        .expect("openssl");
    ok(&o, "openssl req");
    fs::copy(pki.join("infra.crt"), pki.join("ca.crt")).unwrap();
    let mut perms = fs::metadata(creds.join("infra.key")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    fs::set_permissions(creds.join("infra.key"), perms).unwrap();
    let path = bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let mounts = c["mounts"].as_array_mut().unwrap();
    for (src, dst) in [
        (pki, "/etc/pki".to_owned()),
        (creds, credentials.to_owned()),
    ] {
        mounts.push(serde_json::json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro"]}));
    }
    fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

#[test]
fn victoria_metrics_image_answers_health_under_runc() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let bundle = runc_bundle("infra-vmetrics", dir.path());
    mount_throwaway_pki(&bundle, "/run/credentials/infra-vmetrics.service");
    let body = common::runc::serve_and_get(
        &bundle,
        &format!("infragen-test-vm-{}", std::process::id()),
        "http://127.0.31.10:8428/health",
    );
    assert_eq!(body.trim(), "OK");
}

/// Builds the meta-style inventory `fixture` with the committed throwaway PKI.
fn build_fixture(
    fixture: &Path,
    out: &Path,
    cache: &Path,
    prelude: &str,
    env: &[(&str, &str)],
) -> String {
    // The committed throwaway PKI (certificates are part of the config layers), copied so that
    // nothing is written into the repository.
    let pki = out.parent().expect("parent").join("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    let mut cmd = common::infragen_sh(
        prelude,
        "build --profile \"$1\" --out \"$2\" --cache \"$3\" --lock \"$4\" --pki \"$5\"",
    );
    cmd.arg(fixture)
        .arg(out)
        .arg(cache)
        .arg(lock_file())
        .arg(&pki)
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    ok(
        &cmd.output().unwrap(),
        &format!("build {}", fixture.display()),
    );
    fs::read_to_string(out.join("digests.txt")).expect("digests.txt")
}

/// Builds our meta-style inventory, `tests/fixtures/pigsty/meta.yml`.
fn build_meta(out: &Path, cache: &Path, prelude: &str, env: &[(&str, &str)]) -> String {
    let fixture = root().join("tests/fixtures/pigsty/meta.yml");
    build_fixture(&fixture, out, cache, prelude, env)
}

fn blobs(layout: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Real packages: two builds anywhere give the same digests and blobs (no committed digests:
/// those come from made packages, `tests/golden.rs`).
#[test]
fn two_builds_anywhere_give_identical_digests() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // The second build starts from an empty cache: every layer is built again, not reused.
    let first = build_meta(
        &a.path().join("x/out"),
        &a.path().join("cache"),
        "umask 022",
        &[("TZ", "UTC"), ("LC_ALL", "C")],
    );
    let cold_cache = b.path().join("cache");
    // Downloaded packages are shared (verified by sha256 on use), not layers.
    fs::create_dir_all(&cold_cache).unwrap();
    std::os::unix::fs::symlink(a.path().join("cache/debs"), cold_cache.join("debs")).unwrap();
    let second = build_meta(
        &b.path().join("elsewhere/deeper/out"),
        &cold_cache,
        "umask 077",
        &[("TZ", "Pacific/Chatham"), ("LC_ALL", "C.UTF-8")],
    );
    assert_eq!(first, second);
    assert_eq!(first.lines().count(), 8, "{first}");
    assert_eq!(
        blobs(&a.path().join("x/out/10.10.10.10/oci")),
        blobs(&b.path().join("elsewhere/deeper/out/10.10.10.10/oci"))
    );
}

/// The catalog's "20 processes → one output", for whole builds: twenty `infragen build` runs at
/// once, sharing one cache and one fresh PKI directory, write byte-identical bundles (manifests
/// and their canonical JSON, images, SBOMs, certificates: the PKI is made once, not twenty times).
#[test]
fn twenty_concurrent_builds_write_the_same_bytes() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let cache = dir.path().join("cache");
    // The packages come downloaded (by the shared build, into the tests' cache): twenty cold
    // downloads of every package at once test the mirror and DNS, not infragen. Layers, images
    // and the PKI are made by the twenty at once.
    built();
    fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(
        common::test_cache_home().join("infragen/debs"),
        cache.join("debs"),
    )
    .unwrap();
    let children: Vec<_> = (0..20)
        .map(|i| {
            common::infragen()
                .args(["build", "--profile", "single-node", "--out"])
                .arg(dir.path().join(format!("out{i}")))
                .arg("--lock")
                .arg(lock_file())
                .arg("--pki")
                .arg(&pki)
                .arg("--cache")
                .arg(&cache)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("infragen build")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "build {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let first = tree(&dir.path().join("out0"));
    assert!(first.keys().any(|k| k.ends_with("manifest.json")));
    for i in 1..20 {
        let other = tree(&dir.path().join(format!("out{i}")));
        let differ: Vec<&String> = first
            .keys()
            .chain(other.keys())
            .filter(|k| first.get(*k) != other.get(*k))
            .collect();
        assert!(
            differ.is_empty(),
            "build {i} differs from build 0: {differ:?}"
        );
    }
}

/// Every file below `dir`: relative path → (mode, bytes).
fn tree(dir: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt as _;
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            (
                rel.to_string_lossy().into_owned(),
                (mode, fs::read(e.path()).unwrap()),
            )
        })
        .collect()
}

/// A lock pinning a version the mirror does not have (as after a security update replaced it)
/// fails the build naming the package and the version, and says to run `infragen lock`.
#[test]
fn a_pinned_package_gone_from_the_mirror_is_named_with_what_to_run() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let mut lock: serde_json::Value =
        serde_json::from_slice(&fs::read(lock_file()).unwrap()).unwrap();
    let pkgs = lock["images"]["dnsmasq"]["packages"]
        .as_array_mut()
        .unwrap();
    let p = pkgs
        .iter_mut()
        .find(|p| p["name"] == "dnsmasq-base")
        .unwrap();
    let version = p["version"].as_str().unwrap().to_owned();
    let gone = format!("{version}+vanished1");
    // pool file names leave the epoch out
    let bare = |v: &str| v.split_once(':').map_or(v, |(_, rest)| rest).to_owned();
    let filename = p["filename"].as_str().unwrap().replace(
        &format!("_{}_", bare(&version)),
        &format!("_{}_", bare(&gone)),
    );
    assert_ne!(filename, p["filename"].as_str().unwrap());
    p["version"] = gone.clone().into();
    p["filename"] = filename.into();
    p["sha256"] = "1".repeat(64).into();
    let vanished = dir.path().join("infragen.lock");
    fs::write(&vanished, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    let o = infragen(
        &[
            "build",
            "--profile",
            "single-node",
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--lock",
            vanished.to_str().unwrap(),
            "--cache",
            dir.path().join("cache").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "package `dnsmasq-base` {gone} is not on the mirror any more"
        )),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("hint: run `infragen lock`"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_deb_that_does_not_match_the_lock_is_refused() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let mut lock: serde_json::Value =
        serde_json::from_slice(&fs::read(lock_file()).unwrap()).unwrap();
    let pkgs = lock["images"]["nginx"]["packages"].as_array_mut().unwrap();
    let nginx = pkgs.iter_mut().find(|p| p["name"] == "nginx").unwrap();
    let real = nginx["sha256"].as_str().unwrap().to_owned();
    let fake = format!(
        "{}{}",
        &real[..63],
        if real.ends_with('0') { '1' } else { '0' }
    );
    nginx["sha256"] = fake.clone().into();
    let tampered = dir.path().join("infragen.lock");
    fs::write(&tampered, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    // The cached file under the real digest must not be taken for the fake one.
    let o = infragen(
        &[
            "build",
            "--profile",
            "single-node",
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--lock",
            tampered.to_str().unwrap(),
            "--cache",
            dir.path().join("cache").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("does not match the lock's {fake} for `nginx`")),
        "{err}"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_stale_lock_is_refused() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let mut lock: serde_json::Value =
        serde_json::from_slice(&fs::read(lock_file()).unwrap()).unwrap();
    lock["images"]["dnsmasq"]["inputs"] = "0".repeat(64).into();
    let stale = dir.path().join("infragen.lock");
    fs::write(&stale, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    let o = infragen(
        &[
            "build",
            "--profile",
            "single-node",
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--lock",
            stale.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err, "error: infragen.lock is stale for image `dnsmasq`: images/dnsmasq/image.yml changed its packages since\nhint: run `infragen lock`\n");
}

/// A flat repository with one package index, its Release (unsigned), and an APT config
/// pointing at it.
fn fake_repo(dir: &Path, tamper: bool) -> PathBuf {
    let repo = dir.join("repo");
    fs::create_dir_all(&repo).unwrap();
    let packages = "Package: hello\nVersion: 1.0\nArchitecture: amd64\nFilename: ./hello_1.0_amd64.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\nInstalled-Size: 1\n\n";
    fs::write(repo.join("Packages"), packages).unwrap();
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(packages.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // Tampering: the Release lists a digest that is not the file's (first hex digit flipped).
    let digest = if tamper {
        let first = if digest.starts_with('0') { "1" } else { "0" };
        format!("{first}{}", &digest[1..])
    } else {
        digest
    };
    fs::write(
        repo.join("Release"),
        format!(
            "Origin: test\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n {digest} {} Packages\n",
            packages.len()
        ),
    )
    .unwrap();
    let etc = dir.join("etc-apt");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("sources.list"),
        format!("deb file:{}/ ./\n", repo.display()),
    )
    .unwrap();
    etc
}

#[test]
fn unsigned_or_inconsistent_metadata_is_refused() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("l.lock");
    let etc = fake_repo(dir.path(), false);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "lock",
            "--apt-dir",
            etc.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        infragen(&args, &[])
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("repository metadata is not signed (no InRelease)"),
        "{err}"
    );
    // With the flag, the metadata is read and resolution proceeds (and fails: no nginx here).
    let o = run(&["--allow-unsigned"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("resolving image `"), "{err}");
    // A Packages file that does not match its Release is refused even with the flag.
    let dir2 = tempfile::tempdir().unwrap();
    let etc2 = fake_repo(dir2.path(), true);
    let o = infragen(
        &[
            "lock",
            "--apt-dir",
            etc2.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
            "--allow-unsigned",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Packages") && err.contains("sha256"), "{err}");
    assert!(!lock.exists(), "no lock is written");
}

#[test]
fn repo_sync_fills_an_offline_repository_that_builds_can_use() {
    use sha2::Digest;
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("www/pigsty");
    let o = infragen(
        &[
            "repo",
            "sync",
            "--profile",
            "single-node",
            "--dir",
            repo.to_str().unwrap(),
            "--lock",
            lock_file().to_str().unwrap(),
        ],
        &[],
    );
    ok(&o, "repo sync");
    let complete = fs::read_to_string(repo.join("repo_complete")).unwrap();
    let lines: Vec<&str> = complete.lines().collect();
    assert!(lines.len() > 30, "{complete}");
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.split_once("  ").unwrap().1);
    assert_eq!(lines, sorted, "sorted by file name");
    for l in &lines {
        let (sha, name) = l.split_once("  ").unwrap();
        let bytes = fs::read(repo.join(name)).unwrap();
        let got: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, sha, "{name}");
    }
    let index = fs::read_to_string(repo.join("Packages")).unwrap();
    assert_eq!(
        index.matches("\nFilename: ./").count() + usize::from(index.starts_with("Filename")),
        lines.len()
    );
    // a build from an empty cache takes every package from the repository
    let o = infragen(
        &[
            "build",
            "--profile",
            "single-node",
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--lock",
            lock_file().to_str().unwrap(),
            "--cache",
            dir.path().join("cache").to_str().unwrap(),
            "--repo",
            repo.to_str().unwrap(),
        ],
        &[
            ("http_proxy", "http://127.0.0.1:9"),
            ("HTTP_PROXY", "http://127.0.0.1:9"),
        ],
    );
    ok(&o, "offline build");
}

/// A stand-in for `victoriametrics/victoria-logs:v1.36.1`, imported into an OCI layout.
fn fake_base(dir: &Path) -> String {
    use infragen::oci::{blob::BlobStore, layer, layout};
    let store = BlobStore::open(dir).unwrap();
    let l = layer::build(
        vec![layer::LayerEntry::file(
            "victoria-logs-prod",
            "#!/bin/false\n",
            0o755,
        )],
        0,
    )
    .unwrap();
    store.put(&l.bytes).unwrap();
    let spec = layout::ImageSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        user: None,
        entrypoint: vec!["/victoria-logs-prod".into()],
        cmd: vec![],
        env: vec![],
        working_dir: None,
        exposed_ports: vec![],
        volumes: vec![],
        labels: std::collections::BTreeMap::new(),
        stop_signal: None,
        created: layout::rfc3339(0).unwrap(),
        annotations: std::collections::BTreeMap::new(),
    };
    let manifest = layout::write_image(&store, &spec, &[l]).unwrap();
    let digest = manifest.digest.clone();
    let mut refs = std::collections::BTreeMap::new();
    refs.insert("victoriametrics/victoria-logs:v1.36.1".to_owned(), manifest);
    layout::write_index(dir, &refs).unwrap();
    digest
}

#[test]
fn an_imported_base_image_is_pinned_and_built_upon() {
    common::tier::binary(common::tier::Tier::Integration, "tests/images.rs");
    let dir = tempfile::tempdir().unwrap();
    let bases = dir.path().join("bases");
    let digest = fake_base(&bases);
    let lock = dir.path().join("infragen.lock");
    fs::copy(lock_file(), &lock).unwrap();
    ok(
        &infragen(
            &[
                "lock",
                "--lock",
                lock.to_str().unwrap(),
                "--bases",
                bases.to_str().unwrap(),
            ],
            &[],
        ),
        "lock --bases",
    );
    let pinned: serde_json::Value = serde_json::from_slice(&fs::read(&lock).unwrap()).unwrap();
    assert_eq!(pinned["images"]["vlogs"]["base"]["digest"], digest.as_str());
    assert!(pinned["images"]["grafana"]["base"]["digest"].is_null());
    let out = dir.path().join("out");
    let o = infragen(
        &[
            "build",
            "--profile",
            "single-node",
            "--out",
            out.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
            "--bases",
            bases.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = ok(&o, "build with bases");
    assert!(stdout.contains("10.10.10.10 infra-vlogs"), "{stdout}");
    let layout = out.join("10.10.10.10/oci");
    assert!(refs(&layout).contains(&"infra-vlogs".to_owned()));
    let incomplete = fs::read_to_string(out.join("10.10.10.10/INCOMPLETE")).unwrap();
    assert!(
        !incomplete.contains("infra-vlogs") && incomplete.contains("infra-grafana"),
        "{incomplete}"
    );
    let o = Command::new(tool("skopeo"))
        .args(["inspect", &format!("oci:{}:infra-vlogs", layout.display())])
        .output()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&ok(&o, "skopeo inspect infra-vlogs")).unwrap();
    assert_eq!(
        json["Layers"].as_array().unwrap().len(),
        3,
        "base layer + recipe layer + config layer"
    );

    // A base whose digest is not the pinned one is refused, naming both.
    let other = dir.path().join("other");
    fake_base(&other);
    let mut tampered = pinned.clone();
    tampered["images"]["vlogs"]["base"]["digest"] = format!("sha256:{}", "e".repeat(64)).into();
    fs::write(&lock, serde_json::to_vec_pretty(&tampered).unwrap()).unwrap();
    let o = infragen(
        &[
            "build",
            "--profile",
            "single-node",
            "--out",
            out.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
            "--bases",
            other.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("infra-vlogs not built") && err.contains(&"e".repeat(64)),
        "{err}"
    );
}
