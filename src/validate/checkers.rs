//! The checkers: which program validates each component and with which arguments, finding it
//! on `PATH`, running it (in a private network namespace when possible) and reading its
//! verdict, and the throwaway certificate that stands in for the ones the build issues.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{grafana, Outcome, Sandbox};
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
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    names
        .iter()
        .find_map(|n| dirs.iter().map(|d| d.join(n)).find(|p| p.is_file()))
}

/// Whether checkers can run in a private network namespace holding only the host's address.
fn can_isolate() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        which(&["unshare"]).is_some()
            && which(&["ip"]).is_some()
            && Command::new("unshare")
                .args(["-rn", "true"])
                .output()
                .is_ok_and(|o| o.status.success())
    })
}

/// Runs a checker. Where possible it runs in a fresh network namespace (`unshare -rn`) whose
/// loopback carries the host's address: `nginx -t` binds its listen sockets, which must
/// neither fail on a build machine that lacks the address nor collide with its services.
fn run(sb: &Sandbox, program: &Path, args: &[String]) -> Result<Outcome> {
    let mut cmd = if can_isolate() {
        let mut c = Command::new("unshare");
        c.args([
            "-rn",
            "sh",
            "-c",
            r#"ip link set lo up && ip addr add "$0" dev lo && exec "$@""#,
        ]);
        c.arg(&sb.host).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd
        .args(args)
        .current_dir(&sb.root)
        .env("TZ", "UTC")
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if out.status.success() {
        Ok(Outcome::Accepted)
    } else {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        let text: Vec<&str> = text.lines().filter(|l| !l.contains("\tinfo\t")).collect();
        Ok(Outcome::Rejected(sb.unmap(&text.join("\n"))))
    }
}

/// Runs the checker of component `c`.
pub(super) fn check(
    sb: &Sandbox,
    h: &HostPlan,
    c: Component,
    pair: Option<&Pair>,
) -> Result<(String, Outcome)> {
    let missing = |names: &[&str]| Outcome::Skipped(format!("`{}` is not installed", names[0]));
    let s = |v: &str| v.to_owned();
    Ok(match c {
        Component::Nginx => {
            let name = "nginx -t".to_owned();
            let Some(nginx) = which(&["nginx"]) else {
                return Ok((name, missing(&["nginx"])));
            };
            let n = h.nginx.as_ref().expect("enabled");
            let mut ok = stand_in(
                sb,
                pair,
                "/etc/nginx/cert/pigsty.crt",
                &format!("{}/pigsty.key", credentials_dir(c)),
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
            (
                name,
                run(
                    sb,
                    &nginx,
                    &[
                        s("-t"),
                        s("-q"),
                        s("-e"),
                        s("stderr"),
                        s("-p"),
                        prefix,
                        s("-c"),
                        conf.display().to_string(),
                    ],
                )?,
            )
        }
        Component::Grafana => (
            "grafana.ini + provisioning keys (built-in)".into(),
            grafana::check(sb),
        ),
        Component::Vmetrics => {
            let name = "victoria-metrics -dryRun".to_owned();
            let Some(vm) = which(&["victoria-metrics"]) else {
                return Ok((name, missing(&["victoria-metrics"])));
            };
            stand_in(
                sb,
                pair,
                "/etc/pki/infra.crt",
                &format!("{}/infra.key", credentials_dir(c)),
            )?;
            stand_in(sb, pair, "/etc/pki/ca.crt", "/etc/pki/ca.key")?;
            let mut args = sb.flags(h, c);
            args.push(s("-dryRun"));
            (name, run(sb, &vm, &args)?)
        }
        Component::Vlogs | Component::Vtraces => (
            "flags (built-in; Debian ships no binary)".into(),
            flags_outcome(h, c),
        ),
        Component::Vmalert => {
            let name = "vmalert -dryRun".to_owned();
            let Some(vmalert) = which(&["vmalert"]) else {
                return Ok((name, missing(&["vmalert"])));
            };
            let mut args = sb.flags(h, c);
            args.push(s("-dryRun"));
            (name, run(sb, &vmalert, &args)?)
        }
        Component::Alertmanager => {
            let name = "amtool check-config".to_owned();
            let Some(amtool) = which(&["amtool"]) else {
                return Ok((name, missing(&["amtool"])));
            };
            (
                name,
                run(
                    sb,
                    &amtool,
                    &[
                        s("check-config"),
                        sb.path("/etc/alertmanager/alertmanager.yml")
                            .display()
                            .to_string(),
                    ],
                )?,
            )
        }
        Component::Blackbox => {
            let name = "blackbox_exporter --config.check".to_owned();
            let Some(bb) = which(&["blackbox_exporter", "prometheus-blackbox-exporter"]) else {
                return Ok((name, missing(&["blackbox_exporter"])));
            };
            let mut args = sb.flags(h, c);
            args.push(s("--config.check"));
            (name, run(sb, &bb, &args)?)
        }
        Component::Dnsmasq => {
            let name = "dnsmasq --test".to_owned();
            let Some(dnsmasq) = which(&["dnsmasq"]) else {
                return Ok((name, missing(&["dnsmasq"])));
            };
            let conf = sb.path("/etc/dnsmasq.conf");
            (
                name,
                run(
                    sb,
                    &dnsmasq,
                    &[s("--test"), format!("--conf-file={}", conf.display())],
                )?,
            )
        }
        Component::Chrony => {
            let name = "chronyd -p".to_owned();
            let Some(chronyd) = which(&["chronyd"]) else {
                return Ok((name, missing(&["chronyd"])));
            };
            let conf = sb.path("/etc/chrony/chrony.conf");
            (
                name,
                run(
                    sb,
                    &chronyd,
                    &[s("-p"), s("-f"), conf.display().to_string()],
                )?,
            )
        }
    })
}

/// `VictoriaLogs` and `VictoriaTraces`: every flag is `-name=value`, the listen address parses.
fn flags_outcome(h: &HostPlan, c: Component) -> Outcome {
    let v = if c == Component::Vlogs {
        &h.vlogs
    } else {
        &h.vtraces
    };
    let flags = &v.as_ref().expect("enabled").flags;
    for f in flags {
        let Some((name, value)) = f.strip_prefix('-').and_then(|f| f.split_once('=')) else {
            return Outcome::Rejected(format!("flag `{f}` is not `-name=value`"));
        };
        if name == "httpListenAddr" && value.parse::<std::net::SocketAddr>().is_err() {
            return Outcome::Rejected(format!("`-httpListenAddr={value}` is not an address"));
        }
    }
    Outcome::Accepted
}
