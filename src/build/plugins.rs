//! Grafana's plugin layer: the operator's plugin archives (zip files as Grafana's catalogue ships
//! them, `grafana_plugin_dir`), each held to its sha256 in `infragen.lock`, unpacked under the
//! safe-extraction rules (docs/reliability.md) into [`crate::plan::PLUGINS`]`/<id>/`: no absolute path, no
//! `..`, no link of any kind, regular files and directories only, one top directory named after
//! the plugin's `id`, bounded entry count, size and compression ratio; every entry owned by
//! root with a fixed mode (0755 for directories and files executable in the archive, 0644
//! otherwise), its time the build's. It does not own where the archives are pinned
//! ([`crate::lock::pin_plugins`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::lock::{Lock, LockedPlugin};
use crate::oci::layer::LayerEntry;

/// Where the plugins are in the grafana image, relative ([`crate::plan::PLUGINS`]).
fn plugins_dir() -> &'static str {
    crate::plan::PLUGINS.trim_start_matches('/')
}

/// Bounds on one archive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries (files and directories).
    pub entries: usize,
    /// Bytes once unpacked, all entries together.
    pub bytes: u64,
    /// Unpacked size over compressed size of one entry (entries under 1 MiB unpacked are not
    /// held to it).
    pub ratio: u64,
}

/// The limits of a build: a real plugin (Go binaries for several platforms) unpacks to a few
/// hundred MiB at most, and source and binaries compress 3 to 10 times.
pub const LIMITS: Limits = Limits {
    entries: 20_000,
    bytes: 1 << 30,
    ratio: 200,
};

/// One archive of the plugin directory: its file name, bytes and sha256.
pub struct Archive {
    /// File name in the directory.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their sha256 (hex).
    pub sha256: String,
}

/// The plugin archives of `dir` ([`crate::lock::plugin_archives`]), read whole.
pub fn read_dir(dir: &Path) -> Result<Vec<Archive>> {
    crate::lock::plugin_archives(dir)?
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let sha256 = crate::digest::sha256_hex(&bytes);
            Ok(Archive {
                name,
                bytes,
                sha256,
            })
        })
        .collect()
}

/// Holds `archives` (read from `dir`) to the lock's pins: every archive pinned with its sha256,
/// every pin present.
pub fn check_pins(archives: &[Archive], lock: &Lock, lock_path: &Path, dir: &Path) -> Result<()> {
    let hint = "hint: run `infragen lock --profile PROFILE` to pin the archives the profile's `grafana_plugin_dir` holds, and review the diff";
    for a in archives {
        match lock.plugins.get(&a.name) {
            None => bail!(
                "{}: plugin archive `{}` is not pinned in {}\n{hint}",
                dir.join(&a.name).display(),
                a.name,
                lock_path.display()
            ),
            Some(LockedPlugin { sha256, .. }) if *sha256 != a.sha256 => bail!(
                "{}: sha256 {} differs from the one {} pins for `{}` ({sha256}): the archive changed since it was locked\n{hint}",
                dir.join(&a.name).display(),
                a.sha256,
                lock_path.display(),
                a.name
            ),
            Some(_) => {}
        }
    }
    for name in lock.plugins.keys() {
        if !archives.iter().any(|a| &a.name == name) {
            bail!(
                "{}: plugin archive `{name}`, pinned in {}, is missing\n{hint}",
                dir.display(),
                lock_path.display()
            );
        }
    }
    Ok(())
}

/// The layer entries of every archive, each under [`crate::plan::PLUGINS`]`/<id>/`, with the directories
/// above them; two archives of one plugin are refused.
pub fn entries(archives: &[Archive], limits: Limits) -> Result<Vec<LayerEntry>> {
    let mut out = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut parts = String::new();
    for p in plugins_dir().split('/') {
        if !parts.is_empty() {
            parts.push('/');
        }
        parts.push_str(p);
        out.push(LayerEntry::dir(&parts, 0o755));
    }
    for a in archives {
        let (id, files) =
            unpack(&a.bytes, limits).with_context(|| format!("plugin archive `{}`", a.name))?;
        if let Some(other) = ids.insert(id.clone(), a.name.clone()) {
            bail!(
                "plugin archives `{other}` and `{}` are both plugin `{id}`",
                a.name
            );
        }
        out.extend(files.into_iter().map(|mut e| {
            e.path = format!("{}/{}", plugins_dir(), e.path);
            e
        }));
    }
    Ok(out)
}

