//! `infragen activate --root`: the host side without systemd, fast.
//!
//! Covers the promises of docs/reliability.md that need no running services: no-op activation,
//! the restart/reload plan of a one-parameter change, `--dry-run` writing nothing, tampered
//! bundles refused with the host tree unchanged, downgrades refused, the lock, rollback, gc, and
//! crash consistency under 200+ seeded interruptions (fail points between steps and `kill -9`
//! at random times), each leaving `current` on one complete generation and converging on re-run.

mod common;

use common::{copy_tree, enrol, ok, root, signing_key, Rng};

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

fn infragen(args: &[&str]) -> Output {
    common::infragen()
        .args(args)
        .env_remove("INFRAGEN_FAILPOINT")
        .output()
        .unwrap()
}

/// Two bundles of single-node (on 127.0.40.10): A, and B with another scrape interval; and C,
/// an older version string. Built once.
struct Bundles {
    _dir: PathBuf,
    a: PathBuf,
    b: PathBuf,
    old: PathBuf,
    /// A without nginx.
    gone: PathBuf,
}

fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-activate-")
            .tempdir()
            .unwrap()
            .keep();
        let text = fs::read_to_string(root().join("profiles/single-node.yml"))
            .unwrap()
            .replace("10.10.10.", "127.0.40.");
        let build = |name: &str, text: &str| {
            // the same file name in its own directory: artifacts name the profile by file name
            fs::create_dir_all(dir.join(name)).unwrap();
            let p = dir.join(name).join("single.yml");
            fs::write(&p, text).unwrap();
            let out = dir.join(name).join("out");
            let lock = common::lock().to_path_buf();
            ok(
                &infragen(&[
                    "build",
                    "--profile",
                    p.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--lock",
                    lock.to_str().unwrap(),
                    "--pki",
                    dir.join("pki").to_str().unwrap(),
                    "--sign-key",
                    signing_key().0.to_str().unwrap(),
                ]),
                &format!("build {name}"),
            );
            out.join("127.0.40.10")
        };
        let a = build("a", &text);
        let b_text = text.replace(
            "vmetrics_scrape_interval: 10s",
            "vmetrics_scrape_interval: 15s",
        );
        assert_ne!(b_text, text);
        let b = build("b", &b_text);
        let old_text = text.replace("version: v4.5.0", "version: v4.4.0");
        assert_ne!(old_text, text);
        let old = build("old", &old_text);
        let gone_text = text.replace(
            "\n    vmetrics_scrape_interval: 10s",
            "\n    nginx_enabled: false\n    vmetrics_scrape_interval: 10s",
        );
        assert_ne!(gone_text, text);
        let gone = build("gone", &gone_text);
        Bundles {
            _dir: dir,
            a,
            b,
            old,
            gone,
        }
    })
}

/// Every path under `dir` with its kind, mode and content (or link target).
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = e.path().symlink_metadata().unwrap();
        let content = if meta.file_type().is_symlink() {
            fs::read_link(e.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
                .into_bytes()
        } else if meta.is_file() {
            fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        out.insert(rel, (meta.permissions().mode(), content));
    }
    out
}

fn activate(bundle: &Path, host: &Path, extra: &[&str]) -> Output {
    enrol(host, "127.0.40.10");
    let mut args = vec![
        "activate",
        bundle.to_str().unwrap(),
        "--root",
        host.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    infragen(&args)
}

fn generation_of(bundle: &Path) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    m["generation"].as_str().unwrap().to_owned()
}

fn current(host: &Path) -> Option<String> {
    fs::read_link(host.join("var/lib/infragen/current"))
        .ok()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
}

