//! Secrets encrypted to a host's key (`infragen_host_key`): the bundle holds only age files,
//! builds stay reproducible, and activation decrypts them into the credentials store exactly
//! as a clear bundle installs them — or refuses, changing nothing, on a host that cannot.

mod common;

use common::{artifact_texts, enrol, ok, root, signing_key};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const HOST: &str = "127.0.41.10";

/// Values no build would make by chance: the scan looks for each of them.
const SECRETS: [&str; 3] = [
    "Graf-Admin-3c9d1e7f",
    "Meta-View-6a2f8b4e",
    "postgres://grafana:Db-Pw-1f7e3a@127.0.41.10/grafana",
];

fn infragen(args: &[&str]) -> Output {
    common::infragen()
        .args(args)
        .env_remove("INFRAGEN_FAILPOINT")
        .output()
        .unwrap()
}

struct Builds {
    dir: PathBuf,
    /// The host's root, initialised by `host init`: it holds the identity.
    host_root: PathBuf,
    /// The recovery identity (age-keygen's file).
    recovery: PathBuf,
    /// Two builds of the profile with the host's key, and one without.
    sealed: [PathBuf; 2],
    clear: PathBuf,
}

/// Our single-node profile on 127.0.41.10 with secrets of its own; `key` adds
/// `infragen_host_key` (and a recovery key) for the host.
fn profile(keys: Option<(&str, &str)>) -> String {
    let text = fs::read_to_string(root().join("profiles/single-node.yml"))
        .unwrap()
        .replace("10.10.10.", "127.0.41.");
    let mut vars = format!(
        "\n  vars:\n    grafana_view_password: {}\n    grafana_pgurl: '{}'\n",
        SECRETS[1], SECRETS[2]
    );
    if let Some((host, recovery)) = keys {
        let _ = write!(
            vars,
            "    infragen_host_key: {host}\n    infragen_recovery_keys: [{recovery}]\n"
        );
    }
    text.replacen("\n  vars:\n", &vars, 1).replace(
        "grafana_admin_password: pigsty",
        &format!("grafana_admin_password: {}", SECRETS[0]),
    )
}

fn builds() -> &'static Builds {
    static B: OnceLock<Builds> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-secrets-")
            .tempdir()
            .unwrap()
            .keep();
        let host_root = dir.join("host");
        fs::create_dir_all(&host_root).unwrap();
        let key = ok(
            &infragen(&["host", "init", "--root", host_root.to_str().unwrap()]),
            "host init",
        );
        let recovery = dir.join("recovery.key");
        let o = Command::new("age-keygen")
            .arg("-o")
            .arg(&recovery)
            .output()
            .unwrap();
        assert!(o.status.success(), "age-keygen (apt-get install age)");
        let o = Command::new("age-keygen")
            .arg("-y")
            .arg(&recovery)
            .output()
            .unwrap();
        let recovery_key = String::from_utf8(o.stdout).unwrap();
        let sealed_text = profile(Some((key.trim(), recovery_key.trim())));
        assert!(sealed_text.contains(SECRETS[0]) && sealed_text.contains("infragen_host_key"));
        let build = |name: &str, text: &str| {
            fs::create_dir_all(dir.join(name)).unwrap();
            let p = dir.join(name).join("single.yml");
            fs::write(&p, text).unwrap();
            let out = dir.join(name).join("out");
            let o = infragen(&[
                "build",
                "--profile",
                p.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--lock",
                common::lock().to_str().unwrap(),
                "--pki",
                dir.join("pki").to_str().unwrap(),
                "--sign-key",
                signing_key().0.to_str().unwrap(),
            ]);
            ok(&o, &format!("build {name}"));
            (
                out.join(HOST),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        let (a, warn_a) = build("a", &sealed_text);
        let (b, _) = build("b", &sealed_text);
        let (clear, warn_clear) = build("clear", &profile(None));
        assert!(!warn_a.contains("secrets in clear"), "{warn_a}");
        assert!(
            warn_clear.contains(&format!(
                "warning: secrets in clear for 1 host without `infragen_host_key`: {HOST}\n"
            )),
            "{warn_clear}"
        );
        Builds {
            dir,
            host_root,
            recovery,
            sealed: [a, b],
            clear,
        }
    })
}

/// Every file below `dir`, by path: (mode, bytes).
fn files(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = e.path().symlink_metadata().unwrap();
        let bytes = if meta.is_file() {
            fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        out.insert(rel, (meta.permissions().mode(), bytes));
    }
    out
}

