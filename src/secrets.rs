//! Secrets leave the build encrypted to their host's own key (the agenix / sops-nix model).
//!
//! Owns which secrets are encrypted to whom: a host with `infragen_host_key` gets every file
//! under `<host>/secrets/` as `<name>.age`, an age file encrypted to its key and to every
//! `infragen_recovery_keys` recipient; a host without one keeps them in clear (and the build
//! warns). It does not own the format ([`crate::age`]) nor the host side (`activate` decrypts
//! with the identity `infragen host init` wrote, at [`IDENTITY`]).

use anyhow::{Context, Result};

use crate::age::Recipient;
use crate::plan::{HostPlan, Plan};
use crate::tree::Tree;

/// The suffix of an encrypted secret in a bundle (`secrets/<c>/<name>.age`).
pub const SUFFIX: &str = ".age";

/// The host's identity file, below its root, in a 0700 directory.
pub const IDENTITY: &str = "etc/infragen/age/host.key";

/// The recipients `h`'s secrets are encrypted to (its key first, then the recovery keys), or
/// `None` when the host has no key: its secrets stay in clear.
pub fn recipients(h: &HostPlan) -> Option<Vec<Recipient>> {
    let key = h.host_key?;
    let mut all = vec![key];
    for r in &h.recovery_keys {
        if !all.contains(r) {
            all.push(*r);
        }
    }
    Some(all)
}

/// `tree` with the secrets of every host that has a key encrypted (`<name>.age`, mode
/// unchanged), and the hosts whose secrets stay in clear. `key` is the build's sealing key
/// ([`crate::pki::Pki::sealing_key`]): with it the encryption is deterministic without being
/// a test anyone holding the bundle can run on a guessed password.
pub fn seal(plan: &Plan, tree: Tree, key: &[u8; 32]) -> Result<(Tree, Vec<String>)> {
    let mut out = Tree::default();
    let mut clear = Vec::new();
    let hosts: Vec<(String, Option<Vec<Recipient>>)> = plan
        .hosts
        .iter()
        .map(|h| (format!("{}/secrets/", h.ip), recipients(h)))
        .collect();
    for (path, e) in tree.into_files() {
        let host = hosts.iter().find(|(prefix, _)| path.starts_with(prefix));
        match host {
            Some((_, Some(to))) => {
                let sealed = crate::age::encrypt(&e.data, to, key, &path)
                    .with_context(|| format!("encrypting {path}"))?;
                out.add(format!("{path}{SUFFIX}"), e.mode, sealed);
            }
            Some((prefix, None)) => {
                let host = prefix.trim_end_matches("/secrets/").to_owned();
                if !clear.contains(&host) {
                    clear.push(host);
                }
                out.add(path, e.mode, e.data);
            }
            None => out.add(path, e.mode, e.data),
        }
    }
    Ok((out, clear))
}

/// `infragen host init`: the host's identity under `root` ([`IDENTITY`], 0600 in a 0700
/// directory, written through [`crate::fsx`]) and its recipient; `true` when it was made now.
/// An existing identity is kept and its recipient returned again: bundles are encrypted to it,
/// and replacing it would make them unreadable (rotation is deliberate: remove the file first).
pub fn host_init(root: &std::path::Path) -> Result<(Recipient, bool)> {
    use crate::fsx::{Links, Root};
    use std::path::Path;
    let r = Root::open(root, Links::InRoot)?;
    let file = Path::new(IDENTITY);
    let dir = file.parent().expect("IDENTITY has a directory");
    let shown = root.join(IDENTITY);
    if r.meta(file)?.is_some() {
        let text = String::from_utf8(r.read(file)?)
            .map_err(|_| anyhow::anyhow!("{}: not text", shown.display()))?;
        let ids =
            crate::age::Identity::parse_file(&text).with_context(|| shown.display().to_string())?;
        return Ok((ids[0].recipient(), false));
    }
    r.mkdir_all(dir.parent().expect("etc/infragen"), 0o755)?;
    if r.meta(dir)?.is_none() {
        r.mkdir(dir, 0o700)?;
    }
    r.chmod(dir, 0o700)?;
    let id = crate::age::Identity::generate()?;
    r.write_atomic(file, id.to_file().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", shown.display()))?;
    r.sync_dir(dir)?;
    Ok((id.recipient(), true))
}