#[test]
fn first_activation_installs_everything_and_a_second_changes_nothing() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    let out = ok(&activate(&b.a, host.path(), &[]), "activate");
    assert!(out.contains("start   infra-nginx.service (new)"), "{out}");
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.a));
    let unit = host
        .path()
        .join("etc/systemd/system/infra-vmetrics.service");
    assert_eq!(
        fs::read_link(&unit).unwrap(),
        Path::new("/var/lib/infragen/current/units/infra-vmetrics.service")
    );
    let live = host
        .path()
        .join("var/lib/infragen/live/vmetrics/etc/vmetrics/prometheus.yml");
    assert!(fs::read_to_string(&live)
        .unwrap()
        .contains("scrape_interval: 10s"));
    // the root tree has the binary, owned as the layer says
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(b.a.join("manifest.json")).unwrap()).unwrap();
    let root_id = m["components"]["vmetrics"]["root"].as_str().unwrap();
    assert!(host
        .path()
        .join(format!(
            "var/lib/infragen/roots/{root_id}/usr/bin/victoria-metrics"
        ))
        .is_file());
    // credentials are synced to a stable path, private
    let key = host
        .path()
        .join("var/lib/infragen/secrets/nginx/pigsty.key");
    assert_eq!(
        fs::read(&key).unwrap(),
        fs::read(b.a.join("secrets/nginx/pigsty.key")).unwrap()
    );
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = snapshot(host.path());
    let out = ok(&activate(&b.a, host.path(), &[]), "activate again");
    assert!(
        !out.contains("start ") && !out.contains("restart ") && !out.contains("reload "),
        "nothing restarts:\n{out}"
    );
    let after = snapshot(host.path());
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k) && !k.ends_with("/lock"))
        .collect();
    assert!(
        changed.iter().all(|k| k.ends_with("history")),
        "changed on a no-op: {changed:?}"
    );
}

#[test]
fn one_parameter_changes_exactly_the_affected_components() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    ok(&activate(&b.a, host.path(), &[]), "activate A");
    let before = snapshot(host.path());
    let dry = ok(&activate(&b.b, host.path(), &["--dry-run"]), "dry run");
    assert_eq!(snapshot(host.path()), before, "--dry-run wrote nothing");
    let lines: Vec<&str> = dry
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.starts_with("keep"))
        .collect();
    // vmetrics: only prometheus.yml changed → reload; vmalert: -evaluationInterval is a flag → its unit changed → restart
    assert_eq!(
        lines,
        [
            "restart infra-vmalert.service (unit changed)",
            "reload  infra-vmetrics.service (configuration changed)"
        ],
        "{dry}"
    );
    ok(&activate(&b.b, host.path(), &[]), "activate B");
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.b));
    let live = host
        .path()
        .join("var/lib/infragen/live/vmetrics/etc/vmetrics/prometheus.yml");
    assert!(fs::read_to_string(&live)
        .unwrap()
        .contains("scrape_interval: 15s"));
    // rollback returns to A, and the live configuration with it
    ok(
        &infragen(&["rollback", "--root", host.path().to_str().unwrap()]),
        "rollback",
    );
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.a));
    assert!(fs::read_to_string(&live)
        .unwrap()
        .contains("scrape_interval: 10s"));
    let gens = ok(
        &infragen(&["generations", "--root", host.path().to_str().unwrap()]),
        "generations",
    );
    assert!(
        gens.contains(&format!("{} (current)", generation_of(&b.a))),
        "{gens}"
    );
    assert!(
        gens.contains(&format!("{} (rollback)", generation_of(&b.b))),
        "{gens}"
    );
    // gc keeps current and rollback
    ok(
        &infragen(&["gc", "--keep", "0", "--root", host.path().to_str().unwrap()]),
        "gc",
    );
    assert!(host
        .path()
        .join("var/lib/infragen/generations")
        .join(generation_of(&b.a))
        .is_dir());
    assert!(host
        .path()
        .join("var/lib/infragen/generations")
        .join(generation_of(&b.b))
        .is_dir());
}

#[test]
fn a_flipped_byte_anywhere_in_a_bundle_is_refused_and_the_host_is_unchanged() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    ok(&activate(&b.a, host.path(), &[]), "activate A");
    let before = snapshot(host.path());
    let files: Vec<PathBuf> = walkdir::WalkDir::new(&b.b)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    // a few files of every kind: manifest, units, secrets, config and layer blobs
    let picks: Vec<&PathBuf> = files
        .iter()
        .step_by((files.len() / 12).max(1))
        .chain(files.iter().filter(|f| f.ends_with("manifest.json")))
        .collect();
    for f in picks {
        let copy = tempfile::tempdir().unwrap();
        let bundle = copy.path().join("bundle");
        copy_tree(&b.b, &bundle);
        let target = bundle.join(f.strip_prefix(&b.b).unwrap());
        let mut bytes = fs::read(&target).unwrap();
        let i = bytes.len() / 3;
        bytes[i] ^= 0x20;
        fs::write(&target, bytes).unwrap();
        let o = activate(&bundle, host.path(), &[]);
        assert_eq!(o.status.code(), Some(1), "{}", f.display());
        let err = String::from_utf8_lossy(&o.stderr);
        // The manifest is covered by the signature; every other file by its digest.
        assert!(
            err.contains("does not verify; nothing was changed")
                || ((f.ends_with("manifest.json") || f.ends_with("manifest.sig"))
                    && err.contains("is refused; nothing was changed")),
            "{err}"
        );
        assert_eq!(
            snapshot(host.path()),
            before,
            "host changed after refusing {}",
            f.display()
        );
    }
}

