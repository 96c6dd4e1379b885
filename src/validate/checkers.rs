//! The checkers: which program validates each component and with which arguments, finding it
//! on `PATH`, running it (confined by [`super::confine`] when possible, for at most its time
//! limit) and reading its verdict, and the throwaway certificate that stands in for the ones
//! the build issues.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{confine, grafana, Outcome, Sandbox};
use crate::plan::{Component, HostPlan};
use crate::render::credentials_dir;

/// A self-signed certificate and key standing in for the ones the build issues.
pub(super) struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

pub(super) fn throwaway_cert(dir: &Path) -> Option<Pair> {
    let pair = Pair {
        cert: dir.join("throwaway.crt"),
        key: dir.join("throwaway.key"),
    };
    let status = Command::new("openssl")
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
        ])
        .args(["-subj", "/CN=infragen-validate", "-keyout"])
        .arg(&pair.key)
        .arg("-out")
        .arg(&pair.cert)
        .output()
        .ok()?;
    status.status.success().then_some(pair)
}

/// Places the throwaway pair at `cert` and `key` unless the render provided them.
fn stand_in(sb: &Sandbox, pair: Option<&Pair>, cert: &str, key: &str) -> Result<bool> {
    let Some(pair) = pair else { return Ok(false) };
    for (from, to) in [(&pair.cert, cert), (&pair.key, key)] {
        let to = sb.path(to);
        if !to.exists() {
            fs::create_dir_all(to.parent().expect("has parent"))?;
            fs::copy(from, &to)?;
        }
    }
    Ok(true)
}

/// Finds the first installed program of `names`.
pub(super) fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    names
        .iter()
        .find_map(|n| dirs.iter().map(|d| d.join(n)).find(|p| p.is_file()))
}

/// Why checkers cannot run confined ([`confine`]), or `Ok` when they can.
pub(super) fn isolation() -> Result<(), String> {
    static WHY: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    WHY.get_or_init(|| {
        for program in confine::TOOLS {
            if which(&[program]).is_none() {
                return Err(format!("`{program}` is not installed"));
            }
        }
        confine::probe()
    })
    .clone()
}

/// How long one checker may run before it is killed, unless `$INFRAGEN_CHECKER_TIMEOUT` says
/// otherwise: far more than any takes (they read a few files), so that a checker that hangs
/// fails the run instead of stalling it.
pub(super) const TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that sets [`TIMEOUT`] (`90s`, `5m`).
pub(super) const TIMEOUT_ENV: &str = "INFRAGEN_CHECKER_TIMEOUT";

/// How checkers run: confined or not, and for how long at most.
pub(super) struct Runner {
    /// Run each checker confined ([`confine`]).
    pub(super) confined: bool,
    /// Kill a checker that runs longer.
    pub(super) timeout: Duration,
}

impl Runner {
    /// Confined when the machine allows it; the time limit of `$INFRAGEN_CHECKER_TIMEOUT`, else
    /// [`TIMEOUT`].
    pub(super) fn new() -> Result<Self> {
        let timeout = match std::env::var(TIMEOUT_ENV) {
            Ok(v) => timeout_of(&v).map_err(|e| anyhow::anyhow!("${TIMEOUT_ENV}: {e}"))?,
            Err(_) => TIMEOUT,
        };
        Ok(Self {
            confined: isolation().is_ok(),
            timeout,
        })
    }
}

/// A time limit: a duration from 1 s to 1 h.
fn timeout_of(v: &str) -> Result<Duration, String> {
    let d = crate::duration::Duration::parse(v)?;
    match d.millis() {
        Some(ms) if (1_000..=3_600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!("`{v}` is not a time limit from 1s to 1h")),
    }
}

/// What a checker process did.
#[derive(Debug)]
pub(super) enum Ran {
    /// It exited: success, and its stdout and stderr.
    Exited(bool, Vec<u8>, Vec<u8>),
    /// It was still running at the timeout and was killed (with its process group).
    TimedOut,
}

/// Runs `cmd` in its own process group, with its output captured, for at most `timeout`.
pub(super) fn run_for(mut cmd: Command, timeout: Duration) -> std::io::Result<Ran> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    // Drained on threads so a checker that writes much never blocks on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // The whole group: a checker started through `sh` may have children holding the
            // pipes open.
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::KILL,
            );
            let _ = child.kill();
            child.wait()?;
            return Ok(Ran::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    Ok(Ran::Exited(status.success(), out, err))
}

