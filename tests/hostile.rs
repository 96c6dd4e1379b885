//! Hostile bundles and archives (issue #9; docs/reliability.md, "Safe extraction", "Trust
//! model", "Test catalog"). Every hostile case is refused with exit 1 (2 for usage), an error
//! naming the offending entry or file and the reason, and the host tree unchanged (paths, kinds,
//! modes, owners, contents, link targets; the lock file's content, the pid of the last run, is
//! not compared). In every case, refused or not, a sentinel directory outside `--root` is
//! unchanged, nothing is left in a private `$TMPDIR`, and stderr holds no raw control character.
//!
//! Layer and manifest cases are *resealed* as an attacker holding the trusted key would reseal
//! them (file digests, image documents, root id, generation and signature recomputed), so they
//! prove that extraction and the manifest checks hold by themselves even when a bundle verifies
//! and is signed. A resealed but harmless bundle activating is the canary that the resealing is
//! sound; setuid, setgid, sticky and world-writable entries are accepted with those bits
//! stripped; a zero-bomb layer is refused within a bounded peak resident set.

mod common;

use common::rawtar::{gunzip, header, strip_end, tar, tar_body, Raw};
use common::{copy_tree, enrol, ok, root, signing_key};

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The host every bundle here is built for.
const HOST: &str = "127.0.40.10";

/// The component whose last root layer the layer cases replace (nine small layers).
const VICTIM: &str = "vmalert";

fn infragen() -> Command {
    let mut c = common::infragen();
    c.env_remove("INFRAGEN_FAILPOINT");
    c
}

fn hex(bytes: &[u8]) -> String {
    infragen::digest::sha256_hex(bytes)
}

fn canonical(v: &Value) -> Vec<u8> {
    infragen::oci::json::canonical(v)
}

/// Bundle A of single-node (127.0.40.10), signed with the test key, and a host tree that has
/// activated it (the template every layer case starts from). Built once.
struct Fixture {
    dir: PathBuf,
    bundle: PathBuf,
    activated: PathBuf,
}

/// Where the fixture and the cases live (one file system, for hard links).
fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // In the target directory, made afresh by each run: case hosts hard-link its files.
        let dir = scratch().join("hostile");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let text = fs::read_to_string(root().join("profiles/single-node.yml"))
            .unwrap()
            .replace("10.10.10.", "127.0.40.");
        fs::create_dir_all(dir.join("a")).unwrap();
        let profile = dir.join("a/single.yml");
        fs::write(&profile, text).unwrap();
        let out = dir.join("a/out");
        common::build_signed(&profile, &out, &dir.join("pki"), "build");
        let bundle = out.join(HOST);
        let activated = dir.join("activated");
        enrol(&activated, HOST);
        ok(
            &infragen()
                .arg("activate")
                .arg(&bundle)
                .arg("--root")
                .arg(&activated)
                .output()
                .unwrap(),
            "activate the template host",
        );
        Fixture {
            dir,
            bundle,
            activated,
        }
    })
}

// ---------------------------------------------------------------------------------------------
/// A gzip'd tar of one file of 2 GiB of zeros (about 2 MiB, 1000:1), written streaming, and its
/// tar stream's digest (the `diff_id` a layer of it needs). Made once.
fn zero_bomb() -> &'static (PathBuf, String) {
    static BOMB: OnceLock<(PathBuf, String)> = OnceLock::new();
    BOMB.get_or_init(|| {
        const SIZE: u64 = 2 << 30;
        let path = fixture().dir.join("zeros.tar.gz");
        let file = fs::File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(file),
            flate2::Compression::best(),
        );
        let mut hash = Sha256::new();
        let mut put = |bytes: &[u8]| {
            hash.update(bytes);
            gz.write_all(bytes).unwrap();
        };
        put(&header(b"zeros", b'0', 0o644, SIZE, b""));
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..SIZE >> 20 {
            put(&chunk);
        }
        put(&[0u8; 1024]);
        gz.finish().unwrap().flush().unwrap();
        let diff_id = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        (path, diff_id)
    })
}

// ---------------------------------------------------------------------------------------------
// Resealing: what an attacker holding the trusted key does after changing a bundle.

/// Replaces a file, never writing through a hard link another bundle shares.
fn replace(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
}

