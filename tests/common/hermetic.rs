//! Hermetic packages: a flat APT repository of `.deb` files made here, for every package the
//! image recipes name, so that image digests do not depend on what Debian's mirror serves today.
//!
//! Each recipe's packages are made with the files its image needs (the entrypoint, the paths
//! the recipe excludes, a copyright file) and depend on one shared library package (a regular
//! file, a symbolic link and a hard link). Every byte is fixed: uncompressed `control.tar` and
//! `data.tar` (no compressor's version can change them), mtime 0, owner root. The repository is
//! read through an APT source `[trusted=yes]` (no signature tool needed: the fast tier), then
//! `infragen lock` resolves the recipes against it, and builds take the files from it with
//! `--repo`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::{ar, ok};

/// The version of every package made here.
pub const VERSION: &str = "1.0-1";

/// The shared library every package made here depends on.
const LIB: &str = "libinfragen-test0";

/// The `Date:` of the repository's Release, hence the lock's `source_date_epoch`.
const DATE: &str = "Thu, 01 Jan 2026 00:00:00 UTC";

/// A made repository: its directory (the `.deb` files and the index, for `--repo`), the APT
/// configuration pointing at it (for `infragen lock --apt-dir`), and the lock resolved there.
pub struct Repo {
    /// Flat repository: `Packages`, `Release` and the `.deb` files.
    pub dir: PathBuf,
    /// An `/etc/apt` whose one source is `dir`.
    pub apt: PathBuf,
    /// `infragen lock` run against `apt`.
    pub lock: PathBuf,
}

/// A tar of `entries` (path, `Some(bytes)` for a file or `None` for a directory, mode), then
/// the symbolic and hard links `links` (path, target, hard?), headers fixed.
fn tar(entries: &[(String, Option<Vec<u8>>, u32)], links: &[(String, String, bool)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: usize| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    };
    for (path, data, mode) in entries {
        if let Some(d) = data {
            let mut h = header(tar::EntryType::Regular, *mode, d.len());
            b.append_data(&mut h, path, &d[..]).unwrap();
        } else {
            let mut h = header(tar::EntryType::Directory, *mode, 0);
            b.append_data(&mut h, path, &[][..]).unwrap();
        }
    }
    for (path, target, hard) in links {
        let kind = if *hard {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        };
        let mut h = header(kind, if *hard { 0o644 } else { 0o777 }, 0);
        b.append_link(&mut h, path, target).unwrap();
    }
    b.into_inner().unwrap()
}

/// The `data.tar` entries of `files` (path → contents), with every parent directory first.
fn data_entries(files: &BTreeMap<String, Vec<u8>>) -> Vec<(String, Option<Vec<u8>>, u32)> {
    let mut dirs = std::collections::BTreeSet::new();
    for path in files.keys() {
        let mut p = Path::new(path).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_string_lossy().into_owned());
            p = d.parent();
        }
    }
    let mut out: Vec<(String, Option<Vec<u8>>, u32)> = vec![("./".to_owned(), None, 0o755)];
    out.extend(dirs.into_iter().map(|d| (format!("./{d}/"), None, 0o755)));
    for (path, data) in files {
        let mode = if path.contains("/bin/") || path.contains("/sbin/") {
            0o755
        } else {
            0o644
        };
        out.push((format!("./{path}"), Some(data.clone()), mode));
    }
    out
}

/// One `.deb`: its control file and data.
fn deb(name: &str, depends: Option<&str>, files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let depends = depends.map_or_else(String::new, |d| format!("Depends: {d}\n"));
    let control = format!(
        "Package: {name}\nVersion: {VERSION}\nArchitecture: amd64\nMaintainer: infragen tests <tests@infragen.invalid>\nInstalled-Size: 1\n{depends}Section: misc\nPriority: optional\nDescription: made by infragen's tests\n"
    );
    let control_tar = tar(
        &[
            ("./".to_owned(), None, 0o755),
            ("./control".to_owned(), Some(control.into_bytes()), 0o644),
        ],
        &[],
    );
    let links: Vec<(String, String, bool)> = if name == LIB {
        vec![
            (
                "./usr/lib/x86_64-linux-gnu/libinfragen-test.so.0".to_owned(),
                "libinfragen-test.so.0.1".to_owned(),
                false,
            ),
            (
                "./usr/lib/x86_64-linux-gnu/libinfragen-test-again.so.0.1".to_owned(),
                "./usr/lib/x86_64-linux-gnu/libinfragen-test.so.0.1".to_owned(),
                true,
            ),
        ]
    } else {
        Vec::new()
    };
    let data_tar = tar(&data_entries(files), &links);
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control_tar),
        ("data.tar", &data_tar),
    ])
}

