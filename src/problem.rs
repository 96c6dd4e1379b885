//! Problems found in a profile: data, not control flow.
//!
//! Every stage before `render` collects problems instead of stopping at the first one, so a
//! user sees everything wrong with a profile at once. Only `cli` prints them.
//!
//! A problem carries a key path, not a position: validators know where a value sits in the
//! profile, not where it was written. [`Problems`] holds the profile's positions and turns each
//! path into `file:line:column` when it is displayed, the one place problems become messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::yaml::{Pos, Positions};

/// One thing wrong (or suspicious) in a profile, located by key path and host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Where the value sits in the profile, e.g. `all.vars.nginx_port`.
    pub path: String,
    /// The infra host whose resolution hit the problem, when it is host-specific.
    pub host: Option<String>,
    /// What is wrong, lowercase, names in backticks.
    pub message: String,
}

impl Problem {
    /// A problem at `path`, not tied to one host.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            host: None,
            message: message.into(),
        }
    }

    /// The same problem, attributed to `host`.
    #[must_use]
    pub fn on_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }
}

impl Problem {
    /// Whether the problem is about the key itself (an unknown or duplicate key, a key the
    /// address map makes the same as another), so that it is reported at the key rather than
    /// at its value.
    fn is_about_key(&self) -> bool {
        self.message.starts_with("unknown")
            || self.message.starts_with("duplicate key")
            || self.message.contains("this key")
    }

    /// Where the problem's key path was written, when `positions` knows it (a built-in
    /// default, `default:<name>`, was not written anywhere).
    pub fn position(&self, positions: &Positions) -> Option<Pos> {
        if self.path.starts_with("default:") {
            None
        } else if self.path == "(top)" {
            positions.locate("", false)
        } else {
            positions.locate(&self.path, self.is_about_key())
        }
    }

    /// The problem as one line, starting with `source:line:column` of its key path when
    /// `positions` knows it.
    pub fn located(&self, source: &str, positions: &Positions) -> String {
        match self.position(positions) {
            Some(at) => format!("{source}:{at}: {self}"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{} (host `{host}`): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem of one profile, reported together; the error type of `plan::resolve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The profile the problems were found in (a path or `builtin:<name>`).
    pub source: String,
    /// The problems, sorted and deduplicated.
    pub list: Vec<Problem>,
    /// Where the profile's key paths were written (empty when not known).
    pub positions: Positions,
}

impl Problems {
    /// Sorts and deduplicates `list` so that the report is stable. A value shared by several
    /// hosts (e.g. in `all.vars`) that is wrong for all of them is reported once, without a host.
    pub fn new(source: &str, list: Vec<Problem>) -> Self {
        let mut hosts: BTreeMap<(String, String), BTreeSet<Option<String>>> = BTreeMap::new();
        for p in list {
            hosts.entry((p.path, p.message)).or_default().insert(p.host);
        }
        let mut list: Vec<Problem> = hosts
            .into_iter()
            .map(|((path, message), hosts)| {
                let host = if hosts.len() == 1 {
                    hosts.into_iter().next().flatten()
                } else {
                    None
                };
                Problem {
                    path,
                    host,
                    message,
                }
            })
            .collect();
        list.sort();
        Self {
            source: source.to_owned(),
            list,
            positions: Positions::default(),
        }
    }

    /// The same problems, reported at the positions of their key paths in `positions`.
    #[must_use]
    pub fn located(mut self, positions: &Positions) -> Self {
        self.positions = positions.clone();
        self
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.list.len();
        write!(
            f,
            "{}: {} in profile",
            self.source,
            crate::plural::count(n, "problem")
        )?;
        for p in &self.list {
            write!(f, "\n  {}", p.located(&self.source, &self.positions))?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
