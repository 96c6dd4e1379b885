//! Dependency resolution: which packages an image needs, from the `Packages` indexes of its
//! sources.
//!
//! Owns the closure of `Pre-Depends` and `Depends` (not `Recommends` or `Suggests`) over a
//! [`Universe`] that keeps the newest version of every package. It does not fetch indexes,
//! handle `Conflicts`/`Breaks` (one version per name is chosen, so an image never holds two) or
//! pick older versions to satisfy an upper bound. The choices follow apt where it matters for
//! a minimal image: an alternative group already satisfied by a chosen package adds nothing,
//! otherwise its first satisfiable alternative wins.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::apt::{Dep, Package};
use super::version::{compare, satisfies};

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

/// The state of one resolution.
struct Run<'u, 'a> {
    universe: &'u Universe,
    exclude: &'a BTreeSet<String>,
    arch: &'a str,
    /// name → chosen package; one package per name.
    chosen: BTreeMap<&'u str, &'u Package>,
    /// name → the package that pulled it in (roots have none).
    parent: BTreeMap<&'u str, &'u str>,
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
    fn satisfied(&self, dep: &Dep) -> bool {
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
    fn best(&self, dep: &Dep) -> Option<&'u Package> {
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

    fn unsatisfiable(&self, p: &Package, group: &[Dep]) -> ResolveError {
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

/// Installed size of a closure in bytes (`Installed-Size` is in KiB).
pub fn closure_size(pkgs: &[&Package]) -> u64 {
    pkgs.iter()
        .map(|p| p.installed_size.saturating_mul(1024))
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::super::apt::parse_packages;
    use super::*;

    /// A stanza with the fields `parse_packages` requires, plus `extra` lines.
    fn stanza(name: &str, version: &str, arch: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nInstalled-Size: 2\n\
             Filename: pool/{name}_{version}_{arch}.deb\nSize: 1\nSHA256: {}\n{extra}\n\n",
            "0".repeat(64)
        )
    }

    fn universe(stanzas: &[String]) -> Universe {
        Universe::new(parse_packages(&stanzas.join("")).unwrap())
    }

    fn names(pkgs: &[&Package]) -> Vec<String> {
        pkgs.iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn roots(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn synthetic() -> Universe {
        universe(&[
            stanza("nginx-light", "1.22.1-9+deb12u9", "all",
                "Depends: libnginx-mod-http-echo (>= 1:0.63-4~), nginx (>= 1.22.1-9+deb12u9), nginx (<< 1.22.1-9+deb12u9.1~)"),
            stanza("nginx", "1.22.1-9+deb12u9", "amd64",
                "Pre-Depends: init-system-helpers (>= 1.54~)\nDepends: nginx-common (= 1.22.1-9+deb12u9), libc6 (>= 2.34), libssl3 (>= 3.0.0)"),
            stanza("nginx", "1.22.1-9", "amd64", "Depends: old-thing"),
            stanza("nginx-common", "1.22.1-9+deb12u9", "all", "Depends: debconf (>= 0.5) | debconf-2.0, lsb-base"),
            stanza("libnginx-mod-http-echo", "1:0.63-4", "amd64", "Depends: nginx-abi-1.22.1-7, libc6 (>= 2.4)"),
            stanza("libc6", "2.36-9+deb12u10", "amd64", "Depends: libgcc-s1"),
            stanza("libc6", "2.36-9+deb12u10", "arm64", "Depends: never-for-amd64"),
            stanza("libgcc-s1", "12.2.0-14", "amd64", "Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)"),
            stanza("gcc-12-base", "12.2.0-14", "amd64", ""),
            stanza("libssl3", "3.0.16-1~deb12u1", "amd64", "Depends: libc6:any (>= 2.34)"),
            stanza("nginx-core", "1.22.1-9+deb12u9", "amd64", "Provides: nginx-abi-1.22.1-7, httpd"),
            stanza("lsb-base", "11.6", "all", "Depends: sysvinit-utils"),
            stanza("debconf", "1.5.82", "all", "Provides: debconf-2.0"),
        ])
    }

    #[test]
    fn closure_of_nginx_light() {
        let u = synthetic();
        let exclude = set(&["debconf", "init-system-helpers", "lsb-base"]);
        let got = u
            .resolve(&roots(&["nginx-light"]), &exclude, "amd64")
            .unwrap();
        assert_eq!(
            names(&got),
            [
                "gcc-12-base=12.2.0-14",
                "libc6=2.36-9+deb12u10",
                "libgcc-s1=12.2.0-14",
                "libnginx-mod-http-echo=1:0.63-4",
                "libssl3=3.0.16-1~deb12u1",
                "nginx=1.22.1-9+deb12u9",
                "nginx-common=1.22.1-9+deb12u9",
                "nginx-core=1.22.1-9+deb12u9",
                "nginx-light=1.22.1-9+deb12u9",
            ]
        );
        assert!(got.iter().all(|p| p.arch != "arm64"));
        assert_eq!(closure_size(&got), 9 * 2 * 1024);
        // The same roots in another order, or given twice, give the same closure.
        let again = u
            .resolve(
                &roots(&["nginx-light", "libc6", "nginx-light"]),
                &exclude,
                "amd64",
            )
            .unwrap();
        assert_eq!(names(&again), names(&got));
    }

    #[test]
    fn unsatisfiable_names_the_chain() {
        let u = synthetic();
        let exclude = set(&["debconf", "init-system-helpers"]);
        let err = u
            .resolve(&roots(&["nginx-light"]), &exclude, "amd64")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`lsb-base` depends on `sysvinit-utils`, which no package satisfies, \
             required via `nginx-light` → `nginx` → `nginx-common`"
        );
        let u = universe(&[
            stanza(
                "nginx",
                "1.22.1-9",
                "amd64",
                "Depends: libnginx-mod-http-echo (>= 1:0.63-4~) | nope",
            ),
            stanza("libnginx-mod-http-echo", "1:0.63-3", "amd64", ""),
        ]);
        let err = u
            .resolve(&roots(&["nginx"]), &BTreeSet::new(), "amd64")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`nginx` depends on `libnginx-mod-http-echo (>= 1:0.63-4~) | nope`, which no package \
             satisfies (newest is `libnginx-mod-http-echo 1:0.63-3`)"
        );
        let err = u
            .resolve(&roots(&["nginx-full"]), &BTreeSet::new(), "amd64")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no package `nginx-full` for architecture `amd64` or `all`"
        );
        let err = u
            .resolve(&roots(&["nginx"]), &BTreeSet::new(), "arm64")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no package `nginx` for architecture `arm64` or `all`"
        );
    }