#[test]
fn the_bundle_holds_only_ciphertext_and_is_reproducible() {
    common::tier::binary(common::tier::Tier::Integration, "tests/secrets.rs");
    let b = builds();
    let [a, again] = &b.sealed;
    // Every byte but the signature's (ECDSA signatures are randomized; the manifest it signs
    // is compared).
    let (x, y) = (files(a), files(again));
    let differ: Vec<&String> = x
        .keys()
        .chain(y.keys())
        .filter(|k| k.as_str() != "manifest.sig" && x.get(*k) != y.get(*k))
        .collect();
    assert!(differ.is_empty(), "two builds differ in {differ:?}");
    let listed: Vec<String> = files(&a.join("secrets"))
        .into_iter()
        .filter(|(_, (_, bytes))| !bytes.is_empty())
        .map(|(rel, _)| rel)
        .collect();
    assert!(listed.len() >= 5, "{listed:?}");
    let sealed = |f: &String| Path::new(f).extension().is_some_and(|e| e == "age");
    assert!(listed.iter().all(sealed), "{listed:?}");
    let key = fs::read_to_string(b.dir.join("pki/nginx/pigsty.key")).unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut needles: Vec<&str> = SECRETS.to_vec();
    needles.push(&key_body[..40]);
    let mut scanned = 0;
    for (rel, bytes, mode) in artifact_texts(a) {
        scanned += 1;
        for needle in &needles {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "secret `{needle}` found in {rel} (mode {mode:o})");
        }
    }
    assert!(scanned > 50, "scanned {scanned} files");
    // The same secrets are in the clear build (the scan would have found them there).
    let clear = fs::read(b.clear.join("secrets/grafana/admin-password")).unwrap();
    assert_eq!(clear, SECRETS[0].as_bytes());
    // The manifest says so: format 3, the recipients, credentials under their own names.
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["version"], 3);
    assert_eq!(m["recipients"].as_array().unwrap().len(), 2);
    assert!(m["files"]["secrets/grafana/admin-password.age"]["mode"] == "0600");
    // (grafana's image needs a base image this test does not import: its secrets are in the
    // bundle, its component is not; nginx's are both.)
    let names = m["components"]["nginx"]["secrets"].as_array().unwrap();
    assert!(names.iter().any(|n| n == "pigsty.key"), "{names:?}");
    let unit = fs::read_to_string(a.join("units/infra-nginx.service")).unwrap();
    assert!(
        unit.contains("LoadCredential=pigsty.key:/var/lib/infragen/secrets/nginx/pigsty.key\n"),
        "{unit}"
    );
    // The operator's recovery key opens every secret with the age CLI.
    let o = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&b.recovery)
        .arg(a.join("secrets/grafana/admin-password.age"))
        .output()
        .unwrap();
    assert_eq!(
        o.stdout,
        SECRETS[0].as_bytes(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let clear_m: serde_json::Value =
        serde_json::from_slice(&fs::read(b.clear.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(clear_m["version"], 2);
    assert!(clear_m.get("recipients").is_none());
}

fn activate(bundle: &Path, host: &Path) -> Output {
    enrol(host, HOST);
    infragen(&[
        "activate",
        bundle.to_str().unwrap(),
        "--root",
        host.to_str().unwrap(),
    ])
}

#[test]
fn activation_decrypts_into_the_credentials_store_as_a_clear_bundle_installs() {
    common::tier::binary(common::tier::Tier::Integration, "tests/secrets.rs");
    let b = builds();
    // The host that ran `host init` (a copy: tests share the builds).
    let host = tempfile::tempdir().unwrap();
    common::copy_tree(&b.host_root, host.path());
    fs::set_permissions(
        host.path().join("etc/infragen/age/host.key"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    ok(
        &activate(&b.sealed[0], host.path()),
        "activate the sealed bundle",
    );
    let clear_host = tempfile::tempdir().unwrap();
    ok(
        &activate(&b.clear, clear_host.path()),
        "activate the clear bundle",
    );
    // The credentials store (components that were built) and the generation's secrets (all):
    // the same names, modes and bytes as from the clear bundle.
    let store = |h: &Path| files(&h.join("var/lib/infragen/secrets"));
    let generation = |h: &Path| {
        let link = fs::read_link(h.join("var/lib/infragen/current")).unwrap();
        files(&h.join("var/lib/infragen").join(link).join("secrets"))
    };
    let got = store(host.path());
    assert!(got.len() >= 4, "{:?}", got.keys().collect::<Vec<_>>());
    assert_eq!(got, store(clear_host.path()), "same names, modes and bytes");
    let staged = generation(host.path());
    assert_eq!(staged, generation(clear_host.path()));
    assert_eq!(
        staged["grafana/admin-password"],
        (0o100_600, SECRETS[0].as_bytes().to_vec())
    );
    assert!(staged
        .keys()
        .chain(got.keys())
        .all(|k| Path::new(k).extension().is_none_or(|e| e != "age")));
}

#[test]
fn a_host_without_the_identity_or_with_another_refuses_and_changes_nothing() {
    common::tier::binary(common::tier::Tier::Integration, "tests/secrets.rs");
    let b = builds();
    let without = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    ok(
        &infragen(&["host", "init", "--root", other.path().to_str().unwrap()]),
        "host init",
    );
    for (host, why) in [
        (without.path(), "and this host has no age identity ("),
        (other.path(), ", not to this host's key age1"),
    ] {
        enrol(host, HOST);
        let before = files(host);
        let o = activate(&b.sealed[0], host);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            stderr.contains(&format!(
                "error: bundle {} is refused; nothing was changed: secrets/",
                b.sealed[0].display()
            )) && stderr.contains(".age is encrypted to age1")
                && stderr.contains(why)
                && stderr.contains("\nhint: run `infragen host init` on this host"),
            "{stderr}"
        );
        assert_eq!(files(host), before, "the host changed");
    }
}
