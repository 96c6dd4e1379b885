//! A throwaway CNCF distribution registry (Debian's `docker-registry`) on a loopback address,
//! with plain-HTTP helpers for the distribution API, and the check that a test's tools exist.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the tools `tools` (binary, Debian package) exist. Missing ones fail the test naming
/// their packages, unless `INFRAGEN_SKIP_REGISTRY=1`: then a loud SKIPPED line and `false`.
pub fn tools_present(test: &str, tools: &[(&str, &str)]) -> bool {
    if tools.iter().all(|(bin, _)| super::tier::on_path(bin)) {
        return true;
    }
    if super::tier::registry_skipped(test) {
        return false;
    }
    super::tier::require(test, tools);
    false
}

/// A running registry; killed on drop.
pub struct Distribution {
    child: Child,
    _dir: tempfile::TempDir,
    /// `127.0.51.N:5000`.
    pub host: String,
}

impl Distribution {
    /// Starts `docker-registry` on `127.0.51.<n>:5000` with storage in a temporary directory
    /// and waits until `GET /v2/` answers.
    pub fn start(n: u8) -> Self {
        assert!(
            (1..=99).contains(&n),
            "the distribution tests use 127.0.51.1-99"
        );
        let dir = tempfile::tempdir().unwrap();
        let host = format!("127.0.51.{n}:5000");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {host}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let mut me = Self {
            child,
            _dir: dir,
            host,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = direct(Duration::from_secs(1))
                .get(&format!("http://{}/v2/", me.host))
                .call()
                .is_ok();
            if ok {
                break;
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("docker-registry on {} exited: {status}", me.host);
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry on {} never answered",
                me.host
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/v2/{path}", self.host)
    }

    /// The manifest `reference` of `repo` (an OCI image manifest), or `None` when unknown.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let r = direct(Duration::from_secs(30))
            .get(&self.url(&format!("{repo}/manifests/{reference}")))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call();
        match r {
            Ok(resp) if resp.status() == 404 => None,
            Ok(resp) if resp.status() == 200 => Some(read(resp)),
            Ok(resp) => panic!("GET manifest {repo}:{reference}: status {}", resp.status()),
            Err(e) => panic!("GET manifest {repo}:{reference}: {e}"),
        }
    }

    /// The blob `digest` of `repo`.
    pub fn get_blob(&self, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let resp = direct(Duration::from_secs(60))
            .get(&self.url(&format!("{repo}/blobs/{digest}")))
            .call()?;
        anyhow::ensure!(
            resp.status() == 200,
            "GET blob {digest}: status {}",
            resp.status()
        );
        Ok(read(resp))
    }

    /// Uploads `bytes` as blob `digest` of `repo` (one monolithic `POST` + `PUT`).
    pub fn put_blob(&self, repo: &str, digest: &str, bytes: &[u8]) {
        let resp = direct(Duration::from_secs(30))
            .post(&self.url(&format!("{repo}/blobs/uploads/")))
            .send_empty()
            .expect("starting an upload");
        assert_eq!(resp.status(), 202, "starting an upload");
        let location = resp
            .headers()
            .get("Location")
            .and_then(|l| l.to_str().ok())
            .expect("a Location")
            .to_owned();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.host)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = direct(Duration::from_secs(60))
            .put(&format!("{location}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap_or_else(|e| panic!("PUT blob {digest}: {e}"));
        assert_eq!(resp.status(), 201, "PUT blob {digest}");
    }

    /// Puts `bytes` as manifest `reference` (a tag) of `repo`.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let resp = direct(Duration::from_secs(30))
            .put(&self.url(&format!("{repo}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .send(bytes)
            .unwrap_or_else(|e| panic!("PUT manifest {repo}:{reference}: {e}"));
        assert_eq!(resp.status(), 201, "PUT manifest {repo}:{reference}");
    }
}

fn read(resp: ureq::http::Response<ureq::Body>) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_body().into_reader(), &mut out).unwrap();
    out
}

/// An agent for test traffic on loopback: never through a proxy, every status an answer,
/// `timeout` overall.
pub fn direct(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into()
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a one-layer OCI layout at `dir` with the image tagged `t`; `name` makes it distinct.
pub fn oci_layout(dir: &Path, name: &str) {
    use sha2::Digest as _;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = format!("{:x}", sha2::Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer, layer_size) = put(&[0u8; 1024]); // an empty tar archive
    let (config, config_size) = put(
        format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Labels\":{{\"name\":\"{name}\"}}}},\
             \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{layer}\"]}}}}"
        )
        .as_bytes(),
    );
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config}\",\"size\":{config_size}}},\
         \"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{layer}\",\"size\":{layer_size}}}]}}"
    );
    let (m, m_size) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"digest\":\"{m}\",\"size\":{m_size},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"t\"}}}}]}}"
        ),
    )
    .unwrap();
}
