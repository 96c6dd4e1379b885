//! The checkers' sandbox (docs/usage.md, "--validate"): a checker sees nothing of the build
//! machine but its component's files and its own program, a checker that hangs is killed at its
//! time limit, and a `kill -9` of infragen leaves no checker running and no scratch behind the
//! next run.
//!
//! Integration tier: these run the real checkers (vmalert, the blackbox exporter) in real
//! namespaces (`unshare`, util-linux). On a machine without unprivileged namespaces they fail:
//! the sandbox is what they test.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tier::{self, Tier};
use infragen::plan::{self, Component, Plan};
use infragen::{profile, render, validate};

const FILE: &str = "tests/checker_sandbox.rs";

fn gate(test: &str) {
    tier::binary(Tier::Integration, FILE);
    tier::require(
        test,
        &[
            ("vmalert", "victoria-metrics"),
            (
                "prometheus-blackbox-exporter",
                "prometheus-blackbox-exporter",
            ),
            ("unshare", "util-linux"),
            ("setpriv", "util-linux"),
        ],
    );
}

/// A marker no file of this machine holds by chance.
fn marker() -> String {
    let mut seed = [0u8; 16];
    let f = fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut &f, &mut seed).unwrap();
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    format!("SECRET-{hex}")
}

/// A 0600 file `name` in `dir` holding `marker` where vmalert, having read it, quotes it: an
/// alerting rule group named after it with a broken expression.
fn plant_secret(dir: &Path, name: &str, marker: &str) -> PathBuf {
    plant(
        dir,
        name,
        &format!("groups:\n- name: {marker}\n  rules:\n  - alert: {marker}\n    expr: up ==\n"),
    )
}

/// A 0600 file `name` in `dir` holding `content`.
fn plant(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn single_node() -> Plan {
    let inv = profile::load("single-node", &[]).unwrap();
    plan::resolve(&inv).unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The canary: the real checker, run as infragen would run it without a sandbox, does read the
/// planted file and print the marker. Without this, a marker missing from the report below
/// could mean the attack is wrong, not that the sandbox works.
fn unconfined_checker_leaks(program: &str, args: &[String], marker: &str) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        text(&out).contains(marker),
        "canary: `{program} {}` did not print the planted file:\n{}",
        args.join(" "),
        text(&out)
    );
}

#[test]
fn a_profile_flag_naming_a_host_file_is_refused_at_plan_time() {
    gate("a_profile_flag_naming_a_host_file_is_refused_at_plan_time");
    let dir = tempfile::tempdir().unwrap();
    let marker = marker();
    let secret = plant_secret(dir.path(), "secret.yml", &marker);
    let flag = format!("-rule={}", secret.display());
    unconfined_checker_leaks("vmalert", &[flag.clone(), "-dryRun".into()], &marker);
    let profile = dir.path().join("pigsty.yml");
    let single = fs::read_to_string(common::root().join("profiles/single-node.yml")).unwrap();
    let planted = single.replacen(
        "\n  vars:\n",
        &format!("\n  vars:\n    vmalert_options: '{flag}'\n"),
        1,
    );
    assert_ne!(planted, single, "no `all.vars` in profiles/single-node.yml");
    fs::write(&profile, planted).unwrap();
    let out_dir = dir.path().join("out");
    let out = common::infragen()
        .arg("render")
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(&out_dir)
        .arg("--validate")
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "all.vars.vmalert_options (host `10.10.10.10`): flag `{flag}` names `{}`, outside what \
             vmalert is given",
            secret.display()
        )),
        "{all}"
    );
    assert!(!all.contains(&marker), "the secret leaked:\n{all}");
    assert!(
        !out_dir.exists(),
        "something was written on a refused profile"
    );
}

