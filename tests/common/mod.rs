//! Helpers shared by the integration tests (each test binary uses a part of them).
#![allow(dead_code)]

pub mod big_profile;
pub mod booted;
pub mod debian;
pub mod distribution;
pub mod hermetic;
pub mod pki;
pub mod rawtar;
pub mod readme;
pub mod registry;
pub mod runc;
pub mod schema;
pub mod signed_apt;
pub mod tier;

use std::fs;
use std::io::Write as _;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `infragen` binary under test, with its default cache moved off the user's
/// (`$XDG_CACHE_HOME` set to [`test_cache_home`]): every test runs it through here, never as
/// `Command::new(env!("CARGO_BIN_EXE_infragen"))` (`tests/tiers.rs` checks).
pub fn infragen() -> std::process::Command {
    let mut cmd = std::process::Command::new(bin());
    cmd.env("XDG_CACHE_HOME", test_cache_home());
    cmd
}

/// The path of the `infragen` binary, for a program that runs it itself (a shell, Python, a
/// container's root): give that program `XDG_CACHE_HOME` = [`test_cache_home`] as well.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_infragen")
}

/// [`infragen`] run by `sh -c '<prelude>; exec infragen <args>'` (a umask, say): `args` may use
/// `"$1"`, `"$2"`, … for the arguments the caller adds.
pub fn infragen_sh(prelude: &str, args: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}; exec \"$0\" {args}"))
        .arg(bin())
        .env("XDG_CACHE_HOME", test_cache_home());
    cmd
}

/// The tests' own `$XDG_CACHE_HOME`, under Cargo's temporary directory for tests
/// (`target/tmp`): a cache the tests share with each other (packages are checked by sha256 on
/// every read), never the user's `~/.cache/infragen`. When that directory is not writable (the
/// binaries built by another user), a temporary directory of this process instead.
pub fn test_cache_home() -> PathBuf {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache");
        let writable =
            fs::create_dir_all(&shared).is_ok() && tempfile::tempfile_in(&shared).is_ok();
        if writable {
            shared
        } else {
            tempfile::Builder::new()
                .prefix("infragen-test-cache-")
                .tempdir()
                .unwrap()
                .keep()
        }
    })
    .clone()
}

/// A lock of real Debian packages resolved when the tests run (`infragen lock` against this
/// machine's APT sources, base image pins kept from the committed `infragen.lock`), once per
/// test binary; or `$INFRAGEN_TEST_LOCK` when set (`./test` resolves one for every binary). The
/// committed lock pins versions Debian's mirror drops with each security update: the tests of
/// real packages do not depend on it.
pub fn lock() -> &'static Path {
    static LOCK: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| {
        if let Some(given) = std::env::var_os("INFRAGEN_TEST_LOCK").filter(|v| !v.is_empty()) {
            return PathBuf::from(given);
        }
        let dir = tempfile::Builder::new()
            .prefix("infragen-lock-")
            .tempdir()
            .unwrap()
            .keep();
        let lock = dir.join("infragen.lock");
        fs::copy(root().join("infragen.lock"), &lock).unwrap();
        let o = infragen()
            .args(["lock", "--lock"])
            .arg(&lock)
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        ok(&o, "infragen lock (against this machine's APT sources)");
        lock
    })
}

/// The command's stdout; panics with both streams when it failed.
pub fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Our own inventories in Pigsty's dialect (`tests/fixtures/pigsty/*.yml`), then Pigsty's own
/// (`../shared/fixtures/pigsty/*.yml`) when that directory is present beside the repository
/// (CI always has it; a clone alone does not, and needs nothing from it).
pub fn inventories() -> Vec<PathBuf> {
    let mut all = yml_files(&root().join("tests/fixtures/pigsty"));
    assert!(all.len() >= 5, "tests/fixtures/pigsty: {all:?}");
    all.extend(shared_inventories());
    all
}

/// Pigsty's own inventories in `../shared/fixtures/pigsty/`, when present; empty otherwise.
pub fn shared_inventories() -> Vec<PathBuf> {
    let dir = root().join("../shared/fixtures/pigsty");
    if dir.is_dir() {
        yml_files(&dir)
    } else {
        Vec::new()
    }
}

/// The `*.yml` files of `dir`, sorted.
pub fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

/// Copies a directory tree (files and directories).
pub fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs::create_dir_all(&dst).unwrap();
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A minimal DNS A query; the first answer's address.
pub fn dns_a(server: &str, name: &str) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).ok()?);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, server).ok()?;
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    if n < q.len() + 16 || u16::from_be_bytes([buf[6], buf[7]]) == 0 {
        return None;
    }
    Some(format!(
        "{}.{}.{}.{}",
        buf[n - 4],
        buf[n - 3],
        buf[n - 2],
        buf[n - 1]
    ))
}

