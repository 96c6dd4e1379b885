//! Profiles: Pigsty's inventory dialect, parsed into an [`Inventory`] with Ansible's precedence.
//!
//! Owns reading profile text (built-in or from a file), YAML errors with line and column, the
//! group/host structure (`all.children.<group>.hosts/vars/children`, `all.hosts`, `all.vars`),
//! variable precedence, and the position of every key path ([`Inventory::positions`]), by
//! which problems found later are located. It knows nothing about what a parameter means: that
//! is `plan`. The YAML reader is `yaml`; the limits (size, nesting, alias expansion) are in
//! `bounds`.

pub mod address_map;
pub mod bounds;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read as _;
use std::path::Path;

pub use crate::yaml::kind;
use crate::yaml::{self, Mapping, Value};

use crate::keypath;
use crate::problem::{Problem, Problems};

/// The built-in profiles, embedded in the binary: `(name, text)`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "single-node",
        include_str!("../../profiles/single-node.yml"),
    ),
    ("three-node", include_str!("../../profiles/three-node.yml")),
    ("small-prod", include_str!("../../profiles/small-prod.yml")),
    ("large-prod", include_str!("../../profiles/large-prod.yml")),
];

/// A variable as written in the profile, with the key path it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    /// The YAML value.
    pub value: Value,
    /// Where it was written, e.g. `all.children.infra.vars.nginx_port`.
    pub path: String,
}

/// Variables by name; `BTreeMap` so that every iteration is ordered.
pub type Vars = BTreeMap<String, Var>;

/// A host's variables after precedence ([`Inventory::resolve`]), borrowed from the inventory:
/// resolving every host of a large inventory copies no value.
pub type Resolved<'a> = BTreeMap<&'a str, &'a Var>;

/// An inventory group, flattened out of the `children` tree.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Nesting depth below `all` (a direct child of `all` has depth 1).
    pub depth: usize,
    /// Group vars.
    pub vars: Vars,
    /// Hosts listed directly in this group, in profile order.
    pub hosts: Vec<String>,
    /// Child groups.
    pub children: Vec<String>,
}

/// A host: the groups it belongs to and its host-level vars.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Every group the host belongs to, directly or through a child group.
    pub groups: BTreeSet<String>,
    /// Host vars, merged over every place the host is listed (later group wins).
    pub vars: Vars,
}

/// A parsed profile.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Where the profile came from: a file path or `builtin:<name>`.
    pub source: String,
    /// sha256 of the profile text (followed by the address map's rules, when there are any).
    pub digest: String,
    /// `all.vars`.
    pub all_vars: Vars,
    /// Groups by name (`all` itself is not a group here).
    pub groups: BTreeMap<String, Group>,
    /// Hosts by inventory key (the node's address).
    pub hosts: BTreeMap<String, Host>,
    /// Where every key and value was written, by key path, so that a problem found later
    /// (by `plan`) can be reported at its line and column.
    pub positions: yaml::Positions,
}

