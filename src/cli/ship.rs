//! The shipping side of the command line: `push` to a registry, `repo images` into the static
//! tree beside the package repository.

use std::path::{Path, PathBuf};

use super::{ProfileArgs, Ui};
use crate::registry::{Client, Options, Reference};
use crate::ship::{self, StaticTree};

/// `infragen push OUT REF`.
pub(super) fn push(
    out: &Path,
    reference: &str,
    options: &Options,
    key: Option<&crate::sign::SigningKey>,
    ui: &Ui,
) -> i32 {
    let r = match Reference::parse(reference) {
        Ok(r) if r.tag.is_none() && r.digest.is_none() => r,
        Ok(_) => {
            eprintln!("error: `{reference}` names a tag or digest; push takes a repository prefix\nhint: e.g. `{}/infragen`", reference.split('/').next().unwrap_or(""));
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let mut client = match Client::new(&r.host, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    match ship::push(out, &mut client, &r.repo, key, &ui.progress) {
        Ok(s) => {
            ui.say(format!("pushed {} to {r}: {s}", out.display()));
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// The static tree's directory: `--registry-dir`, else `<repo_home>/registry` of the profile's
/// first infra host that serves the repository.
pub(super) fn registry_dir(p: &ProfileArgs, dir: Option<&Path>, ui: &Ui) -> Result<PathBuf, i32> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let plan = super::work::load_plan(p, ui)?;
    plan.hosts
        .iter()
        .find_map(|h| {
            h.nginx
                .as_ref()
                .and_then(|n| n.repo.as_ref())
                .map(|(home, _)| PathBuf::from(home).join("registry"))
        })
        .ok_or_else(|| {
            eprintln!("error: no infra host of the profile serves a repository (`repo_enabled`)\nhint: pass --registry-dir");
            2
        })
}

/// Lays out the static tree of `images` (a build's output) in `dir`, namespace `infragen`.
pub(super) fn images(
    images: &Path,
    dir: &Path,
    key: Option<&crate::sign::SigningKey>,
    ui: &Ui,
) -> i32 {
    let mut tree = StaticTree::new(dir);
    match ship::push(images, &mut tree, ship::NAMESPACE, key, &ui.progress) {
        Ok(s) => {
            ui.say(format!(
                "{}: static registry tree of {} (`{}/…`): {s}",
                dir.display(),
                images.display(),
                ship::NAMESPACE
            ));
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
