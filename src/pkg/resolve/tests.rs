//! Tests of [`Universe::resolve`](super::Universe::resolve): synthetic indexes written as
//! stanzas, and the real indexes apt fetched on this machine.

use super::super::apt::parse_packages;
use super::*;

/// A stanza with the fields `parse_packages` requires, plus `extra` lines.
fn stanza(name: &str, version: &str, arch: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nInstalled-Size: 2\n\
         Filename: pool/{name}_{version}_{arch}.deb\nSize: 1\nSHA256: {}\n{extra}\n\n",
        "0".repeat(64)
    )
}

fn universe(stanzas: &[String]) -> Universe {
    Universe::new(parse_packages(&stanzas.join("")).unwrap())
}

fn names(pkgs: &[&Package]) -> Vec<String> {
    pkgs.iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn roots(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn synthetic() -> Universe {
    universe(&[
        stanza("nginx-light", "1.22.1-9+deb12u9", "all",
            "Depends: libnginx-mod-http-echo (>= 1:0.63-4~), nginx (>= 1.22.1-9+deb12u9), nginx (<< 1.22.1-9+deb12u9.1~)"),
        stanza("nginx", "1.22.1-9+deb12u9", "amd64",
            "Pre-Depends: init-system-helpers (>= 1.54~)\nDepends: nginx-common (= 1.22.1-9+deb12u9), libc6 (>= 2.34), libssl3 (>= 3.0.0)"),
        stanza("nginx", "1.22.1-9", "amd64", "Depends: old-thing"),
        stanza("nginx-common", "1.22.1-9+deb12u9", "all", "Depends: debconf (>= 0.5) | debconf-2.0, lsb-base"),
        stanza("libnginx-mod-http-echo", "1:0.63-4", "amd64", "Depends: nginx-abi-1.22.1-7, libc6 (>= 2.4)"),
        stanza("libc6", "2.36-9+deb12u10", "amd64", "Depends: libgcc-s1"),
        stanza("libc6", "2.36-9+deb12u10", "arm64", "Depends: never-for-amd64"),
        stanza("libgcc-s1", "12.2.0-14", "amd64", "Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)"),
        stanza("gcc-12-base", "12.2.0-14", "amd64", ""),
        stanza("libssl3", "3.0.16-1~deb12u1", "amd64", "Depends: libc6:any (>= 2.34)"),
        stanza("nginx-core", "1.22.1-9+deb12u9", "amd64", "Provides: nginx-abi-1.22.1-7, httpd"),
        stanza("lsb-base", "11.6", "all", "Depends: sysvinit-utils"),
        stanza("debconf", "1.5.82", "all", "Provides: debconf-2.0"),
    ])
}

#[test]
fn closure_of_nginx_light() {
    let u = synthetic();
    let exclude = set(&["debconf", "init-system-helpers", "lsb-base"]);
    let got = u
        .resolve(&roots(&["nginx-light"]), &exclude, "amd64")
        .unwrap();
    assert_eq!(
        names(&got),
        [
            "gcc-12-base=12.2.0-14",
            "libc6=2.36-9+deb12u10",
            "libgcc-s1=12.2.0-14",
            "libnginx-mod-http-echo=1:0.63-4",
            "libssl3=3.0.16-1~deb12u1",
            "nginx=1.22.1-9+deb12u9",
            "nginx-common=1.22.1-9+deb12u9",
            "nginx-core=1.22.1-9+deb12u9",
            "nginx-light=1.22.1-9+deb12u9",
        ]
    );
    assert!(got.iter().all(|p| p.arch != "arm64"));
    assert_eq!(closure_size(&got), 9 * 2 * 1024);
    // The same roots in another order, or given twice, give the same closure.
    let again = u
        .resolve(
            &roots(&["nginx-light", "libc6", "nginx-light"]),
            &exclude,
            "amd64",
        )
        .unwrap();
    assert_eq!(names(&again), names(&got));
}

#[test]
fn unsatisfiable_names_the_chain() {
    let u = synthetic();
    let exclude = set(&["debconf", "init-system-helpers"]);
    let err = u
        .resolve(&roots(&["nginx-light"]), &exclude, "amd64")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`lsb-base` depends on `sysvinit-utils`, which no package satisfies, \
         required via `nginx-light` → `nginx` → `nginx-common`"
    );
    let u = universe(&[
        stanza(
            "nginx",
            "1.22.1-9",
            "amd64",
            "Depends: libnginx-mod-http-echo (>= 1:0.63-4~) | nope",
        ),
        stanza("libnginx-mod-http-echo", "1:0.63-3", "amd64", ""),
    ]);
    let err = u
        .resolve(&roots(&["nginx"]), &BTreeSet::new(), "amd64")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`nginx` depends on `libnginx-mod-http-echo (>= 1:0.63-4~) | nope`, which no package \
         satisfies (newest is `libnginx-mod-http-echo 1:0.63-3`)"
    );
    let err = u
        .resolve(&roots(&["nginx-full"]), &BTreeSet::new(), "amd64")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no package `nginx-full` for architecture `amd64` or `all`"
    );
    let err = u
        .resolve(&roots(&["nginx"]), &BTreeSet::new(), "arm64")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no package `nginx` for architecture `arm64` or `all`"
    );
}

