//! Benchmark (not a test): pushing to and activating from a registry (Debian's
//! `docker-registry`, CNCF distribution 2.8, filesystem storage, plain HTTP on loopback).
//!
//! `cargo bench --bench push` measures, in one run on one machine, interleaved pairs
//! (A B C A B C …), each sample against a fresh registry (empty storage: every push is cold):
//! - A: `infragen push OUT 127.0.50.9x:5000/infra --plain-http` of `three-node` (sealed: each
//!   host's secrets encrypted to its `host init` key, as push requires);
//! - B, the floor: the same blobs into the same repositories and the same manifests and tags,
//!   with `curl` and nothing else: every distinct blob uploaded once, monolithically
//!   (`POST …/blobs/uploads/`, then `PUT <location>&digest=` with the file as body), to the first
//!   repository that needs it, and mounted (`POST …/blobs/uploads/?mount=&from=`) into the
//!   others — the cheapest correct way, as infragen does — then every manifest `PUT`. The list of
//!   requests is prepared before timing (digests and paths from `out/`); two `curl` processes,
//!   each on one connection: all the `POST`s, then all the `PUT`s, mounts and manifests;
//! - C, a peer: `skopeo copy oci:OUT/<host>/oci:<name> docker://…/infra/<name>:<tag>` for every
//!   distinct image (what a user would script; skopeo does not push the bundles).
//!
//! Then one parameter change of `single-node` (`vmetrics_scrape_interval` 10s → 15s), both
//! generations signed and pushed, generation A activated from the registry into a fresh
//! `--root`: the bytes and blobs activating B fetches against the size of B's bundle, and the
//! time of activating B from the registry against activating the same B from its bundle
//! directory, interleaved, each sample on a fresh copy (`cp -a`) of the post-A root.
//!
//! Uses the release binary (`CARGO_BIN_EXE_infragen`), `/usr/bin/docker-registry`, `curl` and
//! `skopeo`; needs the lock at the repository root and Debian's mirror or a warm package cache.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use infragen::manifest::{Digest, Manifest};
use infragen::ship;

const BIN: &str = env!("CARGO_BIN_EXE_infragen");
const PAIRS: usize = 7;
const HOST: &str = "10.10.10.10";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A `docker-registry` serving a fresh temporary directory, killed on drop.
struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start(n: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.50.{n}:5000");
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting /usr/bin/docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(20);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(1)))
            .proxy(None)
            .build()
            .into();
        while agent.get(&format!("http://{addr}/v2/")).call().is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry on {addr}: no answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, addr, dir }
    }

    /// Every blob and repository link the registry stored (uploads in progress left out).
    fn contents(&self) -> BTreeSet<String> {
        let root = self.dir.path().join("storage/docker/registry/v2");
        walkdir::WalkDir::new(&root)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|p| !p.contains("/_uploads/"))
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn infragen(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let t = f();
    (start.elapsed(), t)
}

/// `host init --root root`: the host's `age1…` key.
fn host_init(root: &Path) -> String {
    fs::create_dir_all(root).unwrap();
    let out = ok(&infragen(&["host", "init", "--root", s(root)]), "host init");
    out.lines()
        .find(|l| l.starts_with("age1"))
        .unwrap_or_else(|| panic!("host init printed no age1 key:\n{out}"))
        .to_owned()
}

/// Builds profile `text` into `dir/out` (PKI in `pki`), signed with `sign` if given.
fn build(text: &str, dir: &Path, pki: &Path, sign: Option<&Path>) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let profile = dir.join("profile.yml");
    fs::write(&profile, text).unwrap();
    let out = dir.join("out");
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("infragen.lock");
    let mut args = vec![
        "build",
        "--profile",
        s(&profile),
        "--out",
        s(&out),
        "--lock",
        s(&lock),
        "--pki",
        s(pki),
    ];
    if let Some(k) = sign {
        args.extend(["--sign-key", s(k)]);
    }
    ok(&infragen(&args), "build");
    out
}

/// One request of the floor.
enum Op {
    Upload {
        repo: String,
        digest: String,
        path: PathBuf,
    },
    Mount {
        repo: String,
        digest: String,
        from: String,
    },
    Manifest {
        repo: String,
        reference: String,
        media_type: String,
        path: PathBuf,
    },
}