#[test]
fn a_bundle_archive_activates_like_its_directory() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    let archive = host.path().join("bundle.tar.gz");
    let o = Command::new("tar")
        .arg("-C")
        .arg(&b.a)
        .arg("-czf")
        .arg(&archive)
        .arg(".")
        .output()
        .unwrap();
    ok(&o, "tar");
    let target = host.path().join("host");
    ok(&activate(&archive, &target, &[]), "activate the archive");
    assert_eq!(current(&target).unwrap(), generation_of(&b.a));
}

#[test]
fn a_downgrade_is_refused_unless_asked_for() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    ok(&activate(&b.a, host.path(), &[]), "activate A");
    let o = activate(&b.old, host.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is older than the current generation"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.a));
    ok(
        &activate(&b.old, host.path(), &["--allow-downgrade"]),
        "downgrade allowed",
    );
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.old));
}

#[test]
fn a_concurrent_activation_fails_at_once() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    ok(&activate(&b.a, host.path(), &[]), "activate A");
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(host.path().join("var/lib/infragen/lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let o = activate(&b.b, host.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("another activation is running"), "{err}");
    drop(lock);
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.a));
}

const FAIL_POINTS: &[&str] = &[
    "stage-blobs",
    "stage-root",
    "root-before-rename",
    "stage-before-rename",
    "stage-after-rename",
    "plan-written",
    "after-stop",
    "after-switch",
    "after-live",
    "after-actions",
];

const RUNTIMES: [&str; 4] = ["unit", "nspawn", "portable", "podman"];

/// The files that install component `c` under `runtime`.
fn runtime_files(host: &Path, runtime: &str, c: &str) -> Vec<PathBuf> {
    match runtime {
        "unit" => vec![host.join(format!("etc/systemd/system/infra-{c}.service"))],
        "nspawn" => vec![
            host.join(format!("etc/systemd/nspawn/infra-{c}.nspawn")),
            host.join(format!("var/lib/machines/infra-{c}")),
        ],
        "portable" => vec![host.join(format!("var/lib/portables/infra-{c}"))],
        _ => vec![host.join(format!("etc/containers/systemd/infra-{c}.container"))],
    }
}

/// After a completed activation with `runtime`: every component is installed for it and for no
/// other runtime, and the generation records it.
fn check_runtime(host: &Path, runtime: &str, what: &str) {
    let cur = current(host).expect("a current generation");
    let gen = host.join("var/lib/infragen/generations").join(&cur);
    assert_eq!(
        fs::read_to_string(gen.join("runtime")).unwrap().trim(),
        runtime,
        "{what}: recorded runtime"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(gen.join("manifest.json")).unwrap()).unwrap();
    for c in m["components"].as_object().unwrap().keys() {
        for r in RUNTIMES {
            for f in runtime_files(host, r, c) {
                assert_eq!(
                    f.symlink_metadata().is_ok(),
                    r == runtime,
                    "{what}: {} after a {runtime} activation",
                    f.display()
                );
            }
        }
    }
}

