//! Seeded mutation fuzzing of the readers of untrusted input: the `.deb` reader (with its ar,
//! tar and decompression layers), the profile parser (through resolution and rendering), and the
//! extraction of bundle archives and OCI layers that activation runs (`tests/fuzz_integration.rs`:
//! its seeds are a bundle built from Debian's packages).
//!
//! Each input is a valid seed mutated a few times (bit flips, interesting bytes, truncation,
//! insertion, duplication; for profiles also line and token edits; for archives and layers also
//! header fields and types, duplicated, inserted, removed and swapped entries, PAX records and
//! gzip wrapping). Every outcome must be a value or an error, never a panic, and errors must say
//! something; an extraction must also leave nothing outside its directory (a sentinel beside it
//! is checked) and nothing inside it that the safe-extraction rules forbid. The seed is fixed so
//! that CI is repeatable and printed; `INFRAGEN_SEED=<n>` explores elsewhere and
//! `INFRAGEN_FUZZ_ROUNDS` runs longer (`INFRAGEN_FUZZ_ROUNDS=100000 cargo test --release --test
//! fuzz`). A failing input is kept in the temporary directory for the record.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use infragen::pkg::deb::{self, Limits};

mod common;
#[path = "fuzz/support.rs"]
mod support;

use common::{ar, gz, xz, Rng};
use support::{keep, mutate, rounds, seed};

/// A tar with a directory, files, a symlink and a hardlink.
fn data_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    add("./", tar::EntryType::Directory, 0o755, b"", None);
    add("./usr/", tar::EntryType::Directory, 0o755, b"", None);
    add("./usr/bin/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "./usr/bin/tool",
        tar::EntryType::Regular,
        0o755,
        b"#!/bin/sh\necho hi\n",
        None,
    );
    add(
        "./usr/bin/alias",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("tool"),
    );
    add(
        "./usr/bin/again",
        tar::EntryType::Link,
        0o755,
        b"",
        Some("./usr/bin/tool"),
    );
    add("./etc/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "./etc/tool.conf",
        tar::EntryType::Regular,
        0o644,
        &[b'x'; 700],
        None,
    );
    b.into_inner().unwrap()
}

fn control_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let text = b"Package: fuzz\nVersion: 1:1.0-1\nArchitecture: amd64\nDescription: fuzz\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(text.len() as u64);
    b.append_data(&mut h, "./control", &text[..]).unwrap();
    b.into_inner().unwrap()
}

fn deb_with(data_name: &str, data: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar())),
        (data_name, data),
    ])
}

#[test]
fn the_deb_reader_never_panics_on_mutated_packages() {
    let mut rng = Rng(seed());
    let tar = data_tar();
    let seeds = [
        deb_with("data.tar", &tar),
        deb_with("data.tar.gz", &gz(&tar)),
        deb_with("data.tar.xz", &xz(&tar)),
    ];
    let limits = Limits {
        max_total_bytes: 4 << 20,
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    for s in &seeds {
        deb::read(s, &limits).expect("every seed reads");
    }
    let (mut ok, mut refused) = (0, 0);
    for round in 0..rounds(3000) {
        // Half the rounds mutate the uncompressed tar inside a well-formed ar, to reach the tar
        // reader; the others mutate a whole package.
        let input = if round % 2 == 0 {
            let mut t = tar.clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut t, &mut rng);
            }
            deb_with("data.tar", &t)
        } else {
            let mut d = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut d, &mut rng);
            }
            d
        };
        match catch_unwind(AssertUnwindSafe(|| deb::read(&input, &limits))) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty(), "round {round}: an empty error");
                refused += 1;
            }
            Err(_) => {
                let kept = keep(&format!("infragen-fuzz-deb-{round}.deb"), &input);
                panic!(
                    "round {round}: the .deb reader panicked; input kept at {}",
                    kept.display()
                );
            }
        }
    }
    eprintln!("deb: {ok} read, {refused} refused");
    assert!(refused > 0 && ok > 0, "the mutations reached both outcomes");
}

/// Line- and token-level edits that keep a profile looking like YAML.
fn mutate_text(text: &str, rng: &mut Rng) -> String {
    const TOKENS: &[&str] = &[
        "",
        "~",
        "null",
        "-1",
        "0",
        "65536",
        "99999999999999999999",
        "1.5",
        "true",
        "[]",
        "{}",
        "[1, 2",
        "{a: 1",
        "\"\\u0000\"",
        "'\t'",
        "&a x",
        "*a",
        "!!binary aGk=",
        "10.10.10.",
        "::1",
        "a;b",
        "$(id)",
        "%n",
        "\u{202e}",
        "💥",
        "- x",
        "? y",
        ": z",
        "<<: *a",
    ];
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return text.to_owned();
    }
    let at = rng.below(lines.len());
    match rng.below(6) {
        0 => {
            lines.remove(at);
        }
        1 => {
            let l = lines[at].clone();
            lines.insert(rng.below(lines.len()), l);
        }
        2 => {
            let b = rng.below(lines.len());
            lines.swap(at, b);
        }
        3 => {
            let l = &lines[at];
            lines[at] = if rng.below(2) == 0 {
                format!("  {l}")
            } else {
                l.trim_start().to_owned()
            };
        }
        4 => {
            // Replace a value (after the first `: `) or the whole line with a token.
            let token = TOKENS[rng.below(TOKENS.len())];
            let l = lines[at].clone();
            lines[at] = match l.split_once(": ") {
                Some((k, _)) => format!("{k}: {token}"),
                None => token.to_owned(),
            };
        }
        _ => {
            let mut bytes = lines[at].clone().into_bytes();
            mutate(&mut bytes, rng);
            lines[at] = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn the_profile_parser_never_panics_on_mutated_inventories() {
    let mut rng = Rng(seed() ^ 0x9E37_79B9_7F4A_7C15);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The built-in profiles, our Pigsty-dialect fixtures, and Pigsty's own when present.
    let mut files = common::yml_files(&root.join("profiles"));
    files.extend(common::inventories());
    let seeds: Vec<String> = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    assert!(seeds.len() >= 9, "{} seeds", seeds.len());
    let (mut rendered, mut refused) = (0, 0);
    for round in 0..rounds(600) {
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(3) {
            text = mutate_text(&text, &mut rng);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match infragen::profile::parse("fuzz.yml", &text) {
                Err(e) => Err(e.to_string()),
                Ok(inventory) => match infragen::plan::resolve(&inventory) {
                    Err(e) => Err(e.to_string()),
                    Ok(plan) => infragen::render::plan(&plan)
                        .map(|_| ())
                        .map_err(|e| format!("render: {e:#}")),
                },
            }
        }));
        match outcome {
            Ok(Ok(())) => rendered += 1,
            Ok(Err(e)) => {
                assert!(!e.trim().is_empty(), "round {round}: an empty error");
                refused += 1;
            }
            Err(_) => {
                let kept = keep(
                    &format!("infragen-fuzz-profile-{round}.yml"),
                    text.as_bytes(),
                );
                panic!(
                    "round {round}: the profile pipeline panicked; input kept at {}",
                    kept.display()
                );
            }
        }
    }
    eprintln!("profiles: {rendered} rendered, {refused} refused");
    assert!(
        refused > 0 && rendered > 0,
        "the mutations reached both outcomes"
    );
}
