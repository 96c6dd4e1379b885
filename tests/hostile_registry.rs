//! A hostile registry: `infragen activate HOST:PORT/ns/bundle --plain-http` against a small
//! scripted registry (`std::net`, one thread per connection) that serves whatever each test wants:
//! a compromised registry or a man in the middle on plain HTTP, where the bundle's signature is
//! the only trust anchor. Each test names its attack and checks a clean refusal (exit 1, a
//! message naming what was wrong), a bounded time, and the host root unchanged: no current
//! generation, nothing in the blob store, no file left in the state directory (its empty
//! directories are the documented skeleton).
//!
//! Addresses 127.0.50.80–89, one per test (a second port for a second server).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{enrol, signing_key};
use infragen::manifest::{Digest, FileEntry, Manifest, ProfileRef, VERSION};
use infragen::ship::artifact::{bundle_artifact, BundleFile};
use infragen::sign::attach::sign_attachment;
use infragen::sign::SigningKey;

const HOST: &str = "10.10.10.10";
const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// One request as the fake registry saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    /// Header lines, lowercased names.
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake registry answers.
enum Answer {
    /// A status, headers and a body (`Content-Length` added).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// `200` with `Content-Length: len`, then one byte of `body` per `every`.
    Drip(Vec<u8>, Duration),
    /// `200` with a chunked body that never ends.
    Endless,
    /// Accepts and never answers.
    Silent,
}

fn ok_json(media_type: &str, body: Vec<u8>) -> Answer {
    let d = Digest::of(&body);
    Answer::Full(
        200,
        vec![
            ("Content-Type".into(), media_type.into()),
            ("Docker-Content-Digest".into(), d.to_string()),
        ],
        body,
    )
}

fn not_found() -> Answer {
    Answer::Full(
        404,
        vec![],
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
    )
}

type Handler = dyn Fn(&Req) -> Answer + Send + Sync;

/// A fake registry on `addr`; returns the log of what it was asked.
fn serve(addr: &str, handler: Arc<Handler>) -> Arc<Mutex<Vec<Req>>> {
    let listener = TcpListener::bind(addr).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let (h, seen) = (handler.clone(), seen.clone());
            std::thread::spawn(move || {
                let _ = connection(s, &*h, &seen);
            });
        }
    });
    log
}

fn connection(s: TcpStream, handler: &Handler, seen: &Mutex<Vec<Req>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(s.try_clone()?);
    let mut out = s;
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first)? == 0 {
            return Ok(());
        }
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let req = Req {
            method,
            path,
            headers,
        };
        let len: usize = req
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        std::io::copy(&mut (&mut reader).take(len as u64), &mut std::io::sink())?;
        seen.lock().unwrap().push(req.clone());
        let head = req.method == "HEAD";
        match handler(&req) {
            Answer::Full(status, hs, body) => {
                let mut h = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in hs {
                    let _ = write!(h, "{k}: {v}\r\n");
                }
                h.push_str("\r\n");
                out.write_all(h.as_bytes())?;
                if !head {
                    out.write_all(&body)?;
                }
            }
            Answer::Drip(body, every) => {
                out.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {OCI}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )?;
                for b in body {
                    out.write_all(&[b])?;
                    out.flush()?;
                    std::thread::sleep(every);
                }
            }
            Answer::Endless => {
                out.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: {OCI}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
                )?;
                let chunk = vec![b' '; 1 << 16];
                loop {
                    out.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                    out.write_all(&chunk)?;
                    out.write_all(b"\r\n")?;
                }
            }
            Answer::Silent => {
                std::thread::sleep(Duration::from_secs(600));
                return Ok(());
            }
        }
    }
}

/// A bundle as a registry holds it: the artifact, its signature attachment, and blobs.
#[derive(Clone)]
struct World {
    /// Manifests by `repo/manifests/reference` path tail (`ns/bundle/manifests/10.10.10.10`).
    manifests: BTreeMap<String, Vec<u8>>,
    /// Blobs by digest.
    blobs: BTreeMap<String, Vec<u8>>,
}