fn manifest_value(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Lists every file of `dir` in the manifest with its digest (keeping modes and owners of the
/// files listed before), lets `edit` change the manifest, recomputes the generation and writes
/// the canonical manifest; `sign` also signs it with the test key for its host.
fn reseal_with(dir: &Path, sign: bool, edit: impl FnOnce(&mut Value)) {
    let mut m = manifest_value(dir);
    let old = m["files"].as_object().cloned().unwrap_or_default();
    let mut files = serde_json::Map::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "manifest.json" || rel == "manifest.sig" {
            continue;
        }
        let mut entry = old.get(&rel).cloned().unwrap_or_else(
            || serde_json::json!({"digest": "", "mode": "0644", "uid": 0, "gid": 0}),
        );
        entry["digest"] = Value::String(format!("sha256:{}", hex(&fs::read(e.path()).unwrap())));
        files.insert(rel, entry);
    }
    m["files"] = Value::Object(files);
    edit(&mut m);
    let obj = m.as_object_mut().unwrap();
    obj.remove("generation");
    let generation = hex(&canonical(&m));
    m["generation"] = Value::String(generation);
    let bytes = canonical(&m);
    replace(&dir.join("manifest.json"), &bytes);
    if sign {
        let key = infragen::sign::SigningKey::load(&signing_key().0).unwrap();
        let host = m["host"].as_str().unwrap().to_owned();
        replace(&dir.join("manifest.sig"), &key.sign(&bytes, &host).unwrap());
    }
}

fn reseal(dir: &Path, edit: impl FnOnce(&mut Value)) {
    reseal_with(dir, true, edit);
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("oci/blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Stores `bytes` as a blob of the bundle; returns its digest.
fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", hex(bytes));
    replace(&blob_path(dir, &digest), bytes);
    digest
}

/// Replaces the last root layer of `component` with the layer file `layer` (tar or gzip'd tar)
/// whose tar stream hashes to `diff_id`, rewriting what must agree with it — the image config's
/// `diff_ids`, the image manifest, `oci/index.json`, and the bundle manifest's image, root
/// layers and root id — then reseals and signs. Returns the new root id.
fn replace_root_layer(dir: &Path, component: &str, layer: &Path, diff_id: &str) -> String {
    let mut m = manifest_value(dir);
    let c = &m["components"][component];
    let old_image = c["image"].as_str().unwrap().to_owned();
    let roots = c["root_layers"].as_array().unwrap().len();
    let old_layer = c["root_layers"][roots - 1].as_str().unwrap().to_owned();
    // the layer blob, copied (a bomb is never read whole here)
    let bytes_len = fs::metadata(layer).unwrap().len();
    let mut hash = Sha256::new();
    std::io::copy(&mut fs::File::open(layer).unwrap(), &mut hash).unwrap();
    let layer_digest = format!(
        "sha256:{}",
        hash.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let _ = fs::remove_file(blob_path(dir, &layer_digest));
    fs::copy(layer, blob_path(dir, &layer_digest)).unwrap();
    // the image manifest and its config
    let mut image: Value =
        serde_json::from_slice(&fs::read(blob_path(dir, &old_image)).unwrap()).unwrap();
    let at = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|l| l["digest"] == old_layer.as_str())
        .expect("the layer is in its image");
    let gz = fs::read(layer)
        .unwrap_or_default()
        .starts_with(&[0x1f, 0x8b]);
    image["layers"][at]["digest"] = Value::String(layer_digest.clone());
    image["layers"][at]["size"] = bytes_len.into();
    image["layers"][at]["mediaType"] = Value::String(
        if gz {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        }
        .to_owned(),
    );
    let config_digest = image["config"]["digest"].as_str().unwrap().to_owned();
    let mut config: Value =
        serde_json::from_slice(&fs::read(blob_path(dir, &config_digest)).unwrap()).unwrap();
    config["rootfs"]["diff_ids"][at] = Value::String(format!("sha256:{diff_id}"));
    let config_bytes = canonical(&config);
    image["config"]["digest"] = Value::String(put_blob(dir, &config_bytes));
    image["config"]["size"] = config_bytes.len().into();
    let image_bytes = canonical(&image);
    let new_image = put_blob(dir, &image_bytes);
    let mut index: Value =
        serde_json::from_slice(&fs::read(dir.join("oci/index.json")).unwrap()).unwrap();
    for d in index["manifests"].as_array_mut().unwrap() {
        if d["digest"] == old_image.as_str() {
            d["digest"] = Value::String(new_image.clone());
            d["size"] = image_bytes.len().into();
        }
    }
    replace(&dir.join("oci/index.json"), &canonical(&index));
    // the root id: sha256 of the root layers' diff_ids, one per line (every layer but the last,
    // the configuration layer)
    let ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let root_id = hex(ids[..ids.len() - 1].join("\n").as_bytes());
    let c = &mut m["components"][component];
    c["image"] = Value::String(new_image);
    c["root_layers"][roots - 1] = Value::String(layer_digest);
    c["root"] = Value::String(root_id.clone());
    replace(&dir.join("manifest.json"), &canonical(&m));
    reseal(dir, |_| {});
    root_id
}

/// The victim's last root layer as a tar stream, followed by `extra` entries, gzip'd into
/// `out`; returns its `diff_id`.
fn hostile_layer(bundle: &Path, extra: &[Raw], out: &Path) -> String {
    let m = manifest_value(bundle);
    let layers = m["components"][VICTIM]["root_layers"].as_array().unwrap();
    let last = layers.last().unwrap().as_str().unwrap();
    let original = gunzip(&fs::read(blob_path(bundle, last)).unwrap());
    let mut stream = strip_end(&original).to_vec();
    stream.extend_from_slice(&tar(extra));
    fs::write(out, common::gz(&stream)).unwrap();
    hex(&stream)
}

// ---------------------------------------------------------------------------------------------
// One case: a host, a sentinel, a private TMPDIR, and what must hold afterwards.

/// The digest of a file's content, hashed once per inode and modification time: a case host
/// shares its files with the template by hard links, and any write moves the mtime (infragen
/// never sets one).
fn content_digest(path: &Path, meta: &fs::Metadata) -> String {
    type Key = (u64, u64, u64, i64, i64);
    static CACHE: std::sync::Mutex<BTreeMap<Key, String>> = std::sync::Mutex::new(BTreeMap::new());
    let key = (
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
    );
    if let Some(d) = CACHE.lock().unwrap().get(&key) {
        return d.clone();
    }
    let d = hex(&fs::read(path).unwrap());
    CACHE.lock().unwrap().insert(key, d.clone());
    d
}

/// Every path under `dir` with its kind, mode, owner and content digest (or link target).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
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
        let ft = meta.file_type();
        let content = if ft.is_symlink() {
            format!("-> {}", fs::read_link(e.path()).unwrap().display())
        } else if ft.is_file() {
            // The lock file holds the pid of the last run that took it: data, not state.
            if rel == "var/lib/infragen/lock" {
                "(lock)".to_owned()
            } else {
                content_digest(e.path(), &meta)
            }
        } else if ft.is_dir() {
            "dir".to_owned()
        } else {
            "special".to_owned()
        };
        out.insert(
            rel,
            format!("{:o} {}:{} {content}", meta.mode(), meta.uid(), meta.gid()),
        );
    }
    out
}

/// The differences between two snapshots, for a message.
fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("removed {k}")),
            Some(w) if w != v => out.push(format!("changed {k}: {v} → {w}")),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        out.push(format!("added {k}"));
    }
    out.truncate(20);
    out.join("\n  ")
}

