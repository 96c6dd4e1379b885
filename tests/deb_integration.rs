//! `.deb` reading of a real Debian package (integration tier: `apt-get download` from Debian's
//! mirror, or APT's own cache): its control fields and files, and the same data in every other
//! compression read the same. The synthetic and malicious archives: `tests/deb.rs`.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use infragen::pkg::deb::{self, Kind, Limits};

mod common;

use common::{ar, gz, zst};

/// `dnsmasq-base` from the APT cache, else downloaded with `apt-get download`.
fn dnsmasq_base() -> (String, Vec<u8>) {
    let find = |dir: &Path| {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with("dnsmasq-base_") && name.ends_with(".deb")
            })
    };
    let cached = find(Path::new("/var/cache/apt/archives"));
    let temp = tempfile::tempdir().unwrap();
    let path = cached.unwrap_or_else(|| {
        let out = Command::new("apt-get")
            .args(["download", "dnsmasq-base"])
            .current_dir(temp.path())
            .output()
            .expect("running `apt-get download dnsmasq-base`; this test needs apt and a Debian mirror");
        assert!(
            out.status.success(),
            "`apt-get download dnsmasq-base` failed ({}); this test needs apt and a Debian mirror:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        find(temp.path()).expect("`apt-get download dnsmasq-base` left no dnsmasq-base_*.deb")
    });
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    (name, std::fs::read(&path).unwrap())
}

#[test]
fn real_package() {
    common::tier::binary(common::tier::Tier::Integration, "tests/deb_integration.rs");
    let (name, bytes) = dnsmasq_base();
    let d = deb::read(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(d.control["Package"], "dnsmasq-base");
    let arch = name.trim_end_matches(".deb").rsplit('_').next().unwrap();
    assert_eq!(d.control["Architecture"], arch, "{name}");
    assert!(d.control.contains_key("Depends"));
    let dnsmasq = d
        .entries
        .iter()
        .find(|e| e.path == "usr/sbin/dnsmasq")
        .expect("usr/sbin/dnsmasq");
    assert_eq!(dnsmasq.mode, 0o755);
    let Kind::File(data) = &dnsmasq.kind else {
        panic!("usr/sbin/dnsmasq is {:?}", dnsmasq.kind)
    };
    assert!(data.starts_with(b"\x7fELF"));
    assert!(d
        .entries
        .iter()
        .any(|e| e.path == "usr/sbin" && e.kind == Kind::Dir));
    for e in &d.entries {
        assert!(
            !e.path.is_empty() && !e.path.starts_with('/') && !e.path.ends_with('/'),
            "{e:?}"
        );
        assert!(
            e.path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."),
            "{e:?}"
        );
        assert_eq!(e.mode & !0o755, 0, "{e:?}");
    }

    // Debian compresses both archives with xz; the same data in every other compression reads
    // the same.
    let members = deb::members(&bytes).unwrap();
    let names: Vec<_> = members.iter().map(|m| m.name).collect();
    assert_eq!(names, ["debian-binary", "control.tar.xz", "data.tar.xz"]);
    let mut plain = Vec::new();
    liblzma::read::XzDecoder::new(members[2].data)
        .read_to_end(&mut plain)
        .unwrap();
    for (data_name, data) in [
        ("data.tar", plain.clone()),
        ("data.tar.gz", gz(&plain)),
        ("data.tar.zst", zst(&plain)),
    ] {
        let repacked = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", members[1].data),
            (data_name, &data),
        ]);
        let again =
            deb::read(&repacked, &Limits::default()).unwrap_or_else(|e| panic!("{data_name}: {e}"));
        assert_eq!(again, d, "{data_name}");
    }
}