/// What infragen pushes for `out`, as requests: each distinct blob uploaded to the first
/// repository that needs it and mounted into the others, then each manifest and tag. The
/// bundle artifacts are written into `work`.
fn floor_plan(out: &Path, work: &Path) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut known: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut blob = |ops: &mut Vec<Op>, repo: &str, digest: &str, path: PathBuf| {
        let repos = known.entry(digest.to_owned()).or_default();
        if repos.iter().any(|r| r == repo) {
            return;
        }
        ops.push(match repos.first() {
            Some(from) => Op::Mount {
                repo: repo.to_owned(),
                digest: digest.to_owned(),
                from: from.clone(),
            },
            None => Op::Upload {
                repo: repo.to_owned(),
                digest: digest.to_owned(),
                path,
            },
        });
        repos.push(repo.to_owned());
    };
    let empty = work.join("empty");
    fs::write(&empty, ship::artifact::EMPTY).unwrap();
    let mut images = BTreeSet::new();
    for dir in ship::host_dirs(out).unwrap() {
        let layout = dir.join("oci");
        let blobs = layout.join("blobs/sha256");
        for (name, digest) in infragen::oci::layout::refs(&layout).unwrap() {
            let repo = format!("infra/{name}");
            if !images.insert((repo.clone(), digest.clone())) {
                continue;
            }
            let path = blobs.join(digest.trim_start_matches("sha256:"));
            let m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
            for b in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
                let d = b["digest"].as_str().unwrap();
                blob(
                    &mut ops,
                    &repo,
                    d,
                    blobs.join(d.trim_start_matches("sha256:")),
                );
            }
            ops.push(Op::Manifest {
                repo,
                reference: digest,
                media_type: m["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_owned(),
                path,
            });
        }
        let m = Manifest::parse(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let files = ship::scan(&dir).unwrap();
        let bytes = ship::bundle_artifact(&m.host, m.id(), &files);
        let path = work.join(Digest::of(&bytes).hex());
        fs::write(&path, &bytes).unwrap();
        let repo = "infra/bundle";
        blob(&mut ops, repo, ship::artifact::EMPTY_DIGEST, empty.clone());
        for f in &files {
            blob(&mut ops, repo, f.digest.as_str(), dir.join(&f.path));
        }
        for tag in [m.host.as_str(), m.id()] {
            ops.push(Op::Manifest {
                repo: repo.to_owned(),
                reference: tag.to_owned(),
                media_type: OCI_MANIFEST.to_owned(),
                path: path.clone(),
            });
        }
    }
    ops
}

/// Runs `curl -K config` (one process, one connection, one line `CODE[ LOCATION]` per
/// request); returns the lines.
fn curl(config: &str, work: &Path) -> Vec<String> {
    let path = work.join("curl.cfg");
    fs::write(&path, config.strip_suffix("next\n").unwrap_or(config)).unwrap();
    let o = Command::new("curl")
        .args(["--silent", "--show-error", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    ok(&o, "curl");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The floor: `ops` sent with two `curl` processes. Returns (uploads, mounts, manifests).
fn floor(ops: &[Op], addr: &str, work: &Path) -> (usize, usize, usize) {
    let base = format!("http://{addr}/v2");
    let mut posts = String::new();
    let uploads: Vec<(&str, &Path)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Upload { repo, digest, path } => {
                let _ = writeln!(
                    posts,
                    "url = \"{base}/{repo}/blobs/uploads/\"\ndata = \"\"\noutput = /dev/null\nwrite-out = \"%{{http_code}} %header{{location}}\\n\"\nnext"
                );
                Some((digest.as_str(), path.as_path()))
            }
            _ => None,
        })
        .collect();
    let locations = curl(&posts, work);
    assert_eq!(locations.len(), uploads.len());
    let mut puts = String::new();
    let put = |puts: &mut String, url: &str, content_type: &str, path: &Path| {
        let _ = writeln!(
            puts,
            "url = \"{url}\"\nupload-file = \"{}\"\nheader = \"Content-Type: {content_type}\"\nheader = \"Expect:\"\noutput = /dev/null\nwrite-out = \"%{{http_code}}\\n\"\nnext",
            path.display()
        );
    };
    for (line, (digest, path)) in locations.iter().zip(&uploads) {
        let location = line
            .strip_prefix("202 ")
            .unwrap_or_else(|| panic!("POST: {line}"));
        let sep = if location.contains('?') { '&' } else { '?' };
        put(
            &mut puts,
            &format!("{location}{sep}digest={digest}"),
            "application/octet-stream",
            path,
        );
    }
    let (mut mounts, mut manifests) = (0, 0);
    for op in ops {
        match op {
            Op::Upload { .. } => {}
            Op::Mount { repo, digest, from } => {
                mounts += 1;
                let _ = writeln!(
                    puts,
                    "url = \"{base}/{repo}/blobs/uploads/?mount={digest}&from={from}\"\ndata = \"\"\noutput = /dev/null\nwrite-out = \"%{{http_code}}\\n\"\nnext"
                );
            }
            Op::Manifest {
                repo,
                reference,
                media_type,
                path,
            } => {
                manifests += 1;
                put(
                    &mut puts,
                    &format!("{base}/{repo}/manifests/{reference}"),
                    media_type,
                    path,
                );
            }
        }
    }
    let codes = curl(&puts, work);
    assert_eq!(codes.len(), uploads.len() + mounts + manifests);
    assert!(codes.iter().all(|c| c == "201"), "{codes:?}");
    (uploads.len(), mounts, manifests)
}

/// The peer: `skopeo copy` of every distinct image. Returns how many.
fn skopeo(out: &Path, addr: &str) -> usize {
    let mut done = BTreeSet::new();
    for dir in ship::host_dirs(out).unwrap() {
        let layout = dir.join("oci");
        for (name, digest) in infragen::oci::layout::refs(&layout).unwrap() {
            if !done.insert((name.clone(), digest.clone())) {
                continue;
            }
            let hex = digest.trim_start_matches("sha256:");
            let o = Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                ])
                .arg(format!("oci:{}:{name}", layout.display()))
                .arg(format!("docker://{addr}/infra/{name}:d-{}", &hex[..16]))
                .env_remove("REGISTRY_AUTH_FILE")
                .env("HOME", "/nonexistent")
                .output()
                .unwrap();
            ok(&o, "skopeo copy");
        }
    }
    done.len()
}