#[test]
fn a_confined_checker_sees_nothing_of_the_host() {
    gate("a_confined_checker_sees_nothing_of_the_host");
    let dir = tempfile::tempdir().unwrap();
    let marker = marker();
    let secret = plant_secret(dir.path(), "secret.yml", &marker);
    // The blackbox exporter names a YAML key it does not know.
    let other = plant(dir.path(), "other.yml", &format!("{marker}: 1\n"));
    // The plan's check refuses such flags (the test above); here they are put into a resolved
    // plan directly, as a flaw in that check would: the sandbox must hold on its own.
    let mut plan = single_node();
    let h = &mut plan.hosts[0];
    let rule = format!("-rule={}", secret.display());
    let config = format!("--config.file={}", other.display());
    h.vmalert.as_mut().unwrap().flags.push(rule.clone());
    // The exporter takes one `--config.file`: the planted one replaces the rendered one.
    let flags = &mut h.blackbox.as_mut().unwrap().flags;
    let at = flags
        .iter()
        .position(|f| f.starts_with("--config.file="))
        .unwrap();
    flags[at].clone_from(&config);
    unconfined_checker_leaks(
        "prometheus-blackbox-exporter",
        &[config, "--config.check".into()],
        &marker,
    );
    unconfined_checker_leaks("vmalert", &[rule, "-dryRun".into()], &marker);

    let tree = render::plan(&plan).unwrap();
    let report = validate::tree(&plan, &tree).unwrap();
    assert_eq!(
        report.unisolated, None,
        "the checkers could not be confined on this machine"
    );
    let text = report.text();
    assert!(!text.contains(&marker), "the secret leaked:\n{text}");
    // The blackbox exporter was told to read the file and could not find it; vmalert's
    // pattern matched nothing, so it checked the rendered rules alone.
    let outcome = |c: Component| {
        &report
            .checks
            .iter()
            .find(|k| k.component == c)
            .unwrap()
            .outcome
    };
    match outcome(Component::Blackbox) {
        validate::Outcome::Rejected(why) => assert!(
            why.contains(&other.display().to_string()) && why.contains("no such file"),
            "{why}"
        ),
        other => panic!("blackbox: {other:?}"),
    }
    assert_eq!(outcome(Component::Vmalert), &validate::Outcome::Accepted);
}

/// A directory holding a `vmalert` that never finishes (a busy loop of shell built-ins: in its
/// sandbox there is no other program), first on `PATH` so that infragen takes it for vmalert.
fn hanging_vmalert(dir: &Path) -> (PathBuf, String) {
    let bin = dir.join("bin");
    fs::create_dir(&bin).unwrap();
    let fake = bin.join("vmalert");
    fs::write(&fake, "#!/bin/sh\nwhile :; do :; done\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (fake, path)
}

/// The processes whose command line names `needle`.
fn processes_naming(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&*needle)
                .then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}

/// The scratch parent infragen uses with `TMPDIR=tmp` (docs/usage.md).
fn scratch_parent(tmp: &Path) -> PathBuf {
    let uid = fs::metadata("/proc/self").map_or(0, |m| std::os::unix::fs::MetadataExt::uid(&m));
    tmp.join(format!("infragen-validate-{uid}"))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_checker_that_hangs_is_killed_at_its_limit() {
    gate("a_checker_that_hangs_is_killed_at_its_limit");
    let dir = tempfile::tempdir().unwrap();
    let (fake, path) = hanging_vmalert(dir.path());
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out_dir = dir.path().join("out");
    let start = Instant::now();
    let out = common::infragen()
        .args(["render", "--profile", "single-node", "--validate", "--out"])
        .arg(&out_dir)
        .env("PATH", &path)
        .env("TMPDIR", &tmp)
        // The limit holds for every checker: long enough for the real ones on a loaded machine
        // (2 s killed a real victoria-metrics in CI), short enough to wait for the fake.
        .env("INFRAGEN_CHECKER_TIMEOUT", "15s")
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "vmalert       vmalert -dryRun                              REJECTED\n    \
             `vmalert -dryRun` did not finish within its time limit of 15 s and was killed\n    \
             hint: $INFRAGEN_CHECKER_TIMEOUT sets the limit (`90s`, `5m`)\n"
        ),
        "{all}"
    );
    assert!(
        all.contains("checks: 10 accepted, 1 rejected, 0 skipped"),
        "{all}"
    );
    assert!(elapsed < Duration::from_secs(40), "took {elapsed:?}");
    assert!(
        !out_dir.exists(),
        "something was written on a failed validation"
    );
    assert_eq!(processes_naming(&fake), Vec::<String>::new());
    assert_eq!(entries(&scratch_parent(&tmp)), Vec::<String>::new());
}