/// Whether an NTP server answers a client request.
pub fn ntp(server: &str) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    let mut q = [0u8; 48];
    q[0] = 0x23;
    if sock.send_to(&q, server).is_err() {
        return false;
    }
    let mut buf = [0u8; 128];
    sock.recv(&mut buf)
        .is_ok_and(|n| n >= 48 && buf[0] & 7 == 4)
}

/// An `ar` archive of `members`, padded as `dpkg-deb` pads them.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            format!("{name}/"),
            0,
            0,
            0,
            100_644,
            data.len()
        );
        out.extend(header.bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// gzip, fast.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// xz, level 1.
pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// zstd, fastest.
pub fn zst(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

/// xorshift64*: a small seeded generator for the randomized tests (their seed is printed, so a
/// failure can be replayed).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
}

/// A signing key pair made once per test process with `infragen key generate`:
/// (private key, public key).
#[allow(dead_code)]
pub fn signing_key() -> &'static (PathBuf, PathBuf) {
    static KEY: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-key-")
            .tempdir()
            .unwrap()
            .keep();
        let o = infragen()
            .args(["key", "generate", "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        ok(&o, "key generate");
        (dir.join("infragen.key"), dir.join("infragen.pub"))
    })
}

/// `infragen build` of `profile` into `out` with the tests' lock, the PKI in `pki` and the
/// test signing key; fails the test, showing the build's output, when the build fails.
pub fn build_signed(profile: &Path, out: &Path, pki: &Path, what: &str) {
    let o = infragen()
        .arg("build")
        .arg("--profile")
        .arg(profile)
        .arg("--out")
        .arg(out)
        .arg("--lock")
        .arg(lock())
        .arg("--pki")
        .arg(pki)
        .arg("--sign-key")
        .arg(&signing_key().0)
        .output()
        .unwrap();
    ok(&o, what);
}

/// Enrols a host tree: the test key trusted (`etc/infragen/trusted/test.pub`) and the host's
/// name (`etc/infragen/host`), as an operator does once per host.
#[allow(dead_code)]
pub fn enrol(root: &Path, host: &str) {
    let dir = root.join("etc/infragen/trusted");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&signing_key().1, dir.join("test.pub")).unwrap();
    std::fs::write(root.join("etc/infragen/host"), format!("{host}\n")).unwrap();
}

/// Every regular file below a bundle `host` (secrets too, checked 0600 in a 0700 directory),
/// with layer blobs decompressed as well: what a secret scan reads.
pub fn artifact_texts(host: &Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(host) {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(host)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = e.metadata().unwrap().permissions().mode();
        let bytes = std::fs::read(e.path()).unwrap();
        if rel.starts_with("secrets/") {
            assert_eq!(mode & 0o777, 0o600, "{rel}");
            assert_eq!(
                std::fs::metadata(e.path().parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700,
                "{rel}'s directory"
            );
            continue;
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut tar)
                .unwrap();
            out.push((format!("{rel} (layer contents)"), tar, mode));
        }
        out.push((rel, bytes, mode));
    }
    out
}

/// The components `profiles/single-node.yml` enables, by the name of their `<name>_enabled`
/// parameter.
const SINGLE_NODE_COMPONENTS: [&str; 10] = [
    "nginx",
    "grafana",
    "dns",
    "vmetrics",
    "vlogs",
    "vtraces",
    "vmalert",
    "blackbox",
    "alertmanager",
    "node_ntp",
];

/// `profiles/single-node.yml` with `keep` (`grafana`, `vmetrics`) as its only component and
/// `extra` (lines of the infra host's vars, each `name: value`) added, written to `dir/name`.
pub fn single_node_with_only(dir: &Path, name: &str, keep: &str, extra: &[&str]) -> PathBuf {
    assert!(SINGLE_NODE_COMPONENTS.contains(&keep), "{keep}");
    let text = fs::read_to_string(root().join("profiles/single-node.yml")).unwrap();
    let vars: String = SINGLE_NODE_COMPONENTS
        .iter()
        .filter(|c| **c != keep)
        .map(|c| format!("{c}_enabled: false"))
        .chain(extra.iter().map(|l| (*l).to_owned()))
        .map(|l| format!("        {l}\n"))
        .collect();
    let text = text.replacen(
        "        repo_enabled: true\n",
        &format!("        repo_enabled: true\n{vars}"),
        1,
    );
    assert!(text.contains("vlogs_enabled: false"), "profile edited");
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}
