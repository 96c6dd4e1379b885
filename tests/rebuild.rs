//! What a rebuild writes, watched with inotify (fast tier: `three-node` built from the packages
//! `tests/common/hermetic.rs` makes, no tool, no network).
//!
//! - A rebuild with nothing changed creates, modifies, renames and deletes nothing under the
//!   output directory, beside it, in the layer cache and store, or in the PKI state.
//! - A rebuild after one parameter changed (`vmetrics_scrape_interval`) writes exactly the files
//!   whose content changed — the new blobs of vmetrics' and vmalert's images, their SBOMs,
//!   vmalert's units (the interval is on its command line), each host's `index.json` and
//!   `manifest.json`, and `digests.txt` — removes the blobs no image uses any more, and leaves
//!   every other file alone (same inode, no event).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// The made repository and its lock.
fn hermetic() -> &'static common::hermetic::Repo {
    static REPO: std::sync::OnceLock<common::hermetic::Repo> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-hermetic-")
            .tempdir()
            .expect("temp dir")
            .keep();
        common::hermetic::repo(&dir)
    })
}

/// Builds `profile` into `work/out` with the stores under `work` (made packages only).
fn build(work: &Path, profile: &Path) {
    let repo = hermetic();
    let mut cmd = common::infragen();
    cmd.args(["build", "--profile"])
        .arg(profile)
        .arg("--out")
        .arg(work.join("out"))
        .arg("--cache")
        .arg(work.join("cache"))
        .arg("--pki")
        .arg(work.join("pki"))
        .arg("--lock")
        .arg(&repo.lock)
        .arg("--repo")
        .arg(&repo.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9");
    common::ok(&cmd.output().expect("run infragen"), "build");
}

/// Every directory at or below `dir`.
fn dirs(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Inotify watches on every directory below `roots` (and on `work` itself, for what appears
/// beside the output), for every event that changes something.
struct Watch {
    fd: OwnedFd,
    dirs: BTreeMap<i32, PathBuf>,
}

impl Watch {
    fn new(work: &Path, roots: &[PathBuf]) -> Self {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).expect("inotify");
        let mask = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        let mut watched = BTreeMap::new();
        let all = std::iter::once(work.to_path_buf()).chain(roots.iter().flat_map(|r| dirs(r)));
        for d in all {
            let wd = inotify::add_watch(&fd, &d, mask).expect("add watch");
            watched.insert(wd, d);
        }
        assert!(
            watched.len() > 20,
            "a real tree: {} directories",
            watched.len()
        );
        Self { fd, dirs: watched }
    }

    /// Every event since the watch began: (path, what), in order.
    fn events(&self) -> Vec<(PathBuf, String)> {
        let mut buf = vec![std::mem::MaybeUninit::uninit(); 1 << 16];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut out = Vec::new();
        loop {
            match reader.next() {
                Ok(e) => {
                    let dir = self.dirs.get(&e.wd()).cloned().unwrap_or_default();
                    let path = match e.file_name() {
                        Some(n) => dir.join(n.to_string_lossy().as_ref()),
                        None => dir,
                    };
                    if !e.events().contains(ReadFlags::IGNORED) {
                        out.push((path, format!("{:?}", e.events())));
                    }
                }
                Err(rustix::io::Errno::AGAIN) => return out,
                Err(e) => panic!("reading inotify events: {e}"),
            }
        }
    }
}

/// Every file below `dir`: relative path → (inode, bytes).
fn files(dir: &Path) -> BTreeMap<String, (u64, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("below")
                .display()
                .to_string();
            let ino = e.metadata().expect("metadata").ino();
            (rel, (ino, fs::read(e.path()).expect("read")))
        })
        .collect()
}

fn shown(events: &[(PathBuf, String)]) -> String {
    events
        .iter()
        .map(|(p, e)| format!("  {} {e}\n", p.display()))
        .collect()
}

