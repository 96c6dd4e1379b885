//! APT as strict as apt (issue 15): `infragen lock` against signed repositories made here
//! (a throwaway key made with `gpg`, `file:` sources), one per way a source can lie. Each is
//! refused with a message naming the source, and nothing is written: a correctly signed but
//! expired Release (a replay), a Release dated in the future, a Release for another suite, a
//! `Packages` index longer than its Release says, one failing source beside a good one (a
//! downgrade by blocking the newer source); and `build` refuses a `.deb` whose size is not the
//! lock's. The snapshot override (`--apt-snapshot-at`) lets the expired one through, saying so
//! (and as a `warning` event under `--json`); `--drop-source` leaves a failing source out on
//! purpose.
//!
//! Integration tier: it needs `gpg` and `gpgv`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::signed_apt::{now, source_line, suite, Key, Suite};
use common::tier::{binary, Tier};

const DAY: i64 = 86_400;

fn tier() {
    binary(Tier::Integration, "tests/apt_strict.rs");
}

/// The packages of the made repository (`tests/common/hermetic.rs`): every package the
/// recipes name, so that a lock can resolve. Made once per test process.
fn made() -> &'static common::hermetic::Repo {
    static REPO: std::sync::OnceLock<common::hermetic::Repo> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-apt-strict-")
            .tempdir()
            .unwrap()
            .keep();
        common::hermetic::repo(&dir)
    })
}

/// The made `Packages` index (`lock` reads no `.deb`: its `Filename`s need not resolve).
fn packages() -> String {
    fs::read_to_string(made().dir.join("Packages")).unwrap()
}

/// One test's world: an `/etc/apt` and where the lock goes.
struct World {
    dir: tempfile::TempDir,
    key: Key,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            key: Key::new("infragen-test-archive"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn lock(&self) -> PathBuf {
        self.path("infragen.lock")
    }

    /// A repository `name` with suite `bookworm` dated `date`, valid until `valid_until`,
    /// signed by this world's key; returns its `Packages` path.
    fn repo(&self, name: &str, date: i64, valid_until: Option<i64>, packages: &str) -> PathBuf {
        suite(
            &self.path(name),
            &Suite {
                dir: "bookworm",
                name: Some("oldstable"),
                codename: Some("bookworm"),
                date,
                valid_until,
            },
            packages,
            &self.key,
        )
    }

    /// `/etc/apt` with `lines` as its sources.list.
    fn sources(&self, lines: &[String]) {
        let etc = self.path("etc-apt");
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("sources.list"), lines.concat()).unwrap();
    }

    fn line(&self, name: &str) -> String {
        source_line(&self.path(name), "bookworm", &self.key.keyring)
    }

    fn uri(&self, name: &str) -> String {
        format!("file:{}/", self.path(name).display())
    }

    /// `infragen lock` with `extra`, against this world's sources.
    fn run(&self, extra: &[&str]) -> Output {
        common::infragen()
            .arg("lock")
            .arg("--apt-dir")
            .arg(self.path("etc-apt"))
            .arg("--lock")
            .arg(self.lock())
            .args(extra)
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap()
    }

    /// Runs `lock`, which must fail with exit 1, stderr holding every one of `wanted`, and
    /// no lock file written. Returns stderr.
    fn refused(&self, extra: &[&str], wanted: &[&str]) -> String {
        let o = self.run(extra);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{err}");
        for w in wanted {
            assert!(err.contains(w), "stderr lacks {w:?}:\n{err}");
        }
        eprintln!("lock {extra:?} refused:\n{err}");
        assert!(!self.lock().exists(), "a lock was written:\n{err}");
        err
    }

    /// The lock's version of `name` in any image.
    fn locked_version(&self, name: &str) -> String {
        let lock = infragen::lock::Lock::load(&self.lock()).unwrap();
        lock.images
            .values()
            .flat_map(|i| &i.packages)
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the lock"))
            .version
            .clone()
    }
}