/// Median and range of `a[i] / b[i]`.
fn ratios(a: &[Duration], b: &[Duration]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    r.sort_by(f64::total_cmp);
    (r[r.len() / 2], r[0], r[r.len() - 1])
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

#[allow(clippy::cast_precision_loss)]
fn mib(n: u64) -> f64 {
    n as f64 / 1_048_576.0
}

fn bench_push(tmp: &Path) {
    let mut text = include_str!("../profiles/three-node.yml").to_owned();
    for ip in ["10.10.10.10", "10.10.10.11", "10.10.10.12"] {
        let key = host_init(&tmp.join("hosts").join(ip));
        let from = format!("{ip}: {{ infra_seq: ");
        assert!(text.contains(&from), "three-node has {ip}");
        text = text.replacen(
            &from,
            &format!("{ip}: {{ infragen_host_key: {key}, infra_seq: "),
            1,
        );
    }
    let out = build(&text, &tmp.join("three"), &tmp.join("pki3"), None);
    let work = tmp.join("floor");
    fs::create_dir_all(&work).unwrap();
    let ops = floor_plan(&out, &work);

    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let (mut summary, mut counts, mut images) = (String::new(), (0, 0, 0), 0);
    for i in 0..PAIRS {
        // Three addresses in turn: no listener waits on the last one's port.
        let n = |k: usize| u8::try_from(91 + (3 * i + k) % 6).unwrap();
        let ra = Registry::start(n(0));
        let (t, o) = timed(|| {
            infragen(&[
                "push",
                s(&out),
                &format!("{}/infra", ra.addr),
                "--plain-http",
            ])
        });
        summary = ok(&o, "push");
        a.push(t);
        let rb = Registry::start(n(1));
        let (t, k) = timed(|| floor(&ops, &rb.addr, &work));
        counts = k;
        b.push(t);
        assert_eq!(
            ra.contents(),
            rb.contents(),
            "the floor stores what infragen stores"
        );
        drop((ra, rb));
        let rc = Registry::start(n(2));
        let (t, k) = timed(|| skopeo(&out, &rc.addr));
        images = k;
        c.push(t);
    }
    let (u, m, f) = counts;
    println!(
        "push three-node (3 hosts, {images} distinct images + 3 bundles) to a fresh docker-registry, {PAIRS} interleaved samples:"
    );
    println!("  infragen: {}", summary.trim());
    println!(
        "  A infragen push                          median {:>8.2?}",
        median(&a)
    );
    println!(
        "  B floor: curl, {u} uploads (POST+PUT), {m} mounts, {f} manifest PUTs   median {:>8.2?}",
        median(&b)
    );
    println!(
        "  C skopeo copy per image (no bundles)     median {:>8.2?}",
        median(&c)
    );
    let (r, lo, hi) = ratios(&a, &b);
    println!("  A/B: median {r:.2} (range {lo:.2}–{hi:.2})");
    let (r, lo, hi) = ratios(&a, &c);
    println!("  A/C: median {r:.2} (range {lo:.2}–{hi:.2})");
}

fn bench_activate(tmp: &Path) {
    let keys = tmp.join("key");
    ok(
        &infragen(&["key", "generate", "--out", s(&keys)]),
        "key generate",
    );
    let sign = keys.join("infragen.key");
    let r0 = tmp.join("root-a");
    let age = host_init(&r0);
    fs::create_dir_all(r0.join("etc/infragen/trusted")).unwrap();
    fs::copy(
        keys.join("infragen.pub"),
        r0.join("etc/infragen/trusted/bench.pub"),
    )
    .unwrap();
    fs::write(r0.join("etc/infragen/host"), format!("{HOST}\n")).unwrap();

    let text = include_str!("../profiles/single-node.yml").replace(
        "10.10.10.10: { infra_seq: 1 }",
        &format!("10.10.10.10: {{ infra_seq: 1, infragen_host_key: {age} }}"),
    );
    let changed = text.replace(
        "vmetrics_scrape_interval: 10s",
        "vmetrics_scrape_interval: 15s",
    );
    assert_ne!(
        text, changed,
        "single-node sets vmetrics_scrape_interval: 10s"
    );
    let pki = tmp.join("pki1");
    let out_a = build(&text, &tmp.join("a"), &pki, Some(&sign));
    let out_b = build(&changed, &tmp.join("b"), &pki, Some(&sign));

    let reg = Registry::start(97);
    let prefix = format!("{}/infra", reg.addr);
    let reference = format!("{prefix}/bundle");
    let push = |out: &Path| {
        ok(
            &infragen(&[
                "push",
                s(out),
                &prefix,
                "--plain-http",
                "--sign-key",
                s(&sign),
            ]),
            "push",
        )
    };
    push(&out_a);
    ok(
        &infragen(&[
            "activate",
            &reference,
            "--plain-http",
            "--root",
            s(&r0),
            "--host",
            HOST,
        ]),
        "activate A from the registry",
    );
    push(&out_b);

    let bundle = out_b.join(HOST);
    let (mut size, mut blobs, mut blob_bytes) = (0, 0, 0);
    for e in walkdir::WalkDir::new(&bundle) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let len = e.metadata().unwrap().len();
            size += len;
            if e.path().starts_with(bundle.join("oci/blobs")) {
                blobs += 1;
                blob_bytes += len;
            }
        }
    }

    let copy = |to: &Path| {
        let o = Command::new("cp")
            .arg("-a")
            .arg(&r0)
            .arg(to)
            .output()
            .unwrap();
        ok(&o, "cp -a");
    };
    let (mut reg_t, mut dir_t, mut pulled) = (Vec::new(), Vec::new(), String::new());
    for i in 0..PAIRS {
        let r = tmp.join(format!("r{i}"));
        copy(&r);
        let (t, o) = timed(|| {
            infragen(&[
                "activate",
                &reference,
                "--plain-http",
                "--root",
                s(&r),
                "--host",
                HOST,
            ])
        });
        let err = ok(&o, "activate B from the registry");
        err.lines()
            .find(|l| l.starts_with("pulled "))
            .unwrap_or_else(|| panic!("no pull summary:\n{err}"))
            .clone_into(&mut pulled);
        reg_t.push(t);
        fs::remove_dir_all(&r).unwrap();
        copy(&r);
        let (t, o) = timed(|| infragen(&["activate", s(&bundle), "--root", s(&r), "--host", HOST]));
        ok(&o, "activate B from its directory");
        dir_t.push(t);
        fs::remove_dir_all(&r).unwrap();
    }
    println!(
        "single-node, vmetrics_scrape_interval 10s -> 15s, A activated from the registry, then B ({PAIRS} interleaved samples, fresh copy of the post-A root each):"
    );
    println!("  {pulled}");
    println!(
        "  B's bundle: {:.1} MiB in {} files, {blobs} blobs ({:.1} MiB)",
        mib(size),
        walkdir::WalkDir::new(&bundle)
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count(),
        mib(blob_bytes)
    );
    println!(
        "  A activate B from the registry      median {:>8.2?}",
        median(&reg_t)
    );
    println!(
        "  B activate B from its directory     median {:>8.2?}",
        median(&dir_t)
    );
    let (r, lo, hi) = ratios(&reg_t, &dir_t);
    println!("  A/B: median {r:.2} (range {lo:.2}–{hi:.2})");
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    bench_push(tmp.path());
    bench_activate(tmp.path());
}