impl World {
    fn answer(&self, req: &Req) -> Answer {
        let Some(rest) = req.path.strip_prefix("/v2/") else {
            return not_found();
        };
        if let Some(m) = self.manifests.get(rest) {
            return ok_json(OCI, m.clone());
        }
        if let Some((_, d)) = rest.split_once("/blobs/") {
            if let Some(b) = self.blobs.get(d) {
                return Answer::Full(200, vec![], b.clone());
            }
        }
        not_found()
    }
}

/// The parts a test may alter before [`Parts::world`] signs and serves them.
#[derive(Clone)]
struct Parts {
    manifest: Manifest,
    /// Bundle files other than manifest.json (their bytes).
    files: BTreeMap<String, Vec<u8>>,
    /// Image blobs (by digest) served from `ns/img`.
    images: BTreeMap<String, Vec<u8>>,
    /// The artifact's host and generation annotations (from the manifest unless changed).
    host: String,
    generation: Option<String>,
    /// Extra artifact layers (path, digest, size) beyond the files.
    extra: Vec<BundleFile>,
}

fn entry(bytes: &[u8]) -> FileEntry {
    FileEntry {
        digest: Digest::of(bytes),
        mode: 0o644,
        uid: 0,
        gid: 0,
    }
}

impl Parts {
    /// A small, valid bundle: an index with no images and one unit file.
    fn new() -> Self {
        let files = BTreeMap::from([
            (
                "oci/index.json".to_owned(),
                br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
            ),
            ("units/x.service".to_owned(), b"[Unit]\n".to_vec()),
        ]);
        let manifest = Manifest {
            version: VERSION,
            infragen: "0.1.0".into(),
            host: HOST.into(),
            profile: ProfileRef {
                name: "p".into(),
                digest: "sha256:0".into(),
            },
            version_string: "1".into(),
            components: BTreeMap::new(),
            incomplete: vec![],
            files: BTreeMap::new(),
            node: None,
            recipients: None,
            generation: None,
        };
        let mut p = Self {
            manifest,
            files,
            images: BTreeMap::new(),
            host: HOST.into(),
            generation: None,
            extra: vec![],
        };
        p.relist();
        p
    }

    /// Lists every file and image blob in the manifest, and recomputes its generation.
    fn relist(&mut self) {
        self.manifest.files = self
            .files
            .iter()
            .map(|(p, b)| (p.clone(), entry(b)))
            .chain(self.images.values().map(|b| {
                (
                    format!("oci/blobs/sha256/{}", Digest::of(b).hex()),
                    entry(b),
                )
            }))
            .collect();
        self.seal();
    }

    fn seal(&mut self) {
        self.manifest.generation = None;
        self.manifest.generation = Some(self.manifest.compute_generation());
    }

