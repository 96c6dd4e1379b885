//! The README's two commands on a fresh Debian 12, end to end (booted tier; root,
//! systemd-nspawn, debootstrap, git; run alone with
//! `INFRAGEN_TIERS=booted cargo test --test fresh_debian`; it takes many minutes).
//!
//! A Debian 12 minbase root (`debootstrap --variant=minbase bookworm` from this machine's own
//! mirror, cached) gets this machine's network configuration (APT sources, extra certificate
//! authorities, pip's configuration) and a `git clone` of this checkout in
//! `/root/infragen`, with nothing beside it (no `../shared`). Then, in a systemd-nspawn
//! container sharing this machine's network, as root, in the clone, the commands are read from
//! README.md (`tests/common/readme.rs`) and run:
//!
//! 1. the packages the README says Rust's linker needs (`apt-get install …`);
//! 2. the README's first command exactly: the main job on the built-in default, which must
//!    leave a signed-off `out/` with one bundle per infra host;
//! 3. the README's second command, `./test`, with `--no-booted`: it installs what the tests need
//!    (`.ci/deps`, inside the container) and runs the fast and integration tiers, which must pass
//!    and must be the clone's (no `../shared`). The booted tier is the one running this test, so
//!    it is not run again inside (it boots containers of its own, minutes each, and CI's budget
//!    has no room for it twice).
//!
//! What stands in for the newcomer's own steps, and why:
//! - Rust: the README says it comes from rustup, which this machine cannot reach; the host's
//!   toolchain (`$CARGO_HOME`, `$RUSTUP_HOME`, by default `~/.cargo` and `~/.rustup`) is bound
//!   read-only at the same paths, with its `bin` on `PATH`, as rustup's `env` script puts it.
//! - The clone is made by the host's `git` from this checkout's committed `HEAD`: uncommitted
//!   changes are not tested (the test says so when there are some).
//! - Compiled dependencies: the host's target directory is mounted at its own path inside as the
//!   lower layer of an overlay (writes go to a scratch upper layer; the host's directory is never
//!   written) and `CARGO_TARGET_DIR` points at it, so that the same absolute paths keep cargo's
//!   fingerprints and the dependencies are not compiled again; only infragen itself is.
//! - `/tmp` inside is a directory of this test on disk rather than nspawn's tmpfs (the tests
//!   write hundreds of megabytes there).
//! - A machine of its own: `tests/images.rs` runs containers with `runc`, which needs what any
//!   Debian machine gives root and nspawn withholds from a container by default: writable cgroup
//!   hierarchies (on a cgroup-v1 host nspawn mounts the controllers read-only; the second
//!   command's script remounts them writable first, [`WRITABLE_CGROUPS`]) and the keyring
//!   system calls (runc makes a session keyring per container; nspawn's filter refuses them
//!   unless `--system-call-filter=` allows them).

mod common;

use common::tier::{self, Tier};

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run before the second command inside the container: each cgroup-v1 controller hierarchy
/// nspawn mounted read-only is made writable (remounted, or mounted again where the remount is
/// refused), as on a machine of its own. A cgroup-v2 host needs nothing.
const WRITABLE_CGROUPS: &str = r#"for d in /sys/fs/cgroup/*/; do
  d=${d%/}
  [ "$(findmnt -no FSTYPE "$d")" = cgroup ] || continue
  mount -o remount,rw "$d" 2>/dev/null && continue
  o=$(findmnt -no OPTIONS "$d" | tr , '\n' | grep -vxE 'ro|rw|nosuid|nodev|noexec|relatime' | paste -sd,)
  umount "$d" && mount -t cgroup -o "rw,nosuid,nodev,noexec,$o" cgroup "$d"
done
"#;

/// The longest a step may take before it is killed and the test fails.
const STEP_LIMIT: Duration = Duration::from_secs(60 * 60);