    #[test]
    fn alternatives_and_provides() {
        let u = universe(&[
            stanza(
                "app",
                "1",
                "amd64",
                "Depends: missing | mawk | gawk, awk, mail-transport-agent, \
                    libfoo-abi (>= 2), debconf (>= 0.5) | debconf-2.0, cron:any, libx:amd64",
            ),
            stanza("mawk", "1.3.4", "amd64", "Provides: awk"),
            stanza("gawk", "5.2", "amd64", "Provides: awk"),
            // Providers of a virtual name: the higher priority wins, then the name.
            stanza(
                "postfix",
                "3.7",
                "amd64",
                "Provides: mail-transport-agent\nPriority: optional",
            ),
            stanza(
                "exim4",
                "4.96",
                "amd64",
                "Provides: mail-transport-agent\nPriority: standard",
            ),
            // Versioned provides: only the one whose provided version satisfies.
            stanza("libfoo1", "1", "amd64", "Provides: libfoo-abi (= 1)"),
            stanza("libfoo2", "2", "amd64", "Provides: libfoo-abi (= 2)"),
            stanza("libfoo-any", "9", "amd64", "Provides: libfoo-abi"),
            stanza("cdebconf", "0.270", "amd64", "Provides: debconf-2.0"),
            stanza("cron", "3.0", "amd64", ""),
            stanza("libx", "1", "all", ""),
        ]);
        let got = u
            .resolve(&roots(&["app"]), &BTreeSet::new(), "amd64")
            .unwrap();
        assert_eq!(
            names(&got),
            [
                "app=1",
                "cdebconf=0.270",
                "cron=3.0",
                "exim4=4.96",
                "libfoo2=2",
                "libx=1",
                "mawk=1.3.4"
            ]
        );
        // An excluded provider satisfies the virtual name.
        let got = u
            .resolve(&roots(&["app"]), &set(&["cdebconf"]), "amd64")
            .unwrap();
        assert!(got.iter().all(|p| p.name != "cdebconf"));
    }