/// `current` names a complete generation whose manifest is intact and is one of `allowed`.
fn check_invariant(host: &Path, allowed: &[String], what: &str) {
    let Some(cur) = current(host) else {
        return; // never activated yet: nothing to check
    };
    assert!(
        allowed.contains(&cur),
        "{what}: current is {cur}, not one of the bundles"
    );
    let gen = host.join("var/lib/infragen/generations").join(&cur);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(gen.join("manifest.json")).unwrap())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(m["generation"].as_str(), Some(cur.as_str()), "{what}");
    for (name, c) in m["components"].as_object().unwrap() {
        assert!(
            gen.join("config").join(name).is_dir(),
            "{what}: config of {name}"
        );
        assert!(
            gen.join("units")
                .join(format!("infra-{name}.service"))
                .is_file(),
            "{what}: unit of {name}"
        );
        let root = host
            .join("var/lib/infragen/roots")
            .join(c["root"].as_str().unwrap());
        assert!(
            root.join("etc/passwd").is_file(),
            "{what}: root of {name} is incomplete"
        );
    }
}

#[test]
fn interruptions_at_any_point_leave_one_complete_generation_and_rerunning_converges() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let seed: u64 = std::env::var("INFRAGEN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1f2e_3d4c_5b6a_7988);
    println!("seed {seed} (INFRAGEN_SEED to replay)");
    let mut rng = Rng(seed);
    let host = tempfile::tempdir().unwrap();
    enrol(host.path(), "127.0.40.10");
    let gens = [generation_of(&b.a), generation_of(&b.b)];
    let mut interrupted = 0;
    let mut i: u32 = 0;
    while interrupted < 200 {
        assert!(i < 1000, "only {interrupted} interruptions in {i} runs");
        // The bundle is picked at random too, so that some runs re-activate the current
        // generation (with another runtime, a same-generation switch).
        let (bundle, want) = if rng.next().is_multiple_of(2) {
            (&b.b, &gens[1])
        } else {
            (&b.a, &gens[0])
        };
        // Every runtime, switching between them too: a switch interrupted half-way must still
        // converge to exactly one runtime's files.
        let runtime = RUNTIMES[rng.below(RUNTIMES.len())];
        let what = format!("iteration {i}, runtime {runtime} (seed {seed})");
        let args = [
            "activate",
            bundle.to_str().unwrap(),
            "--root",
            host.path().to_str().unwrap(),
            "--runtime",
            runtime,
        ];
        if rng.next().is_multiple_of(2) {
            let point = FAIL_POINTS[rng.below(FAIL_POINTS.len())];
            let o = common::infragen()
                .args(args)
                .env("INFRAGEN_FAILPOINT", point)
                .output()
                .unwrap();
            if !o.status.success() {
                interrupted += 1;
            }
        } else {
            let delay = rng.next() % 60;
            let mut child = common::infragen()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay));
            if child.try_wait().unwrap().is_none() {
                let _ = Command::new("kill")
                    .args(["-9", &child.id().to_string()])
                    .status();
                interrupted += 1;
            }
            let _ = child.wait();
        }
        check_invariant(host.path(), &gens, &what);
        // re-running converges on the bundle's generation
        // re-run with the same runtime (resuming the plan) or with another (a new switch)
        let rerun = if rng.next().is_multiple_of(2) {
            runtime
        } else {
            RUNTIMES[rng.below(RUNTIMES.len())]
        };
        ok(
            &activate(bundle, host.path(), &["--runtime", rerun]),
            &format!("{what}: re-run with {rerun}"),
        );
        check_runtime(host.path(), rerun, &what);
        assert_eq!(current(host.path()).as_ref(), Some(want), "{what}");
        assert!(
            !host.path().join("var/lib/infragen/plan.json").exists(),
            "{what}: plan left behind"
        );
        check_invariant(host.path(), &gens, &what);
        let live = fs::read_to_string(
            host.path()
                .join("var/lib/infragen/live/vmetrics/etc/vmetrics/prometheus.yml"),
        )
        .unwrap();
        let interval = if want == &gens[1] { "15s" } else { "10s" };
        assert!(
            live.contains(&format!("scrape_interval: {interval}")),
            "{what}: live config not converged"
        );
        i += 1;
    }
    println!("{interrupted} interruptions in {i} runs, each converged on re-run");
}