#[test]
fn kill_9_of_infragen_leaves_no_checker_and_no_scratch_after_the_next_run() {
    gate("kill_9_of_infragen_leaves_no_checker_and_no_scratch_after_the_next_run");
    let dir = tempfile::tempdir().unwrap();
    let (fake, path) = hanging_vmalert(dir.path());
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let parent = scratch_parent(&tmp);
    let render = |path: &str| {
        let mut cmd = common::infragen();
        cmd.args(["render", "--profile", "single-node", "--validate", "--out"])
            .arg(dir.path().join("out"))
            .env("PATH", path)
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let mut child = render(&path).spawn().unwrap();
    // Mid-validate: the hanging vmalert itself runs (in its sandbox), its scratch on disk; not
    // merely the `setpriv` or `unshare` that will start it, whose command lines name it too.
    let deadline = Instant::now() + Duration::from_secs(60);
    let script = format!("/bin/sh {}", fake.display());
    while !processes_naming(&fake).iter().any(|p| {
        p.split_once(": ")
            .is_some_and(|(_, c)| c.starts_with(&script))
    }) {
        assert!(Instant::now() < deadline, "the fake vmalert never started");
        assert!(child.try_wait().unwrap().is_none(), "infragen ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no handler runs
    child.wait().unwrap();
    let stale = entries(&parent);
    assert!(
        stale
            .iter()
            .any(|e| Path::new(e).extension() == Some("lock".as_ref()))
            && stale.len() >= 2,
        "kill -9 left nothing to sweep, so this test would prove nothing: {stale:?}"
    );
    // The checker dies with infragen (its parent-death signal), not at its time limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_naming(&fake).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the checker outlived infragen: {:?}",
            processes_naming(&fake)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next run, with the real checkers, sweeps the dead run's scratch and removes its own.
    let out = render(&std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(entries(&parent), Vec::<String>::new());
}

#[test]
fn without_a_sandbox_the_report_says_so_and_strict_fails() {
    gate("without_a_sandbox_the_report_says_so_and_strict_fails");
    let dir = tempfile::tempdir().unwrap();
    // infragen in a user, mount and network namespace of its own where `setpriv` is hidden:
    // it cannot confine its checkers. The namespace holds the host's address, so that nginx
    // binding it is not what fails.
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("setpriv");
    let render = |strict: bool, out: &str| {
        let mut args = vec![
            "render",
            "--profile",
            "single-node",
            "--validate",
            "--out",
            out,
        ];
        if strict {
            args.push("--strict");
        }
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "--net", "sh", "-c"])
            .arg(format!(
                "ip link set lo up && ip addr add 10.10.10.10 dev lo && \
                 mount --bind /dev/null {setpriv} && exec \"$0\" \"$@\""
            ))
            .arg(common::bin())
            .args(args)
            .env("XDG_CACHE_HOME", common::test_cache_home())
            .env("TMPDIR", dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let warning = "warning: checkers ran without isolation, able to read this machine's files: \
                   `setpriv` is not installed\n\
                   hint: --strict refuses this; enable unprivileged user namespaces to isolate them\n";
    let out = render(false, "lax");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr.contains(warning), "{stderr}");
    assert!(dir.path().join("lax").is_dir());
    let out = render(true, "strict");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr.contains(warning), "{stderr}");
    assert!(
        stderr.contains("error: validation failed; nothing was written to strict"),
        "{stderr}"
    );
    assert!(!dir.path().join("strict").exists());
}

#[test]
fn a_confined_checker_sees_only_its_program_libraries_and_a_minimal_etc_and_dev() {
    gate("a_confined_checker_sees_only_its_program_libraries_and_a_minimal_etc_and_dev");
    let dir = tempfile::tempdir().unwrap();
    // A `vmalert` that describes its world with the shell's own globbing (no other program is
    // there to ask) and fails, so that the report shows what it printed.
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    fs::write(
        bin.join("vmalert"),
        "#!/bin/sh\nfor d in / /.old/ /proc/ /etc/ /dev/ /root/ /home/ /var/; do echo \"$d:\" \"$d\"*; done\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(bin.join("vmalert"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = common::infragen()
        .args(["render", "--profile", "single-node", "--validate", "--out"])
        .arg(dir.path().join("out"))
        .env("PATH", &path)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let all = text(&out);
    let line = |dir: &str| -> Vec<String> {
        let prefix = format!("    {dir}: ");
        let l = all
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no `{dir}` line in:\n{all}"));
        l.split(' ').map(str::to_owned).collect()
    };
    // Globs that match nothing stay as written: empty, or absent.
    assert_eq!(line("/.old/"), ["/.old/*"], "the old root is detached");
    assert_eq!(line("/proc/"), ["/proc/*"]);
    assert_eq!(line("/root/"), ["/root/*"]);
    assert_eq!(line("/home/"), ["/home/*"]);
    assert_eq!(line("/var/"), ["/var/*"]);
    assert_eq!(
        line("/etc/"),
        ["/etc/group", "/etc/ld.so.cache", "/etc/passwd"]
    );
    assert_eq!(
        line("/dev/"),
        [
            "/dev/full",
            "/dev/null",
            "/dev/random",
            "/dev/urandom",
            "/dev/zero"
        ]
    );
    let allowed = [
        "/bin", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
    ];
    let allowed = [&allowed[..], &["/sbin", "/tmp", "/usr"]].concat();
    for entry in line("/") {
        assert!(allowed.contains(&entry.as_str()), "`{entry}` in:\n{all}");
    }
}