/// Why a profile could not be loaded at all.
#[derive(Debug)]
pub enum LoadError {
    /// The profile is neither a built-in name nor a readable file.
    NotFound(String),
    /// The file could not be read.
    Io(String, std::io::Error),
    /// YAML syntax, a duplicate key or a bad merge key: file, line, column.
    Yaml {
        /// The profile.
        source: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The text is past a limit: too large (checked before parsing), too deeply nested, or
    /// holding or repeating through aliases too many values (checked while parsing).
    Limit {
        /// The profile.
        source: String,
        /// Which limit, and where.
        exceeded: bounds::Exceeded,
    },
    /// The YAML parsed but is not an inventory; every structural problem.
    Structure(Problems),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(name) => write!(
                f,
                "profile `{name}` is neither a built-in profile nor a file\nhint: built-in profiles are {}",
                BUILTIN.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
            Self::Io(path, e) => write!(f, "{path}: cannot read profile: {e}"),
            Self::Yaml { source, line, column, message } => {
                write!(f, "{source}:{line}:{column}: invalid YAML: {message}")
            }
            Self::Limit { source, exceeded } => match exceeded.at() {
                Some((line, column)) => write!(f, "{source}:{line}:{column}: {exceeded}"),
                None => write!(f, "{source}: {exceeded}"),
            },
            Self::Structure(problems) => problems.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads a profile by built-in name or path. `address_map` moves its hosts to other addresses
/// after parsing (`10.10.10.` → `127.0.10.`; see [`address_map`]).
pub fn load(name: &str, address_map: &[address_map::Rule]) -> Result<Inventory, LoadError> {
    let (source, text) = if let Some((n, t)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        (format!("builtin:{n}"), (*t).to_owned())
    } else if Path::new(name).exists() {
        (name.to_owned(), read(name)?)
    } else {
        return Err(LoadError::NotFound(name.to_owned()));
    };
    parse_mapped(
        &source,
        &text,
        &address_map::AddressMap(address_map.to_vec()),
    )
}

/// Reads a profile file, refusing one past the size limit without reading it all.
fn read(path: &str) -> Result<String, LoadError> {
    let io = |e| LoadError::Io(path.to_owned(), e);
    let too_large = |bytes| LoadError::Limit {
        source: path.to_owned(),
        exceeded: bounds::Exceeded::Size(bytes),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > bounds::MAX_BYTES as u64 {
        return Err(too_large(Some(len)));
    }
    // The length of a pipe or device is not known ahead: read one byte past the limit.
    let mut bytes = Vec::new();
    file.take(bounds::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > bounds::MAX_BYTES {
        return Err(too_large(None));
    }
    String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// Parses profile text. Pure: `source` only names the text in errors. The limits of `bounds`
/// are checked first, so that hostile text is refused before the YAML parser spends time on it.
pub fn parse(source: &str, text: &str) -> Result<Inventory, LoadError> {
    parse_mapped(source, text, &address_map::AddressMap::default())
}

/// [`parse`], then addresses mapped by `map` in keys and values.
pub fn parse_mapped(
    source: &str,
    text: &str,
    map: &address_map::AddressMap,
) -> Result<Inventory, LoadError> {
    let limit = |exceeded| LoadError::Limit {
        source: source.to_owned(),
        exceeded,
    };
    bounds::check(text).map_err(limit)?;
    let (mut root, spans) = yaml::parse(text, bounds::LIMITS).map_err(|e| match e {
        yaml::Error::Depth { at } => limit(bounds::Exceeded::Depth {
            line: at.line,
            column: at.column,
        }),
        yaml::Error::Values { at } => limit(bounds::Exceeded::Values(Some((at.line, at.column)))),
        yaml::Error::Aliased { at } => limit(bounds::Exceeded::Aliased(Some((at.line, at.column)))),
        other => LoadError::Yaml {
            source: source.to_owned(),
            line: other.at().line,
            column: other.at().column,
            message: other.to_string(),
        },
    })?;
    let clashes: Vec<Problem> = map
        .apply(&mut root, "")
        .into_iter()
        .map(|path| Problem::at(&path, "`--address-map` makes this key the same as another"))
        .collect();
    if !clashes.is_empty() {
        return Err(LoadError::Structure(
            Problems::new(source, clashes).located(&yaml::Positions::new(&root, &spans)),
        ));
    }
    // After the address map, so that positions are found under the mapped key paths.
    let positions = yaml::Positions::new(&root, &spans);
    let mut walker = Walker::default();
    walker.root(root);
    if !walker.problems.is_empty() {
        return Err(LoadError::Structure(
            Problems::new(source, walker.problems).located(&positions),
        ));
    }
    let mut inventory = Inventory {
        source: source.to_owned(),
        // The map is part of what was read: the same text mapped otherwise is another profile.
        digest: crate::digest::sha256_hex((text.to_owned() + &map.describe()).as_bytes()),
        all_vars: walker.all_vars,
        groups: walker.groups,
        hosts: walker.hosts,
        positions,
    };
    inventory.close_membership();
    Ok(inventory)
}

impl Inventory {
    /// The resolved variables of `host`: host vars > group vars (deeper, then later by name)
    /// > `all.vars`. Built-in defaults are applied by `plan`, not here.
    pub fn resolve(&self, host: &str) -> Resolved<'_> {
        let mut vars: Resolved<'_> = borrow(&self.all_vars).collect();
        let Some(h) = self.hosts.get(host) else {
            return vars;
        };
        let mut groups: Vec<(&usize, &String)> = h
            .groups
            .iter()
            .filter_map(|g| self.groups.get(g).map(|grp| (&grp.depth, g)))
            .collect();
        groups.sort();
        for (_, g) in groups {
            vars.extend(borrow(&self.groups[g].vars));
        }
        vars.extend(borrow(&h.vars));
        vars
    }

    /// Hosts of `group` (including those of its child groups), in address order.
    pub fn members(&self, group: &str) -> Vec<&str> {
        let mut hosts: Vec<&str> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.groups.contains(group))
            .map(|(k, _)| k.as_str())
            .collect();
        hosts.sort_by_cached_key(|h| address_key(h));
        hosts
    }

    /// Every host of the inventory, in address order.
    pub fn all_hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
        hosts.sort_by_cached_key(|h| address_key(h));
        hosts
    }

    /// Every place a variable is written (all, group and host level), for misspelling checks.
    pub fn every_var(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.all_vars
            .iter()
            .chain(self.groups.values().flat_map(|g| g.vars.iter()))
            .chain(self.hosts.values().flat_map(|h| h.vars.iter()))
    }

    /// Adds each group's hosts to its ancestors, as Ansible does.
    fn close_membership(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            let mut stack = vec![name.clone()];
            let mut seen = BTreeSet::new();
            while let Some(g) = stack.pop() {
                if !seen.insert(g.clone()) {
                    continue;
                }
                let Some(group) = self.groups.get(&g) else {
                    continue;
                };
                for host in group.hosts.clone() {
                    self.hosts
                        .entry(host)
                        .or_default()
                        .groups
                        .insert(name.clone());
                }
                stack.extend(group.children.iter().cloned());
            }
        }
    }
}

/// `vars` as borrowed entries.
fn borrow(vars: &Vars) -> impl Iterator<Item = (&str, &Var)> {
    vars.iter().map(|(k, v)| (k.as_str(), v))
}

/// Walks the YAML tree, collecting structure and structural problems.
#[derive(Default)]
struct Walker {
    all_vars: Vars,
    groups: BTreeMap<String, Group>,
    hosts: BTreeMap<String, Host>,
    problems: Vec<Problem>,
}

impl Walker {
    /// Takes the tree apart: every variable's value is moved into the inventory, not copied.
    fn root(&mut self, root: Value) {
        let Value::Mapping(top) = root else {
            self.problems.push(Problem::at(
                "(top)",
                "a profile is a mapping with the key `all`",
            ));
            return;
        };
        let mut all = None;
        for (k, v) in top {
            let k = scalar(&k);
            if k == "all" {
                all = Some(v);
            } else {
                self.problems.push(Problem::at(
                    keypath::join("", &k),
                    "unknown top-level key; a profile has only `all`",
                ));
            }
        }
        let Some(all) = all else {
            self.problems
                .push(Problem::at("all", "missing; a profile starts with `all:`"));
            return;
        };
        let Some(all) = self.mapping(all, "all") else {
            return;
        };
        for (k, v) in all {
            let key = scalar(&k);
            let path = keypath::join("all", &key);
            match key.as_str() {
                "vars" => self.all_vars = self.vars(v, &path),
                "hosts" => {
                    let listed = self.hosts_of(v, &path);
                    for (host, vars) in listed {
                        let entry = self.hosts.entry(host).or_default();
                        entry.vars.extend(vars);
                    }
                }
                "children" => self.children(v, &path, 1, None),
                _ => self.problems.push(Problem::at(
                    path,
                    "unknown key; `all` has `children`, `hosts` and `vars`",
                )),
            }
        }
    }

    fn children(&mut self, value: Value, path: &str, depth: usize, parent: Option<&str>) {
        if value.is_null() {
            return;
        }
        let Some(map) = self.mapping(value, path) else {
            return;
        };
        for (k, v) in map {
            let name = scalar(&k);
            let gpath = keypath::join(path, &name);
            if name == "all" || name.is_empty() {
                self.problems.push(Problem::at(gpath, "invalid group name"));
                continue;
            }
            if let Some(parent) = parent {
                self.groups
                    .entry(parent.to_owned())
                    .or_default()
                    .children
                    .push(name.clone());
            }
            self.groups.entry(name.clone()).or_default().depth = depth;
            if v.is_null() {
                continue;
            }
            let Some(body) = self.mapping(v, &gpath) else {
                continue;
            };
            for (gk, gv) in body {
                self.group_entry(&name, &gpath, depth, &scalar(&gk), gv);
            }
        }
    }

    /// One entry of group `name`'s body: its `vars`, `hosts` or `children`.
    fn group_entry(&mut self, name: &str, gpath: &str, depth: usize, key: &str, value: Value) {
        let kpath = keypath::join(gpath, key);
        match key {
            "vars" => {
                let vars = self.vars(value, &kpath);
                self.groups
                    .entry(name.to_owned())
                    .or_default()
                    .vars
                    .extend(vars);
            }
            "hosts" => {
                let listed = self.hosts_of(value, &kpath);
                for (host, vars) in listed {
                    self.groups
                        .entry(name.to_owned())
                        .or_default()
                        .hosts
                        .push(host.clone());
                    self.hosts.entry(host).or_default().vars.extend(vars);
                }
            }
            "children" => self.children(value, &kpath, depth + 1, Some(name)),
            _ => self.problems.push(Problem::at(
                kpath,
                format!(
                    "unknown key in group `{name}`; a group has `hosts`, `vars` and `children`"
                ),
            )),
        }
    }

    fn hosts_of(&mut self, value: Value, path: &str) -> Vec<(String, Vars)> {
        if value.is_null() {
            return Vec::new();
        }
        let Some(map) = self.mapping(value, path) else {
            return Vec::new();
        };
        map.into_iter()
            .map(|(k, v)| {
                let host = scalar(&k);
                let hpath = keypath::join(path, &host);
                let vars = if v.is_null() {
                    Vars::new()
                } else {
                    self.vars(v, &hpath)
                };
                (host, vars)
            })
            .collect()
    }

    fn vars(&mut self, value: Value, path: &str) -> Vars {
        if value.is_null() {
            return Vars::new();
        }
        let Some(map) = self.mapping(value, path) else {
            return Vars::new();
        };
        map.into_iter()
            .map(|(k, value)| {
                let name = scalar(&k);
                let path = keypath::join(path, &name);
                (name, Var { value, path })
            })
            .collect()
    }

    fn mapping(&mut self, value: Value, path: &str) -> Option<Mapping> {
        match value {
            Value::Mapping(map) => Some(map),
            other => {
                self.problems.push(Problem::at(
                    path,
                    format!("expected a mapping, found {}", kind(&other)),
                ));
                None
            }
        }
    }
}

/// A mapping key as text (YAML allows numbers and booleans as keys).
fn scalar(v: &Value) -> String {
    yaml::key_text(v)
}

/// The sort key of [`address_order`]: each key is parsed once, not at every comparison.
fn address_key(key: &str) -> (bool, Option<std::net::IpAddr>, &str) {
    let ip = key.parse().ok();
    (ip.is_none(), ip, key)
}

/// Orders inventory keys by address (numerically), then as text.
pub fn address_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r"
all:
  children:
    infra:
      hosts:
        10.0.0.1: { infra_seq: 1, nginx_port: 8080 }
        10.0.0.2: { infra_seq: 2 }
      vars: { nginx_port: 81, dns_port: 5353 }
    pg-meta:
      hosts: { 10.0.0.1: { pg_seq: 1 } }
      vars: { dns_port: 5454 }
  vars:
    admin_ip: 10.0.0.1
    nginx_port: 82
    vlogs_port: 1
";

    #[test]
    fn precedence_host_over_group_over_all() {
        let inv = parse("t", SAMPLE).unwrap();
        let v1 = inv.resolve("10.0.0.1");
        assert_eq!(v1["nginx_port"].value, Value::from(8080));
        assert_eq!(
            v1["nginx_port"].path,
            r#"all.children.infra.hosts."10.0.0.1".nginx_port"#
        );
        // same depth: later group name wins (`pg-meta` > `infra`)
        assert_eq!(v1["dns_port"].value, Value::from(5454));
        assert_eq!(v1["vlogs_port"].value, Value::from(1));
        let v2 = inv.resolve("10.0.0.2");
        assert_eq!(v2["nginx_port"].value, Value::from(81));
        assert_eq!(v2["dns_port"].value, Value::from(5353));
        assert_eq!(v1["pg_seq"].value, Value::from(1));
        assert_eq!(inv.members("infra"), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn yaml_error_has_line_and_column() {
        let err = parse("p.yml", "all:\n  vars: { a: [1, 2 }\n").unwrap_err();
        let LoadError::Yaml { line, column, .. } = err else {
            panic!("{err}")
        };
        assert_eq!((line, column), (2, 20));
    }

    #[test]
    fn structure_problems_are_collected() {
        let err = parse(
            "p.yml",
            "all:\n  children: { infra: { hostz: {} } }\n  varz: 1\n",
        )
        .unwrap_err();
        let LoadError::Structure(p) = err else {
            panic!("{err}")
        };
        assert_eq!(p.list.len(), 2, "{p}");
    }

    #[test]
    fn problems_are_located_after_the_address_map() {
        let map = address_map::AddressMap(vec![
            address_map::Rule::parse("10.10.10.=127.0.10.").unwrap()
        ]);
        let text = "all:\n  hosts:\n    10.10.10.10: {}\n    127.0.10.10: {}\n  varz: 1\n";
        let err = parse_mapped("p.yml", text, &map).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yml: 1 problem in profile\n  p.yml:3:5: all.hosts.\"127.0.10.10\": `--address-map` makes this key the same as another"
        );
        // A mapped key path is found at the position of the key as written.
        let text = "all:\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { x: 1 }\n      hostz: 1\n";
        let err = parse_mapped("p.yml", text, &map).unwrap_err();
        assert!(
            err.to_string()
                .contains("p.yml:6:7: all.children.infra.hostz"),
            "{err}"
        );
        let ok =
            parse_mapped("p.yml", "all:\n  hosts:\n    10.10.10.10: { x: 1 }\n", &map).unwrap();
        let p = ok.positions.locate(r#"all.hosts."127.0.10.10".x"#, false);
        assert_eq!(p.map(|p| (p.line, p.column)), Some((3, 23)));
    }

    #[test]
    fn nested_children_inherit_membership() {
        let inv = parse("t", "all:\n  children:\n    prod:\n      vars: { x: 1 }\n      children:\n        web: { hosts: { 10.0.0.9: {} }, vars: { x: 2 } }\n").unwrap();
        assert_eq!(inv.members("prod"), ["10.0.0.9"]);
        assert_eq!(inv.resolve("10.0.0.9")["x"].value, Value::from(2));
    }
}