    /// One image `img` (`ns/img`): a config and a layer whose manifest says it is
    /// `layer_size` bytes, whatever the layer's bytes are.
    fn with_image(&mut self, layer: &[u8], layer_size: u64) -> (Digest, Digest) {
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{layer_size}}}]}}"#,
            Digest::of(&config),
            config.len(),
            Digest::of(layer),
        )
        .into_bytes();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"img"}}}}]}}"#,
            Digest::of(&m),
            m.len()
        );
        self.files
            .insert("oci/index.json".into(), index.into_bytes());
        let md = Digest::of(&m);
        for b in [config, layer.to_vec(), m] {
            self.images.insert(Digest::of(&b).to_string(), b);
        }
        self.relist();
        (md, Digest::of(layer))
    }

    fn manifest_bytes(&self) -> Vec<u8> {
        self.manifest.to_canonical()
    }

    /// `manifest.sig`: the manifest signed by the test key for this host (made once per
    /// manifest: signatures are randomized).
    fn signature(&self) -> Vec<u8> {
        static MADE: Mutex<BTreeMap<Vec<u8>, Vec<u8>>> = Mutex::new(BTreeMap::new());
        let m = self.manifest_bytes();
        MADE.lock()
            .unwrap()
            .entry(m.clone())
            .or_insert_with(|| {
                SigningKey::load(&signing_key().0)
                    .unwrap()
                    .sign(&m, &self.manifest.host)
                    .unwrap()
            })
            .clone()
    }

    /// The artifact manifest of these parts.
    fn artifact(&self) -> Vec<u8> {
        let m = self.manifest_bytes();
        let sig = self.signature();
        let mut listed = vec![
            BundleFile {
                path: "manifest.json".into(),
                digest: Digest::of(&m),
                size: m.len() as u64,
            },
            BundleFile {
                path: "manifest.sig".into(),
                digest: Digest::of(&sig),
                size: sig.len() as u64,
            },
        ];
        for (p, b) in &self.files {
            listed.push(BundleFile {
                path: p.clone(),
                digest: Digest::of(b),
                size: b.len() as u64,
            });
        }
        listed.extend(self.extra.iter().cloned());
        let generation = self
            .generation
            .clone()
            .unwrap_or_else(|| self.manifest.id().to_owned());
        bundle_artifact(&self.host, &generation, &listed)
    }

    /// The registry's content: the artifact at tag HOST, signed by the test key.
    fn world(&self, addr: &str) -> World {
        let artifact = self.artifact();
        self.world_of(addr, artifact)
    }

    /// The registry's content for `artifact` bytes (signed as they are).
    fn world_of(&self, addr: &str, artifact: Vec<u8>) -> World {
        let key = SigningKey::load(&signing_key().0).unwrap();
        let a = sign_attachment(
            &key,
            &format!("{addr}/ns/bundle:{HOST}"),
            &Digest::of(&artifact),
            None,
        )
        .unwrap();
        let mut w = World {
            manifests: BTreeMap::new(),
            blobs: BTreeMap::new(),
        };
        w.manifests
            .insert(format!("ns/bundle/manifests/{}", a.tag), a.manifest);
        w.manifests
            .insert(format!("ns/bundle/manifests/{HOST}"), artifact);
        for (d, b) in a.blobs {
            w.blobs.insert(d.to_string(), b);
        }
        let m = self.manifest_bytes();
        w.blobs.insert(Digest::of(&m).to_string(), m);
        let sig = self.signature();
        w.blobs.insert(Digest::of(&sig).to_string(), sig);
        for b in self.files.values() {
            w.blobs.insert(Digest::of(b).to_string(), b.clone());
        }
        for (d, b) in &self.images {
            w.manifests
                .insert(format!("ns/img/manifests/{d}"), b.clone());
            w.blobs.insert(d.clone(), b.clone());
        }
        w
    }
}

fn serve_world(addr: &str, w: World) -> Arc<Mutex<Vec<Req>>> {
    serve(addr, Arc::new(move |r: &Req| w.answer(r)))
}

/// An enrolled host root (the test key trusted, its name written).
fn host_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    enrol(d.path(), HOST);
    d
}

