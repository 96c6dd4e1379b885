//! Package downloads against a small HTTP server of our own on 127.0.52.x and 127.0.54.x
//! (fast tier): a transfer cut mid-body resumes with `Range`, a server that ignores `Range`
//! sends the whole file again, `5xx` answers are retried a bounded number of times, a wrong
//! hash, a size other than the lock's or a `404` is refused at once with nothing left in the
//! cache, and progress is reported.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use infragen::pkg::apt::Source;
use infragen::pkg::fetch::{Cache, Downloader, Expected};

/// What the server does with one request.
#[derive(Clone)]
enum Answer {
    /// Status and body; `Content-Length` is the body's.
    Full(u16, Vec<u8>),
    /// A `200` announcing `len` bytes that sends only `body` and closes the connection.
    Cut { len: usize, body: Vec<u8> },
    /// The part of `file` the request's `Range` asks for, as a `206`.
    Range(Vec<u8>),
    /// A `206` of `file` one byte past what the request's `Range` asks for.
    Shifted(Vec<u8>),
}

/// A request as the server saw it: path and `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    range: Option<String>,
}

/// Serves `answers` in order (one per request, the last one again when they run out) on
/// `addr`; returns what it was asked.
fn serve(addr: &str, answers: Vec<Answer>) -> Arc<Mutex<Vec<Seen>>> {
    let listener = TcpListener::bind(addr).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let queue = Arc::new(Mutex::new(VecDeque::from(answers)));
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let (log, queue) = (log.clone(), queue.clone());
            std::thread::spawn(move || {
                let _ = connection(s, &log, &queue);
            });
        }
    });
    seen
}

fn connection(
    s: TcpStream,
    log: &Mutex<Vec<Seen>>,
    queue: &Mutex<VecDeque<Answer>>,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut out = s;
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first)? == 0 {
            return Ok(());
        }
        let mut words = first.split_whitespace();
        let method = words.next().unwrap_or("").to_owned();
        let path = words.next().unwrap_or("").to_owned();
        let mut range = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("range") {
                    range = Some(v.trim().to_owned());
                }
            }
        }
        log.lock().unwrap().push(Seen {
            path,
            range: range.clone(),
        });
        // As a proxy: the tunnel is opened, and what comes through it is served the same way.
        if method == "CONNECT" {
            out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            continue;
        }
        let answer = {
            let mut q = queue.lock().unwrap();
            if q.len() > 1 {
                q.pop_front().unwrap()
            } else {
                q.front().cloned().unwrap()
            }
        };
        match &answer {
            Answer::Full(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                out.write_all(head.as_bytes())?;
                out.write_all(body)?;
            }
            Answer::Cut { len, body } => {
                out.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
                )?;
                out.write_all(body)?;
                out.flush()?;
                return Ok(());
            }
            Answer::Range(file) | Answer::Shifted(file) => {
                let shift = usize::from(matches!(answer, Answer::Shifted(_)));
                let from: usize = shift
                    + range
                        .as_deref()
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.strip_suffix('-'))
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                let rest = &file[from..];
                out.write_all(
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\n\r\n",
                        rest.len(),
                        file.len() - 1,
                        file.len()
                    )
                    .as_bytes(),
                )?;
                out.write_all(rest)?;
            }
        }
    }
}

/// A file of `n` bytes that is not all one byte.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect()
}

fn sha(bytes: &[u8]) -> String {
    infragen::digest::sha256_hex(bytes)
}

fn source(addr: &str) -> Source {
    Source {
        uri: format!("http://{addr}/debian"),
        suites: vec!["stable".into()],
        components: vec!["main".into()],
        signed_by: None,
        arch: None,
        trusted: false,
    }
}

/// Every file below `dir` (temporary files included).
fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// A downloader that waits little between tries.
fn quick() -> Downloader {
    let mut d = Downloader::default();
    d.backoff = std::time::Duration::from_millis(50);
    d
}

