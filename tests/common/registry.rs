//! A real registry for the tests: Debian's `docker-registry` (CNCF distribution 2.8) serving a
//! temporary directory on one loopback address, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry program.
const PROGRAM: &str = "/usr/bin/docker-registry";

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.50.N:5000`.
    pub addr: String,
    /// The storage root (`docker/registry/v2/…` under it).
    pub storage: PathBuf,
    dir: tempfile::TempDir,
}

/// Whether the registry tests are skipped on purpose (`INFRAGEN_SKIP_REGISTRY=1`); prints a loud
/// line when they are (`super::tier`). Without the variable, a missing `docker-registry` fails
/// the test.
pub fn skipped() -> bool {
    if super::tier::registry_skipped("registry tests") {
        return true;
    }
    super::tier::require("the registry tests", &[(PROGRAM, "docker-registry")]);
    false
}

impl Registry {
    /// Starts a registry on `127.0.50.<n>:5000` and waits until `GET /v2/` answers.
    pub fn start(n: u8) -> Self {
        assert!((1..=99).contains(&n), "registry tests use 127.0.50.1-99");
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let addr = format!("127.0.50.{n}:5000");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(PROGRAM)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {PROGRAM}: {e} (apt-get install docker-registry)")
            });
        let mut r = Self {
            child,
            addr,
            storage,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if super::distribution::direct(Duration::from_secs(1))
                .get(&format!("http://{}/v2/", r.addr))
                .call()
                .is_ok()
            {
                return r;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("{PROGRAM} exited ({status}):\n{}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "{PROGRAM} did not answer on {} in 20 s:\n{}",
                r.addr,
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The file holding blob `digest` in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