#[test]
fn a_rebuild_writes_nothing_unless_something_changed_and_then_only_that() {
    let t = tempfile::tempdir().expect("dir");
    let work = t.path();
    let text = fs::read_to_string(common::root().join("profiles/three-node.yml")).expect("profile");
    let profile = work.join("pigsty.yml");
    fs::write(&profile, &text).expect("profile");
    build(work, &profile);
    let out = work.join("out");
    let before = files(&out);
    assert!(before.len() > 100, "{} files", before.len());
    let roots = [out.clone(), work.join("cache"), work.join("pki")];

    // Nothing changed: no event anywhere.
    let watch = Watch::new(work, &roots);
    build(work, &profile);
    let events = watch.events();
    assert!(
        events.is_empty(),
        "a rebuild with nothing changed wrote:\n{}",
        shown(&events)
    );
    assert!(files(&out) == before, "the output changed");

    // One parameter: only the files whose content changed are written.
    let changed = text.replace(
        "vmetrics_scrape_interval: 10s",
        "vmetrics_scrape_interval: 15s",
    );
    assert_ne!(
        changed, text,
        "three-node sets vmetrics_scrape_interval: 10s"
    );
    fs::write(&profile, &changed).expect("profile");
    let watch = Watch::new(work, &roots);
    build(work, &profile);
    let events = watch.events();
    let after = files(&out);

    // What differs between the two trees, by content.
    let mut differ = BTreeSet::new();
    for (p, (_, bytes)) in &after {
        if before.get(p).is_none_or(|(_, b)| b != bytes) {
            differ.insert(p.clone());
        }
    }
    let gone: BTreeSet<String> = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    // Files kept are the same files (same inode), not rewritten copies.
    for (p, (ino, _)) in &after {
        if !differ.contains(p) {
            assert_eq!(before[p].0, *ino, "{p} was replaced though unchanged");
        }
    }
    // Every event under the output names a file that differs or went, or a temporary file
    // beside one that differs.
    let mut touched = BTreeSet::new();
    for (p, what) in &events {
        let Ok(rel) = p.strip_prefix(&out) else {
            continue;
        };
        let rel = rel.display().to_string();
        let name = rel.rsplit('/').next().unwrap_or_default();
        if let Some(base) = name.strip_prefix('.').and_then(|n| n.split(".tmp-").next()) {
            let target = rel.replace(name, base);
            assert!(
                differ.contains(&target),
                "temporary {rel} ({what}) for a file that did not change"
            );
            continue;
        }
        touched.insert(rel);
    }
    let expected: BTreeSet<String> = differ.union(&gone).cloned().collect();
    assert_eq!(
        touched,
        expected,
        "files written are not the files that changed:\n{}",
        shown(&events)
    );
    // And those are what one interval changes: vmetrics' and vmalert's images, on each host.
    let not_blobs: BTreeSet<&str> = differ
        .iter()
        .filter(|p| !p.contains("/oci/blobs/"))
        .map(String::as_str)
        .collect();
    let mut want = BTreeSet::from(["digests.txt".to_owned()]);
    for host in ["10.10.10.10", "10.10.10.11", "10.10.10.12"] {
        for f in [
            "manifest.json",
            "oci/index.json",
            "sbom/infra-vmetrics.spdx.json",
            "sbom/infra-vmalert.spdx.json",
            // vmalert's evaluation interval is a flag on its command line
            "units/infra-vmalert.service",
            "portable/infra-vmalert.service",
            "nspawn/infra-vmalert.nspawn",
        ] {
            want.insert(format!("{host}/{f}"));
        }
    }
    assert_eq!(
        not_blobs,
        want.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    // Per host and image: a new config layer, config and manifest blob; the old ones gone.
    let blobs = |s: &BTreeSet<String>| s.iter().filter(|p| p.contains("/oci/blobs/")).count();
    assert_eq!(blobs(&differ), 3 * 2 * 3, "{differ:#?}");
    assert_eq!(blobs(&gone), 3 * 2 * 3, "{gone:#?}");
    // In the cache, only new files: no cached layer or blob rewritten or removed.
    for (p, what) in &events {
        if p.starts_with(work.join("cache")) {
            assert!(
                !what.contains("DELETE") && !what.contains("MOVED_FROM")
                    || p.to_string_lossy().contains(".tmp-"),
                "cache file {} {what}",
                p.display()
            );
        }
    }
}