fn gate() {
    tier::binary(Tier::Booted, "tests/fresh_debian.rs");
    tier::require_root("tests/fresh_debian.rs");
    tier::require(
        "tests/fresh_debian.rs",
        &[
            ("systemd-nspawn", "systemd-container"),
            ("debootstrap", "debootstrap"),
            ("git", "git"),
        ],
    );
}

/// `$VAR`, else `~/<default>`.
fn home_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(default),
        PathBuf::from,
    )
}

/// The fresh container: its root and what is bound into it.
struct Fresh {
    dir: PathBuf,
    rootfs: PathBuf,
    cargo_home: PathBuf,
    rustup_home: PathBuf,
    target: PathBuf,
}

impl Fresh {
    /// Runs `script` (bash) in the clone inside the container; its output goes to
    /// `<step>.log`. Returns how long it took and the output; fails the test when it fails.
    fn run(&self, step: &str, script: &str) -> (Duration, String) {
        let log_path = self.dir.join(format!("{step}.log"));
        let log = fs::File::create(&log_path).unwrap();
        let upper = self.dir.join("target-upper");
        let tmp = self.dir.join("tmp");
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
        // nspawn creates the overlay's mount point, but not its parents.
        fs::create_dir_all(self.rootfs.join(self.target.strip_prefix("/").unwrap())).unwrap();
        let t = self.target.display();
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            self.cargo_home.join("bin").display()
        );
        let started = Instant::now();
        let mut child = Command::new("systemd-nspawn")
            .args([
                "--quiet",
                // node_exporter's timex collector reads the kernel clock state (setting it
                // still needs CAP_SYS_TIME, which the container lacks): tests/common/booted.rs.
                "--system-call-filter=adjtimex clock_adjtime",
                "--register=no",
                "--keep-unit",
                "--as-pid2",
                "--pipe",
                "-M",
                "infragen-fresh",
                "-D",
            ])
            .arg(&self.rootfs)
            .arg("--system-call-filter=add_key keyctl request_key")
            .arg(format!("--bind-ro={}", self.cargo_home.display()))
            .arg(format!("--bind-ro={}", self.rustup_home.display()))
            .arg(format!("--overlay={t}:{}:{t}", upper.display()))
            .arg(format!("--bind={}:/tmp", tmp.display()))
            .arg(format!("--setenv=PATH={path}"))
            .arg(format!("--setenv=CARGO_HOME={}", self.cargo_home.display()))
            .arg(format!(
                "--setenv=RUSTUP_HOME={}",
                self.rustup_home.display()
            ))
            .arg(format!("--setenv=CARGO_TARGET_DIR={t}"))
            .arg("--setenv=DEBIAN_FRONTEND=noninteractive")
            .arg("--chdir=/root/infragen")
            .args(["bash", "-euo", "pipefail", "-c", script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn (apt-get install systemd-container)");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > STEP_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let took = started.elapsed();
        let out = String::from_utf8_lossy(&fs::read(&log_path).unwrap()).into_owned();
        let tail: Vec<&str> = out.lines().rev().take(150).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!(
                "{step} failed in the fresh container ({s}) after {took:.0?}: `{script}`; \
                 the last lines of {}:\n{}",
                log_path.display(),
                tail.join("\n")
            ),
            None => panic!(
                "{step} did not finish within {STEP_LIMIT:?}: `{script}`; the last lines of {}:\n{}",
                log_path.display(),
                tail.join("\n")
            ),
        }
        tier::loud(&format!(
            "fresh_debian: {step} took {:.1} min: {script}",
            took.as_secs_f64() / 60.0
        ));
        (took, out)
    }
}

/// Gives the container this machine's own network configuration, as an installer on this
/// network would: its APT sources, the extra certificate authorities it trusts
/// (`/usr/local/share/ca-certificates/`, picked up when `.ci/deps` installs `ca-certificates`;
/// HTTPS to the Python package index goes through them here) and `/etc/pip.conf`.
fn machine_config(rootfs: &Path) {
    common::debian::copy_apt_sources(rootfs);
    let cas = Path::new("/usr/local/share/ca-certificates");
    if cas.is_dir() {
        common::copy_tree(cas, &rootfs.join("usr/local/share/ca-certificates"));
    }
    if Path::new("/etc/pip.conf").is_file() {
        fs::copy("/etc/pip.conf", rootfs.join("etc/pip.conf")).unwrap();
    }
}