/// Whether `name` is a safe relative path: no empty, `.` or `..` component, no backslash, no
/// control character.
fn safe_path(name: &str) -> Result<(), String> {
    if name.starts_with('/') {
        return Err("is an absolute path".into());
    }
    if name.contains('\\') || name.chars().any(char::is_control) {
        return Err("has a backslash or a control character".into());
    }
    if name
        .trim_end_matches('/')
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("has an empty, `.` or `..` component".into());
    }
    Ok(())
}

/// A plugin id as Grafana's catalogue spells them (`victoriametrics-logs-datasource`).
fn plugin_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// One archive: its plugin id (the top directory, equal to `plugin.json`'s `id`) and its
/// entries relative to [`crate::plan::PLUGINS`].
pub fn unpack(bytes: &[u8], limits: Limits) -> Result<(String, Vec<LayerEntry>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a zip file")?;
    if zip.len() > limits.entries {
        bail!(
            "{} entries, more than the {} allowed",
            zip.len(),
            limits.entries
        );
    }
    let mut top: Option<String> = None;
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i)?;
        let name = String::from_utf8(f.name_raw().to_vec())
            .map_err(|_| anyhow::anyhow!("entry {i} has a name that is not UTF-8: refused"))?;
        let shown = name.escape_debug().to_string();
        safe_path(&name).map_err(|e| anyhow::anyhow!("entry `{shown}` {e}: refused"))?;
        if f.encrypted() {
            bail!("entry `{shown}` is encrypted: refused");
        }
        let mode = f.unix_mode().unwrap_or(0);
        let kind = mode & 0o170_000;
        let is_dir = f.is_dir();
        if f.is_symlink() || (kind != 0 && kind != 0o100_000 && kind != 0o040_000) {
            bail!("entry `{shown}` is a link or a special file: only regular files and directories are allowed");
        }
        let clean = name.trim_end_matches('/').to_owned();
        let first = clean.split('/').next().unwrap_or_default().to_owned();
        match &top {
            None => top = Some(first.clone()),
            Some(t) if *t != first => bail!(
                "entry `{shown}` is outside the plugin's directory `{t}/`: an archive holds one plugin"
            ),
            Some(_) => {}
        }
        if !seen.insert(clean.clone()) {
            bail!("entry `{shown}` appears twice");
        }
        if is_dir {
            out.push(LayerEntry::dir(&clean, 0o755));
            continue;
        }
        let data = read_entry(&mut f, &shown, limits, &mut total)?;
        let exec = mode & 0o111 != 0;
        out.push(LayerEntry::file(
            &clean,
            data,
            if exec { 0o755 } else { 0o644 },
        ));
    }
    let id = top.context("the archive is empty")?;
    check_manifest(&id, &out)?;
    // Directories the archive implies but does not list.
    let listed: BTreeSet<String> = out.iter().map(|e| e.path.clone()).collect();
    let mut implied = BTreeSet::new();
    for e in &out {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !listed.contains(parent) {
                implied.insert(parent.to_owned());
            }
            p = parent;
        }
    }
    if !listed.contains(&id) {
        implied.insert(id.clone());
    }
    out.extend(implied.iter().map(|d| LayerEntry::dir(d, 0o755)));
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((id, out))
}

/// Reads one file entry, bounded as the bytes come, whatever its header claims: the archive's
/// total unpacked size, and (past 1 MiB) the entry's ratio to its compressed size, so that a
/// bomb is refused after at most a few MiB of it.
fn read_entry(
    f: &mut zip::read::ZipFile<'_, std::io::Cursor<&[u8]>>,
    shown: &str,
    limits: Limits,
    total: &mut u64,
) -> Result<Vec<u8>> {
    let compressed = f.compressed_size().max(1);
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("entry `{shown}`: cannot be unpacked"))?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let len = data.len() as u64;
        if *total + len > limits.bytes {
            bail!(
                "entry `{shown}` takes the archive past {} unpacked: refused (a zip bomb?)",
                crate::plural::bytes(limits.bytes)
            );
        }
        if len > (1 << 20) && len / compressed > limits.ratio {
            bail!(
                "entry `{shown}` unpacks more than {} times its compressed size: refused (a zip bomb?)",
                limits.ratio
            );
        }
    }
    *total += data.len() as u64;
    Ok(data)
}