#[test]
fn alternatives_and_provides() {
    let u = universe(&[
        stanza(
            "app",
            "1",
            "amd64",
            "Depends: missing | mawk | gawk, awk, mail-transport-agent, \
                libfoo-abi (>= 2), debconf (>= 0.5) | debconf-2.0, cron:any, libx:amd64",
        ),
        stanza("mawk", "1.3.4", "amd64", "Provides: awk"),
        stanza("gawk", "5.2", "amd64", "Provides: awk"),
        // Providers of a virtual name: the higher priority wins, then the name.
        stanza(
            "postfix",
            "3.7",
            "amd64",
            "Provides: mail-transport-agent\nPriority: optional",
        ),
        stanza(
            "exim4",
            "4.96",
            "amd64",
            "Provides: mail-transport-agent\nPriority: standard",
        ),
        // Versioned provides: only the one whose provided version satisfies.
        stanza("libfoo1", "1", "amd64", "Provides: libfoo-abi (= 1)"),
        stanza("libfoo2", "2", "amd64", "Provides: libfoo-abi (= 2)"),
        stanza("libfoo-any", "9", "amd64", "Provides: libfoo-abi"),
        stanza("cdebconf", "0.270", "amd64", "Provides: debconf-2.0"),
        stanza("cron", "3.0", "amd64", ""),
        stanza("libx", "1", "all", ""),
    ]);
    let got = u
        .resolve(&roots(&["app"]), &BTreeSet::new(), "amd64")
        .unwrap();
    assert_eq!(
        names(&got),
        [
            "app=1",
            "cdebconf=0.270",
            "cron=3.0",
            "exim4=4.96",
            "libfoo2=2",
            "libx=1",
            "mawk=1.3.4"
        ]
    );
    // An excluded provider satisfies the virtual name.
    let got = u
        .resolve(&roots(&["app"]), &set(&["cdebconf"]), "amd64")
        .unwrap();
    assert!(got.iter().all(|p| p.name != "cdebconf"));
}

#[test]
fn unversioned_provides_do_not_satisfy_versioned_deps() {
    let u = universe(&[
        stanza("app", "1", "amd64", "Depends: libfoo-abi (>= 1)"),
        stanza("libfoo-any", "9", "amd64", "Provides: libfoo-abi"),
    ]);
    let err = u
        .resolve(&roots(&["app"]), &BTreeSet::new(), "amd64")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`app` depends on `libfoo-abi (>= 1)`, which no package satisfies"
    );
}

#[test]
fn newest_version_per_arch_wins() {
    let u = universe(&[
        stanza("p", "1.0-1", "amd64", ""),
        stanza("p", "1.0-1+deb12u1", "amd64", ""),
        stanza("p", "1.0-1~bpo", "amd64", ""),
        stanza("p", "2.0", "arm64", ""),
    ]);
    assert_eq!(u.len(), 2);
    assert_eq!(u.get("p", "amd64").unwrap().version, "1.0-1+deb12u1");
    let got = u
        .resolve(&roots(&["p"]), &BTreeSet::new(), "amd64")
        .unwrap();
    assert_eq!(names(&got), ["p=1.0-1+deb12u1"]);
}