#[test]
fn a_valid_signed_repository_locks() {
    tier();
    let w = World::new();
    let t = now();
    w.repo("a", t - DAY, Some(t + 7 * DAY), &packages());
    w.sources(&[w.line("a")]);
    let o = w.run(&[]);
    common::ok(&o, "lock against a valid signed repository");
    assert_eq!(w.locked_version("libinfragen-test0"), "1.0-1");
    let lock: serde_json::Value = serde_json::from_slice(&fs::read(w.lock()).unwrap()).unwrap();
    assert_eq!(lock["source_date_epoch"], t - DAY, "the Release's Date");
}

#[test]
fn an_expired_release_is_refused_and_the_snapshot_override_accepts_it_saying_so() {
    tier();
    let w = World::new();
    let t = now();
    let date = t - 30 * DAY;
    w.repo("a", date, Some(date + 7 * DAY), &packages());
    w.sources(&[w.line("a")]);
    let source = format!("APT source `{} bookworm`", w.uri("a"));
    let err = w.refused(
        &[],
        &[
            &source,
            "the Release expired: Valid-Until ",
            "--apt-snapshot-at",
        ],
    );
    assert!(
        err.contains("1 APT source failed verification, so nothing was resolved"),
        "{err}"
    );
    // The snapshot's own time: accepted, with a line saying the clock was overridden.
    let at = infragen::pkg::apt::validity::rfc3339(date + DAY);
    let o = w.run(&["--apt-snapshot-at", &at]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    common::ok(&o, "lock --apt-snapshot-at");
    assert!(
        err.contains(&format!(
            "warning: APT Release files are checked against {at} (--apt-snapshot-at), not this \
             machine's clock"
        )),
        "{err}"
    );
    let lock: serde_json::Value = serde_json::from_slice(&fs::read(w.lock()).unwrap()).unwrap();
    assert_eq!(lock["source_date_epoch"], date);
    // Under --json: a warning event, and the time in the result.
    fs::remove_file(w.lock()).unwrap();
    let o = w.run(&["--json", "--apt-snapshot-at", &at]);
    let out = common::ok(&o, "lock --json --apt-snapshot-at");
    let lines = common::schema::check_lines(&common::schema::documented(), &out);
    assert!(
        lines.iter().any(|l| l["event"] == "warning"
            && l["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("APT Release files are checked against {at}"))),
        "{out}"
    );
    let result = lines.last().unwrap();
    assert_eq!(result["command"], "lock");
    assert_eq!(result["apt_snapshot_at"], at.as_str());
    // A snapshot time outside the Release's validity is refused as well.
    fs::remove_file(w.lock()).unwrap();
    let later = infragen::pkg::apt::validity::rfc3339(date + 8 * DAY);
    w.refused(
        &["--apt-snapshot-at", &later],
        &[
            &source,
            "the Release expired",
            "give the time the snapshot was taken",
        ],
    );
    // A malformed time is invalid input.
    let o = w.run(&["--apt-snapshot-at", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("error: --apt-snapshot-at: `yesterday` is not an RFC 3339 time"));
    assert!(!w.lock().exists());
}

#[test]
fn a_release_dated_in_the_future_is_refused() {
    tier();
    let w = World::new();
    let in_2100 = 4_102_444_800; // 2100-01-01T00:00:00Z
    w.repo("a", in_2100, None, &packages());
    w.sources(&[w.line("a")]);
    w.refused(
        &[],
        &[
            &format!("APT source `{} bookworm`", w.uri("a")),
            "the Release is not valid yet: its Date 2100-01-01T00:00:00Z is ",
            "(clock skew allowed: 10 minutes)",
        ],
    );
    // Within the allowance it passes: the check is not refusing every future second.
    let w = World::new();
    w.repo("a", now() + 60, None, &packages());
    w.sources(&[w.line("a")]);
    common::ok(&w.run(&[]), "lock with a Date a minute ahead");
}

#[test]
fn a_release_for_another_suite_is_refused() {
    tier();
    let w = World::new();
    let t = now();
    suite(
        &w.path("a"),
        &Suite {
            dir: "bookworm",
            name: Some("stable"),
            codename: Some("trixie"),
            date: t - DAY,
            valid_until: None,
        },
        &packages(),
        &w.key,
    );
    w.sources(&[w.line("a")]);
    w.refused(
        &[],
        &[
            &format!("APT source `{} bookworm`", w.uri("a")),
            "the Release is for suite `stable` (codename `trixie`), not `bookworm` as the source asks",
        ],
    );
}

#[test]
fn an_index_longer_than_its_release_says_is_refused_naming_it() {
    tier();
    let w = World::new();
    let t = now();
    let index = w.repo("a", t - DAY, None, &packages());
    let mut grown = fs::read(&index).unwrap();
    grown.extend_from_slice(b"Package: extra\nVersion: 9\nArchitecture: amd64\n\n");
    fs::write(&index, grown).unwrap();
    w.sources(&[w.line("a")]);
    let size = packages().len();
    w.refused(
        &[],
        &[
            &format!("APT source `{} bookworm`", w.uri("a")),
            &format!("`main/binary-amd64/Packages`: the Release lists it with {size} bytes"),
            &format!("larger than {size} bytes; refused"),
        ],
    );
}

/// Source `b` has a newer version of the shared library than source `a`.
fn two_sources(w: &World, b_key: &Key) {
    let t = now();
    w.repo("a", t - DAY, Some(t + 7 * DAY), &packages());
    let newer = packages()
        .split("\n\n")
        .find(|s| s.starts_with("Package: libinfragen-test0\n"))
        .unwrap()
        .replace("Version: 1.0-1", "Version: 1.0-2")
        + "\n\n";
    suite(
        &w.path("b"),
        &Suite {
            dir: "bookworm",
            name: Some("oldstable"),
            codename: Some("bookworm"),
            date: t - DAY,
            valid_until: Some(t + 7 * DAY),
        },
        &newer,
        b_key,
    );
    w.sources(&[w.line("a"), w.line("b")]);
}

#[test]
fn one_failing_source_among_two_fails_the_lock_unless_dropped_on_purpose() {
    tier();
    // Both signed by the trusted key: the newer version from `b` is chosen.
    let w = World::new();
    two_sources(&w, &w.key);
    common::ok(&w.run(&[]), "lock with two good sources");
    assert_eq!(w.locked_version("libinfragen-test0"), "1.0-2");
    // `b` signed by a key the source does not trust: refused, naming `b`, no lock.
    let w = World::new();
    let stranger = Key::new("someone-else");
    two_sources(&w, &stranger);
    let b = format!("APT source `{} bookworm`", w.uri("b"));
    let err = w.refused(&[], &[&b, "signature check failed", "--drop-source URI"]);
    assert!(
        !err.contains(&format!("APT source `{} bookworm`", w.uri("a"))),
        "only the failing source is named:\n{err}"
    );
    // Dropped on purpose: the lock is written from `a` alone, and the drop is said.
    let o = w.run(&["--drop-source", &w.uri("b")]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    common::ok(&o, "lock --drop-source");
    assert!(
        err.contains(&format!(
            "warning: APT source `{}` dropped (--drop-source): its packages were not considered",
            w.uri("b")
        )),
        "{err}"
    );
    assert_eq!(w.locked_version("libinfragen-test0"), "1.0-1");
    // Without the flag again: refused, and the lock already there is left as it was.
    let before = fs::read(w.lock()).unwrap();
    let o = w.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&b));
    assert_eq!(
        fs::read(w.lock()).unwrap(),
        before,
        "the previous lock changed"
    );
    // A --drop-source that names no source is refused: a typo must not pass silently.
    fs::remove_file(w.lock()).unwrap();
    w.refused(
        &["--drop-source", "file:/no/such/repo"],
        &["--drop-source `file:/no/such/repo` names no APT source in"],
    );
    // An unreachable source fails the same way.
    let w = World::new();
    let t = now();
    w.repo("a", t - DAY, None, &packages());
    w.sources(&[w.line("a"), w.line("gone")]);
    w.refused(&[], &[&format!("APT source `{} bookworm`", w.uri("gone"))]);
}

#[test]
fn a_deb_whose_size_is_not_the_locks_is_refused_by_build_and_nothing_is_written() {
    tier();
    let repo = made();
    let dir = tempfile::tempdir().unwrap();
    let mut lock = infragen::lock::Lock::load(&repo.lock).unwrap();
    let mut changed = 0;
    for image in lock.images.values_mut() {
        for p in &mut image.packages {
            if p.name == "libinfragen-test0" {
                p.size += 1;
                changed += 1;
            }
        }
    }
    assert!(changed > 0, "the shared library is in the lock");
    let bad_lock = dir.path().join("infragen.lock");
    lock.save(&bad_lock).unwrap();
    let pki = dir.path().join("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    let out = dir.path().join("out");
    let o = build(&bad_lock, &pki, &out, &dir.path().join("cache"), &repo.dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bytes, the lock says") && err.contains("`libinfragen-test0`"),
        "{err}"
    );
    assert!(!out.exists(), "build wrote {}", out.display());
}

fn build(lock: &Path, pki: &Path, out: &Path, cache: &Path, repo: &Path) -> Output {
    common::infragen()
        .args(["build", "--profile"])
        .arg(common::root().join("tests/fixtures/pigsty/meta.yml"))
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .arg("--lock")
        .arg(lock)
        .arg("--pki")
        .arg(pki)
        .arg("--repo")
        .arg(repo)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

/// `index` with the `Filename`, `Size` and `SHA256` of package `to`'s stanza put into the
/// stanza of package `name`: a signed index that gives `name` another package's file.
fn pointing(index: &str, name: &str, to: &str) -> String {
    const FILE: [&str; 3] = ["Filename:", "Size:", "SHA256:"];
    let stanzas: Vec<&str> = index.split("\n\n").collect();
    let of = |n: &str| {
        stanzas
            .iter()
            .find(|s| s.lines().any(|l| l == format!("Package: {n}")))
            .unwrap_or_else(|| panic!("no {n} in the made index"))
            .to_owned()
    };
    let donor: Vec<&str> = of(to)
        .lines()
        .filter(|l| FILE.iter().any(|f| l.starts_with(f)))
        .collect();
    assert_eq!(donor.len(), FILE.len(), "{to}'s stanza");
    let target = of(name);
    let mut lines: Vec<&str> = target
        .lines()
        .filter(|l| !FILE.iter().any(|f| l.starts_with(f)))
        .collect();
    lines.extend(donor);
    index.replacen(target, &lines.join("\n"), 1)
}

/// A correctly signed `Packages` whose `nginx` stanza points at the shared library's file (its
/// `Filename`, `Size` and `SHA256`): `lock` reads no `.deb` and cannot tell, so it pins it;
/// `build` holds the `.deb` to the entry before any layer is built and refuses it, naming the
/// package and what its control file says, with nothing written.
#[test]
fn a_signed_index_giving_nginx_another_packages_file_is_refused_by_build() {
    tier();
    let w = World::new();
    let index = pointing(&packages(), "nginx", "libinfragen-test0");
    assert_ne!(index, packages(), "the index was changed");
    w.repo("a", now() - DAY, None, &index);
    w.sources(&[w.line("a")]);
    let o = w.run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pki = w.path("pki");
    common::pki::copy(&common::pki::committed(), &pki);
    let out = w.path("out");
    let o = build(&w.lock(), &pki, &out, &w.path("cache"), &made().dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("(package `nginx` 1.0-1 amd64) is not what its .deb says")
            && err.contains("its control file says Package `libinfragen-test0`, not `nginx`"),
        "{err}"
    );
    assert!(!out.exists(), "build wrote {}", out.display());
    assert!(
        !w.path("cache/layers").exists()
            || walkdir::WalkDir::new(w.path("cache/layers"))
                .into_iter()
                .filter_map(Result::ok)
                .all(|e| e.file_type().is_dir()),
        "a layer was built before the refusal"
    );
}
