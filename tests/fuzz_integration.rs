//! Seeded mutation fuzzing of the extraction of bundle archives and OCI layers that activation
//! runs (integration tier: the seeds are a bundle built from Debian's packages). Every outcome
//! must be a value or an error, never a panic, and errors must say something; an extraction
//! must leave nothing outside its directory (a sentinel beside it is checked) and nothing inside
//! it that the safe-extraction rules forbid. The seed and rounds are those of `tests/fuzz.rs`
//! (`INFRAGEN_SEED`, `INFRAGEN_FUZZ_ROUNDS`).

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

mod common;
#[path = "fuzz/support.rs"]
mod support;

use common::{gz, rawtar, Rng};
use support::{keep, mutate, rounds, seed};

// ---------------------------------------------------------------------------------------------
// Extraction: bundle archives and layers, the untrusted streams activation unpacks.

/// Seeds from a real bundle, built once: (a) its archive, as `tar -C <bundle> -c .` makes it,
/// without the root layers' blobs (they only add bytes to copy); (b) one of its root layer
/// blobs, gzip'd: the one with the most entries that has a symlink, among those under 64 KiB.
fn extraction_seeds() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::Builder::new()
        .prefix("infragen-fuzz-bundle-")
        .tempdir()
        .unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let profile = dir.path().join("single.yml");
    let text = fs::read_to_string(root.join("profiles/single-node.yml"))
        .unwrap()
        .replace("10.10.10.", "127.0.40.");
    fs::write(&profile, text).unwrap();
    let out = common::infragen()
        .args(["build", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--lock")
        .arg(common::lock())
        .arg("--pki")
        .arg(dir.path().join("pki"))
        .arg("--sign-key")
        .arg(&common::signing_key().0)
        .output()
        .unwrap();
    common::ok(&out, "build");
    let bundle = dir.path().join("out/127.0.40.10");
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let mut root_layers: Vec<String> = m["components"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| c["root_layers"].as_array().unwrap().clone())
        .map(|d| d.as_str().unwrap().trim_start_matches("sha256:").to_owned())
        .collect();
    root_layers.sort();
    root_layers.dedup();
    let mut archive = tar::Builder::new(Vec::new());
    for e in walkdir::WalkDir::new(&bundle).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(&bundle).unwrap();
        let name = Path::new(".").join(rel);
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if e.file_type().is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            archive.append_data(&mut h, &name, &[][..]).unwrap();
        } else {
            let is_root_layer =
                rel.starts_with("oci/blobs/sha256") && root_layers.iter().any(|d| rel.ends_with(d));
            if is_root_layer {
                continue;
            }
            let data = fs::read(e.path()).unwrap();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            archive.append_data(&mut h, &name, &data[..]).unwrap();
        }
    }
    let archive = archive.into_inner().unwrap();
    let mut best: Option<(usize, Vec<u8>)> = None;
    for d in &root_layers {
        let blob = fs::read(bundle.join("oci/blobs/sha256").join(d)).unwrap();
        if blob.len() > 64 << 10 {
            continue;
        }
        let tar = rawtar::gunzip(&blob);
        let (heads, _) = rawtar::headers(&tar);
        let symlink = heads.iter().any(|&h| tar[h + 156] == b'2');
        if symlink && best.as_ref().is_none_or(|(n, _)| heads.len() > *n) {
            best = Some((heads.len(), blob));
        }
    }
    let layer = best.expect("a small root layer with a symlink").1;
    (archive, layer)
}

/// Names and link targets an attacker reaches for: `hostile` ones (out of the root, relative
/// and absolute to the sentinel; whiteouts, odd forms, terminal escapes) and the seed's `own`
/// (duplicates, overwrites, links to earlier and later entries).
struct Names {
    hostile: Vec<Vec<u8>>,
    own: Vec<Vec<u8>>,
}

impl Names {
    fn from_list(list: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
        list[rng.below(list.len())].clone()
    }

    /// A name for a field or an entry: hostile, the seed's own, or a fresh plain one (so that
    /// what the entry does, not its name, is what gets checked), a third of the time each.
    fn pick(&self, rng: &mut Rng) -> Vec<u8> {
        match rng.below(3) {
            0 => Self::from_list(&self.hostile, rng),
            1 if !self.own.is_empty() => Self::from_list(&self.own, rng),
            _ => format!("fuzz-{}", rng.below(4)).into_bytes(),
        }
    }

    /// A link target: hostile two times in three, else the seed's own.
    fn target(&self, rng: &mut Rng) -> Vec<u8> {
        if self.own.is_empty() || rng.below(3) != 0 {
            Self::from_list(&self.hostile, rng)
        } else {
            Self::from_list(&self.own, rng)
        }
    }
}