/// Whether a path exists, a dangling symlink included (links here name host paths).
fn present(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// Resolves `link` (an absolute host path) inside the host tree `host`, one symlink deep.
fn inside(host: &Path, link: &Path) -> PathBuf {
    let target = fs::read_link(link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    host.join(target.strip_prefix("/").unwrap())
}

#[test]
fn every_runtime_installs_through_current_and_a_runtime_switch_removes_the_last() {
    use std::os::unix::fs::MetadataExt;
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(b.a.join("manifest.json")).unwrap()).unwrap();
    let components: Vec<String> = m["components"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let nginx_root = m["components"]["nginx"]["root"].as_str().unwrap();
    ok(&activate(&b.a, h, &[]), "activate (unit)");

    // A runtime change, planned: every component starts afresh under the new runtime.
    let before = snapshot(h);
    let out = ok(
        &activate(&b.a, h, &["--runtime", "nspawn", "--dry-run"]),
        "dry run",
    );
    assert!(
        out.contains("start   systemd-nspawn@infra-nginx.service (runtime unit → nspawn)"),
        "{out}"
    );
    assert_eq!(snapshot(h), before, "--dry-run wrote something");

    // nspawn: a .nspawn file and a machine directory, both through `current`.
    ok(
        &activate(&b.a, h, &["--runtime", "nspawn"]),
        "activate nspawn",
    );
    for c in &components {
        assert!(!present(
            &h.join(format!("etc/systemd/system/infra-{c}.service"))
        ));
        let nspawn = h.join(format!("etc/systemd/nspawn/infra-{c}.nspawn"));
        assert_eq!(
            fs::read_link(&nspawn).unwrap(),
            Path::new(&format!(
                "/var/lib/infragen/current/nspawn/infra-{c}.nspawn"
            ))
        );
        assert_eq!(
            fs::read(inside(h, &nspawn)).unwrap(),
            fs::read(b.a.join(format!("nspawn/infra-{c}.nspawn"))).unwrap()
        );
        let machine = inside(h, &h.join(format!("var/lib/machines/infra-{c}")));
        let root = m["components"][c.as_str()]["root"].as_str().unwrap();
        assert_eq!(
            fs::canonicalize(&machine).unwrap(),
            fs::canonicalize(h.join(format!("var/lib/infragen/roots/{root}"))).unwrap()
        );
    }
    // the read-only container's mount points exist in the tree, files for files
    let roots = h.join("var/lib/infragen/roots");
    assert!(roots.join(format!("{nginx_root}/etc/nginx")).is_dir());
    let dnsmasq_root = m["components"]["dnsmasq"]["root"].as_str().unwrap();
    assert!(roots
        .join(format!("{dnsmasq_root}/etc/dnsmasq.conf"))
        .is_file());
    // a configuration-only change restarts a container: systemd-nspawn@ cannot reload
    let out = ok(
        &activate(&b.b, h, &["--runtime", "nspawn", "--dry-run"]),
        "dry run B",
    );
    assert!(
        out.contains("restart systemd-nspawn@infra-vmetrics.service (configuration changed; the nspawn runtime does not reload)"),
        "{out}"
    );

    // portable: an image of hard links plus the unit, for `portablectl attach`.
    ok(
        &activate(&b.a, h, &["--runtime", "portable"]),
        "activate portable",
    );
    assert!(!present(&h.join("etc/systemd/nspawn/infra-nginx.nspawn")));
    assert!(!present(&h.join("var/lib/machines/infra-nginx")));
    for c in &components {
        let image = inside(h, &h.join(format!("var/lib/portables/infra-{c}")));
        assert!(
            image
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("infra-{c}_")),
            "{}",
            image.display()
        );
        assert_eq!(
            fs::read(image.join(format!("usr/lib/systemd/system/infra-{c}.service"))).unwrap(),
            fs::read(b.a.join(format!("portable/infra-{c}.service"))).unwrap()
        );
        assert!(image.join("etc/os-release").is_file());
    }
    let image = inside(h, &h.join("var/lib/portables/infra-nginx"));
    assert_eq!(
        fs::metadata(image.join("usr/sbin/nginx")).unwrap().ino(),
        fs::metadata(roots.join(format!("{nginx_root}/usr/sbin/nginx")))
            .unwrap()
            .ino(),
        "a portable image shares its files with the root tree"
    );
    let unit = fs::read_to_string(b.a.join("portable/infra-nginx.service")).unwrap();
    assert!(!unit.contains("RootDirectory="), "{unit}");
    assert!(unit.contains("ProtectSystem=strict"), "{unit}");

    // podman: a Quadlet file and an OCI layout over the blob store that skopeo reads.
    ok(
        &activate(&b.a, h, &["--runtime", "podman"]),
        "activate podman",
    );
    assert!(!present(&h.join("var/lib/portables/infra-nginx")));
    let quadlet = h.join("etc/containers/systemd/infra-nginx.container");
    assert_eq!(
        fs::read_link(&quadlet).unwrap(),
        Path::new("/var/lib/infragen/current/quadlet/infra-nginx.container")
    );
    let layout = h.join("var/lib/infragen/current/oci");
    let o = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:infra-nginx", layout.display()))
        .output()
        .expect("skopeo");
    let raw = ok(&o, "skopeo inspect");
    assert_eq!(
        format!("sha256:{}", infragen::digest::sha256_hex(raw.as_bytes())),
        m["components"]["nginx"]["image"].as_str().unwrap()
    );

    // back to unit; status names the runtime; rollback returns to podman
    ok(&activate(&b.b, h, &[]), "activate B (unit)");
    assert!(!present(&quadlet));
    let status = ok(
        &infragen(&["status", "--root", h.to_str().unwrap()]),
        "status",
    );
    assert!(status.contains("unit runtime"), "{status}");
    let out = ok(
        &infragen(&["rollback", "--root", h.to_str().unwrap()]),
        "rollback",
    );
    assert!(out.contains("(podman runtime)"), "{out}");
    let list = ok(
        &infragen(&["generations", "--root", h.to_str().unwrap()]),
        "generations",
    );
    assert!(
        list.contains(&format!("{} (current) [podman]", generation_of(&b.a)))
            && list.contains(&format!("{} (rollback) [unit]", generation_of(&b.b))),
        "{list}"
    );
    assert!(present(&quadlet));
    assert!(!present(&h.join("etc/systemd/system/infra-nginx.service")));

    // gc keeps the portable images of the kept generations (current B, rollback A: every image
    // made so far) and removes what none of them names
    ok(
        &activate(&b.b, h, &["--runtime", "portable"]),
        "activate B portable",
    );
    let images = || -> std::collections::BTreeSet<String> {
        fs::read_dir(h.join("var/lib/infragen/portables"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let made = images();
    // B changes vmalert's unit, so vmalert has an image for A and one for B
    assert_eq!(made.len(), components.len() + 1, "{made:?}");
    let stale = h.join("var/lib/infragen/portables/infra-nginx_0000000000000000");
    fs::create_dir_all(stale.join("usr")).unwrap();
    // A killed pull's private directory: removed once it is older than an hour, not before.
    let (old, young) = (
        h.join("var/lib/infragen/.pull-killed"),
        h.join("var/lib/infragen/.pull-running"),
    );
    for d in [&old, &young] {
        fs::create_dir_all(d.join("oci")).unwrap();
    }
    let touched = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(touched.success());
    let out = ok(
        &infragen(&["gc", "--keep", "1", "--root", h.to_str().unwrap()]),
        "gc",
    );
    assert!(
        out.contains("removed portable image infra-nginx_0000000000000000"),
        "{out}"
    );
    assert!(
        out.contains("removed private directory .pull-killed"),
        "{out}"
    );
    assert!(!old.exists() && young.is_dir(), "{out}");
    assert_eq!(images(), made);
    for c in &components {
        assert!(inside(h, &h.join(format!("var/lib/portables/infra-{c}"))).is_dir());
    }
}

/// A bundle archive is unpacked before it is verified, so its extraction must hold by itself: a
/// hard link whose parent became a symlink, or whose source lies behind one, is refused and
/// nothing is written outside the unpacking directory.
#[test]
fn a_bundle_archive_cannot_link_outside_its_directory() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(dir.path().join("secret"), "host file\n").unwrap();
    for case in ["parent", "source"] {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&Path>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, path, data).unwrap();
        };
        if case == "parent" {
            add("d", tar::EntryType::Directory, b"", None);
            add("payload", tar::EntryType::Regular, b"escaped\n", None);
            add(
                "d/escaped",
                tar::EntryType::Link,
                b"",
                Some(Path::new("payload")),
            );
            add("d", tar::EntryType::Symlink, b"", Some(&outside));
        } else {
            add("x", tar::EntryType::Symlink, b"", Some(dir.path()));
            add(
                "leak",
                tar::EntryType::Link,
                b"",
                Some(Path::new("x/secret")),
            );
        }
        let archive = dir.path().join(format!("{case}.tar"));
        fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let host = dir.path().join(format!("host-{case}"));
        let o = infragen(&[
            "activate",
            archive.to_str().unwrap(),
            "--root",
            host.to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "{case}: accepted");
        // A bundle holds only files and directories: links of either kind are refused.
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("type Link is not allowed")
                || String::from_utf8_lossy(&o.stderr).contains("type Symlink is not allowed"),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{case}: wrote outside"
        );
        assert!(!host.exists(), "{case}: touched the host");
    }
}

/// Every regular file below `dir` whose path has a `secrets` component, with its mode.
fn secret_files(dir: &Path) -> Vec<(PathBuf, u32)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.path().components().any(|c| c.as_os_str() == "secrets"))
        .map(|e| {
            let mode = e.path().symlink_metadata().unwrap().permissions().mode() & 0o7777;
            (e.path().to_path_buf(), mode)
        })
        .collect()
}