/// A case's directory: `host/` (the `--root`), `sentinel/` (files an attack would reach),
/// `tmp/` (its `$TMPDIR`), and room for the bundle or archive.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// A fresh host, enrolled (its tree is just the enrolment files), or a copy of the template
    /// host that has activated bundle A.
    fn new(activated: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("case-")
            .tempdir_in(scratch())
            .unwrap();
        let c = Self { dir };
        if activated {
            // Hard links: fast, and a write through one would show in this case's snapshot.
            let o = Command::new("cp")
                .arg("-al")
                .arg(&fixture().activated)
                .arg(c.host())
                .output()
                .unwrap();
            ok(&o, "copying the template host");
        } else {
            enrol(&c.host(), HOST);
        }
        fs::create_dir_all(c.sentinel().join("sub")).unwrap();
        for (name, text) in [
            ("keep", "keep me\n"),
            ("passwd", "root:x:0:0::/root:/bin/sh\n"),
            ("shadow", "root:*:1::::::\n"),
            ("x", "x\n"),
            ("sub/deep", "deep\n"),
        ] {
            fs::write(c.sentinel().join(name), text).unwrap();
        }
        fs::create_dir_all(c.tmp()).unwrap();
        c
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host(&self) -> PathBuf {
        self.path().join("host")
    }

    fn sentinel(&self) -> PathBuf {
        self.path().join("sentinel")
    }

    fn tmp(&self) -> PathBuf {
        self.path().join("tmp")
    }

    /// A copy of bundle A in this case's directory.
    fn bundle(&self) -> PathBuf {
        let b = self.path().join("bundle");
        copy_tree(&fixture().bundle, &b);
        b
    }

    /// `infragen activate BUNDLE --root HOST ARGS…` with this case's `$TMPDIR`; never without
    /// `--root`.
    fn activate(&self, bundle: &Path, args: &[&str]) -> Output {
        infragen()
            .arg("activate")
            .arg(bundle)
            .arg("--root")
            .arg(self.host())
            .args(args)
            .env("TMPDIR", self.tmp())
            .output()
            .unwrap()
    }

    /// The same under `python3`, which reports the child's peak resident set (KiB).
    fn activate_measured(&self, bundle: &Path) -> (Output, u64, i32) {
        const MEASURE: &str = "import resource,subprocess,sys; r=subprocess.run(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)";
        let o = Command::new("python3")
            .args(["-c", MEASURE, common::bin(), "activate"])
            .env("XDG_CACHE_HOME", common::test_cache_home())
            .arg(bundle)
            .arg("--root")
            .arg(self.host())
            .env("TMPDIR", self.tmp())
            .env_remove("INFRAGEN_FAILPOINT")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let last = stdout.lines().last().unwrap_or_default().to_owned();
        let mut it = last.split_whitespace().map(|s| s.parse::<i64>().unwrap());
        let (rss, rc) = (it.next().unwrap(), it.next().unwrap());
        (o, u64::try_from(rss).unwrap(), i32::try_from(rc).unwrap())
    }

    /// Leftovers in `$TMPDIR` (an unpacking or private directory, or anything an entry wrote
    /// beside it).
    fn tmp_leftovers(&self) -> Vec<String> {
        fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// What a case must end in.
enum Expect {
    /// Exit code, and the parts stderr must contain (the entry or file and the reason).
    Refused(i32, &'static [&'static str]),
    /// Activated, with these parts in stderr.
    Accepted(&'static [&'static str]),
}

/// Activates `target` in `case` (with `args`; `measured`: under `python3`, bounding the peak
/// resident set) and checks the outcome, the host tree (unchanged when refused), the sentinel
/// and `$TMPDIR`. Returns the problems found, so that a table reports every failed case.
fn run_case(
    name: &str,
    case: &Case,
    target: &Path,
    args: &[&str],
    expect: &Expect,
    measured: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let host_before = snapshot(&case.host());
    let sentinel_before = snapshot(&case.sentinel());
    let started = std::time::Instant::now();
    let (o, code) = if measured {
        let (o, rss, code) = case.activate_measured(target);
        eprintln!("{name}: peak resident set {rss} KiB");
        if rss >= 256 << 10 {
            problems.push(format!(
                "peak resident set {rss} KiB (the bound is 256 MiB)"
            ));
        }
        (o, Some(code))
    } else {
        let o = case.activate(target, args);
        let code = o.status.code();
        (o, code)
    };
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    eprintln!(
        "{name}: exit {code:?} in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("")
    );
    // Names from a bundle or archive reach the terminal escaped.
    if stderr
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        problems.push("stderr holds control characters".to_owned());
    }
    let (want, parts) = match expect {
        Expect::Refused(code, parts) => (*code, *parts),
        Expect::Accepted(parts) => (0, *parts),
    };
    if code != Some(want) {
        problems.push(format!("exit {code:?}, want {want}"));
    }
    for p in parts {
        let p = p.replace("{sentinel}", &case.sentinel().display().to_string());
        if !stderr.contains(&p) {
            problems.push(format!("stderr lacks `{p}`"));
        }
    }
    match expect {
        Expect::Refused(..) => {
            let after = snapshot(&case.host());
            if after != host_before {
                problems.push(format!(
                    "the host tree changed:\n  {}",
                    diff(&host_before, &after)
                ));
            }
        }
        Expect::Accepted(_) => {
            let state = case.host().join("var/lib/infragen");
            for sub in ["", "roots", "generations"] {
                for e in fs::read_dir(state.join(sub)).into_iter().flatten() {
                    let n = e.unwrap().file_name().to_string_lossy().into_owned();
                    if n.starts_with(".incoming-")
                        || n.starts_with(".root-")
                        || n.starts_with(".gen-")
                    {
                        problems.push(format!("left behind: {sub}/{n}"));
                    }
                }
            }
        }
    }
    if snapshot(&case.sentinel()) != sentinel_before {
        problems.push(format!(
            "the sentinel changed:\n  {}",
            diff(&sentinel_before, &snapshot(&case.sentinel()))
        ));
    }
    let left = case.tmp_leftovers();
    if !left.is_empty() {
        problems.push(format!("left in $TMPDIR: {left:?}"));
    }
    if !problems.is_empty() {
        problems.insert(0, format!("stderr:\n{stderr}"));
    }
    problems
}

