//! The tree of an image read from elsewhere (a base image), as its layers build it up: every
//! entry of every layer checked with the safe-extraction rules (`crate::extraction`, the ones
//! activation extracts with), and what needs the tree checked here, with nothing written: a hard
//! link must name an earlier regular file, no entry may sit below a file or a symlink, and an
//! absolute symlink target must lead to something the image itself holds (or to one of the
//! directories every runtime provides), so that no link in a base image names a file of the
//! machine that reads it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::ops::Bound;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::extraction::{Checked, Kinds, What, Whiteout, LIMITS};

/// Most entries the tree of one image may hold (after whiteouts): a real base image has tens of
/// thousands; this and [`MAX_PATH_BYTES`] bound the memory the check takes.
pub const MAX_ENTRIES: usize = 1 << 18;

/// Most bytes of paths and link targets the tree of one image may hold.
pub const MAX_PATH_BYTES: usize = 32 << 20;

/// Most symlinks followed while resolving one absolute target (Linux's own limit).
const MAX_HOPS: usize = 40;

/// Directories a runtime mounts over the image root: an absolute symlink may point into them.
pub const RUNTIME_DIRS: [&str; 5] = ["dev", "proc", "run", "sys", "tmp"];

/// What is at a path of the tree.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File,
    /// A symlink: its target, and the layer it came from (for messages).
    Link(PathBuf, usize),
}

/// The tree of an image so far.
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
    /// Bytes of the paths and link targets in `nodes`.
    bytes: usize,
}

/// The bytes an entry holds in the tree.
fn cost(path: &Path, node: &Node) -> usize {
    path.as_os_str().len()
        + match node {
            Node::Link(t, _) => t.as_os_str().len(),
            _ => 0,
        }
}