/// `infragen activate ADDR/ns/bundle --plain-http --root ROOT EXTRA…`, with how long it took
/// and its peak memory (KiB, from /usr/bin/time when there is one).
fn activate(root: &Path, addr: &str, extra: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let start = Instant::now();
    let mut c = common::infragen();
    c.args([
        "activate",
        &format!("{addr}/ns/bundle"),
        "--plain-http",
        "--root",
    ])
    .arg(root)
    .args(extra)
    .env_remove("REGISTRY_AUTH_FILE")
    .env("HOME", "/nonexistent");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (o, start.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file (not directory) below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return vec![];
    }
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// A clean refusal: exit 1 within `secs`, stderr naming each of `why`, the host root without a
/// current generation and without any file in its state directory.
fn refused(attack: &str, root: &Path, run: &(Output, Duration), why: &[&str], secs: u64) {
    let (o, took) = run;
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{attack}: not refused:\n{err}");
    for w in why {
        assert!(
            err.contains(w),
            "{attack}: the refusal does not say `{w}`:\n{err}"
        );
    }
    assert!(
        *took < Duration::from_secs(secs),
        "{attack}: took {took:?} (bound {secs} s)"
    );
    let state = root.join("var/lib/infragen");
    assert!(
        !state.join("current").exists(),
        "{attack}: a current generation"
    );
    let left = files_below(&state);
    assert!(left.is_empty(), "{attack}: files left: {left:?}");
}

/// The artifact manifest of `parts` with `f` applied to it as JSON.
fn edited(parts: &Parts, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&parts.artifact()).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn the_fake_registry_serves_a_bundle_that_pulls() {
    // The baseline every attack alters: signed, complete, pulled with --pull-only.
    let addr = "127.0.50.80:5000";
    let mut parts = Parts::new();
    parts.with_image(b"layer bytes", 11);
    serve_world(addr, parts.world(addr));
    let root = host_root();
    let (o, _) = activate(root.path(), addr, &["--pull-only"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 blobs fetched"), "{}", stderr(&o));
    assert!(!root.path().join("var/lib/infragen/current").exists());
}

#[test]
fn artifact_titles_that_climb_out_or_repeat_are_refused_before_the_signature() {
    let addr = "127.0.50.81:5000";
    let parts = Parts::new();
    let root = host_root();
    let blob = format!("oci/blobs/sha256/{}", "a".repeat(64));
    let cases: Vec<(&str, Vec<u8>, &str)> = [
        ("../etc/passwd", "not a plain relative path"),
        ("/etc/passwd", "not a plain relative path"),
        ("oci/blobs/../../../etc/shadow", "not a plain relative path"),
        ("units//x", "not a plain relative path"),
        ("units/./x", "not a plain relative path"),
        (blob.as_str(), "is an image blob"),
        ("oci/index.json", "listed twice"),
    ]
    .into_iter()
    .map(|(title, why)| {
        let a = edited(&parts, |v| {
            v["layers"][3]["annotations"]["org.opencontainers.image.title"] = title.into();
        });
        (title, a, why)
    })
    .collect();
    let current = Arc::new(Mutex::new(Vec::new()));
    let serving = current.clone();
    let log = serve(
        addr,
        Arc::new(move |r: &Req| {
            if r.path == format!("/v2/ns/bundle/manifests/{HOST}") {
                ok_json(OCI, serving.lock().unwrap().clone())
            } else {
                not_found()
            }
        }),
    );
    for (title, a, why) in cases {
        *current.lock().unwrap() = a;
        log.lock().unwrap().clear();
        let run = activate(root.path(), addr, &[], &[]);
        refused(&format!("title `{title}`"), root.path(), &run, &[why], 20);
        assert_eq!(
            log.lock().unwrap().len(),
            1,
            "{title}: read more than the artifact"
        );
    }
}

#[test]
fn oversized_artifacts_endless_and_dripping_bodies_are_bounded() {
    let addr = "127.0.50.82:5000";
    let parts = Parts::new();
    let root = host_root();
    // 100k layers: more than the 4 MiB a manifest may be; 11k: more files than allowed.
    let layers = |n: usize| {
        edited(&parts, |v| {
            let l = v["layers"][0].clone();
            v["layers"] = serde_json::Value::Array(vec![l; n]);
        })
    };
    let mut padded = parts.artifact();
    padded.extend(vec![b' '; 5 << 20]);
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "100k layers",
            ok_json(OCI, layers(100_000)),
            "larger than 4194304 bytes",
        ),
        (
            "11k layers",
            ok_json(OCI, layers(11_000)),
            "more than the 10000 allowed",
        ),
        (
            "a 5 MiB manifest",
            ok_json(OCI, padded),
            "larger than 4194304 bytes",
        ),
        (
            "an endless body",
            Answer::Endless,
            "larger than 4194304 bytes",
        ),
        (
            "a byte a second (slowloris)",
            Answer::Drip(parts.artifact(), Duration::from_millis(700)),
            "sends too slowly",
        ),
    ];
    let which = Arc::new(Mutex::new(0usize));
    let answers = Arc::new(Mutex::new(cases.iter().map(|_| None).collect::<Vec<_>>()));
    let names: Vec<(&str, &str)> = cases.iter().map(|(n, _, w)| (*n, *w)).collect();
    for (i, (_, a, _)) in cases.into_iter().enumerate() {
        answers.lock().unwrap()[i] = Some(a);
    }
    let (w, ans) = (which.clone(), answers.clone());
    serve(
        addr,
        Arc::new(move |r: &Req| {
            if r.path != format!("/v2/ns/bundle/manifests/{HOST}") {
                return not_found();
            }
            let i = *w.lock().unwrap();
            ans.lock().unwrap()[i].take().unwrap_or_else(not_found)
        }),
    );
    for (i, (attack, why)) in names.into_iter().enumerate() {
        *which.lock().unwrap() = i;
        let run = activate(
            root.path(),
            addr,
            &[],
            &[("INFRAGEN_REGISTRY_TIMEOUT", "2")],
        );
        refused(attack, root.path(), &run, &[why], 30);
    }
    // No answer at all (to the `HEAD` of the signature, a request without a body): bounded by
    // the request's deadline, the grace period plus a second.
    let addr = "127.0.50.82:5001";
    let w = parts.world(addr);
    serve(
        addr,
        Arc::new(move |r: &Req| {
            if r.method == "HEAD" {
                Answer::Silent
            } else {
                w.answer(r)
            }
        }),
    );
    let run = activate(
        root.path(),
        addr,
        &[],
        &[("INFRAGEN_REGISTRY_TIMEOUT", "2")],
    );
    refused("no answer at all", root.path(), &run, &["timed out"], 15);
}

#[test]
fn another_hosts_or_unsigned_or_badly_signed_artifacts_are_refused() {
    let addr = "127.0.50.83:5000";
    let root = host_root();
    let current: Arc<Mutex<World>> = Arc::new(Mutex::new(Parts::new().world(addr)));
    let serving = current.clone();
    let log = serve(
        addr,
        Arc::new(move |r: &Req| serving.lock().unwrap().answer(r)),
    );
    let sig_tag = |w: &World| {
        w.manifests
            .keys()
            .find(|k| k.rsplit('.').next() == Some("sig"))
            .unwrap()
            .clone()
    };
    let run = |attack: &str, w: World, why: &[&str]| {
        *current.lock().unwrap() = w;
        log.lock().unwrap().clear();
        let r = activate(root.path(), addr, &[], &[]);
        refused(attack, root.path(), &r, why, 20);
        log.lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<String>>()
    };

    // Another host's bundle: refused on the artifact's annotation, before its signature.
    let mut other = Parts::new();
    other.host = "10.10.10.11".into();
    let asked = run(
        "another host's artifact",
        other.world(addr),
        &["bundle of host `10.10.10.11`", "this host is `10.10.10.10`"],
    );
    assert_eq!(asked.len(), 1, "{asked:?}");

    // Unsigned: no attachment at all.
    let mut w = Parts::new().world(addr);
    let tag = sig_tag(&w);
    w.manifests.remove(&tag);
    let asked = run("unsigned", w, &["it is not signed"]);
    assert!(!asked.iter().any(|p| p.contains("/blobs/")), "{asked:?}");

    // An attachment with 10k layers.
    let mut w = Parts::new().world(addr);
    let tag = sig_tag(&w);
    let mut v: serde_json::Value = serde_json::from_slice(&w.manifests[&tag]).unwrap();
    let l = v["layers"][0].clone();
    v["layers"] = serde_json::Value::Array(vec![l; 10_000]);
    w.manifests.insert(tag, serde_json::to_vec(&v).unwrap());
    let asked = run("an attachment of 10k layers", w, &["more than the 64 read"]);
    assert!(!asked.iter().any(|p| p.contains("/blobs/")), "{asked:?}");

    // A payload claiming 1 GiB: never fetched.
    let mut w = Parts::new().world(addr);
    let tag = sig_tag(&w);
    let mut v: serde_json::Value = serde_json::from_slice(&w.manifests[&tag]).unwrap();
    v["layers"][0]["size"] = (1u64 << 30).into();
    w.manifests.insert(tag, serde_json::to_vec(&v).unwrap());
    let asked = run("a payload of 1 GiB", w, &["more than 65536"]);
    assert!(!asked.iter().any(|p| p.contains("/blobs/")), "{asked:?}");

    // A payload whose bytes are not its digest (same size).
    let mut w = Parts::new().world(addr);
    let tag = sig_tag(&w);
    let v: serde_json::Value = serde_json::from_slice(&w.manifests[&tag]).unwrap();
    let d = v["layers"][0]["digest"].as_str().unwrap().to_owned();
    let mut forged = w.blobs[&d].clone();
    forged[0] ^= 1;
    w.blobs.insert(d.clone(), forged);
    run(
        "a payload that is not its digest",
        w,
        &["nothing written", &d],
    );

    // The artifact altered after signing (a man in the middle): the signature names another.
    let parts = Parts::new();
    let signed = parts.world(addr);
    let mut w = signed.clone();
    let altered = edited(&parts, |v| {
        v["layers"][3]["annotations"]["org.opencontainers.image.title"] = "units/y.service".into();
    });
    let tag_key = sig_tag(&signed);
    let att = signed.manifests[&tag_key].clone();
    w.manifests.clear();
    w.manifests
        .insert(format!("ns/bundle/manifests/{HOST}"), altered.clone());
    w.manifests.insert(
        format!(
            "ns/bundle/manifests/sha256-{}.sig",
            Digest::of(&altered).hex()
        ),
        att,
    );
    run(
        "an artifact altered after signing",
        w,
        &["re-tagged or substituted"],
    );
}

#[test]
fn a_signed_artifact_whose_manifest_json_disagrees_is_refused() {
    let addr = "127.0.50.84:5000";
    let root = host_root();
    let current: Arc<Mutex<World>> = Arc::new(Mutex::new(Parts::new().world(addr)));
    let serving = current.clone();
    serve(
        addr,
        Arc::new(move |r: &Req| serving.lock().unwrap().answer(r)),
    );
    let run = |attack: &str, w: World, why: &[&str]| {
        *current.lock().unwrap() = w;
        let r = activate(root.path(), addr, &[], &[]);
        refused(attack, root.path(), &r, why, 20);
    };

    // manifest.json of another host, in an artifact annotated for this one.
    let mut p = Parts::new();
    p.manifest.host = "10.10.10.11".into();
    p.seal();
    run(
        "another host's manifest.json",
        p.world(addr),
        &["bundle of host `10.10.10.11`"],
    );

    // Another generation than the artifact claims.
    let mut p = Parts::new();
    p.generation = Some("b".repeat(64));
    run(
        "another generation than the annotation",
        p.world(addr),
        &["claims generation `bbbb", "its manifest.json is generation"],
    );

    // A file the signed manifest does not list.
    let mut p = Parts::new();
    p.files
        .insert("units/evil.service".into(), b"[Service]\n".to_vec());
    let artifact = p.artifact();
    p.files.remove("units/evil.service");
    let mut w = p.world_of(addr, artifact);
    w.blobs.insert(
        Digest::of(b"[Service]\n").to_string(),
        b"[Service]\n".to_vec(),
    );
    run(
        "a file the signed manifest does not list",
        w,
        &["carries `units/evil.service`, which its signed manifest does not list"],
    );

    // A file the signed manifest lists and the artifact lacks.
    let mut p = Parts::new();
    p.manifest
        .files
        .insert("units/missing.service".into(), entry(b"gone"));
    p.seal();
    run(
        "a listed file the artifact lacks",
        p.world(addr),
        &["lacks `units/missing.service`"],
    );

    // A blob listed that no image uses.
    let mut p = Parts::new();
    p.images
        .insert(Digest::of(b"stray").to_string(), b"stray".to_vec());
    p.relist();
    run(
        "a blob no image uses",
        p.world(addr),
        &["which none of its images uses"],
    );

    // A signed index naming repositories that climb.
    for name in ["../x", "a/../../b", "A", ""] {
        let mut p = Parts::new();
        p.with_image(b"layer", 5);
        let index = String::from_utf8(p.files["oci/index.json"].clone())
            .unwrap()
            .replace("\"img\"", &format!("{name:?}"));
        p.files.insert("oci/index.json".into(), index.into_bytes());
        p.relist();
        run(
            &format!("an image named `{name}`"),
            p.world(addr),
            &["is not a repository path component"],
        );
    }
}

#[test]
fn a_layer_of_100_gb_is_streamed_and_refused_by_its_digest() {
    // The image manifest (hashing right, listed by the signed index) says 100 GB; the registry
    // sends other bytes: nothing is allocated by that size, the download is refused.
    let addr = "127.0.50.85:5000";
    let root = host_root();
    let mut p = Parts::new();
    let (_, layer) = p.with_image(b"the real layer", 100_000_000_000);
    let mut w = p.world(addr);
    w.blobs.insert(layer.to_string(), vec![7u8; 1 << 20]);
    serve_world(addr, w);
    let run = activate(root.path(), addr, &[], &[]);
    refused(
        "a 100 GB layer",
        root.path(),
        &run,
        &["1048576 bytes hashing to", "nothing written"],
        30,
    );
}

#[test]
fn a_stored_blob_of_the_wrong_size_is_refused_with_a_hint() {
    // A file planted in the store under a needed blob's name (a previous bug): the pull does
    // not count it as present; it names it and says how to clear it.
    let addr = "127.0.50.86:5000";
    let root = host_root();
    let mut p = Parts::new();
    let (_, layer) = p.with_image(b"layer bytes", 11);
    serve_world(addr, p.world(addr));
    let store = root.path().join("var/lib/infragen/blobs/sha256");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/infragen/generations")).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/infragen/roots")).unwrap();
    let planted = store.join(layer.hex());
    std::fs::write(&planted, b"short").unwrap();
    let (o, took) = activate(root.path(), addr, &[], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(20));
    assert!(err.contains("the store is corrupt"), "{err}");
    assert!(
        err.contains(&format!("hint: remove {}", planted.display())),
        "{err}"
    );
    assert!(!root.path().join("var/lib/infragen/current").exists());
    assert_eq!(
        files_below(&root.path().join("var/lib/infragen")),
        vec![planted]
    );
}