/// Panics with every failed case of a table.
fn report(table: &str, failed: &[(String, Vec<String>)], total: usize) {
    let text: String = failed
        .iter()
        .map(|(name, p)| format!("\n--- {name}:\n{}", p.join("\n")))
        .collect();
    assert!(
        failed.is_empty(),
        "{table}: {} of {total} cases failed:{text}",
        failed.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Archives: `activate X.tar` / `X.tar.gz`, refused while unpacking, before anything is verified.

/// How an archive case is made.
enum Archive {
    /// A plain tar of these entries (the archive begins like a bundle: `./`, `manifest.json`).
    Tar(fn(&Case) -> Vec<Raw>),
    /// The same, gzip'd.
    TarGz(fn(&Case) -> Vec<Raw>),
    /// Any bytes.
    Bytes(fn(&Case) -> Vec<u8>),
    /// The zero bomb.
    Bomb,
}

fn bundle_start() -> Vec<Raw> {
    vec![Raw::dir("./"), Raw::file("manifest.json", b"{}\n")]
}

fn sentinel_abs(c: &Case) -> String {
    c.sentinel().display().to_string()
}

/// From the unpacking directory (`$TMPDIR/infragen-bundle-*`) to the sentinel.
const UP: &str = "../../sentinel";

fn archive_cases() -> Vec<(&'static str, Archive, Expect)> {
    use Archive::{Bomb, Bytes, Tar, TarGz};
    use Expect::Refused;
    vec![
        (
            "`..` in a path",
            Tar(|_| vec![Raw::file(format!("{UP}/keep"), b"overwritten\n")]),
            Refused(
                1,
                &["entry `../../sentinel/keep`", "the path leaves the root"],
            ),
        ),
        (
            "a bare `..` directory",
            Tar(|_| vec![Raw::dir("..")]),
            Refused(1, &["entry `..`", "the path leaves the root"]),
        ),
        (
            "an absolute path",
            Tar(|c| {
                vec![Raw::file(
                    format!("{}/keep", sentinel_abs(c)),
                    b"overwritten\n",
                )]
            }),
            Refused(1, &["entry `{sentinel}/keep`", "the path leaves the root"]),
        ),
        (
            "a whiteout of `..` (`.wh...`)",
            Tar(|_| vec![Raw::file(".wh...", b"")]),
            Refused(1, &["entry `.wh...`", "a whiteout in a bundle archive"]),
        ),
        (
            "a whiteout `.wh.x`",
            Tar(|_| vec![Raw::file("oci/.wh.x", b"")]),
            Refused(1, &["entry `oci/.wh.x`", "a whiteout in a bundle archive"]),
        ),
        (
            "an opaque whiteout",
            Tar(|_| vec![Raw::file(".wh..wh..opq", b"")]),
            Refused(
                1,
                &["entry `.wh..wh..opq`", "a whiteout in a bundle archive"],
            ),
        ),
        (
            "an absolute symlink, then a file through it",
            Tar(|c| {
                vec![
                    Raw::symlink("oci", sentinel_abs(c)),
                    Raw::file("oci/keep", b"overwritten\n"),
                ]
            }),
            Refused(1, &["entry `oci`", "type Symlink is not allowed"]),
        ),
        (
            "a climbing symlink",
            Tar(|_| {
                vec![
                    Raw::symlink("units", UP),
                    Raw::file("units/keep", b"overwritten\n"),
                ]
            }),
            Refused(1, &["entry `units`", "type Symlink is not allowed"]),
        ),
        (
            "a hard link out",
            Tar(|_| vec![Raw::hardlink("leak", format!("{UP}/keep"))]),
            Refused(1, &["entry `leak`", "type Link is not allowed"]),
        ),
        (
            "a character device",
            Tar(|_| vec![Raw::new("null", b'3')]),
            Refused(1, &["entry `null`", "type Char is not allowed"]),
        ),
        (
            "a block device",
            Tar(|_| vec![Raw::new("disk", b'4')]),
            Refused(1, &["entry `disk`", "type Block is not allowed"]),
        ),
        (
            "a fifo",
            Tar(|_| vec![Raw::new("pipe", b'6')]),
            Refused(1, &["entry `pipe`", "type Fifo is not allowed"]),
        ),
        (
            "an unknown entry type",
            Tar(|_| vec![Raw::new("odd", b'N')]),
            Refused(1, &["entry `odd`: type `N` (unknown) is not allowed"]),
        ),
        (
            "terminal escapes in a name",
            Tar(|_| vec![Raw::new("\x1b]0;owned\x07\x1b[2Jpipe", b'6')]),
            Refused(
                1,
                &[
                    "entry `\\u{1b}]0;owned\\u{7}\\u{1b}[2Jpipe`",
                    "type Fifo is not allowed",
                ],
            ),
        ),
        (
            "a duplicate name",
            Tar(|_| vec![Raw::file("manifest.json", b"{\"again\":1}\n")]),
            Refused(1, &["entry `manifest.json`", "a duplicate name"]),
        ),
        (
            "an empty name",
            Tar(|_| vec![Raw::file("", b"x")]),
            Refused(1, &["an empty path"]),
        ),
        (
            "a 4 KiB path",
            Tar(|_| vec![Raw::file("long", b"x").pax("path", "a/".repeat(2047) + "zz")]),
            Refused(
                1,
                &["entry `a/a/a/", "a path of 4096 bytes (the limit is 1024)"],
            ),
        ),
        (
            "a PAX `path=` pointing out",
            Tar(|_| vec![Raw::file("innocent", b"x").pax("path", format!("{UP}/keep"))]),
            Refused(
                1,
                &["entry `../../sentinel/keep`", "the path leaves the root"],
            ),
        ),
        (
            "a PAX `path=` absolute",
            Tar(|c| {
                vec![Raw::file("innocent", b"x").pax("path", format!("{}/keep", sentinel_abs(c)))]
            }),
            Refused(1, &["entry `{sentinel}/keep`", "the path leaves the root"]),
        ),
        (
            "a PAX `path=` with a NUL",
            Tar(|_| vec![Raw::file("innocent", b"x").pax("path", b"units/a\0/../../x")]),
            Refused(1, &["a NUL byte in the path"]),
        ),
        (
            "a PAX `path=` turning a file into a directory's parent",
            Tar(|_| {
                vec![
                    Raw::file("units", b"a file\n"),
                    Raw::file("innocent", b"x").pax("path", "units/x"),
                ]
            }),
            Refused(1, &["entry `units/x`", "exists and is not a directory"]),
        ),
        (
            "a PAX `size=` past the end",
            Tar(|_| vec![Raw::file("units/a", b"x").pax("size", "10737418240")]),
            Refused(
                1,
                &[
                    "entry `units/a`: the stream ends after",
                    "of its 10737418240 bytes",
                ],
            ),
        ),
        (
            "a GNU long name pointing out",
            Tar(|_| {
                vec![
                    Raw::file("././@LongLink", format!("{UP}/keep\0").as_bytes())
                        .mode(0)
                        .kind(b'L'),
                    Raw::file("innocent", b"overwritten\n"),
                ]
            }),
            Refused(
                1,
                &["entry `../../sentinel/keep`", "the path leaves the root"],
            ),
        ),
        (
            "100,000 entries (gzip)",
            TarGz(|_| {
                (0..100_000)
                    .map(|i| Raw::file(format!("f/{i:06}"), b""))
                    .collect()
            }),
            Refused(1, &["more than 65536 entries"]),
        ),
        (
            "a gzip zero bomb (2 MiB → 2 GiB)",
            Bomb,
            Refused(1, &["entry `zeros`", "refused as a decompression bomb"]),
        ),
        (
            "a file past the end of the archive",
            Bytes(|_| {
                let mut t = tar_body(&bundle_start());
                let mut e = Raw::file("units/infra-nginx.service", &[b'u'; 100]);
                e.size = Some(1 << 20);
                t.extend_from_slice(&tar_body(&[e]));
                t
            }),
            Refused(
                1,
                &[
                    "entry `units/infra-nginx.service`: the stream ends after",
                    "of its 1048576 bytes",
                ],
            ),
        ),
        (
            "a truncated gzip stream",
            Bytes(|_| {
                let mut entries = bundle_start();
                let mut rng = common::Rng(7);
                let noise: Vec<u8> = (0..1 << 18).map(|_| rng.next().to_le_bytes()[0]).collect();
                entries.push(Raw::file("oci/blobs/sha256/noise", &noise));
                entries.push(Raw::file("units/after", b"after\n"));
                let mut gz = common::gz(&tar(&entries));
                gz.truncate(gz.len() / 2);
                gz
            }),
            Refused(1, &["entry `oci/blobs/sha256/noise`"]),
        ),
    ]
}

#[test]
fn hostile_archives_are_refused_while_unpacking() {
    common::tier::binary(common::tier::Tier::Integration, "tests/hostile.rs");
    let cases = archive_cases();
    let total = cases.len();
    let mut failed = Vec::new();
    for (name, archive, expect) in cases {
        let case = Case::new(false);
        let target = case.path().join("bundle.tar");
        let bytes = |entries: Vec<Raw>| {
            let mut all = bundle_start();
            all.extend(entries);
            tar(&all)
        };
        match archive {
            Archive::Tar(f) => fs::write(&target, bytes(f(&case))).unwrap(),
            Archive::TarGz(f) => fs::write(&target, common::gz(&bytes(f(&case)))).unwrap(),
            Archive::Bytes(f) => fs::write(&target, f(&case)).unwrap(),
            Archive::Bomb => {
                fs::copy(&zero_bomb().0, &target).unwrap();
            }
        }
        let problems = run_case(name, &case, &target, &[], &expect, false);
        if !problems.is_empty() {
            failed.push((name.to_owned(), problems));
        }
    }
    report("archives", &failed, total);
}

// ---------------------------------------------------------------------------------------------
// Layers: a root layer of one component replaced, the bundle resealed and signed, so that it
// verifies; extraction must hold by itself. The host has activated bundle A before.

/// From the root tree being extracted (`var/lib/infragen/roots/.root-*`) to the sentinel.
const ROOT_UP: &str = "../../../../../../sentinel";

/// What a layer case puts in the replaced layer.
enum Layer {
    /// The original layer's entries followed by these.
    Entries(fn(&Case) -> Vec<Raw>),
    /// The zero bomb as the whole layer.
    Bomb,
    /// A harmless layer, the manifest claiming this root id for it (given bundle A's manifest).
    ClaimRoot(fn(&Value) -> String),
}

/// A layer case's outcome: refused, or accepted with these (path in the root tree, mode).
enum LayerExpect {
    Refused(&'static [&'static str]),
    AcceptedWithModes(&'static [(&'static str, u32)]),
}