/// The files of every package the recipes name (a package shared by two recipes gets the files
/// both need), and of the shared library.
fn package_files() -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (c, r) in infragen::image::recipes().expect("the image recipes") {
        if r.base.is_some() {
            continue;
        }
        for (i, name) in r.packages.iter().enumerate() {
            let files = out.entry(name.clone()).or_default();
            files.insert(
                format!("usr/share/doc/{name}/copyright"),
                format!("{name}: made by infragen's tests, no rights reserved\n").into_bytes(),
            );
            if i > 0 {
                continue;
            }
            let mut paths: Vec<String> = r.exclude_paths.clone();
            if let Some(bin) = r.entrypoint.first() {
                paths.push(bin.trim_start_matches('/').to_owned());
            }
            for p in paths {
                files.insert(
                    p.clone(),
                    format!("#!/bin/sh\necho '{name} for {}: /{p}'\n", c.name()).into_bytes(),
                );
            }
        }
    }
    // What `images/common/defaults.yml` keeps of the packages every image gets.
    for (name, path) in [("libc-bin", "usr/bin/getent"), ("procps", "bin/kill")] {
        if let Some(files) = out.get_mut(name) {
            files.insert(
                path.to_owned(),
                format!("#!/bin/sh\necho '{name}: /{path}'\n").into_bytes(),
            );
        }
    }
    // An excluded path that is a directory of another file (`usr/share/doc`) stays a directory.
    for files in out.values_mut() {
        let all: Vec<String> = files.keys().cloned().collect();
        files.retain(|p, _| !all.iter().any(|q| q.starts_with(&format!("{p}/"))));
    }
    let mut lib = BTreeMap::new();
    lib.insert(
        "usr/lib/x86_64-linux-gnu/libinfragen-test.so.0.1".to_owned(),
        b"not really a library\n".to_vec(),
    );
    out.insert(LIB.to_owned(), lib);
    out
}

/// Makes the repository under `dir` and resolves a lock against it with the `infragen` binary.
pub fn repo(dir: &Path) -> Repo {
    let repo = dir.join("repo");
    fs::create_dir_all(&repo).unwrap();
    let mut index = String::new();
    for (name, files) in package_files() {
        let depends = (name != LIB).then_some(LIB);
        let bytes = deb(&name, depends, &files);
        let file = format!("{name}_{VERSION}_amd64.deb");
        fs::write(repo.join(&file), &bytes).unwrap();
        let depends = depends.map_or_else(String::new, |d| format!("Depends: {d}\n"));
        let _ = write!(
            index,
            "Package: {name}\nVersion: {VERSION}\nArchitecture: amd64\nInstalled-Size: 1\n{depends}Priority: optional\nFilename: ./{file}\nSize: {}\nSHA256: {}\n\n",
            bytes.len(),
            infragen::digest::sha256_hex(&bytes)
        );
    }
    fs::write(repo.join("Packages"), &index).unwrap();
    fs::write(
        repo.join("Release"),
        format!(
            "Origin: infragen-test\nDate: {DATE}\nSHA256:\n {} {} Packages\n",
            infragen::digest::sha256_hex(index.as_bytes()),
            index.len()
        ),
    )
    .unwrap();
    let apt = dir.join("etc-apt");
    fs::create_dir_all(&apt).unwrap();
    fs::write(
        apt.join("sources.list"),
        format!("deb [trusted=yes] file:{}/ ./\n", repo.display()),
    )
    .unwrap();
    let lock = dir.join("infragen.lock");
    let o = super::infragen()
        .args(["lock", "--apt-dir"])
        .arg(&apt)
        .arg("--lock")
        .arg(&lock)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    ok(&o, "infragen lock against the made repository");
    Repo {
        dir: repo,
        apt,
        lock,
    }
}
