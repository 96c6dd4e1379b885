//! The registry client and `infragen push` against a real registry (`docker-registry`, the
//! CNCF distribution server) on 127.0.50.N:5000, one address per test, and against small
//! scripted servers that lie. `skopeo` reads back what was pushed.
//!
//! Needs docker-registry and skopeo (`apt-get install docker-registry skopeo`);
//! `INFRAGEN_SKIP_REGISTRY=1` skips this tier loudly.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::TcpListener;
use std::path::Path;

use common::registry::{skipped, Registry};
use infragen::manifest::Digest;
use infragen::registry::{Client, Options, Pushed};

fn client(r: &Registry, chunk_size: u64) -> Client {
    Client::new(
        &r.addr,
        &Options {
            plain_http: true,
            authfile: None,
            chunk_size,
        },
    )
    .unwrap()
}

/// `bytes` written to `dir/name`; its digest and path.
fn blob(dir: &Path, name: &str, bytes: &[u8]) -> (Digest, u64, std::path::PathBuf) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    (Digest::of(bytes), bytes.len() as u64, p)
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn blobs_push_mount_chunk_and_come_back() {
    common::tier::binary(common::tier::Tier::Integration, "tests/registry.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(1);
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(&r, 1000);
    let (small, small_size, small_path) = blob(dir.path(), "small", b"{}");
    let (big, big_size, big_path) = blob(dir.path(), "big", &pseudo_random(4500, 7));

    assert_eq!(c.blob_exists("t/a", &small).unwrap(), None);
    let mut calls = Vec::new();
    assert_eq!(
        c.push_blob_with("t/a", &small, small_size, &small_path, &mut |n, t| {
            calls.push((n, t));
        })
        .unwrap(),
        Pushed::Uploaded
    );
    // One request: its progress is the whole blob, once it is taken.
    assert_eq!(calls, [(small_size, Some(small_size))]);
    assert_eq!(
        (
            c.stats.count("POST"),
            c.stats.count("PUT"),
            c.stats.count("PATCH")
        ),
        (1, 1, 0)
    );
    // Chunked: 4500 bytes in chunks of 1000 are five PATCHes and an empty PUT, with the
    // progress after each chunk.
    let mut calls = Vec::new();
    assert_eq!(
        c.push_blob_with("t/a", &big, big_size, &big_path, &mut |n, t| {
            calls.push((n, t));
        })
        .unwrap(),
        Pushed::Uploaded
    );
    let total = Some(big_size);
    assert_eq!(
        calls,
        [1000, 2000, 3000, 4000, 4500].map(|n| (n, total)),
        "progress after each chunk"
    );
    assert_eq!(
        (
            c.stats.count("POST"),
            c.stats.count("PUT"),
            c.stats.count("PATCH")
        ),
        (2, 2, 5)
    );
    let before = c.stats.total();
    assert_eq!(
        c.push_blob("t/a", &big, big_size, &big_path).unwrap(),
        Pushed::Skipped
    );
    assert_eq!(
        c.stats.total(),
        before,
        "a blob this client pushed is not asked for again"
    );
    // Another repository: mounted from the one the client pushed it to.
    assert_eq!(
        c.push_blob("t/b", &big, big_size, &big_path).unwrap(),
        Pushed::Mounted
    );
    assert_eq!(c.stats.count("PATCH"), 5);
    assert_eq!(c.stats.bytes_up, small_size + big_size);

    // A fresh client asks with HEAD and uploads nothing.
    let mut fresh = client(&r, 1000);
    assert_eq!(fresh.blob_exists("t/b", &big).unwrap(), Some(big_size));
    assert_eq!(
        fresh.push_blob("t/a", &big, big_size, &big_path).unwrap(),
        Pushed::Skipped
    );
    assert_eq!(fresh.stats.count("HEAD"), 2);
    assert_eq!(fresh.stats.total(), 2);

    // Manifests by digest and by tag, read back and resolved.
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{small}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{big}","size":{big_size}}}]}}"#
    );
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let d = c
        .put_manifest(
            "t/a",
            Digest::of(manifest.as_bytes()).as_str(),
            mt,
            manifest.as_bytes(),
        )
        .unwrap();
    assert_eq!(
        c.put_manifest("t/a", "v1", mt, manifest.as_bytes())
            .unwrap(),
        d
    );
    assert!(c
        .put_manifest("t/a", Digest::of(b"x").as_str(), mt, manifest.as_bytes())
        .is_err());
    let (got_mt, bytes, got) = c.get_manifest("t/a", "v1", &[mt]).unwrap();
    assert_eq!(
        (got_mt.as_str(), bytes.as_slice(), &got),
        (mt, manifest.as_bytes(), &d)
    );
    assert_eq!(c.get_manifest("t/a", d.as_str(), &[mt]).unwrap().2, d);
    assert_eq!(c.resolve("t/a", "v1").unwrap(), d);
    assert_eq!(c.tags("t/a").unwrap(), vec!["v1".to_owned()]);
    let e = format!("{:#}", c.resolve("t/a", "nope").unwrap_err());
    assert!(e.contains("has no manifest `t/a:nope`"), "{e}");

    // Blobs come back verified; a wrong expectation writes nothing.
    let dest = dir.path().join("got/big");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    c.get_blob("t/b", &big, big_size, &dest).unwrap();
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&big_path).unwrap()
    );
    let e = format!(
        "{:#}",
        c.get_blob("t/b", &big, big_size - 1, &dir.path().join("got/short"))
            .unwrap_err()
    );
    assert!(e.contains("is larger than the 4499 bytes expected"), "{e}");
    let e = format!(
        "{:#}",
        c.get_blob("t/b", &small, 2, &dir.path().join("got/none"))
            .unwrap_err()
    );
    assert!(e.contains("answered 404"), "{e}");
    assert_eq!(
        std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
        1,
        "only the good blob"
    );
}