impl Tree {
    /// Reads the tar stream of layer `layer` (its index) and applies it to the tree, checking
    /// each entry. Errors name the entry.
    pub fn layer(&mut self, tar: &mut dyn Read, layer: usize) -> Result<()> {
        let mut archive = tar::Archive::new(tar);
        let mut count = 0u64;
        for entry in archive.entries().context("reading the archive")? {
            let entry = entry.context("reading the archive")?;
            count += 1;
            if count > LIMITS.entries {
                bail!("more than {} entries", LIMITS.entries);
            }
            match crate::extraction::check(&entry, Kinds::Layer, LIMITS)? {
                Checked::Root => {}
                Checked::Whiteout(Whiteout::Opaque(dir)) => self.remove_below(&dir),
                Checked::Whiteout(Whiteout::Remove(path)) => {
                    self.remove_below(&path);
                    self.remove(&path);
                }
                Checked::Item(item) => {
                    let shown = item.shown();
                    self.parents(&item.rel)
                        .with_context(|| format!("entry `{shown}`"))?;
                    let node = match item.what {
                        What::Dir => Node::Dir,
                        What::File(_) => Node::File,
                        What::Symlink(target) => Node::Link(target, layer),
                        What::HardLink(to) => {
                            if !matches!(self.nodes.get(&to), Some(Node::File)) {
                                bail!(
                                    "entry `{shown}`: hard link to `{}`, which is not an earlier file of the image",
                                    to.display()
                                );
                            }
                            Node::File
                        }
                    };
                    if !matches!(node, Node::Dir) {
                        self.remove_below(&item.rel);
                    }
                    self.remove(&item.rel);
                    self.bytes += cost(&item.rel, &node);
                    self.nodes.insert(item.rel, node);
                    if self.nodes.len() > MAX_ENTRIES || self.bytes > MAX_PATH_BYTES {
                        bail!("the image holds more than {MAX_ENTRIES} entries or {MAX_PATH_BYTES} bytes of paths");
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses an entry below a file or a symlink (activation would write through neither).
    fn parents(&self, rel: &Path) -> Result<()> {
        for p in rel.ancestors().skip(1) {
            match self.nodes.get(p) {
                Some(Node::File) => bail!("`{}` on its way is a file", p.display()),
                Some(Node::Link(..)) => bail!(
                    "`{}` on its way is a symlink, which infragen does not follow",
                    p.display()
                ),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes everything below `dir` (not `dir` itself).
    fn remove_below(&mut self, dir: &Path) {
        let below: Vec<PathBuf> = self
            .nodes
            .range::<Path, _>((Bound::Excluded(dir), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(dir))
            .cloned()
            .collect();
        for k in below {
            self.remove(&k);
        }
    }

    /// Removes the entry at `path`, if any.
    fn remove(&mut self, path: &Path) {
        if let Some(node) = self.nodes.remove(path) {
            self.bytes -= cost(path, &node);
        }
    }

    /// Whether `path` is in the tree: an entry, or a directory some entry lies below.
    fn holds(&self, path: &Path) -> bool {
        path.as_os_str().is_empty()
            || self
                .nodes
                .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(path))
    }

    /// Checks the finished tree: every absolute symlink leads to something the image holds, or
    /// into a runtime directory. The error names the layer (by index) and the entry.
    pub fn finish(&self) -> Result<(), (usize, String)> {
        for (path, node) in &self.nodes {
            let Node::Link(target, layer) = node else {
                continue;
            };
            if !target.is_absolute() {
                continue;
            }
            if let Err(why) = self.resolve(target) {
                return Err((
                    *layer,
                    format!(
                        "entry `{}`: symlink target `{}` {why}; an absolute target must name a file or directory of the image itself (or below /{}, which the runtime provides)",
                        path.display(),
                        target.display(),
                        RUNTIME_DIRS.join(", /")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Resolves an absolute target inside the image, following its symlinks: an error says why
    /// it leads nowhere in the image.
    fn resolve(&self, target: &Path) -> Result<(), String> {
        let mut rest: Vec<OsString> = parts(target);
        rest.reverse();
        let mut at = PathBuf::new();
        let mut hops = 0;
        while let Some(c) = rest.pop() {
            if c == ".." {
                if !at.pop() {
                    return Err("climbs out of the root".to_owned());
                }
                continue;
            }
            at.push(&c);
            if at
                .components()
                .next()
                .is_some_and(|f| RUNTIME_DIRS.iter().any(|d| f.as_os_str() == *d))
            {
                return Ok(());
            }
            if let Some(Node::Link(next, _)) = self.nodes.get(&at) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!("goes through more than {MAX_HOPS} symlinks"));
                }
                at.pop();
                if next.is_absolute() {
                    at = PathBuf::new();
                }
                rest.extend(parts(next).into_iter().rev());
            }
        }
        if self.holds(&at) {
            Ok(())
        } else {
            Err(format!(
                "leads to `/{}`, which is not in the image",
                at.display()
            ))
        }
    }
}

/// The names and `..` of a path, in order (`.` and the root dropped).
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Node, Tree};
    use std::path::{Path, PathBuf};

    fn tree(entries: &[(&str, Option<&str>)]) -> Tree {
        let mut t = Tree::default();
        for (path, link) in entries {
            let node = match link {
                Some(l) => Node::Link(PathBuf::from(l), 0),
                None if path.ends_with('/') => Node::Dir,
                None => Node::File,
            };
            t.nodes
                .insert(PathBuf::from(path.trim_end_matches('/')), node);
        }
        t
    }

    #[test]
    fn absolute_targets_resolve_in_the_image() {
        let t = tree(&[
            ("bin", Some("usr/bin")),
            ("usr/bin/busybox", None),
            ("usr/bin/sh", Some("/bin/busybox")),
            ("etc/alternatives/awk", Some("/usr/bin/mawk")),
            ("usr/bin/mawk", None),
            ("usr/bin/awk", Some("/etc/alternatives/awk")),
            ("etc/loop", Some("/etc/loop")),
            ("var/log/app.log", Some("/dev/stdout")),
            ("usr/share/", None),
        ]);
        for (target, ok) in [
            ("/bin/busybox", true),
            ("/usr/bin/awk", true),
            ("/usr/share", true),
            ("/usr", true),
            ("/dev/stdout", true),
            ("/proc/self/mounts", true),
            ("/", true),
            ("/etc/shadow", false),
            ("/bin/../../etc", true),
            ("/../etc", false),
            ("/etc/loop", false),
            ("/usr/bin/busybox/x", false),
        ] {
            assert_eq!(t.resolve(Path::new(target)).is_ok(), ok, "{target}");
        }
        let err = tree(&[("x", Some("/etc/shadow"))]).finish().unwrap_err();
        assert!(
            err.1
                .starts_with("entry `x`: symlink target `/etc/shadow` leads to `/etc/shadow`, which is not in the image;"),
            "{err:?}"
        );
    }
}
