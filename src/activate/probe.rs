//! Health probes: HTTP status, a DNS answer, an NTP answer — as each manifest says.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::manifest::Probe;
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
    let rcode = buf[3] & 0x0f;
    let answers = u16::from_be_bytes([buf[6], buf[7]]);
    if rcode != 0 || answers == 0 {
        bail!("rcode {rcode}, {}", crate::plural::count(answers, "answer"));
    }
    Ok(())
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
