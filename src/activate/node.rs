//! The node part of a generation on the host (docs/nodes.md): the host files of the host's own
//! services that a generation owns — a managed block in `/etc/hosts`, the resolver's
//! configuration, chrony's, an APT source, a CA in the trust store.
//!
//! The first time a generation takes a path, what was there (a file with its bytes, mode and
//! owner, a symlink, or nothing) is recorded in the state directory (`node/owned.json`, the
//! bytes under `node/before/<sha256>`), before the path is written. Applying a generation first
//! undoes what the last one placed (a whole file gives back what was there before; a managed
//! block is taken out, the rest of the file kept as the host has it), then places the new
//! content; a path the generation no longer names is given back. So a rollback, or `activate
//! --remove`, leaves every file exactly as it was before infragen first touched it, unless
//! someone else edited it since (their edits outside the block are kept). Every write goes
//! through [`Root`] with links resolved inside the host root; a block is only ever edited in a
//! regular file.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::euid_is_root;
use super::runtime::Host;
use super::state::{fail_point, State};
use crate::fsx::{Kind, Links, Root};
use crate::manifest::{HostFile, Node, Place, When};

/// The first line of a managed block.
pub const BEGIN: &str =
    "# BEGIN infragen: written by `infragen activate`; edit the profile, not these lines\n";
/// The last line of a managed block.
pub const END: &str = "# END infragen\n";

/// The largest host file infragen reads to edit or keep.
const MAX_FILE: u64 = 4 << 20;

/// What a path held before a generation first took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Before {
    /// Nothing.
    Absent,
    /// A regular file: its bytes are `node/before/<sha256>`.
    File {
        sha256: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A symlink.
    Link { target: PathBuf },
}

/// One path a generation owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Owned {
    /// What was there before.
    before: Before,
    /// How the content was last placed.
    place: Place,
}

const RECORD: &str = "node/owned.json";

/// What is at a host path now, or is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Absent,
    File {
        bytes: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Link(PathBuf),
}

fn rel(path: &str) -> &Path {
    Path::new(path.trim_start_matches('/'))
}

/// Reads what is at `path` on the host (a file of at most [`MAX_FILE`], never through a
/// symlink at the path itself).
fn current(host: &Root, path: &str) -> Result<Content> {
    let r = rel(path);
    let Some(meta) = host.meta(r)? else {
        return Ok(Content::Absent);
    };
    match meta.kind {
        Kind::File => {
            let file = host.open_file(r)?;
            let m = file.metadata()?;
            if !m.is_file() || m.len() > MAX_FILE {
                bail!("{path}: not a regular file of at most {MAX_FILE} bytes; infragen does not edit it");
            }
            let mut bytes = Vec::new();
            file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
            Ok(Content::File {
                bytes,
                mode: meta.mode & 0o7777,
                uid: meta.uid,
                gid: meta.gid,
            })
        }
        Kind::Symlink => Ok(Content::Link(host.read_link(r)?)),
        Kind::Dir | Kind::Other => {
            bail!("{path}: not a regular file or a symlink; infragen does not replace it")
        }
    }
}

/// Writes `content` at `path`: a file by rename, a link by rename, nothing by unlink.
fn put(host: &Root, path: &str, content: &Content) -> Result<()> {
    let r = rel(path);
    match content {
        Content::Absent => {
            host.remove(r)?;
        }
        Content::File {
            bytes,
            mode,
            uid,
            gid,
        } => {
            if let Some(parent) = r.parent().filter(|p| !p.as_os_str().is_empty()) {
                host.mkdir_all(parent, 0o755)?;
            }
            host.write_atomic(r, bytes, *mode)?;
            if euid_is_root() {
                host.chown(r, *uid, *gid)?;
            }
        }
        Content::Link(target) => host.symlink_atomic(target, r)?,
    }
    Ok(())
}

/// The state directory's record of owned paths.
fn load(st: &Root) -> Result<BTreeMap<String, Owned>> {
    if st.meta(Path::new(RECORD))?.is_none() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_slice(&st.read(Path::new(RECORD))?).with_context(|| {
        format!(
            "{}: not a record infragen wrote",
            st.path().join(RECORD).display()
        )
    })
}

fn save(st: &Root, record: &BTreeMap<String, Owned>) -> Result<()> {
    st.mkdir_all(Path::new("node/before"), 0o700)?;
    st.write_atomic(
        Path::new(RECORD),
        &serde_json::to_vec_pretty(record).expect("serialisable"),
        0o600,
    )
}

