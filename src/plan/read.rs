//! Typed reads of one host's resolved variables, with built-in defaults and collected problems.
//!
//! A `Reader` never fails: a bad value is recorded as a [`Problem`] at its key path and a
//! neutral value is returned, so that resolution goes on and reports everything at once.

use std::net::IpAddr;

use crate::yaml::Value;

use crate::duration::{self, Duration, Unit};
use crate::params;
use crate::problem::Problem;
use crate::profile::{kind, Resolved, Var};

use super::check;

/// Every parameter's built-in default, parsed once (a large inventory reads them for each of
/// its hosts).
fn defaults() -> &'static std::collections::BTreeMap<&'static str, Var> {
    static DEFAULTS: std::sync::OnceLock<std::collections::BTreeMap<&'static str, Var>> =
        std::sync::OnceLock::new();
    DEFAULTS.get_or_init(|| {
        params::PARAMS
            .iter()
            .filter_map(|p| {
                let value =
                    crate::yaml::from_str(p.default?).expect("built-in defaults are valid YAML");
                let path = format!("default:{}", p.name);
                Some((p.name, Var { value, path }))
            })
            .collect()
    })
}

/// Reads typed parameters of one host.
pub struct Reader<'a> {
    vars: &'a Resolved<'a>,
    host: &'a str,
    /// Problems found so far (shared with the caller).
    pub problems: &'a mut Vec<Problem>,
}

impl<'a> Reader<'a> {
    /// A reader over `vars` (already resolved for `host`).
    pub fn new(vars: &'a Resolved<'a>, host: &'a str, problems: &'a mut Vec<Problem>) -> Self {
        Self {
            vars,
            host,
            problems,
        }
    }

    /// The host being read.
    pub fn host(&self) -> &str {
        self.host
    }