impl Runner {
    /// Runs checker `name` (`program args`) on the files of `sb`, confined when it can be, and
    /// judges it by its exit status; killed and rejected at the time limit.
    pub(super) fn run(
        &self,
        sb: &Sandbox,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> Result<Outcome> {
        let mut cmd = if self.confined {
            let mut mount_point = sb.root.clone().into_os_string();
            mount_point.push(".root");
            let mount_point = PathBuf::from(mount_point);
            fs::create_dir_all(&mount_point)?;
            let umount = which(&["umount"]).context("`umount` is not installed")?;
            confine::command(&mount_point, &sb.root, &sb.host, &umount, program, args)?
        } else {
            let mut c = Command::new(program);
            c.args(args).current_dir(&sb.root);
            c
        };
        cmd.env_clear()
            .env("TZ", "UTC")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        let ran =
            run_for(cmd, self.timeout).with_context(|| format!("running {}", program.display()))?;
        match ran {
            Ran::TimedOut => Ok(Outcome::Rejected(format!(
                "`{name}` did not finish within its time limit of {} s and was killed\n\
                 hint: ${TIMEOUT_ENV} sets the limit (`90s`, `5m`)",
                self.timeout.as_secs_f64()
            ))),
            Ran::Exited(true, _, _) => Ok(Outcome::Accepted),
            Ran::Exited(false, stdout, stderr) => {
                let mut text = String::from_utf8_lossy(&stderr).into_owned();
                text.push_str(&String::from_utf8_lossy(&stdout));
                let text: Vec<&str> = text.lines().filter(|l| !l.contains("\tinfo\t")).collect();
                Ok(Outcome::Rejected(sb.unmap(&text.join("\n"))))
            }
        }
    }
}

/// Runs the checker of component `c`.
pub(super) fn check(
    sb: &Sandbox,
    h: &HostPlan,
    c: Component,
    pair: Option<&Pair>,
    runner: &Runner,
) -> Result<(String, Outcome)> {
    let s = |v: &str| v.to_owned();
    let checker = &c.describe().checker;
    match c {
        Component::Nginx => nginx(sb, h, pair, runner),
        Component::Grafana => Ok((checker.name.to_owned(), grafana::check(sb))),
        Component::Vmetrics => with_program(sb, c, runner, || {
            stand_in(
                sb,
                pair,
                "/etc/pki/infra.crt",
                &format!("{}/infra.key", credentials_dir(c)),
            )?;
            stand_in(sb, pair, "/etc/pki/ca.crt", "/etc/pki/ca.key")?;
            Ok(flags_and(sb, h, c, "-dryRun"))
        }),
        Component::Vlogs | Component::Vtraces => Ok((checker.name.to_owned(), flags_outcome(h, c))),
        Component::Vmalert => with_program(sb, c, runner, || Ok(flags_and(sb, h, c, "-dryRun"))),
        Component::Alertmanager => with_program(sb, c, runner, || {
            let conf = sb.path("/etc/alertmanager/alertmanager.yml");
            Ok(vec![s("check-config"), conf.display().to_string()])
        }),
        Component::Blackbox => {
            with_program(sb, c, runner, || Ok(flags_and(sb, h, c, "--config.check")))
        }
        Component::Dnsmasq => with_program(sb, c, runner, || {
            let conf = sb.path("/etc/dnsmasq.conf");
            Ok(vec![s("--test"), format!("--conf-file={}", conf.display())])
        }),
        Component::Chrony => with_program(sb, c, runner, || {
            let conf = sb.path("/etc/chrony/chrony.conf");
            Ok(vec![s("-p"), s("-f"), conf.display().to_string()])
        }),
        // No configuration file, no check mode: the program parses every flag, then `-version`
        // makes it exit before it connects to nginx or listens.
        Component::NginxExporter => {
            with_program(sb, c, runner, || Ok(flags_and(sb, h, c, "-version")))
        }
    }
}

/// A checker that is not installed: skipped, naming the program.
fn missing(program: &str) -> Outcome {
    Outcome::Skipped(format!("`{program}` is not installed"))
}

/// Runs the checker of component `c` ([`crate::component::Checker`]): the first of its programs
/// found, with the arguments `args` prepares (only once the program is found); skipped when none
/// is installed.
fn with_program(
    sb: &Sandbox,
    c: Component,
    runner: &Runner,
    args: impl FnOnce() -> Result<Vec<String>>,
) -> Result<(String, Outcome)> {
    let checker = &c.describe().checker;
    let (name, programs) = (checker.name, checker.programs);
    let Some(program) = which(programs) else {
        return Ok((name.to_owned(), missing(programs[0])));
    };
    let args = args()?;
    Ok((name.to_owned(), runner.run(sb, name, &program, &args)?))
}

/// The component's own flags (sandbox paths) and the checker's `extra` one.
fn flags_and(sb: &Sandbox, h: &HostPlan, c: Component, extra: &str) -> Vec<String> {
    let mut args = sb.flags(h, c);
    args.push(extra.to_owned());
    args
}

/// `nginx -t` on the rendered configuration, with stand-in certificates for every certificate
/// the build does not make; skipped without `openssl`.
fn nginx(
    sb: &Sandbox,
    h: &HostPlan,
    pair: Option<&Pair>,
    runner: &Runner,
) -> Result<(String, Outcome)> {
    let checker = &Component::Nginx.describe().checker;
    let name = checker.name.to_owned();
    let Some(nginx) = which(checker.programs) else {
        return Ok((name, missing(checker.programs[0])));
    };
    let n = h.nginx.as_ref().expect("enabled");
    let mut ok = stand_in(
        sb,
        pair,
        "/etc/nginx/cert/pigsty.crt",
        &format!("{}/pigsty.key", credentials_dir(Component::Nginx)),
    )?;
    for p in &n.portal {
        if let (Some(cert), Some(key)) = (&p.cert, &p.key) {
            ok &= stand_in(sb, pair, cert, key)?;
        }
    }
    if !ok {
        return Ok((
            name,
            Outcome::Skipped("`openssl` is needed for a stand-in certificate".into()),
        ));
    }
    let conf = sb.path("/etc/nginx/nginx.conf");
    // In the checker's user namespace only root is mapped, and nginx chowns its temp
    // directories to the worker user: name root as that user, in the sandbox copy only.
    let text = fs::read_to_string(&conf)?;
    fs::write(&conf, format!("user root;\n{text}"))?;
    let prefix = format!("{}/", sb.root.display());
    let args: Vec<String> = ["-t", "-q", "-e", "stderr", "-p", &prefix, "-c"]
        .into_iter()
        .map(str::to_owned)
        .chain([conf.display().to_string()])
        .collect();
    let outcome = runner.run(sb, &name, &nginx, &args)?;
    Ok((name, outcome))
}

/// `VictoriaLogs` and `VictoriaTraces`: every flag is `-name=value`, the listen address parses.
fn flags_outcome(h: &HostPlan, c: Component) -> Outcome {
    let flags = h.own_flags(c).expect("enabled");
    for f in &flags {
        let Some((name, value)) = f.strip_prefix('-').and_then(|f| f.split_once('=')) else {
            return Outcome::Rejected(format!("flag `{f}` is not `-name=value`"));
        };
        if name == "httpListenAddr" && value.parse::<std::net::SocketAddr>().is_err() {
            return Outcome::Rejected(format!("`-httpListenAddr={value}` is not an address"));
        }
    }
    Outcome::Accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checker_that_hangs_is_killed_and_rejected_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::empty(dir.path(), "127.0.0.1");
        let start = Instant::now();
        // A stand-in checker that starts a child and never finishes (unconfined: this tier has
        // no namespaces; tests/checker_sandbox.rs runs one confined).
        let runner = Runner {
            confined: false,
            timeout: Duration::from_millis(300),
        };
        let outcome = runner
            .run(
                &sb,
                "stand-in -t",
                Path::new("/bin/sh"),
                &["-c".to_owned(), "sleep 30; true".to_owned()],
            )
            .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            outcome,
            Outcome::Rejected(
                "`stand-in -t` did not finish within its time limit of 0.3 s and was killed\n\
                 hint: $INFRAGEN_CHECKER_TIMEOUT sets the limit (`90s`, `5m`)"
                    .into()
            )
        );
    }

    #[test]
    fn a_checker_that_finishes_is_judged_by_its_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::empty(dir.path(), "127.0.0.1");
        let runner = Runner {
            confined: false,
            timeout: TIMEOUT,
        };
        let run = |script: &str| {
            runner
                .run(
                    &sb,
                    "stand-in",
                    Path::new("/bin/sh"),
                    &["-c".to_owned(), script.to_owned()],
                )
                .unwrap()
        };
        assert_eq!(run("exit 0"), Outcome::Accepted);
        assert_eq!(
            run("echo out; echo err >&2; exit 1"),
            Outcome::Rejected("err\nout".into())
        );
    }

    #[test]
    fn time_limits_from_the_environment_are_bounded() {
        assert_eq!(timeout_of("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(timeout_of("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            timeout_of("500ms"),
            Err("`500ms` is not a time limit from 1s to 1h".into())
        );
        assert_eq!(
            timeout_of("2h"),
            Err("`2h` is not a time limit from 1s to 1h".into())
        );
        assert_eq!(
            timeout_of("0s"),
            Err("`0s` is not a duration (e.g. `10s`, `5m`, `397d`)".into())
        );
    }

    #[test]
    fn the_group_is_killed() {
        // A grandchild would otherwise live on, holding the pipes.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("sleep 30 & echo $! > {}; wait", pid_file.display()));
        assert!(matches!(
            run_for(cmd, Duration::from_millis(300)).unwrap(),
            Ran::TimedOut
        ));
        let pid = fs::read_to_string(&pid_file).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Gone, or a zombie waiting for whoever inherited it.
        let stat = fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
        assert!(stat.is_empty() || state == Some('Z'), "{stat}");
    }
}