fn layer_cases() -> Vec<(&'static str, Layer, LayerExpect)> {
    use Layer::{Bomb, ClaimRoot, Entries};
    use LayerExpect::{AcceptedWithModes, Refused};
    vec![
        (
            "a whiteout of `..` (`.wh...`): nothing under roots/ goes",
            Entries(|_| vec![Raw::file(".wh...", b"")]),
            Refused(&["entry `.wh...`", "a whiteout of `..`, which is not a name in its directory"]),
        ),
        (
            "a whiteout of `..` in a subdirectory",
            Entries(|_| vec![Raw::file("etc/.wh...", b"")]),
            Refused(&["entry `etc/.wh...`", "a whiteout of `..`"]),
        ),
        (
            "a whiteout of `../x` (climbing to the sentinel)",
            Entries(|_| vec![Raw::file(format!("{ROOT_UP}/.wh.keep"), b"")]),
            Refused(&["entry `../../../../../../sentinel/.wh.keep`", "the path leaves the root"]),
        ),
        (
            "an opaque whiteout climbing out",
            Entries(|_| vec![Raw::file(format!("{ROOT_UP}/.wh..wh..opq"), b"")]),
            Refused(&["entry `../../../../../../sentinel/.wh..wh..opq`", "the path leaves the root"]),
        ),
        (
            "a whiteout through an absolute symlink",
            Entries(|c| {
                vec![
                    Raw::symlink("d", sentinel_abs(c)),
                    Raw::file("d/.wh.keep", b""),
                ]
            }),
            Refused(&["entry `d/.wh.keep`", "a symlink on the way"]),
        ),
        (
            "an opaque whiteout through an absolute symlink",
            Entries(|c| {
                vec![
                    Raw::symlink("d", sentinel_abs(c)),
                    Raw::file("d/.wh..wh..opq", b""),
                ]
            }),
            Refused(&["entry `d/.wh..wh..opq`", "not a directory"]),
        ),
        (
            "symlink `etc -> <sentinel>`, then a file `etc/passwd`",
            Entries(|c| {
                vec![
                    Raw::symlink("etc", sentinel_abs(c)),
                    Raw::file("etc/passwd", b"evil::0:0::/:/bin/sh\n"),
                ]
            }),
            Refused(&["entry `etc/passwd`", "exists and is not a directory"]),
        ),
        (
            "symlink `etc -> /`, then a file `etc/infragen-hostile-probe`",
            Entries(|_| {
                vec![
                    Raw::symlink("etc", "/"),
                    Raw::file("etc/infragen-hostile-probe", b"written through\n"),
                ]
            }),
            Refused(&["entry `etc/infragen-hostile-probe`", "exists and is not a directory"]),
        ),
        (
            "symlink to a directory, then a directory and a file through it",
            Entries(|c| {
                vec![
                    Raw::symlink("usr/share/evil", sentinel_abs(c)),
                    Raw::dir("usr/share/evil/sub/new"),
                ]
            }),
            Refused(&["entry `usr/share/evil/sub/new`", "usr/share/evil: exists and is not a directory"]),
        ),
        (
            "a symlink climbing out (`../../../../x`)",
            Entries(|_| vec![Raw::symlink("x", format!("{ROOT_UP}/keep"))]),
            Refused(&["entry `x`", "symlink target `../../../../../../sentinel/keep` climbs out of the root"]),
        ),
        (
            "a symlink climbing out from a subdirectory",
            Entries(|_| vec![Raw::symlink("usr/bin/x", "../../../x")]),
            Refused(&["entry `usr/bin/x`", "climbs out of the root"]),
        ),
        (
            "a hard link to `/etc/shadow`",
            Entries(|_| vec![Raw::hardlink("shadow", "/etc/shadow")]),
            Refused(&["entry `shadow`: hard link target `/etc/shadow`: the path leaves the root"]),
        ),
        (
            "a hard link to `../x`",
            Entries(|_| vec![Raw::hardlink("x", format!("{ROOT_UP}/keep"))]),
            Refused(&[
                "entry `x`: hard link target `../../../../../../sentinel/keep`: the path leaves the root",
            ]),
        ),
        (
            "a hard link through an absolute symlink",
            Entries(|c| {
                vec![
                    Raw::symlink("d", sentinel_abs(c)),
                    Raw::hardlink("leak", "d/keep"),
                ]
            }),
            Refused(&["entry `leak`", "hard link to `d/keep`"]),
        ),
        (
            "a character device",
            Entries(|_| vec![Raw::new("dev/evil", b'3')]),
            Refused(&["entry `dev/evil`", "type Char is not allowed"]),
        ),
        (
            "a fifo",
            Entries(|_| vec![Raw::new("run/evil", b'6')]),
            Refused(&["entry `run/evil`", "type Fifo is not allowed"]),
        ),
        (
            "a fifo, in a host's first activation",
            Entries(|_| vec![Raw::new("run/evil", b'6')]),
            Refused(&["entry `run/evil`", "type Fifo is not allowed"]),
        ),
        (
            "setuid, setgid, sticky and world-writable entries: accepted, bits stripped",
            Entries(|_| {
                vec![
                    Raw::file("usr/bin/suid", b"#!/bin/sh\n").mode(0o4755),
                    Raw::file("usr/bin/sgid", b"#!/bin/sh\n").mode(0o2755),
                    Raw::file("etc/world", b"anyone\n").mode(0o666),
                    Raw::dir("var/tmp-sticky").mode(0o1777),
                    Raw::dir("var/world").mode(0o777),
                ]
            }),
            AcceptedWithModes(&[
                ("usr/bin/suid", 0o755),
                ("usr/bin/sgid", 0o755),
                ("etc/world", 0o644),
                ("var/tmp-sticky", 0o755),
                ("var/world", 0o755),
            ]),
        ),
        (
            "a root id naming the tree already there (resealed)",
            ClaimRoot(|a| a["components"][VICTIM]["root"].as_str().unwrap().to_owned()),
            Refused(&["component `vmalert`: root id", "is not the digest of its layers' diff_ids"]),
        ),
        (
            "a root id that is not its layers' digest (resealed)",
            ClaimRoot(|_| "0".repeat(64)),
            Refused(&[
                "component `vmalert`: root id 0000000000000000000000000000000000000000000000000000000000000000 is not the digest",
            ]),
        ),
        (
            "a 1000:1 zero bomb layer",
            Bomb,
            Refused(&["entry `zeros`", "refused as a decompression bomb"]),
        ),
    ]
}

