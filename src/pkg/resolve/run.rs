//! One resolution over a [`Universe`]: the packages chosen so far, whether a dependency is
//! already met, which package to add for it (the real package if its version fits, else a
//! provider by `Priority`), and the error that names the chain when none can be added.

use std::collections::{BTreeMap, BTreeSet};

use super::{ResolveError, Universe};
use crate::pkg::apt::{Dep, Package};
use crate::pkg::version::{compare, satisfies};

/// The state of one resolution.
pub(super) struct Run<'u, 'a> {
    pub(super) universe: &'u Universe,
    pub(super) exclude: &'a BTreeSet<String>,
    pub(super) arch: &'a str,
    /// name → chosen package; one package per name.
    pub(super) chosen: BTreeMap<&'u str, &'u Package>,
    /// name → the package that pulled it in (roots have none).
    pub(super) parent: BTreeMap<&'u str, &'u str>,
}

impl<'u> Run<'u, '_> {
    /// Whether `p` can be installed for the target and matches the qualifier of `dep`:
    /// `:any` takes any installable architecture, `:<arch>` only that one.
    fn installable(&self, p: &Package, dep: &Dep) -> bool {
        let arch_ok = p.arch == self.arch || p.arch == "all";
        let qualifier_ok = match dep.arch.as_deref() {
            None | Some("any") => true,
            Some(wanted) => p.arch == wanted || p.arch == "all",
        };
        arch_ok && qualifier_ok
    }

    fn version_ok(dep: &Dep, version: &str) -> bool {
        dep.constraint
            .as_ref()
            .is_none_or(|(relation, wanted)| satisfies(version, *relation, wanted))
    }

    /// A provided version satisfies a versioned dependency only when it satisfies the
    /// constraint; an unversioned provide satisfies only unversioned dependencies.
    fn provide_ok(dep: &Dep, provided: Option<&str>) -> bool {
        match (&dep.constraint, provided) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(version)) => Self::version_ok(dep, version),
        }
    }

    /// The provider packages of `dep.name` that can satisfy `dep`.
    fn providers<'s>(&'s self, dep: &'s Dep) -> impl Iterator<Item = &'u Package> + 's {
        let universe = self.universe;
        universe
            .providers
            .get(&dep.name)
            .into_iter()
            .flatten()
            .filter(move |pr| Self::provide_ok(dep, pr.version.as_deref()))
            .filter_map(move |pr| universe.get(&pr.name, &pr.arch))
            .filter(move |p| self.installable(p, dep))
    }

    /// Whether `dep` is already met: excluded, chosen with a good version, or provided by a
    /// chosen or excluded package.
    pub(super) fn satisfied(&self, dep: &Dep) -> bool {
        if self.exclude.contains(&dep.name) {
            return true;
        }
        if let Some(p) = self.chosen.get(dep.name.as_str()) {
            if self.installable(p, dep) && Self::version_ok(dep, &p.version) {
                return true;
            }
        }
        self.providers(dep).any(|p| {
            self.exclude.contains(&p.name)
                || self
                    .chosen
                    .get(p.name.as_str())
                    .is_some_and(|c| std::ptr::eq(*c, p))
        })
    }

    /// The package to add for `dep`: the real package of that name if its version fits,
    /// else a provider, preferring higher `Priority`, then name. Names already chosen are not
    /// chosen again.
    pub(super) fn best(&self, dep: &Dep) -> Option<&'u Package> {
        let free = |p: &&Package| !self.chosen.contains_key(p.name.as_str());
        let real = self
            .universe
            .packages
            .get(&dep.name)
            .into_iter()
            .flatten()
            .filter(|p| self.installable(p, dep) && Self::version_ok(dep, &p.version))
            .filter(free)
            // Newest first; on a tie the target architecture over `all`.
            .max_by(|a, b| {
                compare(&a.version, &b.version)
                    .then_with(|| (a.arch == self.arch).cmp(&(b.arch == self.arch)))
            });
        real.or_else(|| {
            self.providers(dep).filter(free).min_by(|a, b| {
                priority_rank(a)
                    .cmp(&priority_rank(b))
                    .then_with(|| a.name.cmp(&b.name))
            })
        })
    }

    pub(super) fn unsatisfiable(&self, p: &Package, group: &[Dep]) -> ResolveError {
        let mut via = Vec::new();
        let mut name = p.name.as_str();
        while let Some(up) = self.parent.get(name) {
            via.push((*up).to_owned());
            name = up;
        }
        via.reverse();
        let newest: Vec<String> = group
            .iter()
            .filter_map(|d| {
                let any = Dep {
                    constraint: None,
                    ..d.clone()
                };
                let newest = self
                    .universe
                    .packages
                    .get(&d.name)?
                    .iter()
                    .filter(|p| self.installable(p, &any))
                    .max_by(|a, b| compare(&a.version, &b.version))?;
                Some(format!("`{} {}`", newest.name, newest.version))
            })
            .collect();
        ResolveError::Unsatisfiable {
            package: p.name.clone(),
            dep: group
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" | "),
            newest: (!newest.is_empty()).then(|| newest.join(", ")),
            via,
        }
    }
}

/// `required` first, then `important`, `standard`, `optional`, `extra`, then none.
fn priority_rank(p: &Package) -> u8 {
    match p.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}
