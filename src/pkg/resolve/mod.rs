//! Dependency resolution: which packages an image needs, from the `Packages` indexes of its
//! sources.
//!
//! Owns the closure of `Pre-Depends` and `Depends` (not `Recommends` or `Suggests`) over a
//! [`Universe`] that keeps the newest version of every package. It does not fetch indexes,
//! handle `Conflicts`/`Breaks` (one version per name is chosen, so an image never holds two) or
//! pick older versions to satisfy an upper bound. The choices follow apt where it matters for
//! a minimal image: an alternative group already satisfied by a chosen package adds nothing,
//! otherwise its first satisfiable alternative wins.
//!
//! The [`Universe`] and the error live here; `run` holds the state of one resolution: what is
//! already satisfied, which package to add for a dependency, and the error naming the chain
//! when nothing fits.

mod run;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::apt::{Dep, Package};
use super::version::compare;

use run::Run;

/// Why a set of root packages cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A root that no package of the right architecture is or provides.
    #[error("no package `{name}` for architecture `{arch}` or `all`")]
    UnknownRoot {
        /// The root as requested.
        name: String,
        /// The target architecture.
        arch: String,
    },
    /// A dependency group none of whose alternatives can be satisfied.
    #[error(
        "`{package}` depends on `{dep}`, which no package satisfies{}{}",
        newest.as_ref().map(|n| format!(" (newest is {n})")).unwrap_or_default(),
        via_text(via)
    )]
    Unsatisfiable {
        /// The package whose dependency fails.
        package: String,
        /// The dependency group as written (`a (>= 1) | b`).
        dep: String,
        /// The newest installable version of each named alternative, `name version`.
        newest: Option<String>,
        /// The chain from a root to `package`, root first, `package` excluded.
        via: Vec<String>,
    },
}

fn via_text(via: &[String]) -> String {
    if via.is_empty() {
        return String::new();
    }
    let chain: Vec<String> = via.iter().map(|p| format!("`{p}`")).collect();
    format!(", required via {}", chain.join(" → "))
}

/// A provider of a virtual package: the providing package's name and arch, and the provided
/// version (`Provides: name (= version)`).
struct Provider {
    name: String,
    arch: String,
    version: Option<String>,
}

/// Every package available to an image: the merged `Packages` indexes, one entry per name and
/// architecture (the newest version).
pub struct Universe {
    /// name → packages of that name, one per architecture, sorted by architecture.
    packages: BTreeMap<String, Vec<Package>>,
    /// virtual name → its providers, sorted by provider name and arch.
    providers: BTreeMap<String, Vec<Provider>>,
}

impl Universe {
    /// Merges packages from several indexes, keeping the highest version per name and
    /// architecture (on a tie, the first one given).
    pub fn new(packages: impl IntoIterator<Item = Package>) -> Universe {
        let mut newest: BTreeMap<(String, String), Package> = BTreeMap::new();
        for p in packages {
            let key = (p.name.clone(), p.arch.clone());
            match newest.get(&key) {
                Some(old) if compare(&old.version, &p.version).is_ge() => {}
                _ => {
                    newest.insert(key, p);
                }
            }
        }
        let mut by_name: BTreeMap<String, Vec<Package>> = BTreeMap::new();
        let mut providers: BTreeMap<String, Vec<Provider>> = BTreeMap::new();
        for ((name, arch), p) in newest {
            for (virtual_name, version) in &p.provides {
                providers
                    .entry(virtual_name.clone())
                    .or_default()
                    .push(Provider {
                        name: name.clone(),
                        arch: arch.clone(),
                        version: version.clone(),
                    });
            }
            by_name.entry(name).or_default().push(p);
        }
        Universe {
            packages: by_name,
            providers,
        }
    }

    /// Number of distinct (name, architecture) packages.
    pub fn len(&self) -> usize {
        self.packages.values().map(Vec::len).sum()
    }

    /// Whether the universe holds no package.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The package `name` built for `arch`, if any.
    pub fn get(&self, name: &str, arch: &str) -> Option<&Package> {
        self.packages.get(name)?.iter().find(|p| p.arch == arch)
    }

    /// The closure of `roots` over `Pre-Depends` and `Depends` for architecture `arch`
    /// (packages of `arch` or `all`), sorted by name. Names in `exclude` count as present
    /// without being added, as does any virtual package an excluded package provides, so an
    /// image can leave out `debconf` or `adduser`.
    pub fn resolve(
        &self,
        roots: &[String],
        exclude: &BTreeSet<String>,
        arch: &str,
    ) -> Result<Vec<&Package>, ResolveError> {
        let mut run = Run {
            universe: self,
            exclude,
            arch,
            chosen: BTreeMap::new(),
            parent: BTreeMap::new(),
        };
        let mut queue = VecDeque::new();
        // Roots are a set: sorted, so the result does not depend on the order they are given.
        let roots: BTreeSet<&String> = roots.iter().collect();
        for root in roots {
            let dep = Dep {
                name: root.clone(),
                arch: None,
                constraint: None,
            };
            if run.satisfied(&dep) {
                continue;
            }
            let Some(p) = run.best(&dep) else {
                return Err(ResolveError::UnknownRoot {
                    name: root.clone(),
                    arch: arch.to_owned(),
                });
            };
            run.chosen.insert(&p.name, p);
            queue.push_back(p);
        }
        while let Some(p) = queue.pop_front() {
            for group in p.pre_depends.iter().chain(&p.depends) {
                if group.iter().any(|d| run.satisfied(d)) {
                    continue;
                }
                let Some(next) = group.iter().find_map(|d| run.best(d)) else {
                    return Err(run.unsatisfiable(p, group));
                };
                run.chosen.insert(&next.name, next);
                run.parent.insert(&next.name, &p.name);
                queue.push_back(next);
            }
        }
        Ok(run.chosen.into_values().collect())
    }
}

/// Installed size of a closure in bytes (`Installed-Size` is in KiB).
pub fn closure_size(pkgs: &[&Package]) -> u64 {
    pkgs.iter()
        .map(|p| p.installed_size.saturating_mul(1024))
        .fold(0, u64::saturating_add)
}