/// The plugin's `plugin.json` (at its top, or in `dist/`) names the plugin `id`.
fn check_manifest(id: &str, entries: &[LayerEntry]) -> Result<()> {
    if !plugin_id(id) {
        bail!(
            "top directory `{}` is not a plugin id (lowercase letters, digits, `-`, `_`)",
            id.escape_debug()
        );
    }
    let manifest = entries
        .iter()
        .find(|e| {
            e.path == format!("{id}/plugin.json") || e.path == format!("{id}/dist/plugin.json")
        })
        .with_context(|| format!("no `{id}/plugin.json`: not a Grafana plugin"))?;
    let crate::oci::layer::EntryKind::File(data) = &manifest.kind else {
        bail!("`{}` is not a file", manifest.path);
    };
    let doc: serde_json::Value =
        serde_json::from_slice(data).with_context(|| format!("`{}` is not JSON", manifest.path))?;
    match doc.get("id").and_then(serde_json::Value::as_str) {
        Some(own) if own == id => Ok(()),
        Some(own) => bail!(
            "`{}` names plugin `{}`, not its directory `{id}`",
            manifest.path,
            own.escape_debug()
        ),
        None => bail!("`{}` has no `id`", manifest.path),
    }
}

/// The plugin layer of every distinct `grafana_plugin_dir` of `plan`'s hosts, by directory:
/// its archives held to the lock's pins first, then unpacked (cached by their sha256).
pub(super) fn layers(
    plan: &crate::plan::Plan,
    lock: &Lock,
    lock_path: &Path,
    layers: &super::layers::Layers,
) -> Result<BTreeMap<std::path::PathBuf, super::LayerInfo>> {
    let mut out = BTreeMap::new();
    for h in &plan.hosts {
        let Some(dir) = h.grafana.as_ref().and_then(|g| g.plugin_dir(&plan.source)) else {
            continue;
        };
        if out.contains_key(&dir) {
            continue;
        }
        let archives = read_dir(&dir)?;
        check_pins(&archives, lock, lock_path, &dir)?;
        let key: String = archives
            .iter()
            .map(|a| format!("{} {}\n", a.name, a.sha256))
            .collect();
        let key = format!("grafana-plugins\n{}{key}", crate::plan::PLUGINS);
        let info = layers
            .get(&key, || entries(&archives, LIMITS))
            .with_context(|| format!("the Grafana plugins of {}", dir.display()))?;
        out.insert(dir, info);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{unpack, Limits};
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;

    const SMALL: Limits = Limits {
        entries: 10,
        bytes: 4 << 20,
        ratio: 50,
    };

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in files {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    const JSON: &[u8] = br#"{"id": "acme-panel", "type": "panel"}"#;

    #[test]
    fn a_plugin_unpacks_under_its_id_with_fixed_modes() {
        let (id, entries) = unpack(
            &archive(&[
                ("acme-panel/plugin.json", JSON),
                ("acme-panel/dist/module.js", b"x"),
            ]),
            SMALL,
        )
        .unwrap();
        assert_eq!(id, "acme-panel");
        let got: Vec<(String, u32)> = entries.iter().map(|e| (e.path.clone(), e.mode)).collect();
        assert_eq!(
            got,
            [
                ("acme-panel".to_owned(), 0o755),
                ("acme-panel/dist".to_owned(), 0o755),
                ("acme-panel/dist/module.js".to_owned(), 0o644),
                ("acme-panel/plugin.json".to_owned(), 0o644),
            ]
        );
    }

    #[test]
    fn hostile_archives_are_refused_with_the_reason() {
        type Case<'a> = (&'a [(&'a str, &'a [u8])], &'a str);
        let cases: &[Case] = &[
            (&[("acme-panel/../evil", b"x")], "`..` component"),
            (&[("/etc/passwd", b"x")], "absolute path"),
            (
                &[("acme-panel/plugin.json", JSON), ("other/x", b"x")],
                "outside the plugin's directory",
            ),
            (
                &[("acme-panel/module.js", b"x")],
                "no `acme-panel/plugin.json`",
            ),
            (
                &[("acme-panel/plugin.json", br#"{"id": "other"}"#)],
                "names plugin `other`",
            ),
            (&[("Bad Id/plugin.json", JSON)], "not a plugin id"),
        ];
        for (files, want) in cases {
            let e = format!("{:#}", unpack(&archive(files), SMALL).unwrap_err());
            assert!(e.contains(want), "{files:?}: {e}");
        }
        let many: Vec<(String, Vec<u8>)> = (0..11)
            .map(|i| (format!("acme-panel/{i}"), vec![]))
            .collect();
        let many: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let e = format!("{:#}", unpack(&archive(&many), SMALL).unwrap_err());
        assert!(e.contains("11 entries, more than the 10 allowed"), "{e}");
        // Incompressible, so that the size bound and not the ratio refuses it.
        let mut x = 1u64;
        let big: Vec<u8> = (0..5 << 20)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        let e = format!(
            "{:#}",
            unpack(
                &archive(&[("acme-panel/plugin.json", JSON), ("acme-panel/big", &big)]),
                SMALL
            )
            .unwrap_err()
        );
        assert!(e.contains("past 4.0 MiB unpacked"), "{e}");
    }
}