    #[test]
    fn unversioned_provides_do_not_satisfy_versioned_deps() {
        let u = universe(&[
            stanza("app", "1", "amd64", "Depends: libfoo-abi (>= 1)"),
            stanza("libfoo-any", "9", "amd64", "Provides: libfoo-abi"),
        ]);
        let err = u
            .resolve(&roots(&["app"]), &BTreeSet::new(), "amd64")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`app` depends on `libfoo-abi (>= 1)`, which no package satisfies"
        );
    }

    #[test]
    fn newest_version_per_arch_wins() {
        let u = universe(&[
            stanza("p", "1.0-1", "amd64", ""),
            stanza("p", "1.0-1+deb12u1", "amd64", ""),
            stanza("p", "1.0-1~bpo", "amd64", ""),
            stanza("p", "2.0", "arm64", ""),
        ]);
        assert_eq!(u.len(), 2);
        assert_eq!(u.get("p", "amd64").unwrap().version, "1.0-1+deb12u1");
        let got = u
            .resolve(&roots(&["p"]), &BTreeSet::new(), "amd64")
            .unwrap();
        assert_eq!(names(&got), ["p=1.0-1+deb12u1"]);
    }

    /// Decodes an LZ4 frame (<https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md>):
    /// apt keeps its lists LZ4-compressed on this machine, and no LZ4 crate is a dependency.
    fn lz4_frame(data: &[u8]) -> Vec<u8> {
        let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 0x184D_2204, "not an LZ4 frame");
        let flags = data[4];
        let content_size = if flags & 0x08 == 0 { 0 } else { 8 };
        let dictionary = if flags & 0x01 == 0 { 0 } else { 4 };
        // Magic, FLG, BD, the optional fields, then the header checksum.
        let mut i = 4 + 2 + content_size + dictionary + 1;
        let block_checksum = if flags & 0x10 == 0 { 0 } else { 4 };
        let mut out = Vec::new();
        loop {
            let header = u32_at(i);
            i += 4;
            if header == 0 {
                break;
            }
            let len = (header & 0x7FFF_FFFF) as usize;
            let block = &data[i..i + len];
            i += len + block_checksum;
            if header & 0x8000_0000 != 0 {
                out.extend_from_slice(block);
                continue;
            }
            let mut j = 0;
            let length = |j: &mut usize, mut n: usize| {
                if n == 15 {
                    loop {
                        let b = block[*j];
                        *j += 1;
                        n += usize::from(b);
                        if b != 255 {
                            break;
                        }
                    }
                }
                n
            };
            while j < block.len() {
                let token = block[j];
                j += 1;
                let literals = length(&mut j, usize::from(token >> 4));
                out.extend_from_slice(&block[j..j + literals]);
                j += literals;
                if j == block.len() {
                    break;
                }
                let offset = usize::from(u16::from_le_bytes([block[j], block[j + 1]]));
                j += 2;
                let count = length(&mut j, usize::from(token & 0x0F)) + 4;
                let start = out.len() - offset;
                if offset >= count {
                    out.extend_from_within(start..start + count);
                } else {
                    for k in 0..count {
                        out.push(out[start + k]);
                    }
                }
            }
        }
        out
    }

    /// The real indexes apt fetched on this machine (`apt-get update`).
    fn host_packages() -> Vec<Package> {
        let dir = std::path::Path::new("/var/lib/apt/lists");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        let mut packages = Vec::new();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(suffix) = name.split_once("_Packages").map(|(_, s)| s) else {
                continue;
            };
            let bytes = std::fs::read(&path).unwrap();
            let text = match suffix {
                ".lz4" => lz4_frame(&bytes),
                "" | ".gz" | ".xz" => super::super::apt::decompress(&name, &bytes).unwrap(),
                _ => continue,
            };
            let text = String::from_utf8(text).unwrap();
            packages.extend(parse_packages(&text).unwrap_or_else(|e| panic!("{name}: {e}")));
        }
        assert!(
            !packages.is_empty(),
            "no /var/lib/apt/lists/*_Packages index on this machine: run `apt-get update` first"
        );
        packages
    }

    #[test]
    fn closure_from_this_machine() {
        let u = Universe::new(host_packages());
        let exclude = set(&[
            "debconf",
            "debconf-2.0",
            "adduser",
            "init-system-helpers",
            "perl-base",
            "ucf",
            "lsb-base",
        ]);
        let got = u
            .resolve(&roots(&["nginx-light"]), &exclude, "amd64")
            .unwrap();
        let got_names: BTreeSet<&str> = got.iter().map(|p| p.name.as_str()).collect();
        for name in ["libc6", "libssl3", "nginx", "nginx-common", "libpcre2-8-0"] {
            assert!(
                got_names.contains(name),
                "`{name}` missing from {got_names:?}"
            );
        }
        for name in &exclude {
            assert!(
                !got_names.contains(name.as_str()),
                "excluded `{name}` in {got_names:?}"
            );
        }
        assert!(got.iter().all(|p| p.arch == "amd64" || p.arch == "all"));
        assert!(got.windows(2).all(|w| w[0].name < w[1].name));
        assert!(closure_size(&got) > 1024 * 1024, "{}", closure_size(&got));
    }
}