/// Records `content` as what was at a path before: its bytes kept by digest.
fn snapshot(st: &Root, content: &Content) -> Result<Before> {
    Ok(match content {
        Content::Absent => Before::Absent,
        Content::Link(t) => Before::Link { target: t.clone() },
        Content::File {
            bytes,
            mode,
            uid,
            gid,
        } => {
            let sha256 = crate::digest::sha256_hex(bytes);
            let at = Path::new("node/before").join(&sha256);
            st.mkdir_all(Path::new("node/before"), 0o700)?;
            if st.meta(&at)?.is_none() {
                st.write_atomic(&at, bytes, 0o600)?;
            }
            Before::File {
                sha256,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            }
        }
    })
}

/// What was there before, its bytes checked against their digest as they are read.
fn restored(st: &Root, before: &Before) -> Result<Content> {
    Ok(match before {
        Before::Absent => Content::Absent,
        Before::Link { target } => Content::Link(target.clone()),
        Before::File {
            sha256,
            mode,
            uid,
            gid,
        } => {
            let at = Path::new("node/before").join(sha256);
            let bytes = st.read(&at)?;
            if crate::digest::sha256_hex(&bytes) != *sha256 {
                bail!(
                    "{}: the kept copy does not match its digest; restore the file by hand",
                    st.path().join(&at).display()
                );
            }
            Content::File {
                bytes,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            }
        }
    })
}

/// `bytes` without the managed block (the first one, markers included).
pub fn strip(bytes: &[u8]) -> Vec<u8> {
    let text = bytes;
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        (from..=hay.len().saturating_sub(needle.len()))
            .find(|&i| hay[i..].starts_with(needle) && (i == 0 || hay[i - 1] == b'\n'))
    };
    let Some(start) = find(text, BEGIN.as_bytes(), 0) else {
        return bytes.to_vec();
    };
    let end = find(text, END.as_bytes(), start).map_or(text.len(), |e| e + END.len());
    let mut out = text[..start].to_vec();
    out.extend_from_slice(&text[end..]);
    out
}

/// The managed block with `lines` in it.
fn block(lines: &[u8]) -> Vec<u8> {
    let mut b = BEGIN.as_bytes().to_vec();
    b.extend_from_slice(lines);
    if !lines.is_empty() && !lines.ends_with(b"\n") {
        b.push(b'\n');
    }
    b.extend_from_slice(END.as_bytes());
    b
}

/// `path` as it is with what the last generation placed taken away.
fn undone(st: &Root, owned: &Owned, now: &Content) -> Result<Content> {
    if owned.place == Place::Whole {
        return restored(st, &owned.before);
    }
    let Content::File {
        bytes,
        mode,
        uid,
        gid,
    } = now
    else {
        return Ok(now.clone());
    };
    let rest = strip(bytes);
    let before = restored(st, &owned.before)?;
    Ok(match before {
        // Exactly as before, when nothing else changed (the newline a block needed after a
        // last line without one included).
        Content::File { bytes: ref b, .. }
            if rest == *b
                || (rest.len() == b.len() + 1 && rest.starts_with(b) && rest.ends_with(b"\n")) =>
        {
            before
        }
        Content::Absent if rest.is_empty() => Content::Absent,
        _ => Content::File {
            bytes: rest,
            mode: *mode,
            uid: *uid,
            gid: *gid,
        },
    })
}

/// Whether systemd-resolved manages the host's resolver: `/etc/resolv.conf` is (or was, before
/// infragen replaced it) a link into `/run/systemd/resolve/`.
fn resolved(host: &Root, record: &BTreeMap<String, Owned>) -> bool {
    let target = match record.get("/etc/resolv.conf").map(|o| &o.before) {
        Some(Before::Link { target }) => Some(target.clone()),
        Some(_) => None,
        None => host.read_link(Path::new("etc/resolv.conf")).ok(),
    };
    target.is_some_and(|t| t.to_string_lossy().contains("run/systemd/resolve/"))
}

