//! Health probes: HTTP status, a DNS answer, an NTP answer — as each manifest says.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::manifest::{NodeProbe, Probe};
use anyhow::{bail, Context, Result};

/// The probe in words, for messages.
pub fn describe(probe: &Probe) -> String {
    match probe {
        Probe::Http { address, path } => format!("GET http://{address}{path}"),
        Probe::Dns { address, name } => format!("DNS `{name}` at {address}"),
        Probe::Ntp { address } => format!("NTP at {address}"),
    }
}

/// Probes once; `Ok(())` when healthy.
pub fn once(probe: &Probe) -> Result<()> {
    match probe {
        Probe::Http { address, path } => {
            let url = format!("http://{address}{path}");
            // The host's own services: never through a proxy, every status an answer.
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .proxy(None)
                .http_status_as_error(false)
                .build()
                .into();
            match agent.get(&url).call() {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => bail!("GET {url}: status {}", r.status().as_u16()),
                Err(e) => bail!("GET {url}: {}", crate::net::describe(&e)),
            }
        }
        Probe::Dns { address, name } => {
            dns(address, name).with_context(|| format!("DNS query for `{name}` at {address}"))
        }
        Probe::Ntp { address } => ntp(address).with_context(|| format!("NTP query at {address}")),
    }
}

