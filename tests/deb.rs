//! `.deb` reading: every compression, and a corpus of malicious archives built here at run time
//! (no binary fixtures in the repository). A real Debian package: `tests/deb_integration.rs`.

use std::io::{self, Read};

use infragen::pkg::deb::{self, Entry, Kind, Limits};
use tar::{Builder, EntryType, Header};

mod common;

use common::{ar, gz, xz, zst};

/// A tar written header by header, so names the `tar` crate's path setters refuse still fit.
struct Tar(Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(Builder::new(Vec::new()))
    }

    fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], mode: u32, data: &[u8]) -> Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// A well-formed GNU sparse file of one hole, so the `tar` crate yields it.
    fn sparse(mut self, name: &str) -> Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_size(0);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(4096);
        gnu.sparse[0].set_offset(4096);
        gnu.sparse[0].set_length(0);
        h.set_cksum();
        self.0.append(&h, io::empty()).unwrap();
        self
    }

    fn dir(self, name: &str, mode: u32) -> Self {
        self.raw(EntryType::Directory, name.as_bytes(), b"", mode, b"")
    }

    fn file(self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.raw(EntryType::Regular, name.as_bytes(), b"", mode, data)
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            0o777,
            b"",
        )
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            0o644,
            b"",
        )
    }

    /// A GNU long-name header that renames the next entry.
    fn long_name(self, name: &[u8]) -> Self {
        let data = [name, b"\0"].concat();
        self.raw(EntryType::GNULongName, b"././@LongLink", b"", 0o644, &data)
    }

    /// A PAX extended header whose records apply to the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
            let mut len = body.len() + 1;
            while len.to_string().len() + body.len() != len {
                len += 1;
            }
            data.extend(len.to_string().bytes());
            data.extend(body);
        }
        self.raw(EntryType::XHeader, b"./PaxHeaders/x", b"", 0o644, &data)
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

const CONTROL: &str =
    "Package: fixture\nVersion: 1.0-1\nArchitecture: amd64\nDescription: a test\n package\n";

fn control_tar() -> Vec<u8> {
    Tar::new()
        .dir("./", 0o755)
        .file("./control", 0o644, CONTROL.as_bytes())
        .finish()
}

/// A `.deb` with the fixture control file and `data` as member `name`.
fn deb_with(name: &str, data: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar())),
        (name, data),
    ])
}

/// The error message for a data archive, uncompressed.
fn error(data: Tar, limits: &Limits) -> String {
    match deb::read(&deb_with("data.tar", &data.finish()), limits) {
        Ok(d) => panic!("expected an error, read {:?}", d.entries),
        Err(e) => e.to_string(),
    }
}

fn entry(path: &str, kind: Kind, mode: u32) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode,
    }
}