/// `path` with `f`'s content placed over `base` (what it holds with the last generation's
/// content taken away), the content read from the staged generation `gen`.
fn placed(path: &str, f: &HostFile, base: Content, gen: &Root) -> Result<Content> {
    let source = gen.read(Path::new(&f.source))?;
    Ok(match f.place {
        Place::Whole => Content::File {
            bytes: source,
            mode: f.mode,
            uid: 0,
            gid: 0,
        },
        Place::Block | Place::Top => {
            let (mut bytes, mode, uid, gid) = match base {
                Content::Absent => (Vec::new(), 0o644, 0, 0),
                Content::File {
                    bytes,
                    mode,
                    uid,
                    gid,
                } => (bytes, mode, uid, gid),
                Content::Link(t) => bail!(
                    "{path} is a link to {}: infragen edits a block only in a regular file\nhint: make it a file, or leave it out of the profile (for the resolver: node_dns_method: none or overwrite)",
                    t.display()
                ),
            };
            let b = block(&source);
            if f.place == Place::Top {
                bytes.splice(0..0, b);
            } else {
                if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                    bytes.push(b'\n');
                }
                bytes.extend_from_slice(&b);
            }
            Content::File {
                bytes,
                mode,
                uid,
                gid,
            }
        }
    })
}

/// Makes the host's node files what `node` (of staged generation `id`) says, giving back every
/// path it does not name; `None` gives back everything. Returns the paths that changed.
pub fn apply(state: &State, id: &str, node: Option<&Node>) -> Result<Vec<String>> {
    let st = Root::open(&state.dir, Links::Refuse)?;
    let host = Root::open(&state.root, Links::InRoot)?;
    let mut record = load(&st)?;
    let is_resolved = resolved(&host, &record);
    let wanted: BTreeMap<&String, _> = node
        .map(|n| {
            n.files
                .iter()
                .filter(|(_, f)| match f.when {
                    When::Always => true,
                    When::Resolved => is_resolved,
                    When::NoResolved => !is_resolved,
                })
                .collect()
        })
        .unwrap_or_default();
    let gen = match node {
        Some(_) => Some(st.sub(&Path::new("generations").join(id))?),
        None => None,
    };
    // Everything to write is worked out first: an error (a link where a block goes) leaves
    // every file as it was.
    let mut plan: Vec<(String, Content, Content)> = Vec::new();
    let mut paths: Vec<String> = wanted.keys().map(|p| (*p).clone()).collect();
    paths.extend(record.keys().cloned());
    paths.sort();
    paths.dedup();
    for path in &paths {
        let now = current(&host, path)?;
        let base = match record.get(path) {
            Some(o) => undone(&st, o, &now)?,
            None => now.clone(),
        };
        let want = match wanted.get(path) {
            None => base,
            Some(f) => placed(
                path,
                f,
                base,
                gen.as_ref().expect("opened with a node part"),
            )?,
        };
        plan.push((path.clone(), now, want));
    }
    // What was there is recorded before anything is written.
    let mut taken = false;
    for (path, now, _) in &plan {
        if let Some(f) = wanted.get(path) {
            if let Some(o) = record.get_mut(path) {
                taken |= o.place != f.place;
                o.place = f.place;
            } else {
                let before = snapshot(&st, now)?;
                record.insert(
                    path.clone(),
                    Owned {
                        before,
                        place: f.place,
                    },
                );
                taken = true;
            }
        }
    }
    if taken {
        save(&st, &record)?;
    }
    fail_point("node-recorded");
    let mut changed = Vec::new();
    for (path, now, want) in plan {
        if now != want {
            put(&host, &path, &want).with_context(|| format!("writing {path}"))?;
            changed.push(path.clone());
        }
        if !wanted.contains_key(&path) {
            record.remove(&path);
        }
    }
    save(&st, &record)?;
    // Kept copies no owned path needs any more go.
    let kept: std::collections::BTreeSet<String> = record
        .values()
        .filter_map(|o| match &o.before {
            Before::File { sha256, .. } => Some(sha256.clone()),
            _ => None,
        })
        .collect();
    for name in st.sub(Path::new("node/before"))?.list()? {
        if !kept.contains(&*name.to_string_lossy()) {
            st.remove(&Path::new("node/before").join(&name))?;
        }
    }
    Ok(changed)
}