    /// The variable `name` as written, or its built-in default (path `default:<name>`).
    pub fn var(&self, name: &str) -> Option<&'a Var> {
        if let Some(v) = self.vars.get(name) {
            return Some(v);
        }
        defaults().get(name)
    }

    /// Whether the profile sets `name` explicitly.
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Records a problem at `path` for this host.
    pub fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems
            .push(Problem::at(path, message).on_host(self.host));
    }

    /// A boolean; accepts Ansible's spellings (`yes`, `no`, `on`, `off`, `true`, `false`).
    pub fn bool(&mut self, name: &str) -> bool {
        let Some(var) = self.var(name) else {
            return false;
        };
        match &var.value {
            Value::Bool(b) => *b,
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" | "y" => true,
                "no" | "off" | "false" | "n" => false,
                _ => {
                    self.problem(&var.path, format!("expected a boolean, found `{s}`"));
                    false
                }
            },
            other => {
                self.problem(
                    &var.path,
                    format!("expected a boolean, found {}", kind(other)),
                );
                false
            }
        }
    }

    /// An unsigned integer (a number, or a string of digits).
    pub fn uint(&mut self, name: &str) -> Option<u64> {
        let var = self.var(name)?;
        let n = match &var.value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if n.is_none() {
            self.problem(
                &var.path,
                format!(
                    "expected a non-negative integer, found {}",
                    describe(&var.value)
                ),
            );
        }
        n
    }

    /// A TCP/UDP port, 1..=65535.
    pub fn port(&mut self, name: &str) -> u16 {
        let Some(var) = self.var(name) else { return 0 };
        let n = self.uint(name);
        match n.map(u16::try_from) {
            Some(Ok(p)) if p > 0 => p,
            Some(_) => {
                self.problem(
                    &var.path,
                    format!(
                        "port out of range: {} (expected 1 to 65535)",
                        describe(&var.value)
                    ),
                );
                0
            }
            None => 0,
        }
    }

    /// A string (numbers are taken as their text), with control characters rejected.
    pub fn string(&mut self, name: &str) -> String {
        let Some(var) = self.var(name) else {
            return String::new();
        };
        self.string_value(&var.value, &var.path).unwrap_or_default()
    }

    /// A string value at `path`.
    pub fn string_value(&mut self, value: &Value, path: &str) -> Option<String> {
        let s = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            other => {
                self.problem(path, format!("expected a string, found {}", kind(other)));
                return None;
            }
        };
        if let Err(e) = check::no_control(&s) {
            self.problem(path, e);
            return None;
        }
        Some(s)
    }

    /// A list of strings (a single string is taken as a one-element list).
    pub fn strings(&mut self, name: &str) -> Vec<(String, String)> {
        let Some(var) = self.var(name) else {
            return Vec::new();
        };
        self.strings_value(&var.value, &var.path)
    }

    /// A list of strings at `path`, each with its own key path.
    pub fn strings_value(&mut self, value: &Value, path: &str) -> Vec<(String, String)> {
        match value {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let p = crate::keypath::index(path, i);
                    self.string_value(v, &p).map(|s| (s, p))
                })
                .collect(),
            Value::String(_) => self
                .string_value(value, path)
                .map(|s| vec![(s, path.to_owned())])
                .unwrap_or_default(),
            other => {
                self.problem(
                    path,
                    format!("expected a list of strings, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    /// A duration such as `10s`, `8s`, `397d` (grammar in [`crate::duration`]); after a
    /// problem, the neutral `0s`.
    pub fn duration(&mut self, name: &str) -> Duration {
        self.duration_within(name, Duration::new(1, Unit::Millis), duration::MAX)
    }

    /// A duration in `min..=max`, for a consumer that cannot use others (a certificate valid
    /// for less than a day); after a problem, the neutral `0s`.
    pub fn duration_within(&mut self, name: &str, min: Duration, max: Duration) -> Duration {
        let neutral = Duration::new(0, Unit::Seconds);
        let Some(var) = self.var(name) else {
            return neutral;
        };
        let Some(s) = self.string_value(&var.value, &var.path) else {
            return neutral;
        };
        match Duration::parse(&s).and_then(|d| d.within(min, max)) {
            Ok(d) => d,
            Err(e) => {
                self.problem(&var.path, e);
                neutral
            }
        }
    }

    /// An IP address.
    pub fn ip(&mut self, name: &str) -> Option<IpAddr> {
        let var = self.var(name)?;
        let s = self.string_value(&var.value, &var.path)?;
        if let Ok(ip) = s.parse() {
            Some(ip)
        } else {
            self.problem(&var.path, format!("`{s}` is not an IP address"));
            None
        }
    }

    /// An absolute path made only of safe characters.
    pub fn path(&mut self, name: &str) -> String {
        let Some(var) = self.var(name) else {
            return String::new();
        };
        let s = self.string_value(&var.value, &var.path).unwrap_or_default();
        match check::abs_path(&s) {
            Ok(()) => s,
            Err(e) => {
                self.problem(&var.path, e);
                String::new()
            }
        }
    }

    /// Extra command-line flags (`<component>_options`), split on white space; a flag naming a
    /// file must name one of the component's own ([`check::flag_paths`]).
    pub fn flags(&mut self, name: &str) -> Vec<String> {
        let own = name.strip_suffix("_options").unwrap_or(name);
        let Some(var) = self.var(name) else {
            return Vec::new();
        };
        let s = self.string_value(&var.value, &var.path).unwrap_or_default();
        let mut out = Vec::new();
        for word in s.split_whitespace() {
            match check::flag(word).and_then(|()| check::flag_paths(word, own)) {
                Ok(()) => out.push(word.to_owned()),
                Err(e) => self.problem(&var.path, e),
            }
        }
        out
    }

    /// One of `choices`.
    pub fn choice(&mut self, name: &str, choices: &[&str]) -> String {
        let Some(var) = self.var(name) else {
            return String::new();
        };
        let s = self.string_value(&var.value, &var.path).unwrap_or_default();
        if choices.contains(&s.as_str()) {
            s
        } else {
            let list = choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            self.problem(&var.path, format!("`{s}` is not one of {list}"));
            choices[0].to_owned()
        }
    }
}

/// A short description of a value for messages: scalars verbatim, others by kind.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::Bool(b) => format!("`{b}`"),
        other => kind(other).to_owned(),
    }
}