#[test]
fn hostile_layers_in_a_signed_bundle_are_refused() {
    common::tier::binary(common::tier::Tier::Integration, "tests/hostile.rs");
    let cases = layer_cases();
    let total = cases.len();
    let mut failed = Vec::new();
    for (name, layer, expect) in cases {
        // One case starts from a host's first activation: the state directory it creates goes
        // too. The others from a host on bundle A, whose root trees must stay.
        let case = Case::new(!name.contains("first activation"));
        let bundle = case.bundle();
        let layer_file = case.path().join("layer.tar.gz");
        let diff_id = match layer {
            Layer::Entries(f) => hostile_layer(&bundle, &f(&case), &layer_file),
            Layer::ClaimRoot(_) => hostile_layer(
                &bundle,
                &[Raw::file("etc/harmless", b"harmless\n")],
                &layer_file,
            ),
            Layer::Bomb => {
                fs::copy(&zero_bomb().0, &layer_file).unwrap();
                zero_bomb().1.clone()
            }
        };
        let root_id = replace_root_layer(&bundle, VICTIM, &layer_file, &diff_id);
        if let Layer::ClaimRoot(claim) = layer {
            let id = claim(&manifest_value(&fixture().bundle));
            reseal(&bundle, |m| {
                m["components"][VICTIM]["root"] = Value::String(id);
            });
        }
        let mut problems = match &expect {
            LayerExpect::Refused(parts) => run_case(
                name,
                &case,
                &bundle,
                &[],
                &Expect::Refused(1, parts),
                matches!(layer, Layer::Bomb),
            ),
            LayerExpect::AcceptedWithModes(modes) => {
                let mut p = run_case(name, &case, &bundle, &[], &Expect::Accepted(&[]), false);
                let tree = case.host().join("var/lib/infragen/roots").join(&root_id);
                for (path, want) in *modes {
                    match fs::symlink_metadata(tree.join(path)) {
                        Ok(m) if m.mode() & 0o7777 == *want => {}
                        Ok(m) => p.push(format!(
                            "{path}: mode {:04o}, want {want:04o}",
                            m.mode() & 0o7777
                        )),
                        Err(e) => p.push(format!("{path}: {e}")),
                    }
                }
                p
            }
        };
        if fs::metadata("/etc/infragen-hostile-probe").is_ok() {
            problems.push("/etc/infragen-hostile-probe was written on the real host".to_owned());
        }
        if !problems.is_empty() {
            failed.push((name.to_owned(), problems));
        }
    }
    report("layers", &failed, total);
}

