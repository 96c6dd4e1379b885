//! Layer entries: a package's files with excluded paths left out, the recipe's users, groups and
//! directories, a host's rendered files of one component, and the content key that caches a
//! layer by its entries.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use crate::image::{Recipe, User};
use crate::oci::layer::{EntryKind, LayerEntry};
use crate::pkg::deb;
use crate::plan::Component;
use crate::tree::Tree;

/// Which of the package `d`'s entries recipe `r` leaves out (its exclude list, and what it
/// keeps of this package), in entry order. A kept hard link to a left-out file is an error.
pub(super) fn package_drops(d: &deb::Deb, r: &Recipe) -> Result<Vec<bool>> {
    let package = d.control.get("Package").map_or("", String::as_str);
    let mut drop = Vec::with_capacity(d.entries.len());
    let mut dropped: BTreeSet<&str> = BTreeSet::new();
    for e in &d.entries {
        let out = r.excludes_from(package, &e.path, e.kind == deb::Kind::Dir);
        if out {
            dropped.insert(&e.path);
        } else if let deb::Kind::Hardlink(t) = &e.kind {
            if dropped.contains(t.as_str()) {
                bail!("`{}` is a hard link to excluded `{t}`", e.path);
            }
        }
        drop.push(out);
    }
    Ok(drop)
}

/// The package `d`'s files as layer entries, owned by root, without those `drop` marks
/// ([`package_drops`]).
pub(super) fn package_entries(d: &deb::Deb, drop: &[bool]) -> Vec<LayerEntry> {
    d.entries
        .iter()
        .zip(drop)
        .filter(|(_, &out)| !out)
        .map(|(e, _)| LayerEntry {
            path: e.path.clone(),
            kind: match &e.kind {
                deb::Kind::File(data) => EntryKind::File(data.clone()),
                deb::Kind::Dir => EntryKind::Dir,
                deb::Kind::Symlink(t) => EntryKind::Symlink(t.clone()),
                deb::Kind::Hardlink(t) => EntryKind::Hardlink(t.clone()),
            },
            mode: e.mode,
            uid: 0,
            gid: 0,
        })
        .collect()
}

/// A cache key for layer entries: the sha256 of every header field and every byte.
pub(super) fn content_key(entries: &[LayerEntry]) -> String {
    let mut h = crate::digest::Hasher::new();
    for e in entries {
        let (tag, body): (&str, &[u8]) = match &e.kind {
            EntryKind::File(d) => ("f", d),
            EntryKind::Dir => ("d", b""),
            EntryKind::Symlink(t) => ("s", t.as_bytes()),
            EntryKind::Hardlink(t) => ("h", t.as_bytes()),
        };
        h.update(
            format!(
                "{}\0{tag}\0{:o}\0{}\0{}\0{}\0",
                e.path,
                e.mode,
                e.uid,
                e.gid,
                body.len()
            )
            .as_bytes(),
        );
        h.update(body);
    }
    format!("content {}", h.finish().hex())
}

/// `/etc/passwd`, `/etc/group`, the recipe's directories and the mount points systemd needs.
pub(super) fn recipe_entries(r: &Recipe) -> Vec<LayerEntry> {
    let User {
        name,
        uid,
        gid,
        home,
    } = &r.user;
    let passwd = format!("root:x:0:0:root:/root:/usr/sbin/nologin\n{name}:x:{uid}:{gid}:{name}:{home}:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    let group = format!("root:x:0:\n{name}:x:{gid}:\nnogroup:x:65534:\n");
    let mut out = vec![
        LayerEntry::file("etc/passwd", passwd, 0o644),
        LayerEntry::file("etc/group", group, 0o644),
        LayerEntry::file(
            "etc/os-release",
            "ID=infragen\nNAME=infragen\nPRETTY_NAME=\"infragen image\"\n",
            0o644,
        ),
        // Mount point for the host's resolver configuration (nspawn `ResolvConf=bind-host`).
        LayerEntry::file("etc/resolv.conf", "", 0o644),
    ];
    for d in [
        "proc", "sys", "dev", "run", "tmp", "var/tmp", "etc", "var", "var/lib",
    ] {
        let mode = if d == "tmp" || d == "var/tmp" {
            0o1777
        } else {
            0o755
        };
        out.push(LayerEntry::dir(d, mode));
    }
    for d in &r.dirs {
        let mode = u32::from_str_radix(&d.mode, 8).unwrap_or(0o755);
        let mut e = LayerEntry::dir(d.path.trim_start_matches('/'), mode);
        if d.owner.as_deref() == Some(name.as_str()) {
            e = e.owned(*uid, *gid);
        }
        out.push(e);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// The host's rendered files of one component, owned by root.
pub(super) fn config_entries(tree: &Tree, host: &str, c: Component) -> Vec<LayerEntry> {
    let prefix = format!("{host}/{}/", c.name());
    tree.iter()
        .filter_map(|(p, e)| {
            p.strip_prefix(&prefix)
                .map(|rel| LayerEntry::file(rel, e.data.clone(), e.mode))
        })
        .collect()
}