/// A transit that makes every file world-writable and readable (`chmod -R a+rwX`, as zip,
/// `rsync --chmod` or CI artifact stores do) changes nothing on the host: modes and owners come
/// from the signed manifest, so secrets are 0600 in 0700 directories and `nobody` reads none.
#[test]
fn modes_come_from_the_manifest_and_nobody_reads_a_secret() {
    use std::os::unix::fs::MetadataExt;
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let copy = tempfile::tempdir().unwrap();
    let bundle = copy.path().join("bundle");
    copy_tree(&b.a, &bundle);
    ok(
        &Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(&bundle)
            .output()
            .unwrap(),
        "chmod",
    );
    assert_eq!(
        fs::metadata(bundle.join("secrets/nginx/pigsty.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o066,
        0o066,
        "the transit made the secret world-readable and writable"
    );
    let host = tempfile::tempdir().unwrap();
    // Traversable by anyone, so that only the secrets' own modes keep `nobody` out.
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o755)).unwrap();
    ok(&activate(&bundle, host.path(), &[]), "activate");
    let state = host.path().join("var/lib/infragen");
    let secrets = secret_files(&state);
    assert!(secrets.len() >= 8, "secrets found on the host: {secrets:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(b.a.join("manifest.json")).unwrap()).unwrap();
    let root = infragen_is_root();
    for (path, mode) in &secrets {
        let name = path.file_name().unwrap().to_string_lossy();
        let meta = path.symlink_metadata().unwrap();
        if meta.is_dir() {
            assert_eq!(*mode, 0o700, "{}", path.display());
        } else {
            assert_eq!(*mode, 0o600, "{}", path.display());
        }
        // Owned by the component's user (root runs the test in CI; owners need root).
        let component = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if root && meta.is_file() {
            if let Some(uid) = manifest["components"][&component]["user"]["uid"].as_u64() {
                assert_eq!(u64::from(meta.uid()), uid, "{}", path.display());
            }
        }
        if root && meta.is_file() {
            let as_nobody = Command::new("setpriv")
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat"])
                .arg(path)
                .output()
                .unwrap();
            assert!(
                !as_nobody.status.success(),
                "nobody read {} ({name})",
                path.display()
            );
        }
    }
    if root {
        // The check above can fail: nobody reads a file that is not a secret.
        let unit = state.join("current/units/infra-nginx.service");
        let as_nobody = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat"])
            .arg(&unit)
            .output()
            .unwrap();
        ok(&as_nobody, "nobody reads a unit");
    }
    // Every other file of the bundle lands with the manifest's mode, not the transit's.
    for (rel, entry) in manifest["files"].as_object().unwrap() {
        if rel.starts_with("oci/blobs/") {
            continue;
        }
        let on_host = state.join("current").join(rel);
        let want = u32::from_str_radix(entry["mode"].as_str().unwrap(), 8).unwrap();
        let got = on_host.symlink_metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, want, "{rel}");
    }
}