#[test]
fn malicious_archives_are_errors_naming_the_entry() {
    let root = || Tar::new().dir("./", 0o755);
    let cases: Vec<(&str, Tar, &str)> = vec![
        (
            "traversal",
            root().file("../x", 0o644, b"x"),
            "entry `../x`: path escapes the root",
        ),
        (
            "inner traversal",
            root().file("./a/../../x", 0o644, b"x"),
            "entry `./a/../../x`: path escapes the root",
        ),
        (
            "absolute",
            root().file("/etc/x", 0o644, b"x"),
            "entry `/etc/x`: path is absolute",
        ),
        (
            "empty name",
            root().file("", 0o644, b"x"),
            "entry ``: path is empty",
        ),
        (
            "symlink escape",
            root().symlink("./a", "../../etc"),
            "entry `./a`: symlink target `../../etc` escapes the root",
        ),
        (
            "nested symlink escape",
            root().symlink("./usr/lib/a", "../../../etc"),
            "entry `./usr/lib/a`: symlink target `../../../etc` escapes the root",
        ),
        (
            "absolute symlink climbing",
            root().symlink("./a", "/../etc"),
            "entry `./a`: symlink target `/../etc` escapes the root",
        ),
        (
            "empty symlink",
            root().symlink("./a", ""),
            "entry `./a`: link target ``: empty",
        ),
        (
            "hardlink escape",
            root().hardlink("./h", "../../etc/passwd"),
            "entry `./h`: link target `../../etc/passwd`: path escapes the root",
        ),
        (
            "hardlink forward reference",
            root().hardlink("./h", "./f").file("./f", 0o644, b"x"),
            "entry `./h`: hardlink target `./f` is not an earlier entry",
        ),
        (
            "hardlink to a directory",
            root().dir("./d/", 0o755).hardlink("./h", "./d"),
            "entry `./h`: hardlink target `./d` is not a regular file",
        ),
        (
            "char device",
            root().raw(EntryType::Char, b"./dev/null", b"", 0o666, b""),
            "entry `./dev/null`: character device entries are not allowed",
        ),
        (
            "block device",
            root().raw(EntryType::Block, b"./dev/sda", b"", 0o660, b""),
            "entry `./dev/sda`: block device entries are not allowed",
        ),
        (
            "fifo",
            root().raw(EntryType::Fifo, b"./run/pipe", b"", 0o644, b""),
            "entry `./run/pipe`: fifo entries are not allowed",
        ),
        (
            "GNU sparse",
            root().sparse("./sparse"),
            "entry `./sparse`: GNU sparse entries are not allowed",
        ),
        (
            "unknown type",
            root().raw(EntryType::new(b'Z'), b"./z", b"", 0o644, b""),
            "entry `./z`: type `Z` entries are not allowed",
        ),
        (
            "duplicate file",
            root().file("./f", 0o644, b"1").file("f", 0o644, b"2"),
            "entry `f`: path listed twice",
        ),
        (
            "duplicate symlink",
            root().symlink("./l", "a").symlink("./l", "a"),
            "entry `./l`: path listed twice",
        ),
        (
            "directory over a file",
            root().file("./f", 0o644, b"1").dir("./f/", 0o755),
            "entry `./f/`: path listed twice",
        ),
        (
            "file through a symlink",
            root()
                .symlink("./etc", "/etc")
                .file("./etc/passwd", 0o644, b"x"),
            "entry `./etc/passwd`: parent `etc` is not a directory",
        ),
        (
            "file with a trailing slash",
            root().file("./f/", 0o644, b"x"),
            "entry `./f/`: path ends with `/` but the entry is not a directory",
        ),
        (
            "root as a file",
            Tar::new().file("./", 0o644, b""),
            "entry `./`: the root must be a directory",
        ),
        (
            "PAX path override",
            root()
                .pax(&[("path", b"../evil")])
                .file("./ok", 0o644, b"x"),
            "entry `../evil`: path escapes the root",
        ),
        (
            "PAX path with NUL",
            root().pax(&[("path", b"./a\0b")]).file("./ok", 0o644, b"x"),
            "entry `./a\\u{0}b`: path contains NUL",
        ),
        (
            "PAX linkpath override",
            root()
                .pax(&[("linkpath", b"../../../root")])
                .symlink("./l", "ok"),
            "entry `./l`: symlink target `../../../root` escapes the root",
        ),
        (
            "PAX sparse file",
            root()
                .pax(&[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")])
                .file("./s", 0o644, b"x"),
            "entry `./s`: sparse file (PAX key `GNU.sparse.major`) is not supported",
        ),
        (
            "GNU long name",
            root()
                .long_name(b"./../../etc/shadow")
                .file("./ok", 0o644, b"x"),
            "entry `./../../etc/shadow`: path escapes the root",
        ),
        // `.wh.` names are OCI whiteouts once the content is a layer: they would delete files.
        (
            "whiteout file",
            root().dir("./etc/", 0o755).file("./etc/.wh.passwd", 0o644, b""),
            "entry `./etc/.wh.passwd`: path component `.wh.passwd` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
        (
            "opaque whiteout",
            root().dir("./etc/", 0o755).file("./etc/.wh..wh..opq", 0o644, b""),
            "entry `./etc/.wh..wh..opq`: path component `.wh..wh..opq` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
        (
            "whiteout directory",
            root().dir("./.wh.usr/", 0o755),
            "entry `./.wh.usr/`: path component `.wh.usr` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
        (
            "whiteout symlink",
            root().symlink("./.wh.bin", "usr/bin"),
            "entry `./.wh.bin`: path component `.wh.bin` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
        (
            "whiteout as a parent never listed",
            root().file("./.wh.etc/passwd", 0o644, b""),
            "entry `./.wh.etc/passwd`: path component `.wh.etc` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
        (
            "whiteout by PAX path",
            root().pax(&[("path", b"./.wh.opt")]).file("./ok", 0o644, b"x"),
            "entry `./.wh.opt`: path component `.wh.opt` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
        (
            "hardlink to a whiteout name",
            root().file("./f", 0o644, b"x").hardlink("./h", "./.wh.f"),
            "entry `./h`: link target `./.wh.f`: path component `.wh.f` starts with `.wh.`, an OCI whiteout; packages may not ship it",
        ),
    ];
    for (what, tar, want) in cases {
        assert_eq!(error(tar, &Limits::default()), want, "{what}");
    }
}

#[test]
fn limits_are_errors_naming_the_entry() {
    let small = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let got = error(Tar::new().file("./big", 0o644, &[1; 2000]), &small);
    assert_eq!(
        got,
        "entry `./big`: file of 2000 bytes is over the limit of 1000"
    );

    let tight = Limits {
        max_total_bytes: 10_000,
        ..Limits::default()
    };
    let got = error(
        Tar::new()
            .file("./a", 0o644, &[1; 4000])
            .file("./b", 0o644, &[1; 4000]),
        &tight,
    );
    assert_eq!(
        got,
        "entry `./b`: uncompressed size would pass the limit of 10000 bytes"
    );

    let long = format!("./{}x", "d/".repeat(2048));
    let got = error(
        Tar::new()
            .long_name(long.as_bytes())
            .file("./short", 0o644, b""),
        &Limits::default(),
    );
    assert!(got.starts_with("entry `./d/d/d/"), "{got}");
    assert!(
        got.ends_with("… (4099 bytes)`: path of 4097 bytes is over the limit of 4096"),
        "{got}"
    );
}

#[test]
fn too_many_entries() {
    let mut tar = Tar::new().dir("./", 0o755);
    for i in 0..100_000 {
        tar = tar.file(&format!("./f{i}"), 0o644, b"");
    }
    let limits = Limits {
        max_entries: 100_000,
        ..Limits::default()
    };
    assert_eq!(
        error(tar, &limits),
        "entry `./f99999`: more than 100000 entries"
    );
}

#[test]
fn zero_bomb_is_refused_before_decompressing() {
    // 80 MiB of zeros in one file, compressed with xz to a few KiB: past the 64 MiB floor and
    // far past 200:1. Streamed into the encoder so the test does not hold the plain tar.
    let size: u64 = 80 << 20;
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..6].copy_from_slice(b"./zero");
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    let mut plain = h.as_bytes().chain(io::repeat(0).take(size + 1024));
    io::copy(&mut plain, &mut encoder).unwrap();
    let bytes = deb_with("data.tar.xz", &encoder.finish().unwrap());
    let got = deb::read(&bytes, &Limits::default())
        .unwrap_err()
        .to_string();
    let want = format!(
        "entry `./zero`: uncompressed size would reach {} bytes, over 200 times the {}-byte package",
        size + control_tar().len() as u64 + 512, // the whole control archive, then this header
        bytes.len()
    );
    assert_eq!(got, want);
}

#[test]
fn modes_lose_special_and_group_other_write_bits() {
    let tar = Tar::new()
        .dir("./", 0o755)
        .dir("./tmp/", 0o1777)
        .dir("./srv/", 0o775)
        .file("./usr-bin-su", 0o4755, b"su")
        .file("./sgid", 0o2755, b"x")
        .file("./shared", 0o664, b"x")
        .file("./world", 0o666, b"x")
        .symlink("./l", "shared");
    let d = deb::read(&deb_with("data.tar", &tar.finish()), &Limits::default()).unwrap();
    let modes: Vec<_> = d
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("tmp", 0o755),
            ("srv", 0o755),
            ("usr-bin-su", 0o755),
            ("sgid", 0o755),
            ("shared", 0o644),
            ("world", 0o644),
            ("l", 0o755)
        ]
    );
}

/// A well-formed archive using every allowed kind, GNU long names and PAX overrides.
fn good_tar() -> Vec<u8> {
    let long = format!("./usr/share/{}", "n".repeat(150));
    Tar::new()
        .dir("./", 0o755)
        .dir("./usr/", 0o755)
        .dir("./usr/bin/", 0o755)
        .file("./usr/bin/tool", 0o755, b"#!/bin/sh\n")
        .hardlink("./usr/bin/tool2", "./usr/bin/tool")
        .symlink("./usr/bin/rel", "../share/doc")
        .symlink("./usr/bin/abs", "/etc/alternatives/tool")
        .dir("./usr/", 0o755)
        .long_name(long.as_bytes())
        .file("./placeholder", 0o644, b"long")
        .pax(&[("path", b"./usr/share/pax-name"), ("linkpath", b"tool")])
        .symlink("./ignored", "ignored")
        .finish()
}

fn good_entries() -> Vec<Entry> {
    vec![
        entry("usr", Kind::Dir, 0o755),
        entry("usr/bin", Kind::Dir, 0o755),
        entry("usr/bin/tool", Kind::File(b"#!/bin/sh\n".to_vec()), 0o755),
        entry(
            "usr/bin/tool2",
            Kind::Hardlink("usr/bin/tool".into()),
            0o644,
        ),
        entry("usr/bin/rel", Kind::Symlink("../share/doc".into()), 0o755),
        entry(
            "usr/bin/abs",
            Kind::Symlink("/etc/alternatives/tool".into()),
            0o755,
        ),
        entry(
            &format!("usr/share/{}", "n".repeat(150)),
            Kind::File(b"long".to_vec()),
            0o644,
        ),
        entry("usr/share/pax-name", Kind::Symlink("tool".into()), 0o755),
    ]
}

#[test]
fn every_compression_reads_the_same() {
    let plain = good_tar();
    let control = control_tar();
    let datas = [
        ("data.tar", plain.clone()),
        ("data.tar.gz", gz(&plain)),
        ("data.tar.xz", xz(&plain)),
        ("data.tar.zst", zst(&plain)),
    ];
    let controls = [
        ("control.tar", control.clone()),
        ("control.tar.gz", gz(&control)),
        ("control.tar.xz", xz(&control)),
        ("control.tar.zst", zst(&control)),
    ];
    for ((data_name, data), (control_name, control)) in datas.iter().zip(&controls) {
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            (control_name, control),
            (data_name, data),
        ]);
        let d =
            deb::read(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{data_name}: {e}"));
        assert_eq!(d.entries, good_entries(), "{data_name}");
        assert_eq!(d.control["Package"], "fixture");
        assert_eq!(d.control["Description"], "a test\n package");
    }
    let got = deb::read(&deb_with("data.tar.bz2", b""), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        got,
        "member `data.tar.bz2`: unsupported compression (expected none, `.gz`, `.xz` or `.zst`)"
    );
}

#[test]
fn broken_members_are_named() {
    let got = deb::read(
        &deb_with("data.tar.xz", b"not xz at all"),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(got.to_string(), "member `data.tar.xz`: broken archive");
    let mut truncated = xz(&good_tar());
    truncated.truncate(truncated.len() - 20);
    let got = deb::read(&deb_with("data.tar.xz", &truncated), &Limits::default()).unwrap_err();
    assert!(
        got.to_string().starts_with("member `data.tar.xz`: "),
        "{got}"
    );
    let no_control = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &Tar::new().dir("./", 0o755).finish()),
        ("data.tar", &good_tar()),
    ]);
    let got = deb::read(&no_control, &Limits::default()).unwrap_err();
    assert_eq!(got.to_string(), "member `control.tar`: no `control` file");
    let no_arch = Tar::new()
        .file("./control", 0o644, b"Package: x\nVersion: 1\n")
        .finish();
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &no_arch),
        ("data.tar", &good_tar()),
    ]);
    let got = deb::read(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(
        got.to_string(),
        "`control` in `control.tar`: missing field `Architecture`"
    );
    let two = b"Package: x\nVersion: 1\nArchitecture: all\n\nPackage: y\n";
    let two = Tar::new().file("./control", 0o644, two).finish();
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &two),
        ("data.tar", &good_tar()),
    ]);
    let got = deb::read(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(
        got.to_string(),
        "`control` in `control.tar`, line 5: a second paragraph"
    );
}