/// Probes until healthy or `timeout` passes; returns the last failure.
pub fn until(probe: &Probe, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match once(probe) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn socket(address: &str) -> Result<UdpSocket> {
    let local = if address.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let s = UdpSocket::bind(local)?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.connect(address)?;
    Ok(s)
}

/// A DNS query for `name` (type A) must come back with at least one answer.
pub fn dns(address: &str, name: &str) -> Result<()> {
    dns_a(address, name).map(|_| ())
}

/// Asks `address` for the A records of `name`; an answer without any is an error. Returns the
/// addresses answered.
pub fn dns_a(address: &str, name: &str) -> Result<Vec<std::net::Ipv4Addr>> {
    let (reply, question) = dns_reply(address, name)?;
    let rcode = reply[3] & 0x0f;
    let answers = u16::from_be_bytes([reply[6], reply[7]]);
    if rcode != 0 || answers == 0 {
        bail!("rcode {rcode}, {}", crate::plural::count(answers, "answer"));
    }
    Ok(a_records(&reply, question, answers))
}

/// Asks `address` for the A records of `name`; the reply (whatever its code) and where its
/// question ends.
fn dns_reply(address: &str, name: &str) -> Result<(Vec<u8>, usize)> {
    let s = socket(address)?;
    let mut q = vec![0x4e, 0x21, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(u8::try_from(label.len()).context("label too long")?);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    s.send(&q)?;
    let mut buf = [0u8; 512];
    let n = s.recv(&mut buf)?;
    if n < 12 || buf[0..2] != q[0..2] {
        bail!("no valid answer");
    }
    Ok((buf[..n].to_vec(), q.len()))
}

/// The A records among the `count` answers of a reply whose question ends at `at`.
fn a_records(reply: &[u8], mut at: usize, count: u16) -> Vec<std::net::Ipv4Addr> {
    let mut out = Vec::new();
    for _ in 0..count {
        // The owner name: labels, or a pointer (two bytes) ending it.
        loop {
            match reply.get(at) {
                Some(0) => {
                    at += 1;
                    break;
                }
                Some(l) if l & 0xc0 == 0xc0 => {
                    at += 2;
                    break;
                }
                Some(l) => at += 1 + usize::from(*l),
                None => return out,
            }
        }
        let Some(fixed) = reply.get(at..at + 10) else {
            return out;
        };
        let (kind, len) = (
            u16::from_be_bytes([fixed[0], fixed[1]]),
            usize::from(u16::from_be_bytes([fixed[8], fixed[9]])),
        );
        at += 10;
        let Some(data) = reply.get(at..at + len) else {
            return out;
        };
        if kind == 1 && len == 4 {
            out.push(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += len;
    }
    out
}

/// An NTP client request (version 4, mode 3) must come back as a server reply (mode 4).
pub fn ntp(address: &str) -> Result<()> {
    let s = socket(address)?;
    let mut q = [0u8; 48];
    q[0] = 0x23;
    s.send(&q)?;
    let mut buf = [0u8; 128];
    let n = s.recv(&mut buf)?;
    if n < 48 || buf[0] & 0x07 != 4 {
        bail!("no NTP server reply");
    }
    Ok(())
}

/// A node probe in words, for messages.
pub fn describe_node(probe: &NodeProbe) -> String {
    match probe {
        NodeProbe::Hosts { name, address } => {
            format!("`{name}` resolves to {address} on this host")
        }
        NodeProbe::Dns {
            server,
            name,
            address,
        } => format!("DNS `{name}` at {server} answers {address}"),
        NodeProbe::Answers { server } => format!("a DNS server answers at {server}"),
        NodeProbe::Chrony { sources } => format!("chrony lists {}", sources.join(", ")),
        NodeProbe::Apt { source } => format!("apt-get update reads {source}"),
        NodeProbe::Https { url } => format!("GET {url} verifies with the system trust store"),
    }
}

/// Runs `program` with `args`; its output, or an error with what it printed.
fn output(program: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {program} (is it installed?)"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(if out.stderr.is_empty() {
            &out.stdout
        } else {
            &out.stderr
        })
        .trim()
        .to_owned();
        bail!("{program} {}: {}: {text}", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Probes the node part once.
pub fn node_once(probe: &NodeProbe) -> Result<()> {
    match probe {
        NodeProbe::Hosts { name, address } => {
            let text = output("getent", &["hosts", name])?;
            let got: Vec<&str> = text.split_whitespace().take(1).collect();
            if got != [address.as_str()] {
                bail!("getent hosts {name}: {}", text.trim());
            }
        }
        NodeProbe::Dns {
            server,
            name,
            address,
        } => {
            let got = dns_a(server, name)
                .with_context(|| format!("DNS query for `{name}` at {server}"))?;
            if !got.iter().any(|a| a.to_string() == *address) {
                bail!("DNS `{name}` at {server} answers {got:?}, not {address}");
            }
        }
        NodeProbe::Answers { server } => {
            dns_reply(server, "infragen-probe.invalid")
                .with_context(|| format!("DNS query at {server}"))?;
        }
        NodeProbe::Chrony { sources } => {
            let text = output("chronyc", &["-n", "sources"])?;
            let listed: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            let missing: Vec<&String> = sources
                .iter()
                .filter(|s| !listed.contains(&s.as_str()))
                .collect();
            if !missing.is_empty() {
                bail!(
                    "chronyc sources does not list {missing:?}:\n{}",
                    text.trim()
                );
            }
        }
        NodeProbe::Apt { source } => {
            // Only this source, into a private lists directory: the host's own lists and
            // sources are not read or written.
            let dir = tempfile::Builder::new().prefix("infragen-apt-").tempdir()?;
            let parts = dir.path().join("sources.list.d");
            let lists = dir.path().join("lists");
            std::fs::create_dir_all(lists.join("partial"))?;
            std::fs::create_dir_all(&parts)?;
            let name = Path::new(source)
                .file_name()
                .context("an APT source file name")?;
            std::fs::copy(source, parts.join(name)).with_context(|| format!("reading {source}"))?;
            let opt = |k: &str, v: &Path| format!("-o{k}={}", v.display());
            // No configuration parts either: no hook runs, no proxy of the host's is used.
            let confs = dir.path().join("apt.conf.d");
            let cache = dir.path().join("cache");
            std::fs::create_dir_all(&confs)?;
            std::fs::create_dir_all(&cache)?;
            let args = [
                opt("Dir::Etc::Parts", &confs),
                opt("Dir::Etc::SourceParts", &parts),
                opt("Dir::Etc::SourceList", Path::new("/dev/null")),
                opt("Dir::State::Lists", &lists),
                opt("Dir::Cache", &cache),
            ];
            let mut all = vec!["update", "-q", "--error-on=any", "-oDebug::NoLocking=1"];
            all.extend(args.iter().map(String::as_str));
            output("apt-get", &all)?;
        }
        NodeProbe::Https { url } => {
            output(
                "curl",
                &[
                    "-sS",
                    "--fail",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "5",
                    "--noproxy",
                    "*",
                    url,
                ],
            )?;
        }
    }
    Ok(())
}

/// Probes the node part in order, each until it passes or `timeout` passes; what failed, if
/// anything.
pub fn node_all(probes: &[NodeProbe], timeout: Duration) -> Option<String> {
    for p in probes {
        let deadline = Instant::now() + timeout;
        loop {
            match node_once(p) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Some(format!("failed its probe ({}): {e:#}", describe_node(p)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// Answers each connection on `addr` with `status`, `times` times.
    fn serve(addr: &'static str, status: u16, times: usize) {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming().take(times).flatten() {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = write!(&s, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            }
        });
    }

    #[test]
    fn an_http_probe_wants_a_2xx_answer() {
        serve("127.0.52.12:8080", 204, 1);
        serve("127.0.52.13:8080", 503, 1);
        let probe = |address: &str| Probe::Http {
            address: address.to_owned(),
            path: "/health".to_owned(),
        };
        once(&probe("127.0.52.12:8080")).unwrap();
        let e = once(&probe("127.0.52.13:8080")).unwrap_err().to_string();
        assert_eq!(e, "GET http://127.0.52.13:8080/health: status 503");
        // Nothing listening: refused, named.
        let e = once(&probe("127.0.52.14:8080")).unwrap_err().to_string();
        assert!(e.starts_with("GET http://127.0.52.14:8080/health: "), "{e}");
    }
}