fn infragen_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A component removed from the profile takes its live configuration and credentials with it.
#[test]
fn a_removed_component_leaves_no_configuration_or_credentials() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    let state = host.path().join("var/lib/infragen");
    ok(&activate(&b.a, host.path(), &[]), "activate A");
    assert!(state.join("live/nginx").is_dir());
    assert!(state.join("secrets/nginx/pigsty.key").is_file());
    let out = ok(
        &activate(&b.gone, host.path(), &[]),
        "activate without nginx",
    );
    assert!(
        out.contains("stop    infra-nginx.service (removed)"),
        "{out}"
    );
    assert!(
        !state.join("live/nginx").exists(),
        "live config left behind"
    );
    assert!(
        !state.join("secrets/nginx").exists(),
        "credentials left behind"
    );
    assert!(
        state.join("secrets/vmetrics").is_dir(),
        "another component's credentials removed"
    );
}

/// A failure after `current` moved (here the disk fills when the history is written) goes
/// through the health gate's rollback, and the error names what failed.
#[test]
fn a_full_disk_after_the_switch_rolls_back() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let host = tempfile::tempdir().unwrap();
    ok(&activate(&b.a, host.path(), &[]), "activate A");
    enrol(host.path(), "127.0.40.10");
    let o = common::infragen()
        .args(["activate", b.b.to_str().unwrap(), "--root"])
        .arg(host.path())
        .env("INFRAGEN_FAILPOINT", "history-enospc")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the generation could not be installed: recording")
            && err.contains("No space left on device")
            && err.contains("rolled back to generation"),
        "{err}"
    );
    assert_eq!(current(host.path()).unwrap(), generation_of(&b.a));
}