#[test]
fn a_bearer_realm_elsewhere_on_plain_http_gets_no_credentials() {
    // The registry asks for a token from a plain-HTTP server on another host: a harvester of
    // the credentials the auth file holds for the registry. Refused before any request to it.
    let addr = "127.0.50.87:5000";
    let elsewhere = "127.0.50.88:5001";
    let harvest = serve(
        elsewhere,
        Arc::new(|_: &Req| Answer::Full(200, vec![], br#"{"token":"t"}"#.to_vec())),
    );
    let realm = format!("http://{elsewhere}/token");
    serve(
        addr,
        Arc::new(move |_: &Req| {
            Answer::Full(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    format!(
                        r#"Bearer realm="{realm}",service="r",scope="repository:ns/bundle:pull""#
                    ),
                )],
                vec![],
            )
        }),
    );
    let root = host_root();
    let auth = root.path().join("auth.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode("user:secret");
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    let run = activate(
        root.path(),
        addr,
        &["--authfile", auth.to_str().unwrap()],
        &[],
    );
    std::fs::remove_file(&auth).unwrap();
    refused(
        "a plain-HTTP realm on another host",
        root.path(),
        &run,
        &["plain HTTP on another host; refused, no credentials sent"],
        20,
    );
    assert!(harvest.lock().unwrap().is_empty(), "the realm was asked");
}

#[test]
fn redirects_drop_credentials_and_never_leave_http() {
    // Blob downloads redirected: to another host (followed, the content checked by digest, the
    // `Authorization` the registry got not forwarded) and to `file://` (refused).
    let addr = "127.0.50.89:5000";
    let other = "127.0.50.89:5001";
    let parts = Parts::new();
    let w = parts.world(addr);
    let w2 = w.clone();
    let storage = serve(
        other,
        Arc::new(move |r: &Req| {
            let d = r.path.trim_start_matches("/storage/");
            w2.blobs
                .get(d)
                .map_or_else(not_found, |b| Answer::Full(200, vec![], b.clone()))
        }),
    );
    let target = Arc::new(Mutex::new(format!("http://{other}/storage/")));
    let t = target.clone();
    let b64 = base64::engine::general_purpose::STANDARD.encode("user:secret");
    let basic = format!("Basic {b64}");
    serve(
        addr,
        Arc::new(move |r: &Req| {
            if r.header("authorization") != Some(basic.as_str()) {
                return Answer::Full(
                    401,
                    vec![("WWW-Authenticate".into(), r#"Basic realm="r""#.into())],
                    vec![],
                );
            }
            match r.path.split_once("/blobs/") {
                Some((_, d)) => Answer::Full(
                    307,
                    vec![("Location".into(), format!("{}{d}", t.lock().unwrap()))],
                    vec![],
                ),
                None => w.answer(r),
            }
        }),
    );
    let root = host_root();
    let auth = root.path().join("auth.json");
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    let authfile = ["--authfile", auth.to_str().unwrap(), "--pull-only"];
    let (o, _) = activate(root.path(), addr, &authfile, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = storage.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the redirect was not followed");
    assert!(
        seen.iter().all(|r| r.header("authorization").is_none()),
        "credentials forwarded on a redirect: {seen:?}"
    );

    let root2 = host_root();
    *target.lock().unwrap() = "file:///etc/".into();
    let run = activate(root2.path(), addr, &authfile, &[]);
    refused(
        "a redirect to file://",
        root2.path(),
        &run,
        &["redirected", "to `file:///etc/sha256:", "refused"],
        20,
    );
}

#[test]
fn an_upload_location_on_another_host_gets_no_credentials() {
    // Pushing (the build side): the registry answers the upload's `POST` with a `Location` on
    // another host, where the chunks and the final `PUT` would carry its `Authorization`.
    let addr = "127.0.50.88:5000";
    let elsewhere = "127.0.50.88:5002";
    let harvest = serve(
        elsewhere,
        Arc::new(|_: &Req| Answer::Full(202, vec![], vec![])),
    );
    let to = format!("http://{elsewhere}/upload/1");
    serve(
        addr,
        Arc::new(move |r: &Req| match r.method.as_str() {
            "POST" => Answer::Full(202, vec![("Location".into(), to.clone())], vec![]),
            _ => not_found(),
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    std::fs::write(&path, b"blob").unwrap();
    let mut c = infragen::registry::Client::new(
        addr,
        &infragen::registry::Options {
            plain_http: true,
            ..infragen::registry::Options::default()
        },
    )
    .unwrap();
    let e = format!(
        "{:#}",
        c.push_blob("t/x", &Digest::of(b"blob"), 4, &path)
            .unwrap_err()
    );
    assert!(e.contains("off the registry; refused"), "{e}");
    assert!(
        harvest.lock().unwrap().is_empty(),
        "the other host was sent the upload"
    );
}
