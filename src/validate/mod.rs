//! Validation by the real programs: each component's own checker runs against the rendered files.
//!
//! Every component is laid out in a private sandbox directory as it will be in its root tree,
//! with absolute paths in its files rewritten into the sandbox, so that the checker reads the
//! files where the component will and nothing of this machine. Nothing binds a socket, nothing
//! talks to the network. Certificates that later stages issue are stood in for by a throwaway
//! self-signed pair. A checker that is not installed is reported as skipped.

mod grafana;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::plan::{Component, HostPlan, Plan, PortalKind};
use crate::render::credentials_dir;
use crate::tree::Tree;

/// What one checker said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Accepted,
    /// Rejected, with the checker's output (sandbox paths mapped back).
    Rejected(String),
    /// Not run, and why.
    Skipped(String),
}

/// One checker run.
#[derive(Debug, Clone)]
pub struct Check {
    /// Infra host.
    pub host: String,
    /// Component.
    pub component: Component,
    /// What ran (for the report).
    pub checker: String,
    /// Its verdict.
    pub outcome: Outcome,
}

/// Every check of a validation run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Checks in host, component order.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when nothing was rejected (and, with `strict`, nothing skipped).
    pub fn ok(&self, strict: bool) -> bool {
        self.checks.iter().all(|c| match c.outcome {
            Outcome::Accepted => true,
            Outcome::Rejected(_) => false,
            Outcome::Skipped(_) => !strict,
        })
    }

    /// The report, one line per check, rejected output indented below.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let (mut ok, mut bad, mut skip) = (0, 0, 0);
        for c in &self.checks {
            let verdict = match &c.outcome {
                Outcome::Accepted => {
                    ok += 1;
                    "accepted".to_owned()
                }
                Outcome::Rejected(_) => {
                    bad += 1;
                    "REJECTED".to_owned()
                }
                Outcome::Skipped(why) => {
                    skip += 1;
                    format!("skipped: {why}")
                }
            };
            let _ = writeln!(
                s,
                "{:<15} {:<13} {:<44} {verdict}",
                c.host,
                c.component.name(),
                c.checker
            );
            if let Outcome::Rejected(out) = &c.outcome {
                for line in out.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        let _ = writeln!(s, "checks: {ok} accepted, {bad} rejected, {skip} skipped");
        s
    }
}

/// Runs every checker over the rendered `tree` of `plan`.
pub fn tree(plan: &Plan, tree: &Tree) -> Result<Report> {
    let scratch = tempfile::Builder::new()
        .prefix("infragen-validate-")
        .tempdir()?;
    let pair = throwaway_cert(scratch.path());
    let mut report = Report::default();
    for h in &plan.hosts {
        let host = h.ip.to_string();
        for c in h.enabled() {
            let sandbox = scratch.path().join(format!("{host}-{}", c.name()));
            let sb = Sandbox::lay_out(&sandbox, tree, &host, c, h)?;
            let (checker, outcome) = check(&sb, h, c, pair.as_ref())?;
            report.checks.push(Check {
                host: host.clone(),
                component: c,
                checker,
                outcome,
            });
        }
    }
    Ok(report)
}

/// A component's files in a private directory, absolute paths rewritten into it.
struct Sandbox {
    root: PathBuf,
    host: String,
    roots: Vec<String>,
}

impl Sandbox {
    fn lay_out(root: &Path, tree: &Tree, host: &str, c: Component, h: &HostPlan) -> Result<Self> {
        let mut roots: Vec<String> = ["/etc/", "/run/", "/var/", "/infra/"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if let Some(n) = &h.nginx {
            roots.push(format!("{}/", n.home));
            if let Some((home, _)) = &n.repo {
                roots.push(format!("{home}/"));
            }
            for p in &n.portal {
                if let PortalKind::Path { root, .. } | PortalKind::Home { root, .. } = &p.kind {
                    roots.push(format!("{root}/"));
                }
                roots.extend(p.cert.iter().chain(&p.key).cloned());
            }
        }
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        roots.dedup();
        let sb = Self {
            root: root.to_path_buf(),
            host: host.to_owned(),
            roots,
        };
        let prefix = format!("{host}/{}/", c.name());
        let secrets = format!("{host}/secrets/{}/", c.name());
        for (path, entry) in tree.iter() {
            let target = if let Some(rel) = path.strip_prefix(&prefix) {
                root.join(rel)
            } else if let Some(name) = path.strip_prefix(&secrets) {
                root.join(credentials_dir(c).trim_start_matches('/'))
                    .join(name)
            } else {
                continue;
            };
            fs::create_dir_all(target.parent().expect("has parent"))?;
            let data = match std::str::from_utf8(&entry.data) {
                Ok(text) => sb.map(text).into_bytes(),
                Err(_) => entry.data.clone(),
            };
            fs::write(&target, data).with_context(|| format!("writing {}", target.display()))?;
        }
        for dir in [
            "var/log/nginx",
            "var/cache/nginx",
            "run/nginx",
            "infra",
            "var/lib/chrony",
            "var/lib/grafana",
        ] {
            fs::create_dir_all(root.join(dir))?;
        }
        for r in &sb.roots {
            if r.ends_with('/') {
                fs::create_dir_all(root.join(r.trim_start_matches('/')))?;
            }
        }
        Ok(sb)
    }

    /// Rewrites every absolute path under one of the roots into the sandbox.
    fn map(&self, text: &str) -> String {
        let root = self.root.to_string_lossy();
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for r in &self.roots {
                let at_boundary = out.is_empty()
                    || out.ends_with(|c: char| c.is_whitespace() || "=\"'{:[,".contains(c));
                if at_boundary && rest.starts_with(r.as_str()) {
                    out.push_str(&root);
                    out.push_str(r);
                    rest = &rest[r.len()..];
                    continue 'scan;
                }
            }
            let ch = rest.chars().next().expect("non-empty");
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
        out
    }

    /// Maps checker output back to the paths the component will see.
    fn unmap(&self, text: &str) -> String {
        text.replace(&*self.root.to_string_lossy(), "")
    }

    fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    fn flags(&self, h: &HostPlan, c: Component) -> Vec<String> {
        let flags = match c {
            Component::Vmetrics => h.vmetrics.as_ref().map(|v| v.flags.clone()),
            Component::Vmalert => h.vmalert.as_ref().map(|v| v.flags.clone()),
            Component::Blackbox => h.blackbox.as_ref().map(|v| v.flags.clone()),
            _ => None,
        };
        flags
            .unwrap_or_default()
            .iter()
            .map(|f| self.map(f))
            .collect()
    }
}

/// A self-signed certificate and key standing in for the ones the build issues.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

fn throwaway_cert(dir: &Path) -> Option<Pair> {
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
fn check(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_at_boundaries_only() {
        let sb = Sandbox {
            root: PathBuf::from("/sb"),
            host: String::new(),
            roots: vec!["/etc/".into(), "/run/".into()],
        };
        assert_eq!(
            sb.map("include /etc/nginx/mime.types;"),
            "include /sb/etc/nginx/mime.types;"
        );
        assert_eq!(sb.map("-rule=/etc/x/*.yml"), "-rule=/sb/etc/x/*.yml");
        assert_eq!(
            sb.map("$__file{/run/credentials/a}"),
            "$__file{/sb/run/credentials/a}"
        );
        assert_eq!(sb.map("location /ui/etc/ {"), "location /ui/etc/ {");
        assert_eq!(
            sb.unmap("error in /sb/etc/x.conf:3"),
            "error in /etc/x.conf:3"
        );
    }
}