#[test]
fn a_tampered_blob_is_refused() {
    common::tier::binary(common::tier::Tier::Integration, "tests/registry.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(2);
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(&r, 1 << 20);
    let (d, size, path) = blob(dir.path(), "b", b"the real content");
    c.push_blob("t/x", &d, size, &path).unwrap();
    // Same size, other bytes, in the registry's own storage.
    std::fs::write(r.blob_file(d.as_str()), b"THE REAL CONTENT").unwrap();
    let dest = dir.path().join("out");
    let e = format!("{:#}", c.get_blob("t/x", &d, size, &dest).unwrap_err());
    assert!(
        e.contains(&format!("hashing to {}", Digest::of(b"THE REAL CONTENT"))),
        "{e}"
    );
    assert!(e.contains("nothing written"), "{e}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

/// A server on `addr` answering each request (one per connection) with what `answer` returns
/// for its request line and headers; stops after `n` requests. Returns what it was asked.
fn scripted(
    addr: &str,
    n: usize,
    answer: impl Fn(&str) -> Vec<u8> + Send + 'static,
) -> std::thread::JoinHandle<Vec<String>> {
    let listener = TcpListener::bind(addr).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            s.write_all(&answer(&head)).unwrap();
            seen.push(head);
        }
        seen
    })
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn a_server_that_sends_more_than_expected_is_cut_off() {
    common::tier::binary(common::tier::Tier::Integration, "tests/registry.rs");
    let content = b"0123456789".repeat(10);
    let d = Digest::of(&content[..50]);
    let server = scripted("127.0.50.3:5000", 1, move |_| {
        response("200 OK", &[], &content)
    });
    let mut c = Client::new(
        "127.0.50.3:5000",
        &Options {
            plain_http: true,
            ..Options::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = format!(
        "{:#}",
        c.get_blob("t/x", &d, 50, &dir.path().join("b"))
            .unwrap_err()
    );
    assert!(
        e.contains("is larger than the 50 bytes expected; nothing written"),
        "{e}"
    );
    assert_eq!(
        c.stats.bytes_down, 51,
        "reading stops one byte past the expected size"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    server.join().unwrap();
}

#[test]
fn bearer_challenges_fetch_a_token_with_the_auth_file_credentials() {
    use base64::Engine as _;
    common::tier::binary(common::tier::Tier::Integration, "tests/registry.rs");
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let dir = tempfile::tempdir().unwrap();
    let authfile = dir.path().join("auth.json");
    std::fs::write(
        &authfile,
        format!(r#"{{"auths":{{"127.0.50.4:5000":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    let basic = format!("authorization: basic {}", b64.to_ascii_lowercase());
    let server = scripted("127.0.50.4:5000", 4, move |head| {
        let h = head.to_ascii_lowercase();
        if h.starts_with("get /token?service=reg&scope=repository%3at%2fx%3apull") {
            assert!(
                h.contains(&basic),
                "the token request carries the credentials: {head}"
            );
            response("200 OK", &[], br#"{"token":"tok"}"#)
        } else if h.contains("authorization: bearer tok") {
            response("200 OK", &[("Content-Length", "0")], b"")
        } else {
            response(
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    r#"Bearer realm="http://127.0.50.4:5000/token",service="reg",scope="repository:t/x:pull""#,
                )],
                b"",
            )
        }
    });
    let mut c = Client::new(
        "127.0.50.4:5000",
        &Options {
            plain_http: true,
            authfile: Some(authfile),
            ..Options::default()
        },
    )
    .unwrap();
    let d = Digest::of(b"x");
    // 401, token, retry; then the token is sent at once.
    assert_eq!(c.blob_exists("t/x", &d).unwrap(), Some(0));
    assert_eq!(c.blob_exists("t/x", &d).unwrap(), Some(0));
    assert_eq!(c.stats.count("GET"), 1, "one token request");
    assert_eq!(c.stats.count("HEAD"), 3);
    let seen = server.join().unwrap();
    assert!(seen[0].starts_with("HEAD /v2/t/x/blobs/"), "{seen:?}");
}

/// Builds `profile` into `dir/out` (its own PKI state in `dir/pki`).
fn build(profile: &str, dir: &Path) -> std::path::PathBuf {
    let out = dir.join("out");
    let o = common::infragen()
        .args(["build", "--profile", profile, "--out"])
        .arg(&out)
        .arg("--lock")
        .arg(common::lock())
        .arg("--pki")
        .arg(dir.join("pki"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    common::ok(&o, &format!("build {profile}"));
    out
}

/// Builds three-node again with every host's secrets sealed to a key of its own (`host init`
/// into a scratch root per host), into a fresh `out`.
fn build_sealed(dir: &Path) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(common::root().join("profiles/three-node.yml")).unwrap();
    for ip in ["10.10.10.10", "10.10.10.11", "10.10.10.12"] {
        let root = dir.join("hosts").join(ip);
        std::fs::create_dir_all(&root).unwrap();
        let o = common::infragen()
            .args(["host", "init", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        let key = common::ok(&o, "host init").trim().to_owned();
        let from = format!("{ip}: {{ infra_seq: ");
        assert!(text.contains(&from));
        text = text.replacen(
            &from,
            &format!("{ip}: {{ infragen_host_key: {key}, infra_seq: "),
            1,
        );
    }
    let profile = dir.join("sealed.yml");
    std::fs::write(&profile, text).unwrap();
    let sealed = dir.join("sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    build(profile.to_str().unwrap(), &sealed)
}

fn push(out: &Path, reference: &str, extra: &[&str]) -> std::process::Output {
    common::infragen()
        .arg("push")
        .arg(out)
        .arg(reference)
        .arg("--plain-http")
        .args(extra)
        .env("HOME", out)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap()
}

/// The number after which `word` follows in `s` (`"12 blobs uploaded"` → 12 for `blobs uploaded`).
fn count(s: &str, word: &str) -> u64 {
    let at = s.find(word).unwrap_or_else(|| panic!("no `{word}` in {s}"));
    s[..at]
        .trim_end()
        .rsplit([' ', '('])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn skopeo(args: &[&str]) -> String {
    let o = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .unwrap();
    common::ok(&o, &format!("skopeo {args:?}"))
}

#[test]
fn a_build_is_pushed_once_read_back_by_skopeo_and_not_pushed_again() {
    use std::collections::{BTreeMap, BTreeSet};
    common::tier::binary(common::tier::Tier::Integration, "tests/registry.rs");
    if skipped() {
        return;
    }
    let r = Registry::start(10);
    let tmp = tempfile::tempdir().unwrap();
    let out = build("three-node", tmp.path());
    let prefix = format!("{}/infragen", r.addr);

    // As built, the secrets are in clear: refused, nothing sent.
    let o = push(&out, &prefix, &[]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr,
        "error: host `10.10.10.10`: `secrets/grafana/admin-password` is a secret in clear (not an `.age` file); refusing to push the bundle\nhint: run `infragen host init` on the host, put its key in the profile as `infragen_host_key`, and rebuild\n"
    );
    let out = build_sealed(tmp.path());

    // What must be uploaded: every distinct blob of the images and of the bundles, and `{}`.
    let mut blobs = BTreeSet::from([infragen::ship::artifact::EMPTY_DIGEST.to_owned()]);
    let mut images = BTreeSet::new();
    let hosts = infragen::ship::host_dirs(&out).unwrap();
    for dir in &hosts {
        let layout = dir.join("oci");
        // A regular node's bundle has no image layout (tests/nodes.rs).
        let refs = if layout.is_dir() {
            infragen::oci::layout::refs(&layout).unwrap()
        } else {
            BTreeMap::new()
        };
        for (name, digest) in refs {
            let m: serde_json::Value = serde_json::from_slice(
                &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
            )
            .unwrap();
            blobs.insert(m["config"]["digest"].as_str().unwrap().to_owned());
            for l in m["layers"].as_array().unwrap() {
                blobs.insert(l["digest"].as_str().unwrap().to_owned());
            }
            images.insert((name, digest));
        }
        for f in infragen::ship::scan(dir).unwrap() {
            blobs.insert(f.digest.to_string());
        }
    }
    assert_eq!(hosts.len(), 3);

    // Chunks of 4 MiB: the large layers go up in several PATCHes. With `-v`, each upload's
    // progress is a plain line on stderr (the first at once, then at most one a second): a
    // chunked layer's first is its first chunk.
    let o = push(&out, &prefix, &["--chunk-size", "4194304", "-v"]);
    let summary = common::ok(&o, "push");
    eprintln!("{summary}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("push: ") && l.contains(" 4194304/") && l.ends_with(" bytes")),
        "no progress line of a chunked upload:\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr}"
    );
    assert_eq!(
        count(&summary, "blobs uploaded"),
        blobs.len() as u64,
        "{summary}"
    );
    assert!(
        count(&summary, "mounted") > 0,
        "layers shared by image repositories: {summary}"
    );
    let manifests = images.len() as u64 + 2 * 3;
    assert_eq!(count(&summary, "manifests written"), manifests, "{summary}");
    assert!(count(&summary, "PATCH") > 0, "{summary}");
    // Every upload ends with one PUT; every upload or mount starts with one POST.
    assert_eq!(
        count(&summary, "PUT"),
        blobs.len() as u64 + manifests,
        "{summary}"
    );
    assert_eq!(
        count(&summary, "POST"),
        blobs.len() as u64 + count(&summary, "mounted"),
        "{summary}"
    );

    // skopeo reads every image back, by digest.
    let copies = tmp.path().join("copies");
    for (name, digest) in &images {
        let at = format!("docker://{prefix}/{name}@{digest}");
        let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--no-tags",
            "--tls-verify=false",
            &at,
        ]))
        .unwrap();
        assert_eq!(inspect["Digest"], digest.as_str());
        let dest = format!("oci:{}:{name}", copies.display());
        skopeo(&["copy", "--quiet", "--src-tls-verify=false", &at, &dest]);
    }
    let read_back = infragen::oci::layout::refs(&copies).unwrap();
    assert_eq!(
        read_back.len(),
        images.iter().map(|(n, _)| n).collect::<BTreeSet<_>>().len()
    );

    // Each bundle comes back by host tag and by generation, listing its files.
    let mut c = client(&r, 1 << 20);
    for dir in &hosts {
        let m =
            infragen::manifest::Manifest::parse(&std::fs::read(dir.join("manifest.json")).unwrap())
                .unwrap();
        let (mt, bytes, d) = c
            .get_manifest(
                "infragen/bundle",
                &m.host,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .unwrap();
        assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(c.resolve("infragen/bundle", m.id()).unwrap(), d);
        let files = infragen::ship::bundle_files(&bytes).unwrap();
        assert_eq!(files, infragen::ship::scan(dir).unwrap());
        assert!(files.iter().any(|f| f.path == "manifest.json"));
        assert!(files
            .iter()
            .any(|f| f.path.starts_with("secrets/") && f.path.contains(".age")));
        let f = files.iter().find(|f| f.path == "manifest.json").unwrap();
        let dest = tmp.path().join("manifest.json");
        c.get_blob("infragen/bundle", &f.digest, f.size, &dest)
            .unwrap();
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(dir.join("manifest.json")).unwrap()
        );
    }

    // Again: nothing uploaded, only one HEAD per image and three per bundle.
    let o = push(&out, &prefix, &[]);
    let again = common::ok(&o, "second push");
    eprintln!("{again}");
    assert!(
        again.contains("0 blobs uploaded (0 B), 0 mounted, 0 already there; 0 manifests written"),
        "{again}"
    );
    let heads = images.len() as u64 + 3 * 3;
    assert!(
        again.contains(&format!("; {heads} requests ({heads} HEAD),")),
        "{again}"
    );
}