/// A `--root` tree whose `var` leads out of it (a link to a directory outside) is refused: the
/// state directory is never created, read or written through a link out of the host root.
#[test]
fn a_state_directory_that_leads_out_of_the_root_is_refused() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(outside.join("lib/infragen")).unwrap();
    let host = dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    std::os::unix::fs::symlink(&outside, host.join("var")).unwrap();
    let before = snapshot(&outside);
    let o = activate(&b.a, &host, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/var: a link"), "{err}");
    assert_eq!(snapshot(&outside), before, "wrote outside the root");
}

/// `activate --json`, `status --json` and `generations --json`: every line as the documented
/// schema says (docs/json-schema.json), a `step` event per step taken, and the result's data
/// matching the host.
#[test]
fn json_output_of_activate_status_and_generations_matches_the_schema() {
    common::tier::binary(common::tier::Tier::Integration, "tests/activate.rs");
    let b = bundles();
    let schema = common::schema::documented();
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host");
    let lines = |o: &Output| {
        let out = String::from_utf8(o.stdout.clone()).unwrap();
        assert!(
            o.status.success(),
            "{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        common::schema::check_lines(&schema, &out)
    };
    let plan = lines(&activate(&b.a, &host, &["--json", "--dry-run"]));
    let r = plan.last().unwrap();
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["previous"], serde_json::Value::Null);
    assert_eq!(current(&host), None, "a dry run wrote nothing");

    let first = lines(&activate(&b.a, &host, &["--json"]));
    let r = first.last().unwrap();
    assert_eq!(r["generation"], generation_of(&b.a).as_str());
    let phases: Vec<&str> = first
        .iter()
        .filter(|l| l["event"] == "phase")
        .map(|l| l["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["verify", "stage", "switch"]);
    let steps: Vec<&serde_json::Value> = first.iter().filter(|l| l["event"] == "step").collect();
    assert!(!steps.is_empty());
    assert_eq!(steps.len(), r["steps"].as_array().unwrap().len());
    assert!(steps.iter().all(|s| s["action"] == "start"), "{steps:?}");

    let h = host.to_str().unwrap();
    let status = lines(&infragen(&["status", "--json", "--root", h]));
    let s = status.last().unwrap();
    assert_eq!(s["generation"], generation_of(&b.a).as_str());
    assert_eq!(s["host"], "127.0.40.10");
    assert_eq!(s["interrupted"], false);
    assert_eq!(s["units"].as_array().unwrap().len(), steps.len());

    lines(&activate(&b.b, &host, &["--json"]));
    let g = lines(&infragen(&["generations", "--json", "--root", h]));
    let list = g.last().unwrap()["generations"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], generation_of(&b.a).as_str());
    assert_eq!(list[0]["rollback"], true);
    assert_eq!(list[1]["current"], true);
}
