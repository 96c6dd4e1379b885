//! A Debian container booted with `systemd-nspawn -b`, sharing this machine's network: what the
//! booted tier's tests run `infragen activate` in.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A booted container; powered off when dropped.
pub struct Machine {
    nspawn: Child,
    /// Its init's PID (what `nsenter -t` enters).
    pub pid: String,
    /// The test directory holding its root (`<dir>/root`) and `console.log`.
    pub dir: PathBuf,
}

impl Machine {
    /// Makes its root at `<dir>/root` with `make_root`, copies the binary under test in, boots it
    /// as machine `name` and waits for `systemctl is-system-running` (running or degraded).
    pub fn boot(dir: &Path, name: &str, make_root: impl Fn(&Path)) -> Self {
        let rootfs = dir.join("root");
        make_root(&rootfs);
        fs::copy(super::bin(), rootfs.join("usr/local/bin/infragen")).unwrap();
        let nspawn = Command::new("systemd-nspawn")
            // nspawn's syscall filter refuses the clock calls without CAP_SYS_TIME, reading
            // included; let the container read the kernel clock's state (node_exporter's timex
            // collector, what chrony keeps) — setting it still needs the capability it lacks.
            .arg("--system-call-filter=adjtimex clock_adjtime")
            .args(["-b", "--register=no", "--keep-unit", "-M", name, "-D"])
            .arg(&rootfs)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("console.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-nspawn");
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid = loop {
            let o = Command::new("pgrep")
                .args(["-P", &nspawn.id().to_string()])
                .output()
                .unwrap();
            let pid = String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            if !pid.is_empty() {
                let o = Command::new("nsenter")
                    .args(["-t", &pid, "-a", "systemctl", "is-system-running", "--wait"])
                    .output()
                    .unwrap();
                let state = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                if state == "running" || state == "degraded" {
                    break pid;
                }
            }
            assert!(Instant::now() < deadline, "the container did not boot");
            std::thread::sleep(Duration::from_millis(500));
        };
        Self {
            nspawn,
            pid,
            dir: dir.to_path_buf(),
        }
    }

    /// Runs `args` inside (every namespace of its init).
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid, "-a"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Its root directory, seen from outside.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = Command::new("nsenter")
            .args(["-t", &self.pid, "-a", "systemctl", "poweroff"])
            .output();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

/// The booted tier's Debian root (systemd, dbus, systemd-container) with Debian's
/// `prometheus-node-exporter` installed, as Pigsty's NODE module installs it on every node. Its
/// packaged unit is masked: it would listen on every address of the network this machine and
/// its containers share; [`Machine::node_exporter`] starts it on one.
pub fn root_with_node_exporter(dest: &Path) {
    super::debian::root(
        dest,
        &[
            "systemd",
            "systemd-sysv",
            "dbus",
            "systemd-container",
            "prometheus-node-exporter",
        ],
        "debian-bookworm-node-exporter.tar",
    );
    let unit = dest.join("etc/systemd/system/prometheus-node-exporter.service");
    let _ = fs::remove_file(&unit);
    std::os::unix::fs::symlink("/dev/null", unit).unwrap();
}

impl Machine {
    /// Starts Debian's node exporter inside (a transient `node-exporter.service`) on
    /// `ip:port`, with the collectors Pigsty's `node_exporter_options` default turns on and off.
    pub fn node_exporter(&self, ip: &str, port: u16) -> Output {
        self.run(&[
            "systemd-run",
            "--unit=node-exporter",
            "/usr/bin/prometheus-node-exporter",
            &format!("--web.listen-address={ip}:{port}"),
            "--no-collector.softnet",
            "--no-collector.nvme",
            "--collector.tcpstat",
            "--collector.processes",
        ])
    }
}