/// Decodes an LZ4 frame (<https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md>):
/// apt keeps its lists LZ4-compressed on this machine, and no LZ4 crate is a dependency.
fn lz4_frame(data: &[u8]) -> Vec<u8> {
    let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0x184D_2204, "not an LZ4 frame");
    let flags = data[4];
    let content_size = if flags & 0x08 == 0 { 0 } else { 8 };
    let dictionary = if flags & 0x01 == 0 { 0 } else { 4 };
    // Magic, FLG, BD, the optional fields, then the header checksum.
    let mut i = 4 + 2 + content_size + dictionary + 1;
    let block_checksum = if flags & 0x10 == 0 { 0 } else { 4 };
    let mut out = Vec::new();
    loop {
        let header = u32_at(i);
        i += 4;
        if header == 0 {
            break;
        }
        let len = (header & 0x7FFF_FFFF) as usize;
        let block = &data[i..i + len];
        i += len + block_checksum;
        if header & 0x8000_0000 != 0 {
            out.extend_from_slice(block);
            continue;
        }
        let mut j = 0;
        let length = |j: &mut usize, mut n: usize| {
            if n == 15 {
                loop {
                    let b = block[*j];
                    *j += 1;
                    n += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
            }
            n
        };
        while j < block.len() {
            let token = block[j];
            j += 1;
            let literals = length(&mut j, usize::from(token >> 4));
            out.extend_from_slice(&block[j..j + literals]);
            j += literals;
            if j == block.len() {
                break;
            }
            let offset = usize::from(u16::from_le_bytes([block[j], block[j + 1]]));
            j += 2;
            let count = length(&mut j, usize::from(token & 0x0F)) + 4;
            let start = out.len() - offset;
            if offset >= count {
                out.extend_from_within(start..start + count);
            } else {
                for k in 0..count {
                    out.push(out[start + k]);
                }
            }
        }
    }
    out
}

/// The real indexes apt fetched on this machine (`apt-get update`).
fn host_packages() -> Vec<Package> {
    let dir = std::path::Path::new("/var/lib/apt/lists");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut packages = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(suffix) = name.split_once("_Packages").map(|(_, s)| s) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let text = match suffix {
            ".lz4" => lz4_frame(&bytes),
            "" | ".gz" | ".xz" => super::super::apt::decompress(&name, &bytes).unwrap(),
            _ => continue,
        };
        let text = String::from_utf8(text).unwrap();
        packages.extend(parse_packages(&text).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    assert!(
        !packages.is_empty(),
        "no /var/lib/apt/lists/*_Packages index on this machine: run `apt-get update` first"
    );
    packages
}

#[test]
fn closure_from_this_machine() {
    let u = Universe::new(host_packages());
    let exclude = set(&[
        "debconf",
        "debconf-2.0",
        "adduser",
        "init-system-helpers",
        "perl-base",
        "ucf",
        "lsb-base",
    ]);
    let got = u
        .resolve(&roots(&["nginx-light"]), &exclude, "amd64")
        .unwrap();
    let got_names: BTreeSet<&str> = got.iter().map(|p| p.name.as_str()).collect();
    for name in ["libc6", "libssl3", "nginx", "nginx-common", "libpcre2-8-0"] {
        assert!(
            got_names.contains(name),
            "`{name}` missing from {got_names:?}"
        );
    }
    for name in &exclude {
        assert!(
            !got_names.contains(name.as_str()),
            "excluded `{name}` in {got_names:?}"
        );
    }
    assert!(got.iter().all(|p| p.arch == "amd64" || p.arch == "all"));
    assert!(got.windows(2).all(|w| w[0].name < w[1].name));
    assert!(closure_size(&got) > 1024 * 1024, "{}", closure_size(&got));
}
