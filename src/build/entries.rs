//! Layer entries: a package's files with excluded paths left out, the recipe's users, groups and
//! directories, a host's rendered files of one component, and the content key that caches a
//! layer by its entries.

use anyhow::{bail, Result};

use crate::image::{Recipe, User};
use crate::oci::layer::{EntryKind, LayerEntry};
use crate::pkg::deb;
use crate::plan::Component;
use crate::tree::Tree;

/// A package's files as layer entries: owned by root, excluded paths left out.
pub(super) fn package_entries(bytes: &[u8], r: &Recipe) -> Result<Vec<LayerEntry>> {
    let d = deb::read(bytes, &deb::Limits::default())?;
    let package = d.control.get("Package").cloned().unwrap_or_default();
    let mut out = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for e in d.entries {
        if r.excludes_from(&package, &e.path, e.kind == deb::Kind::Dir) {
            dropped.push(e.path);
            continue;
        }
        let kind = match e.kind {
            deb::Kind::File(data) => EntryKind::File(data),
            deb::Kind::Dir => EntryKind::Dir,
            deb::Kind::Symlink(t) => EntryKind::Symlink(t),
            deb::Kind::Hardlink(t) => {
                if dropped.contains(&t) {
                    bail!("`{}` is a hard link to excluded `{t}`", e.path);
                }
                EntryKind::Hardlink(t)
            }
        };
        out.push(LayerEntry {
            path: e.path,
            kind,
            mode: e.mode,
            uid: 0,
            gid: 0,
        });
    }
    Ok(out)
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