// ---------------------------------------------------------------------------------------------
// Bundles: directories that do not verify, or whose manifest a host must refuse.

type Prepare = fn(&Case, &Path);

fn bundle_cases() -> Vec<(&'static str, Prepare, Expect)> {
    use Expect::{Accepted, Refused};
    vec![
        (
            "canary: bundle A resealed unchanged activates",
            |_, b| reseal(b, |_| {}),
            Accepted(&[]),
        ),
        (
            "a file not listed",
            |_, b| fs::write(b.join("units/extra.service"), "[Service]\n").unwrap(),
            Refused(
                1,
                &[
                    "does not verify",
                    "units/extra.service: not in the manifest",
                ],
            ),
        ),
        (
            "a file not listed, named with terminal escapes",
            |_, b| fs::write(b.join("units/\x1b[2J.service"), "[Service]\n").unwrap(),
            Refused(
                1,
                &[
                    "does not verify",
                    "units/\\u{1b}[2J.service: not in the manifest",
                ],
            ),
        ),
        (
            "a listed file missing",
            |_, b| fs::remove_file(b.join("units/infra-nginx.service")).unwrap(),
            Refused(
                1,
                &["does not verify", "units/infra-nginx.service: missing"],
            ),
        ),
        (
            "a symlink in place of a unit file",
            |c, b| {
                let unit = b.join("units/infra-nginx.service");
                fs::remove_file(&unit).unwrap();
                std::os::unix::fs::symlink(c.sentinel().join("keep"), &unit).unwrap();
            },
            Refused(
                1,
                &[
                    "does not verify",
                    "units/infra-nginx.service: not a regular file",
                ],
            ),
        ),
        (
            "a symlinked directory in place of `units/`",
            |c, b| {
                fs::remove_dir_all(b.join("units")).unwrap();
                std::os::unix::fs::symlink(c.sentinel(), b.join("units")).unwrap();
            },
            Refused(1, &["does not verify", "units: not a regular file"]),
        ),
        (
            "a fifo in place of a unit file",
            |_, b| {
                let unit = b.join("units/infra-nginx.service");
                fs::remove_file(&unit).unwrap();
                ok(
                    &Command::new("mkfifo").arg(&unit).output().unwrap(),
                    "mkfifo",
                );
            },
            Refused(
                1,
                &[
                    "does not verify",
                    "units/infra-nginx.service: not a regular file",
                ],
            ),
        ),
        (
            "manifest.json is a symlink",
            |c, b| {
                let m = b.join("manifest.json");
                fs::copy(&m, c.sentinel().join("manifest.json")).unwrap();
                fs::remove_file(&m).unwrap();
                std::os::unix::fs::symlink(c.sentinel().join("manifest.json"), &m).unwrap();
            },
            Refused(1, &["manifest.json", "a symlink"]),
        ),
        (
            "manifest.sig is a symlink",
            |c, b| {
                let s = b.join("manifest.sig");
                fs::remove_file(&s).unwrap();
                std::os::unix::fs::symlink(c.sentinel().join("keep"), &s).unwrap();
            },
            Refused(1, &["does not verify", "manifest.sig: not a regular file"]),
        ),
        (
            "a manifest with an unknown field (resealed)",
            |_, b| reseal(b, |m| m["extra"] = Value::Bool(true)),
            Refused(1, &["manifest.json", "unknown field `extra`"]),
        ),
        (
            "a file mode with setuid in the manifest (resealed)",
            |_, b| {
                reseal(b, |m| {
                    m["files"]["units/infra-nginx.service"]["mode"] = "4755".into();
                });
            },
            Refused(1, &["manifest.json", "`4755` is not a file mode"]),
        ),
        (
            "a data path `/data/../../etc` (resealed)",
            |_, b| {
                reseal(b, |m| {
                    m["components"]["vmetrics"]["data"][0]["host"] = "/data/../../etc".into();
                });
            },
            Refused(
                1,
                &[
                    "`components.vmetrics.data.host`",
                    "`/data/../../etc` is not a plain absolute path",
                ],
            ),
        ),
        (
            "a secret name climbing out (resealed)",
            |_, b| {
                reseal(b, |m| {
                    m["components"]["nginx"]["secrets"][0] = "../../etc/shadow".into();
                });
            },
            Refused(
                1,
                &[
                    "`components.nginx.secrets`",
                    "`../../etc/shadow` is not a plain file name",
                ],
            ),
        ),
        (
            "a file path climbing out (resealed)",
            |_, b| {
                reseal(b, |m| {
                    let f = m["files"]["units/infra-nginx.service"].clone();
                    m["files"]["units/../../x"] = f;
                });
            },
            Refused(
                1,
                &["`files`", "`units/../../x` is not a plain relative path"],
            ),
        ),
        (
            "a manifest for another host (resealed, signed)",
            |_, b| reseal(b, |m| m["host"] = "127.0.40.11".into()),
            Refused(
                1,
                &[
                    "is refused",
                    "built for host `127.0.40.11`, and this host is `127.0.40.10`",
                ],
            ),
        ),
        (
            "unsigned",
            |_, b| fs::remove_file(b.join("manifest.sig")).unwrap(),
            Refused(1, &["is refused", "it is not signed"]),
        ),
        (
            "signed by an untrusted key",
            |c, b| {
                let keys = c.path().join("keys");
                ok(
                    &infragen()
                        .args(["key", "generate", "--out"])
                        .arg(&keys)
                        .output()
                        .unwrap(),
                    "key generate",
                );
                let key = infragen::sign::SigningKey::load(&keys.join("infragen.key")).unwrap();
                let bytes = fs::read(b.join("manifest.json")).unwrap();
                replace(&b.join("manifest.sig"), &key.sign(&bytes, HOST).unwrap());
            },
            Refused(1, &["is refused", "which is not among the 1 trusted keys"]),
        ),
        (
            "the signature of another bundle",
            |c, b| {
                let other = c.path().join("other");
                copy_tree(b, &other);
                reseal(&other, |m| m["version_string"] = "v4.5.1".into());
                fs::copy(other.join("manifest.sig"), b.join("manifest.sig")).unwrap();
            },
            Refused(
                1,
                &["is refused", "the manifest changed after it was signed"],
            ),
        ),
        (
            "a byte flipped in a unit after signing, digests recomputed",
            |_, b| {
                let unit = b.join("units/infra-nginx.service");
                let mut bytes = fs::read(&unit).unwrap();
                bytes[10] ^= 0x20;
                replace(&unit, &bytes);
                reseal_with(b, false, |_| {});
            },
            Refused(
                1,
                &["is refused", "the manifest changed after it was signed"],
            ),
        ),
        (
            "a byte flipped in manifest.json after signing",
            |_, b| {
                let path = b.join("manifest.json");
                let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
                replace(&path, text.replacen("v4.5.0", "v4.5.1", 1).as_bytes());
            },
            Refused(1, &["does not verify", "is not the digest of its content"]),
        ),
    ]
}

