//! Running an unpacked image under runc on this machine (integration tier): the spec `umoci
//! unpack` writes turned into one runc runs here, and a container polled over HTTP on a
//! 127.0.0.0/8 address. Used by tests/images.rs (gzip images) and tests/zstd.rs (zstd images).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The installed program `name` from the system's directories; a missing one fails, naming
/// its Debian package (the same name; `.ci/deps` installs it).
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed: apt-get install {name} (.ci/deps does)");
}

/// Turns the spec of the unpacked `bundle` into one runc runs here: host network, no rlimits
/// (the container's runtime cannot set them here), no anonymous volumes (the image's own
/// directories are used), `CAP_NET_BIND_SERVICE`.
pub fn spec_for_here(bundle: &Path) {
    let path = bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    c["process"].as_object_mut().unwrap().remove("rlimits");
    c["process"]["terminal"] = false.into();
    let ns: Vec<serde_json::Value> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "network")
        .cloned()
        .collect();
    c["linux"]["namespaces"] = ns.into();
    let mounts: Vec<serde_json::Value> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !(m["type"] == "tmpfs" && m["source"] == "none"))
        .cloned()
        .collect();
    c["mounts"] = mounts.into();
    for set in ["bounding", "effective", "permitted", "ambient"] {
        let caps = c["process"]["capabilities"][set]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut caps: Vec<serde_json::Value> = caps
            .into_iter()
            .filter(|v| v != "CAP_NET_BIND_SERVICE")
            .collect();
        caps.push("CAP_NET_BIND_SERVICE".into());
        c["process"]["capabilities"][set] = caps.into();
    }
    fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

/// Runs the bundle detached, polls `url` until it answers 200 (or 20 s), then removes it.
pub fn serve_and_get(bundle: &Path, id: &str, url: &str) -> String {
    let runc = tool("runc");
    let _ = Command::new(&runc).args(["delete", "-f", id]).output();
    let log = bundle.join("runc.log");
    // Detached: the container must not inherit our pipes, or waiting for them never ends.
    // Without `NOTIFY_SOCKET`: where one is set (a test run under a notify-type service, or
    // inside systemd-nspawn, which sets it for its payload), runc hands it to the container and
    // waits for a `READY=1` that nginx never sends.
    let status = Command::new(&runc)
        .args(["--log", log.to_str().unwrap(), "run", "-d", id])
        .env_remove("NOTIFY_SOCKET")
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "runc run {id}: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let body = loop {
        match super::distribution::direct(Duration::from_secs(2))
            .get(url)
            .call()
        {
            Ok(mut r) if r.status() == 200 => {
                break Some(r.body_mut().read_to_string().unwrap_or_default())
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let state = Command::new(&runc).args(["state", id]).output().unwrap();
    let _ = Command::new(&runc).args(["delete", "-f", id]).output();
    body.unwrap_or_else(|| {
        panic!(
            "{url} did not answer 200: {last}\nrunc state: {}",
            String::from_utf8_lossy(&state.stdout)
        )
    })
}
