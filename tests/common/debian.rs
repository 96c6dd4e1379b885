//! Debian 12 roots for the booted tier, made with `debootstrap --variant=minbase` from this
//! machine's own APT mirror (read from `/etc/apt`, never named here) and cached as tarballs in
//! the tests' own cache (`common::test_cache_home()`, never the user's), so that only the first
//! run downloads them.

use super::ok;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the booted tier caches what it downloads: the tests' own cache, never the user's.
pub fn cache_dir() -> PathBuf {
    super::test_cache_home().join("infragen-test")
}

/// Unpacks a Debian 12 (bookworm) minbase root with the packages `include` into `dest`. The root
/// is made once with debootstrap and cached as `<cache_dir>/<tarball>`.
pub fn root(dest: &Path, include: &[&str], tarball: &str) {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = cache_dir();
    let tarball = cache.join(tarball);
    if !tarball.is_file() {
        fs::create_dir_all(&cache).unwrap();
        let mirror = apt_mirror();
        let tmp = cache.join("debootstrap");
        let _ = fs::remove_dir_all(&tmp);
        let mut cmd = Command::new("debootstrap");
        cmd.arg("--variant=minbase");
        if !include.is_empty() {
            cmd.arg(format!("--include={}", include.join(",")));
        }
        let o = cmd
            .arg("bookworm")
            .arg(&tmp)
            .arg(&mirror)
            .output()
            .expect("debootstrap (apt-get install debootstrap)");
        ok(&o, "debootstrap");
        let part = tarball.with_extension("tar.part");
        ok(
            &Command::new("tar")
                .arg("-C")
                .arg(&tmp)
                .arg("-cf")
                .arg(&part)
                .arg(".")
                .output()
                .unwrap(),
            "tar",
        );
        fs::rename(&part, &tarball).unwrap();
        let _ = fs::remove_dir_all(&tmp);
    }
    fs::create_dir_all(dest).unwrap();
    ok(
        &Command::new("tar")
            .arg("-C")
            .arg(dest)
            .arg("-xf")
            .arg(&tarball)
            .output()
            .unwrap(),
        "untar",
    );
}

/// The Debian mirror of this machine's APT configuration: a source of suite `bookworm` with
/// component `main`.
pub fn apt_mirror() -> String {
    let sources = infragen::pkg::fetch::AptConfig::default()
        .sources()
        .expect("APT sources");
    sources
        .iter()
        .find(|s| {
            s.suites.iter().any(|x| x == "bookworm") && s.components.iter().any(|c| c == "main")
        })
        .map(|s| s.uri.clone())
        .expect("a bookworm main source in /etc/apt")
}

/// Gives the root at `rootfs` this machine's APT sources (`/etc/apt/sources.list` and the
/// `*.list` and `*.sources` files of `/etc/apt/sources.list.d/`) in place of debootstrap's
/// single line, as a Debian installed from the same mirror has them (updates and security
/// included).
pub fn copy_apt_sources(rootfs: &Path) {
    let etc = rootfs.join("etc/apt");
    let _ = fs::remove_file(etc.join("sources.list"));
    let host = Path::new("/etc/apt");
    if host.join("sources.list").is_file() {
        fs::copy(host.join("sources.list"), etc.join("sources.list")).unwrap();
    }
    fs::create_dir_all(etc.join("sources.list.d")).unwrap();
    if let Ok(entries) = fs::read_dir(host.join("sources.list.d")) {
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "list" || x == "sources") {
                fs::copy(&p, etc.join("sources.list.d").join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}
