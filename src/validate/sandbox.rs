//! The sandbox of one component: its rendered files laid out in a private directory as they will
//! be in its root tree, with absolute paths rewritten into the directory, and checker output
//! mapped back. It runs nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::plan::{Component, HostPlan, PortalKind};
use crate::render::credentials_dir;
use crate::tree::Tree;

/// A component's files in a private directory, absolute paths rewritten into it.
pub(super) struct Sandbox {
    pub(super) root: PathBuf,
    pub(super) host: String,
    roots: Vec<String>,
}

impl Sandbox {
    pub(super) fn lay_out(
        root: &Path,
        tree: &Tree,
        host: &str,
        c: Component,
        h: &HostPlan,
    ) -> Result<Self> {
        let mut roots: Vec<String> = ["/etc/", "/run/", "/var/", "/infra/"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if let Some(n) = &h.nginx {
            roots.push(format!("{}/", n.home));
            if let Some((home, _)) = &n.repo {
                roots.push(format!("{home}/"));
            }
            for p in &n.portal {
                if let PortalKind::Path { root, .. } | PortalKind::Home { root, .. } = &p.kind {
                    roots.push(format!("{root}/"));
                }
                roots.extend(p.cert.iter().chain(&p.key).cloned());
            }
        }
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        roots.dedup();
        let sb = Self {
            root: root.to_path_buf(),
            host: host.to_owned(),
            roots,
        };
        let prefix = format!("{host}/{}/", c.name());
        let secrets = format!("{host}/secrets/{}/", c.name());
        for (path, entry) in tree.iter() {
            let target = if let Some(rel) = path.strip_prefix(&prefix) {
                root.join(rel)
            } else if let Some(name) = path.strip_prefix(&secrets) {
                root.join(credentials_dir(c).trim_start_matches('/'))
                    .join(name)
            } else {
                continue;
            };
            fs::create_dir_all(target.parent().expect("has parent"))?;
            let data = match std::str::from_utf8(&entry.data) {
                Ok(text) => sb.map(text).into_bytes(),
                Err(_) => entry.data.clone(),
            };
            fs::write(&target, data).with_context(|| format!("writing {}", target.display()))?;
        }
        for dir in [
            "var/log/nginx",
            "var/cache/nginx",
            "run/nginx",
            "infra",
            "var/lib/chrony",
            "var/lib/grafana",
        ] {
            fs::create_dir_all(root.join(dir))?;
        }
        for r in &sb.roots {
            if r.ends_with('/') {
                fs::create_dir_all(root.join(r.trim_start_matches('/')))?;
            }
        }
        Ok(sb)
    }

    /// An empty sandbox at `root` for host `host`, for tests of what runs in it.
    #[cfg(test)]
    pub(super) fn empty(root: &Path, host: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            host: host.to_owned(),
            roots: Vec::new(),
        }
    }

    /// Rewrites every absolute path under one of the roots into the sandbox.
    fn map(&self, text: &str) -> String {
        let root = self.root.to_string_lossy();
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for r in &self.roots {
                let at_boundary = out.is_empty()
                    || out.ends_with(|c: char| c.is_whitespace() || "=\"'{:[,".contains(c));
                if at_boundary && rest.starts_with(r.as_str()) {
                    out.push_str(&root);
                    out.push_str(r);
                    rest = &rest[r.len()..];
                    continue 'scan;
                }
            }
            let ch = rest.chars().next().expect("non-empty");
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
        out
    }

    /// Maps checker output back to the paths the component will see.
    pub(super) fn unmap(&self, text: &str) -> String {
        text.replace(&*self.root.to_string_lossy(), "")
    }

    pub(super) fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub(super) fn flags(&self, h: &HostPlan, c: Component) -> Vec<String> {
        h.own_flags(c)
            .unwrap_or_default()
            .iter()
            .map(|f| self.map(f))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_at_boundaries_only() {
        let sb = Sandbox {
            root: PathBuf::from("/sb"),
            host: String::new(),
            roots: vec!["/etc/".into(), "/run/".into()],
        };
        assert_eq!(
            sb.map("include /etc/nginx/mime.types;"),
            "include /sb/etc/nginx/mime.types;"
        );
        assert_eq!(sb.map("-rule=/etc/x/*.yml"), "-rule=/sb/etc/x/*.yml");
        assert_eq!(
            sb.map("$__file{/run/credentials/a}"),
            "$__file{/sb/run/credentials/a}"
        );
        assert_eq!(sb.map("location /ui/etc/ {"), "location /ui/etc/ {");
        assert_eq!(
            sb.unmap("error in /sb/etc/x.conf:3"),
            "error in /etc/x.conf:3"
        );
    }
}