#[test]
fn the_readme_two_commands_pass_on_a_fresh_debian() {
    gate();
    let started = Instant::now();
    let repo = common::root();
    let readme = fs::read_to_string(repo.join("README.md")).unwrap();
    let commands = common::readme::two_commands(&readme);
    assert_eq!(
        commands.second, "./test",
        "the README's test command is `./test`; this test runs it with --no-booted"
    );

    let work = tempfile::Builder::new()
        .prefix("infragen-fresh-")
        .tempdir()
        .unwrap();
    let rootfs = work.path().join("root");
    common::debian::root(&rootfs, &[], "debian-bookworm-minbase.tar");
    machine_config(&rootfs);

    // The clone: this checkout's HEAD, alone.
    let dirty = common::ok(
        &Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .unwrap(),
        "git status",
    );
    if !dirty.trim().is_empty() {
        tier::loud(&format!(
            "fresh_debian: the checkout has uncommitted changes; they are NOT tested (the \
             container gets a clone of HEAD):\n{}",
            dirty.trim_end()
        ));
    }
    let clone = rootfs.join("root/infragen");
    common::ok(
        &Command::new("git")
            .args(["clone", "-q"])
            .arg(&repo)
            .arg(&clone)
            .output()
            .unwrap(),
        "git clone",
    );
    assert!(
        !rootfs.join("root/shared").exists(),
        "nothing may stand beside the clone"
    );

    let cargo_home = home_dir("CARGO_HOME", ".cargo");
    let rustup_home = home_dir("RUSTUP_HOME", ".rustup");
    assert!(
        cargo_home.join("bin/cargo").is_file() && rustup_home.is_dir(),
        "tests/fresh_debian.rs binds this machine's rustup toolchain into the container: no \
         {}/bin/cargo or no {}",
        cargo_home.display(),
        rustup_home.display()
    );
    // The target directory of this test binary's build (its `tmp` is `<target>/tmp`).
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let fresh = Fresh {
        dir: work.path().to_path_buf(),
        rootfs: rootfs.clone(),
        cargo_home,
        rustup_home,
        target,
    };
    tier::loud(
        "fresh_debian: runs the README's `./test` as `./test --no-booted` inside: the booted tier \
         is the one running this test, so it is not run again in the container",
    );

    fresh.run(
        "prerequisites",
        &format!(
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends {}",
            commands.packages.join(" ")
        ),
    );

    fresh.run("first command", &commands.first);
    let out = clone.join("out");
    let bundles: Vec<PathBuf> = fs::read_dir(&out)
        .unwrap_or_else(|e| panic!("the first command left no out/: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    assert!(
        !bundles.is_empty() && out.join("digests.txt").is_file(),
        "the first command left no bundle in out/"
    );

    let (_, log) = fresh.run(
        "second command",
        &format!("{WRITABLE_CGROUPS}{} --no-booted", commands.second),
    );
    for expected in [
        "INFRAGEN_TIERS=fast,integration",
        "SKIPPED booted: every test of tests/booted.rs not run",
        "SKIPPED booted: every test of tests/fresh_debian.rs not run",
    ] {
        assert!(
            log.contains(expected),
            "the second command's output lacks `{expected}`"
        );
    }
    let results = log
        .lines()
        .filter(|l| l.starts_with("test result: "))
        .count();
    assert!(results > 20, "only {results} test binaries ran:\n{log}");
    assert!(
        !log.contains("test result: FAILED"),
        "a test binary failed inside:\n{log}"
    );
    tier::loud(&format!(
        "fresh_debian: the README's two commands passed on a fresh Debian in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    ));
}