#[test]
fn hostile_bundles_are_refused_before_anything_is_read() {
    common::tier::binary(common::tier::Tier::Integration, "tests/hostile.rs");
    let cases = bundle_cases();
    let total = cases.len();
    let mut failed = Vec::new();
    for (name, prepare, expect) in cases {
        let case = Case::new(false);
        let bundle = case.bundle();
        prepare(&case, &bundle);
        let problems = run_case(name, &case, &bundle, &[], &expect, false);
        if !problems.is_empty() {
            failed.push((name.to_owned(), problems));
        }
    }
    report("bundles", &failed, total);
}

// ---------------------------------------------------------------------------------------------
// Host trust: what the host's own configuration decides.

fn trust_cases() -> Vec<(&'static str, Prepare, &'static [&'static str], Expect)> {
    use Expect::{Accepted, Refused};
    vec![
        (
            "an unsigned bundle is refused",
            |_, b| fs::remove_file(b.join("manifest.sig")).unwrap(),
            &[],
            Refused(1, &["is refused", "it is not signed", "hint: "]),
        ),
        (
            "--allow-unsigned accepts it",
            |_, b| fs::remove_file(b.join("manifest.sig")).unwrap(),
            &["--allow-unsigned"],
            Accepted(&["warning: the bundle is not signed (--allow-unsigned)"]),
        ),
        (
            "a wrong --host is refused",
            |_, _| {},
            &["--host", "127.0.40.99"],
            Refused(
                1,
                &["built for host `127.0.40.10`, and this host is `127.0.40.99` (from --host)"],
            ),
        ),
        (
            "a host without a name is refused",
            |c, _| fs::remove_file(c.host().join("etc/infragen/host")).unwrap(),
            &[],
            Refused(
                1,
                &["this host has no name to check the bundle's host `127.0.40.10` against"],
            ),
        ),
        (
            "a host that trusts no key refuses a signed bundle",
            |c, _| fs::remove_dir_all(c.host().join("etc/infragen/trusted")).unwrap(),
            &[],
            Refused(1, &["no trusted keys in"]),
        ),
        (
            "usage: --host without a name",
            |_, _| {},
            &["--host"],
            Refused(2, &["--host"]),
        ),
    ]
}

#[test]
fn the_host_decides_whom_it_trusts() {
    common::tier::binary(common::tier::Tier::Integration, "tests/hostile.rs");
    let cases = trust_cases();
    let total = cases.len();
    let mut failed = Vec::new();
    for (name, prepare, args, expect) in cases {
        let case = Case::new(false);
        let bundle = case.bundle();
        prepare(&case, &bundle);
        let problems = run_case(name, &case, &bundle, args, &expect, false);
        if !problems.is_empty() {
            failed.push((name.to_owned(), problems));
        }
    }
    report("trust", &failed, total);
}