#[test]
fn a_download_cut_mid_body_resumes_with_range_and_is_whole() {
    let addr = "127.0.52.1:8080";
    let file = content(300_000);
    let seen = serve(
        addr,
        vec![
            Answer::Cut {
                len: file.len(),
                body: file[..100_000].to_vec(),
            },
            Answer::Range(file.clone()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_downloader(quick());
    let mut calls = Vec::new();
    let path = cache
        .fetch(
            "hello",
            "1.0",
            "pool/main/h/hello.deb",
            &sha(&file),
            Some(file.len() as u64),
            &[],
            &[source(addr)],
            &mut |done, total| calls.push((done, total)),
        )
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), file);
    assert_eq!(path, dir.path().join(format!("debs/{}.deb", sha(&file))));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].path, "/debian/pool/main/h/hello.deb");
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    // Progress: never backwards, resumed where it stopped, ends at the whole file.
    let total = Some(file.len() as u64);
    assert_eq!(calls.first(), Some(&(0, total)));
    assert!(calls.contains(&(100_000, total)), "{calls:?}");
    assert_eq!(calls.last(), Some(&(file.len() as u64, total)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
    assert_eq!(files(dir.path()), vec![path], "only the package is left");
    // A second fetch takes it from the cache: no request.
    cache
        .fetch(
            "hello",
            "1.0",
            "pool/main/h/hello.deb",
            &sha(&file),
            None,
            &[],
            &[source(addr)],
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(
        cache
            .deb(
                "hello",
                "1.0",
                "pool/main/h/hello.deb",
                &sha(&file),
                file.len() as u64,
                &[],
                &[],
                &mut |_, _| panic!("a cached package reports no download progress")
            )
            .unwrap(),
        file
    );
}

#[test]
fn a_server_that_ignores_range_sends_the_file_again() {
    let addr = "127.0.52.2:8080";
    let file = content(200_000);
    let seen = serve(
        addr,
        vec![
            Answer::Cut {
                len: file.len(),
                body: file[..50_000].to_vec(),
            },
            Answer::Full(200, file.clone()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.deb");
    quick()
        .download(
            &format!("http://{addr}/x.deb"),
            &dest,
            Expected {
                sha256: &sha(&file),
                size: None,
            },
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=50000-"));
}

#[test]
fn another_range_than_the_one_asked_is_not_spliced_in() {
    let addr = "127.0.52.11:8080";
    let file = content(200_000);
    let seen = serve(
        addr,
        vec![
            Answer::Cut {
                len: file.len(),
                body: file[..50_000].to_vec(),
            },
            Answer::Shifted(file.clone()),
            Answer::Full(200, file.clone()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.deb");
    let expected = Expected {
        sha256: &sha(&file),
        size: Some(file.len() as u64),
    };
    quick()
        .download(
            &format!("http://{addr}/x.deb"),
            &dest,
            expected,
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    let seen = seen.lock().unwrap().clone();
    let ranges: Vec<Option<&str>> = seen.iter().map(|s| s.range.as_deref()).collect();
    assert_eq!(ranges, [None, Some("bytes=50000-"), None]);
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let addr = "127.0.52.3:8080";
    let file = content(10_000);
    let busy = || Answer::Full(503, b"busy".to_vec());
    let seen = serve(addr, vec![busy(), busy(), Answer::Full(200, file.clone())]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.deb");
    let url = format!("http://{addr}/x.deb");
    let expected = Expected {
        sha256: &sha(&file),
        size: Some(file.len() as u64),
    };
    quick()
        .download(&url, &dest, expected, &mut |_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    assert_eq!(seen.lock().unwrap().len(), 3);

    // Always failing: three tries, then an error naming the URL and the answer; nothing left.
    let addr = "127.0.52.4:8080";
    let seen = serve(addr, vec![busy()]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/x.deb");
    let e = quick()
        .download(&url, &dir.path().join("x.deb"), expected, &mut |_, _| {})
        .unwrap_err();
    let e = format!("{e:#}");
    assert_eq!(
        e,
        format!("fetching {url}: gave up after 3 attempts: fetching {url}: the server answered 503 Service Unavailable")
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_wrong_hash_is_refused_at_once_with_nothing_left_in_the_cache() {
    let addr = "127.0.52.5:8080";
    let file = content(50_000);
    let mut other = file.clone();
    other[25_000] ^= 1;
    let seen = serve(addr, vec![Answer::Full(200, other)]);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_downloader(quick());
    let e = cache
        .fetch(
            "hello",
            "1.0",
            "pool/h/hello.deb",
            &sha(&file),
            Some(file.len() as u64),
            &[],
            &[source(addr)],
            &mut |_, _| {},
        )
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.starts_with(&format!("http://{addr}/debian/pool/h/hello.deb: sha256 ")),
        "{e}"
    );
    assert!(
        e.ends_with(&format!(
            "does not match the lock's {} for `hello`",
            sha(&file)
        )),
        "{e}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a hash mismatch is not retried"
    );
    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());

    // More bytes than the lock says: refused as they come, not retried.
    let addr = "127.0.52.6:8080";
    let seen = serve(addr, vec![Answer::Full(200, content(60_000))]);
    let e = quick()
        .download(
            &format!("http://{addr}/x.deb"),
            &dir.path().join("x.deb"),
            Expected {
                sha256: &sha(&file),
                size: Some(file.len() as u64),
            },
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(
        format!("{e:#}")
            .contains("the server sends 60000 bytes, 50000 were expected; nothing kept"),
        "{e:#}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_404_names_the_url_and_is_not_retried() {
    let addr = "127.0.52.7:8080";
    let seen = serve(addr, vec![Answer::Full(404, b"no".to_vec())]);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_downloader(quick());
    let sha = "0".repeat(64);
    let e = cache
        .fetch(
            "gone",
            "1.0",
            "pool/g/gone.deb",
            &sha,
            None,
            &[],
            &[source(addr)],
            &mut |_, _| {},
        )
        .unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!("package `gone` 1.0 is not on the mirror any more (404 Not Found: http://{addr}/debian/pool/g/gone.deb): the lock pins a version the mirror has dropped\nhint: run `infragen lock` to pin the versions the mirror has now (pass the same --lock), then build again; `infragen repo sync` keeps a local copy of the pinned packages")
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());
    // Metadata the same way.
    let e = infragen::pkg::fetch::get_with(
        &quick(),
        &format!("http://{addr}/debian/dists/x/InRelease"),
    )
    .unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!(
            "fetching http://{addr}/debian/dists/x/InRelease: the server answered 404 Not Found"
        )
    );
}

#[test]
fn metadata_is_retried_and_read_whole() {
    let addr = "127.0.52.8:8080";
    let text = b"Origin: test\n".repeat(1000);
    let seen = serve(
        addr,
        vec![
            Answer::Cut {
                len: text.len(),
                body: text[..100].to_vec(),
            },
            Answer::Full(200, text.clone()),
        ],
    );
    let got = infragen::pkg::fetch::get_with(&quick(), &format!("http://{addr}/Release")).unwrap();
    assert_eq!(got, text);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn the_profiles_proxy_carries_a_download_and_loopback_stays_direct() {
    // The host below is never resolved or reached: the proxy (ours, on loopback) is asked.
    let proxy = "127.0.52.9:3128";
    let file = content(20_000);
    let log = serve(proxy, vec![Answer::Full(200, file.clone())]);
    let proxy_env =
        std::collections::BTreeMap::from([("http_proxy".to_owned(), format!("http://{proxy}"))]);
    let proxies = infragen::net::Proxies::from_vars(|_| None).with_profile(&proxy_env);
    let d = Downloader::new(proxies);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.deb");
    let expected = Expected {
        sha256: &sha(&file),
        size: Some(file.len() as u64),
    };
    d.download(
        "http://deb.example.invalid/pool/x.deb",
        &dest,
        expected,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    let seen = log.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.path.contains("deb.example.invalid")),
        "the proxy was not asked for the host: {seen:?}"
    );
    // A loopback server is reached directly, with the same downloader.
    let addr = "127.0.52.10:8080";
    let direct = serve(addr, vec![Answer::Full(200, file.clone())]);
    std::fs::remove_file(&dest).unwrap();
    d.download(
        &format!("http://{addr}/x.deb"),
        &dest,
        expected,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(direct.lock().unwrap().len(), 1);
    assert_eq!(
        log.lock().unwrap().len(),
        seen.len(),
        "the proxy saw the loopback request"
    );
}

#[test]
fn a_download_that_failed_is_resumed_by_the_next_run() {
    // The first run: every try is cut, at 60,000 bytes then later; what came is kept.
    let addr = "127.0.52.15:8080";
    let file = content(300_000);
    let cut = |at: usize| Answer::Cut {
        len: file.len(),
        body: file[..at].to_vec(),
    };
    let first = serve(addr, vec![cut(60_000)]);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_downloader(quick());
    let fetch = |cache: &Cache, addr: &str| {
        cache.fetch(
            "hello",
            "1.0",
            "pool/h/hello.deb",
            &sha(&file),
            Some(file.len() as u64),
            &[],
            &[source(addr)],
            &mut |_, _| {},
        )
    };
    let e = format!("{:#}", fetch(&cache, addr).unwrap_err());
    assert!(e.contains("gave up after 3 attempts"), "{e}");
    // The first try got 60,000 bytes; the next two asked for the rest and got a whole answer
    // cut again (a server ignoring `Range`), so 60,000 bytes are what is kept.
    assert_eq!(first.lock().unwrap().len(), 3);
    let partial = dir.path().join(format!("debs/.{}.deb.partial", sha(&file)));
    assert_eq!(std::fs::read(&partial).unwrap(), file[..60_000]);

    // The next run asks only for the rest.
    let addr = "127.0.52.16:8080";
    let second = serve(addr, vec![Answer::Range(file.clone())]);
    let path = fetch(&cache, addr).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), file);
    let seen = second.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=60000-"));
    assert_eq!(files(dir.path()), vec![path]);

    // Kept bytes of another file: thrown away, the file fetched whole.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("debs")).unwrap();
    let partial = dir.path().join(format!("debs/.{}.deb.partial", sha(&file)));
    std::fs::write(&partial, vec![b'x'; 1000]).unwrap();
    let addr = "127.0.52.17:8080";
    let third = serve(addr, vec![Answer::Range(file.clone())]);
    let cache = Cache::new(dir.path()).with_downloader(quick());
    let path = fetch(&cache, addr).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), file);
    let ranges: Vec<Option<String>> = third
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.range.clone())
        .collect();
    assert_eq!(ranges, [Some("bytes=1000-".to_owned()), None]);
    assert_eq!(files(dir.path()), vec![path]);
}

/// The lock's size reaches the download: a package whose server sends another size than the
/// lock says is refused before its body is read, naming the package and the URL, with nothing
/// in the cache; an index longer than its Release says is not read past that size.
#[test]
fn a_package_or_index_of_another_size_than_expected_is_refused_naming_it() {
    let addr = "127.0.54.1:8080";
    let file = content(50_000);
    serve(addr, vec![Answer::Full(200, file.clone())]);
    let dir = tempfile::tempdir().unwrap();
    let e = Cache::new(dir.path())
        .deb(
            "hello",
            "1.0",
            "pool/main/h/hello.deb",
            &sha(&file),
            file.len() as u64 - 1,
            &[],
            &[source(addr)],
            &mut |_, _| {},
        )
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.starts_with("package `hello` 1.0 (pool/main/h/hello.deb, sha256 "),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "http://{addr}/debian/pool/main/h/hello.deb: the server sends 50000 bytes, 49999 \
             were expected; nothing kept"
        )),
        "{e}"
    );
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    let url = format!("http://{addr}/Packages");
    let e = infragen::pkg::fetch::get_at_most_with(&quick(), &url, 49_999).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{url}: larger than 49999 bytes; refused")
    );
    assert_eq!(
        infragen::pkg::fetch::get_at_most_with(&quick(), &url, 50_000).unwrap(),
        file
    );
}

/// `Cache::deb`, which builds and `repo images` call, passes the download's progress on: bytes
/// that never go backwards and end at the whole file, the total from `Content-Length`.
#[test]
fn a_package_download_reports_its_bytes() {
    let addr = "127.0.52.20:8080";
    let file = content(200_000);
    serve(addr, vec![Answer::Full(200, file.clone())]);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_downloader(quick());
    let mut calls = Vec::new();
    let bytes = cache
        .deb(
            "hello",
            "1.0",
            "pool/main/h/hello.deb",
            &sha(&file),
            file.len() as u64,
            &[],
            &[source(addr)],
            &mut |done, total| calls.push((done, total)),
        )
        .unwrap();
    assert_eq!(bytes, file);
    let total = Some(file.len() as u64);
    assert_eq!(calls.last(), Some(&(file.len() as u64, total)), "{calls:?}");
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
}