fn hostile_names(sentinel: &Path, own: Vec<Vec<u8>>) -> Names {
    let abs = sentinel.as_os_str().as_encoded_bytes();
    let mut out: Vec<Vec<u8>> = [
        &b"../x"[..],
        b"../sentinel/keep",
        b"../../../../../x",
        b"a/../../sentinel/keep",
        b"..",
        b".",
        b"./",
        b"",
        b"/",
        b".wh..wh..opq",
        b".wh...",
        b".wh.",
        b"etc/.wh.keep",
        b"a//b",
        b"./a/./b",
        b"\x1b[2J\x1b]0;x\x07",
        b"\xff\xfe",
        b"etc",
        b"etc/keep",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    out.push(abs.to_vec());
    out.push([abs, b"/keep"].concat());
    out.push([abs, b"/sub/deep"].concat());
    out.push(b"a".repeat(100));
    Names { hostile: out, own }
}

/// The names of a tar stream's entries (ustar name fields).
fn own_names(tar: &[u8]) -> Vec<Vec<u8>> {
    rawtar::headers(tar)
        .0
        .iter()
        .map(|&h| {
            let field = &tar[h..h + 100];
            field[..field.iter().position(|&b| b == 0).unwrap_or(100)].to_vec()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// One entry an attacker would add.
fn crafted(rng: &mut Rng, names: &Names, sentinel: &Path) -> Vec<common::rawtar::Raw> {
    use common::rawtar::Raw;
    let n = names.pick(rng);
    match rng.below(9) {
        0 => vec![Raw::file(n, b"crafted\n").mode(0o7777)],
        1 => vec![Raw::dir(n).mode(0o7777)],
        2 => vec![Raw::symlink(n, names.target(rng))],
        3 => {
            // A directory turned into a symlink out, then a write through it.
            let mut through = n.clone();
            through.extend_from_slice(b"/keep");
            vec![
                Raw::symlink(n, sentinel.as_os_str().as_encoded_bytes()),
                Raw::file(through, b"through\n"),
            ]
        }
        4 => vec![Raw::hardlink(n, names.target(rng))],
        5 => {
            const KINDS: &[u8] = b"01234567LKSxgVDMNA\0";
            vec![Raw::file(n, b"kind\n").kind(KINDS[rng.below(KINDS.len())])]
        }
        6 => {
            let mut wh = n.clone();
            wh.extend_from_slice(b"/.wh.keep");
            vec![Raw::file(wh, b"")]
        }
        7 => {
            const KEYS: &[&str] = &["path", "linkpath", "size", "uid", "gid", "mtime", "mode"];
            let key = KEYS[rng.below(KEYS.len())];
            let value = match key {
                "path" => names.pick(rng),
                "linkpath" => names.target(rng),
                _ => [
                    &b"0"[..],
                    b"-1",
                    b"18446744073709551615",
                    b"99999999999",
                    b"x",
                    b"1e3",
                ][rng.below(6)]
                .to_vec(),
            };
            let e = if rng.below(2) == 0 {
                Raw::file("innocent", b"pax\n")
            } else {
                Raw::symlink("innocent", "target")
            };
            vec![e.pax(key, value)]
        }
        _ => {
            let mut e = Raw::file(n, b"short");
            e.size = Some([1u64 << 20, 0, 4, 511, 8 << 30][rng.below(5)]);
            vec![e]
        }
    }
}

/// One structure-aware mutation of a tar stream: header fields, types, duplicated, inserted,
/// removed or swapped entries, PAX records, truncation, or a byte-level edit.
fn mutate_tar(tar: &mut Vec<u8>, rng: &mut Rng, names: &Names, sentinel: &Path) {
    let (heads, end) = rawtar::headers(tar);
    let span = |i: usize| (heads[i], heads.get(i + 1).copied().unwrap_or(end));
    let boundary = |rng: &mut Rng| {
        if heads.is_empty() {
            0
        } else {
            heads[rng.below(heads.len())]
        }
    };
    match rng.below(11) {
        0 | 1 if !heads.is_empty() => {
            // A header field.
            const FIELDS: &[(usize, usize)] = &[
                (0, 100),
                (100, 8),
                (108, 8),
                (116, 8),
                (124, 12),
                (136, 12),
                (156, 1),
                (157, 100),
                (257, 6),
                (263, 2),
                (329, 8),
                (337, 8),
                (345, 155),
            ];
            let h = heads[rng.below(heads.len())];
            let (at, len) = FIELDS[rng.below(FIELDS.len())];
            let value: Vec<u8> = if at == 157 {
                names.target(rng)
            } else if len >= 100 || at == 0 {
                names.pick(rng)
            } else if at == 156 {
                vec![b"01234567LKSxgVDMNA\0"[rng.below(19)]]
            } else {
                [
                    &b"0000000"[..],
                    b"7777777",
                    b"77777777777",
                    b"00000001000",
                    b"99999999",
                    b"       ",
                    b"\x80\0\0\0\0\0\0\x01",
                    b"\xff\xff\xff\xff\xff\xff\xff\xff",
                    b"-1",
                    b"ustar ",
                    b"ustar\0",
                ][rng.below(11)]
                .to_vec()
            };
            let field = &mut tar[h + at..h + at + len];
            field.fill(0);
            let n = value.len().min(len);
            field[..n].copy_from_slice(&value[..n]);
            if rng.below(8) != 0 {
                rawtar::checksum(&mut tar[h..h + 512]);
            }
        }
        2 if !heads.is_empty() => {
            let h = heads[rng.below(heads.len())];
            tar[h + 156] = b"01234567LKSxgVDMNA\0"[rng.below(19)];
            rawtar::checksum(&mut tar[h..h + 512]);
        }
        3 if !heads.is_empty() => {
            let (a, b) = span(rng.below(heads.len()));
            let copy = tar[a..b].to_vec();
            let to = boundary(rng);
            tar.splice(to..to, copy);
        }
        4..=6 => {
            let entries = crafted(rng, names, sentinel);
            let to = boundary(rng);
            tar.splice(to..to, rawtar::tar_body(&entries));
        }
        7 if !heads.is_empty() => {
            let (a, b) = span(rng.below(heads.len()));
            tar.drain(a..b);
        }
        8 if heads.len() > 1 => {
            let (i, j) = (rng.below(heads.len()), rng.below(heads.len()));
            let (i, j) = (i.min(j), i.max(j));
            if i != j {
                let (a, b) = span(i);
                let (c, d) = span(j);
                let mut out = tar[..a].to_vec();
                out.extend_from_slice(&tar[c..d]);
                out.extend_from_slice(&tar[b..c]);
                out.extend_from_slice(&tar[a..b]);
                out.extend_from_slice(&tar[d..]);
                *tar = out;
            }
        }
        9 => {
            let at = boundary(rng) + [0, 1, 100, 156, 511, 512][rng.below(6)];
            tar.truncate(at.min(tar.len()));
        }
        _ => mutate(tar, rng),
    }
}

/// Kind, mode, contents (or target) of every path below `dir`, never following a symlink.
fn tree(dir: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt as _;
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let content = if m.is_file() {
                fs::read(e.path()).unwrap()
            } else if m.file_type().is_symlink() {
                fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            (e.path().to_path_buf(), m.mode(), content)
        })
        .collect()
}

/// Whether a relative symlink target, from the link's directory `depth` levels below the root,
/// stays inside it.
fn stays_inside(depth: usize, target: &Path) -> bool {
    let mut depth = depth;
    for c in target.components() {
        match c {
            std::path::Component::ParentDir if depth == 0 => return false,
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

/// What an extraction into `target` must never leave, whatever it returned: anything but files
/// and directories (plus symlinks staying inside, in a layer), setuid/setgid/sticky or
/// group/other-writable modes, or a file sharing its inode with the sentinel.
fn check_extracted(target: &Path, layer: bool, sentinel_inodes: &[u64]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    for e in walkdir::WalkDir::new(target).min_depth(1) {
        let e = e.map_err(|e| e.to_string())?;
        let m = e.path().symlink_metadata().map_err(|e| e.to_string())?;
        let rel = e.path().strip_prefix(target).unwrap();
        let ft = m.file_type();
        if ft.is_symlink() {
            let t = fs::read_link(e.path()).unwrap();
            if !layer {
                return Err(format!("{}: a symlink in a bundle", rel.display()));
            }
            if !t.is_absolute() && !stays_inside(rel.components().count() - 1, &t) {
                return Err(format!("{} -> {}: climbs out", rel.display(), t.display()));
            }
        } else if ft.is_file() || ft.is_dir() {
            if m.mode() & 0o7022 != 0 {
                return Err(format!("{}: mode {:o}", rel.display(), m.mode()));
            }
            if ft.is_file() && sentinel_inodes.contains(&m.ino()) {
                return Err(format!("{}: a link to the sentinel", rel.display()));
            }
            if ft.is_file() && !layer && m.nlink() != 1 {
                return Err(format!("{}: a hard link in a bundle", rel.display()));
            }
        } else {
            return Err(format!("{}: {ft:?}", rel.display()));
        }
    }
    Ok(())
}

/// Removes a target directory whatever modes its extraction left.
fn reset(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if dir.exists() {
        for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if e.file_type().is_dir() {
                let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
            }
        }
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir(dir).unwrap();
}

#[test]
fn extraction_never_panics_or_escapes_on_mutated_bundle_archives_and_layers() {
    use std::os::unix::fs::MetadataExt as _;
    common::tier::binary(common::tier::Tier::Integration, "tests/fuzz_integration.rs");
    let mut rng = Rng(seed() ^ 0xD1B5_4A32_D192_ED03);
    let (archive, layer) = extraction_seeds();
    let layer_tar = rawtar::gunzip(&layer);
    // On tmpfs when there is one: a long campaign creates and removes millions of files.
    let shm = Path::new("/dev/shm");
    let work = tempfile::Builder::new()
        .prefix("infragen-fuzz-extract-")
        .tempdir_in(if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        })
        .unwrap();
    let (target, sentinel) = (work.path().join("t"), work.path().join("sentinel"));
    fs::create_dir_all(sentinel.join("sub")).unwrap();
    fs::write(sentinel.join("keep"), "keep me\n").unwrap();
    fs::write(sentinel.join("sub/deep"), "deep\n").unwrap();
    let sentinel_tree = tree(&sentinel);
    let sentinel_inodes: Vec<u64> = ["keep", "sub/deep"]
        .iter()
        .map(|f| fs::metadata(sentinel.join(f)).unwrap().ino())
        .collect();
    // Both seeds extract as they are.
    for (bytes, is_layer) in [(&archive, false), (&layer, true)] {
        reset(&target);
        infragen::activate::extract_for_fuzz(bytes, &target, is_layer).expect("a seed extracts");
    }
    let names = [
        hostile_names(&sentinel, own_names(&archive)),
        hostile_names(&sentinel, own_names(&layer_tar)),
    ];
    let started = std::time::Instant::now();
    let mut counts = [[0usize; 2]; 2]; // [seed][extracted, refused]
    for round in 0..rounds(3000) {
        // Even rounds: the bundle archive, as a bundle; odd: the layer, as a layer; one round in
        // eight crosses them over.
        let seed = round % 2;
        let layer_kind = (seed == 1) != (rng.below(8) == 0);
        let mut input = if seed == 0 {
            archive.clone()
        } else {
            layer_tar.clone()
        };
        for _ in 0..=rng.below(3) {
            mutate_tar(&mut input, &mut rng, &names[seed], &sentinel);
        }
        let gzip = rng.below(4) < if seed == 1 { 3 } else { 2 };
        if gzip {
            input = gz(&input);
            if rng.below(8) == 0 {
                mutate(&mut input, &mut rng);
            }
        }
        reset(&target);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            infragen::activate::extract_for_fuzz(&input, &target, layer_kind)
        }));
        let mut finding = match &outcome {
            Err(_) => Some("panicked".to_owned()),
            Ok(Err(e)) if format!("{e:#}").trim().is_empty() => Some("an empty error".to_owned()),
            Ok(_) => None,
        };
        let mut beside: Vec<String> = fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        beside.sort();
        if beside != ["sentinel", "t"] {
            finding = Some(format!("wrote beside the target: {beside:?}"));
        } else if tree(&sentinel) != sentinel_tree {
            finding = Some("the sentinel changed".to_owned());
        } else if let Err(e) = check_extracted(&target, layer_kind, &sentinel_inodes) {
            finding = Some(e);
        }
        if let Some(what) = finding {
            let kept = keep(&format!("infragen-fuzz-extract-{round}.tar"), &input);
            panic!(
                "round {round} ({} as a {}): {what}; input kept at {}",
                ["bundle archive", "layer"][seed],
                if layer_kind { "layer" } else { "bundle" },
                kept.display()
            );
        }
        counts[seed][usize::from(!matches!(outcome, Ok(Ok(()))))] += 1;
    }
    eprintln!(
        "extraction: {} rounds in {:.1} s; bundle archive {} extracted, {} refused; layer {} extracted, {} refused",
        counts.iter().flatten().sum::<usize>(),
        started.elapsed().as_secs_f64(),
        counts[0][0],
        counts[0][1],
        counts[1][0],
        counts[1][1]
    );
    assert!(
        counts.iter().all(|c| c[0] > 0 && c[1] > 0),
        "the mutations reached both outcomes for both seeds: {counts:?}"
    );
}