/// What a `.deb` says it is comes from its own control file and bytes, whatever it is called:
/// the control archive is read under the same rules as by `deb::read`, the data archive is not
/// decompressed (a broken one does not stop it), and a control file without the three fields
/// is refused.
#[test]
fn identity_is_what_the_control_file_says() {
    let bytes = deb_with("data.tar.gz", &gz(&good_tar()));
    let id = deb::identity(&bytes, &Limits::default()).unwrap();
    assert_eq!(id.package, "fixture");
    assert_eq!(id.version, "1.0-1");
    assert_eq!(id.architecture, "amd64");
    assert_eq!(id.size, bytes.len() as u64);
    assert_eq!(id.sha256, infragen::digest::sha256_hex(&bytes));
    // the same as the full read gives
    let full = deb::read(&bytes, &Limits::default()).unwrap();
    assert_eq!(deb::Identity::of(&full.control, &bytes), id);

    let broken_data = deb_with("data.tar.xz", b"not xz at all");
    assert!(deb::read(&broken_data, &Limits::default()).is_err());
    let id = deb::identity(&broken_data, &Limits::default()).unwrap();
    assert_eq!(
        (id.package.as_str(), id.size),
        ("fixture", broken_data.len() as u64)
    );

    let other = Tar::new()
        .file(
            "./control",
            0o644,
            b"Package: libother1\nVersion: 2:3.4-5\nArchitecture: all\n",
        )
        .finish();
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", &xz(&other)),
        ("data.tar", &good_tar()),
    ]);
    let id = deb::identity(&bytes, &Limits::default()).unwrap();
    assert_eq!(
        (
            id.package.as_str(),
            id.version.as_str(),
            id.architecture.as_str()
        ),
        ("libother1", "2:3.4-5", "all")
    );

    for (control, want) in [
        (
            &b"Package: x\nArchitecture: all\n"[..],
            "`control` in `control.tar`: missing field `Version`",
        ),
        (
            &b"Version: 1\nArchitecture: all\n"[..],
            "`control` in `control.tar`: missing field `Package`",
        ),
    ] {
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            (
                "control.tar",
                &Tar::new().file("./control", 0o644, control).finish(),
            ),
            ("data.tar", &good_tar()),
        ]);
        let got = deb::identity(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(got.to_string(), want);
    }
    let got = deb::identity(b"not a deb", &Limits::default()).unwrap_err();
    assert_eq!(got.to_string(), "not a .deb: missing the `!<arch>` magic");
}