/// Runs what a changed host file needs for the host to use it: chrony and systemd-resolved
/// are restarted if running, the trust store is rebuilt. Only on a host driven by systemd
/// (with `--root`, the files are placed and nothing is run). Returns warnings: a host without
/// Debian's `ca-certificates` gets the CA file but no rebuilt store.
pub fn after(changed: &[String], host: &Host) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if !host.systemd {
        return Ok(notes);
    }
    for path in changed {
        match path.as_str() {
            "/etc/chrony/chrony.conf" => host.systemctl(&["try-restart", "chrony.service"])?,
            "/etc/systemd/resolved.conf.d/infragen.conf" => {
                host.systemctl(&["try-restart", "systemd-resolved.service"])?;
            }
            "/usr/local/share/ca-certificates/infragen-ca.crt" => {
                if Path::new("/usr/sbin/update-ca-certificates").exists() {
                    host.run("update-ca-certificates", &["--fresh"])?;
                } else {
                    notes.push(format!("{path} changed, and update-ca-certificates is not installed: the system trust store is not rebuilt (apt-get install ca-certificates)"));
                }
            }
            _ => {}
        }
    }
    Ok(notes)
}

/// The paths the host's record says infragen owns (for `status`).
pub fn owned(root: &Path) -> Vec<String> {
    let dir = root.join("var/lib/infragen");
    Root::open(&dir, Links::Refuse)
        .and_then(|st| load(&st))
        .map(|r| r.into_keys().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::HostFile;

    #[test]
    fn a_block_comes_out_as_it_went_in() {
        let lines = b"10.0.0.1 i.pigsty\n";
        for before in [&b""[..], b"127.0.0.1 localhost\n", b"127.0.0.1 localhost"] {
            let mut with = before.to_vec();
            if !with.is_empty() && !with.ends_with(b"\n") {
                with.push(b'\n');
            }
            with.extend_from_slice(&block(lines));
            let rest = strip(&with);
            assert!(
                rest == before || rest == [before, b"\n"].concat(),
                "{rest:?}"
            );
            // At the top.
            let top = [block(lines), before.to_vec()].concat();
            assert_eq!(strip(&top), before);
        }
        // A marker in the middle of a line is not a block.
        let odd = format!("x {BEGIN}y\n");
        assert_eq!(strip(odd.as_bytes()), odd.as_bytes());
    }

    /// A host root with a state directory and generation `id` holding `sources`.
    struct Host {
        dir: tempfile::TempDir,
    }

    impl Host {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("var/lib/infragen/generations")).unwrap();
            std::fs::create_dir_all(dir.path().join("etc")).unwrap();
            std::fs::create_dir_all(dir.path().join("usr")).unwrap();
            Self { dir }
        }
        fn state(&self) -> State {
            State {
                dir: self.dir.path().join("var/lib/infragen"),
                root: self.dir.path().to_path_buf(),
            }
        }
        fn generation(&self, id: &str, sources: &[(&str, &str)]) {
            let g = self
                .dir
                .path()
                .join("var/lib/infragen/generations")
                .join(id)
                .join("node");
            std::fs::create_dir_all(&g).unwrap();
            for (name, text) in sources {
                std::fs::write(g.join(name), text).unwrap();
            }
        }
        fn path(&self, p: &str) -> PathBuf {
            self.dir.path().join(p.trim_start_matches('/'))
        }
        fn read(&self, p: &str) -> Option<Vec<u8>> {
            std::fs::read(self.path(p)).ok()
        }
        /// Every file below `etc` and `usr`, with its bytes and mode, and every link.
        fn snapshot(&self) -> BTreeMap<String, String> {
            let mut out = BTreeMap::new();
            for top in ["etc", "usr"] {
                for e in walkdir::WalkDir::new(self.path(top)).sort_by_file_name() {
                    let e = e.unwrap();
                    let m = std::fs::symlink_metadata(e.path()).unwrap();
                    let key = e
                        .path()
                        .strip_prefix(self.dir.path())
                        .unwrap()
                        .display()
                        .to_string();
                    let what = if m.file_type().is_symlink() {
                        format!("link {}", std::fs::read_link(e.path()).unwrap().display())
                    } else if m.is_file() {
                        use std::os::unix::fs::PermissionsExt as _;
                        format!(
                            "{:o} {}",
                            m.permissions().mode() & 0o7777,
                            crate::digest::sha256_hex(&std::fs::read(e.path()).unwrap())
                        )
                    } else {
                        continue;
                    };
                    out.insert(key, what);
                }
            }
            out
        }
    }

    fn node(files: &[(&str, &str, Place, When)]) -> Node {
        Node {
            files: files
                .iter()
                .map(|(path, source, place, when)| {
                    (
                        (*path).to_owned(),
                        HostFile {
                            source: format!("node/{source}"),
                            place: *place,
                            mode: 0o644,
                            when: *when,
                        },
                    )
                })
                .collect(),
            probes: vec![],
        }
    }

    /// A host with a hosts file (no last newline), a resolv.conf and chrony's configuration, and
    /// generation `a` placing all five kinds of file.
    fn five_files(h: &Host) -> Node {
        std::fs::write(h.path("/etc/hosts"), "127.0.0.1 localhost").unwrap(); // no newline
        std::fs::write(
            h.path("/etc/resolv.conf"),
            "nameserver 9.9.9.9\nsearch lan\n",
        )
        .unwrap();
        std::fs::create_dir_all(h.path("/etc/chrony")).unwrap();
        std::fs::write(
            h.path("/etc/chrony/chrony.conf"),
            "pool 2.debian.pool.ntp.org iburst\n",
        )
        .unwrap();
        h.generation(
            "a",
            &[
                ("hosts", "10.10.10.10 i.pigsty\n"),
                ("resolv.conf", "nameserver 10.10.10.10\n"),
                ("chrony.conf", "server 10.10.10.10 iburst\n"),
                ("ca.crt", "CA\n"),
            ],
        );
        node(&[
            ("/etc/hosts", "hosts", Place::Block, When::Always),
            (
                "/etc/resolv.conf",
                "resolv.conf",
                Place::Top,
                When::NoResolved,
            ),
            (
                "/etc/systemd/resolved.conf.d/infragen.conf",
                "resolv.conf",
                Place::Whole,
                When::Resolved,
            ),
            (
                "/etc/chrony/chrony.conf",
                "chrony.conf",
                Place::Whole,
                When::Always,
            ),
            (
                "/usr/local/share/ca-certificates/infragen-ca.crt",
                "ca.crt",
                Place::Whole,
                When::Always,
            ),
        ])
    }

    #[test]
    fn files_are_placed_then_given_back_byte_for_byte() {
        let h = Host::new();
        let a = five_files(&h);
        let before = h.snapshot(); // `/etc` and `/usr` only: the generation is in `/var`
        let changed = apply(&h.state(), "a", Some(&a)).unwrap();
        assert_eq!(changed.len(), 4, "{changed:?}"); // not the resolved drop-in: no resolved
        assert_eq!(
            h.read("/etc/hosts").unwrap(),
            [
                b"127.0.0.1 localhost\n".as_slice(),
                &block(b"10.10.10.10 i.pigsty\n")
            ]
            .concat()
        );
        assert_eq!(
            h.read("/etc/resolv.conf").unwrap(),
            [
                block(b"nameserver 10.10.10.10\n").as_slice(),
                b"nameserver 9.9.9.9\nsearch lan\n"
            ]
            .concat()
        );
        assert_eq!(
            h.read("/etc/chrony/chrony.conf").unwrap(),
            b"server 10.10.10.10 iburst\n"
        );
        assert!(h
            .read("/etc/systemd/resolved.conf.d/infragen.conf")
            .is_none());
        // Again: nothing changes.
        assert!(apply(&h.state(), "a", Some(&a)).unwrap().is_empty());
        // Everything given back: the tree is what it was, and the record is empty.
        apply(&h.state(), "", None).unwrap();
        let after = h.snapshot();
        let dirs_made: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        assert!(dirs_made.is_empty(), "{dirs_made:?}");
        assert_eq!(before, after);
        assert!(owned(h.dir.path()).is_empty());
        let kept = std::fs::read_dir(h.path("/var/lib/infragen/node/before"))
            .unwrap()
            .count();
        assert_eq!(
            kept, 0,
            "kept copies are removed with the paths they were for"
        );
    }

    #[test]
    fn a_path_the_next_generation_drops_is_given_back() {
        let h = Host::new();
        let a = five_files(&h);
        apply(&h.state(), "a", Some(&a)).unwrap();
        // A new generation with another block and without chrony: chrony is given back.
        h.generation(
            "b",
            &[
                ("hosts", "10.10.10.11 i.pigsty\n"),
                ("resolv.conf", "nameserver 10.10.10.11\n"),
            ],
        );
        let b = node(&[
            ("/etc/hosts", "hosts", Place::Block, When::Always),
            (
                "/etc/resolv.conf",
                "resolv.conf",
                Place::Whole,
                When::NoResolved,
            ),
        ]);
        let changed = apply(&h.state(), "b", Some(&b)).unwrap();
        assert_eq!(changed.len(), 4, "{changed:?}");
        assert_eq!(
            h.read("/etc/resolv.conf").unwrap(),
            b"nameserver 10.10.10.11\n"
        );
        assert_eq!(
            h.read("/etc/chrony/chrony.conf").unwrap(),
            b"pool 2.debian.pool.ntp.org iburst\n"
        );
        assert!(h
            .read("/usr/local/share/ca-certificates/infragen-ca.crt")
            .is_none());
    }

    #[test]
    fn an_operators_lines_outside_the_block_are_kept() {
        let h = Host::new();
        std::fs::write(h.path("/etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        h.generation("a", &[("hosts", "10.10.10.10 i.pigsty\n")]);
        h.generation("b", &[("hosts", "10.10.10.11 i.pigsty\n")]);
        let n = node(&[("/etc/hosts", "hosts", Place::Block, When::Always)]);
        apply(&h.state(), "a", Some(&n)).unwrap();
        let mut edited = h.read("/etc/hosts").unwrap();
        edited.extend_from_slice(b"192.0.2.1 mine\n");
        std::fs::write(h.path("/etc/hosts"), &edited).unwrap();
        // The block moves; the operator's line stays.
        apply(&h.state(), "b", Some(&n)).unwrap();
        assert_eq!(
            h.read("/etc/hosts").unwrap(),
            [
                b"127.0.0.1 localhost\n192.0.2.1 mine\n".as_slice(),
                &block(b"10.10.10.11 i.pigsty\n")
            ]
            .concat()
        );
        // Given back: the file as the host has it, without the block.
        apply(&h.state(), "", None).unwrap();
        assert_eq!(
            h.read("/etc/hosts").unwrap(),
            b"127.0.0.1 localhost\n192.0.2.1 mine\n"
        );
    }

    #[test]
    fn a_link_is_given_back_as_a_link_and_a_block_is_never_written_through_one() {
        let h = Host::new();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            h.path("/etc/resolv.conf"),
        )
        .unwrap();
        h.generation(
            "a",
            &[
                ("resolv.conf", "nameserver 10.10.10.10\n"),
                ("resolved.conf", "[Resolve]\nDNS=10.10.10.10\n"),
            ],
        );
        // With resolved, the drop-in applies and resolv.conf is left alone.
        let a = node(&[
            (
                "/etc/resolv.conf",
                "resolv.conf",
                Place::Top,
                When::NoResolved,
            ),
            (
                "/etc/systemd/resolved.conf.d/infragen.conf",
                "resolved.conf",
                Place::Whole,
                When::Resolved,
            ),
        ]);
        let before = h.snapshot();
        assert_eq!(
            apply(&h.state(), "a", Some(&a)).unwrap(),
            ["/etc/systemd/resolved.conf.d/infragen.conf"]
        );
        apply(&h.state(), "", None).unwrap();
        assert_eq!(h.snapshot(), before);
        // A link that is not resolved's: a block is refused, nothing written; a whole file
        // replaces the link and gives it back.
        std::fs::remove_file(h.path("/etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/etc/elsewhere", h.path("/etc/resolv.conf")).unwrap();
        let before = h.snapshot();
        let e = apply(&h.state(), "a", Some(&a)).unwrap_err().to_string();
        assert!(
            e.contains("/etc/resolv.conf is a link to /etc/elsewhere"),
            "{e}"
        );
        assert_eq!(h.snapshot(), before);
        let whole = node(&[(
            "/etc/resolv.conf",
            "resolv.conf",
            Place::Whole,
            When::NoResolved,
        )]);
        apply(&h.state(), "a", Some(&whole)).unwrap();
        assert_eq!(
            h.read("/etc/resolv.conf").unwrap(),
            b"nameserver 10.10.10.10\n"
        );
        apply(&h.state(), "", None).unwrap();
        assert_eq!(h.snapshot(), before);
    }

    #[test]
    fn a_path_out_of_the_root_is_never_written() {
        // /etc a link out of the root: writes resolve inside the root.
        let h = Host::new();
        let outside = tempfile::tempdir().unwrap();
        std::fs::remove_dir(h.path("/etc")).unwrap();
        std::os::unix::fs::symlink(outside.path(), h.path("/etc")).unwrap();
        h.generation("a", &[("hosts", "10.10.10.10 i.pigsty\n")]);
        let a = node(&[("/etc/hosts", "hosts", Place::Block, When::Always)]);
        let _ = apply(&h.state(), "a", Some(&a));
        assert!(!outside.path().join("hosts").exists());
    }
}
