//! `--address-map FROM=TO`: moves a profile's hosts to other addresses (`10.10.10.` →
//! `127.0.10.`), the way Pigsty's `configure` rewrites `10.10.10.10`.
//!
//! Addresses are mapped as values, after parsing: a mapping key or a string value is rewritten
//! only where an IPv4 address stands as a whole token (the whole value, or delimited by
//! characters that cannot belong to an address or a word: `http://10.10.10.10:3000/`,
//! `10.10.10.10 i.pigsty`). Comments are gone by then, and other text (a password that contains
//! the prefix, `110.10.10.5`, `10.10.10.x`) is left alone. A rule maps whole octets.

use std::net::Ipv4Addr;

use crate::yaml::Value;

/// One rule: the leading octets of matching addresses and what replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    from: Vec<u8>,
    to: Vec<u8>,
}

impl Rule {
    /// Parses `FROM=TO`: each side a full IPv4 address, or leading octets ending in `.`
    /// (`10.10.10.`), both with the same number of octets.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not FROM=TO with FROM and TO the same leading octets of IPv4 addresses (e.g. `10.10.10.=127.0.10.`)")
        };
        let (from, to) = s.split_once('=').ok_or_else(bad)?;
        let (from, to) = (octets(from).ok_or_else(bad)?, octets(to).ok_or_else(bad)?);
        if from.len() != to.len() {
            return Err(bad());
        }
        Ok(Self { from, to })
    }

    fn apply(&self, ip: Ipv4Addr) -> Option<Ipv4Addr> {
        let mut o = ip.octets();
        if o.starts_with(&self.from) {
            o[..self.to.len()].copy_from_slice(&self.to);
            Some(Ipv4Addr::from(o))
        } else {
            None
        }
    }
}

/// `10.10.10.` → `[10, 10, 10]`, `10.10.10.10` → `[10, 10, 10, 10]`.
fn octets(s: &str) -> Option<Vec<u8>> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Some(ip.octets().to_vec());
    }
    let body = s.strip_suffix('.')?;
    let o: Vec<u8> = body
        .split('.')
        .map(|p| {
            if p.is_empty() || p.len() > 3 || !p.chars().all(|c| c.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    (1..=3).contains(&o.len()).then_some(o)
}

/// The rules of one run, applied in order; the first that matches an address wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressMap(pub Vec<Rule>);

impl AddressMap {
    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rewrites every key and string of `value` (at key path `path`) in place; returns the key
    /// paths where two keys of one mapping became the same.
    pub fn apply(&self, value: &mut Value, path: &str) -> Vec<String> {
        let mut clashes = Vec::new();
        if !self.is_empty() {
            self.walk(value, path, &mut clashes);
        }
        clashes
    }

    fn walk(&self, value: &mut Value, path: &str, clashes: &mut Vec<String>) {
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Sequence(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.walk(v, &crate::keypath::index(path, i), clashes);
                }
            }
            Value::Mapping(m) => {
                for (mut k, mut v) in std::mem::take(m) {
                    self.walk(&mut k, path, clashes);
                    let at = match &k {
                        Value::String(s) => crate::keypath::join(path, s),
                        _ => path.to_owned(),
                    };
                    self.walk(&mut v, &at, clashes);
                    if m.insert(k, v).is_some() {
                        clashes.push(at);
                    }
                }
            }
            Value::Tagged(t) => self.walk(&mut t.value, path, clashes),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// `text` with every whole-token address mapped.
    pub fn text(&self, text: &str) -> String {
        // A token is a maximal run of address or word characters; only a run that is an
        // address as a whole is one.
        let word = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(word) {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            let token = &rest[..end];
            let mapped = token
                .parse::<Ipv4Addr>()
                .ok()
                .and_then(|ip| self.0.iter().find_map(|r| r.apply(ip)));
            match mapped {
                Some(ip) => out.push_str(&ip.to_string()),
                None => out.push_str(token),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// The rules as given, for the profile digest.
    pub fn describe(&self) -> String {
        let side = |o: &[u8]| {
            let s: Vec<String> = o.iter().map(u8::to_string).collect();
            if o.len() == 4 {
                s.join(".")
            } else {
                s.join(".") + "."
            }
        };
        self.0
            .iter()
            .map(|r| format!("address-map {}={}\n", side(&r.from), side(&r.to)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rules: &[&str]) -> AddressMap {
        AddressMap(rules.iter().map(|r| Rule::parse(r).unwrap()).collect())
    }

    #[test]
    fn maps_whole_addresses_only() {
        let m = map(&["10.10.10.=127.0.10."]);
        let cases = [
            ("10.10.10.10", "127.0.10.10"),
            ("110.10.10.5", "110.10.10.5"),
            ("10.10.10.5.6", "10.10.10.5.6"),
            ("http://10.10.10.10:3000/x", "http://127.0.10.10:3000/x"),
            ("10.10.10.10 i.pigsty", "127.0.10.10 i.pigsty"),
            ("10.10.10.10,10.10.10.11", "127.0.10.10,127.0.10.11"),
            ("10.10.10.0/24", "127.0.10.0/24"),
            ("10.10.11.10", "10.10.11.10"),
            ("Pigsty10.10.10.10", "Pigsty10.10.10.10"),
            ("10.10.10.pass", "10.10.10.pass"),
            ("pw-10.10.10.10", "pw-10.10.10.10"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(m.text(input), want, "{input:?}");
        }
    }

    #[test]
    fn maps_keys_and_values_after_parsing() {
        let text = "# 10.10.10.10 is the admin node\nall:\n  hosts:\n    10.10.10.10: { note: 110.10.10.5 }\n  vars:\n    admin_ip: 10.10.10.10\n    grafana_admin_password: 10.10.10.secret\n    list: [ 'http://10.10.10.11:80' ]\n";
        let mut v: Value = crate::yaml::from_str(text).unwrap();
        assert!(map(&["10.10.10.=127.0.10."]).apply(&mut v, "").is_empty());
        let want: Value = crate::yaml::from_str(
            "all:\n  hosts:\n    127.0.10.10: { note: 110.10.10.5 }\n  vars:\n    admin_ip: 127.0.10.10\n    grafana_admin_password: 10.10.10.secret\n    list: [ 'http://127.0.10.11:80' ]\n",
        )
        .unwrap();
        assert_eq!(v, want);
    }

    #[test]
    fn keys_that_become_one_are_reported() {
        let mut v: Value =
            crate::yaml::from_str("hosts:\n  10.10.10.10: {}\n  127.0.10.10: {}\n").unwrap();
        let clashes = map(&["10.10.10.=127.0.10."]).apply(&mut v, "all");
        assert_eq!(clashes, [r#"all.hosts."127.0.10.10""#]);
    }

    #[test]
    fn full_address_rules_and_rule_syntax() {
        let m = map(&["10.10.10.10=127.0.0.1"]);
        assert_eq!(m.text("10.10.10.10 10.10.10.100"), "127.0.0.1 10.10.10.100");
        for bad in [
            "10.10.10=127.0.10.",
            "10.10.=127.0.10.",
            "a=b",
            "10.10.10.",
            "300.1.=1.1.",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            map(&["10.10.10.=127.0.10.", "10.10.10.10=1.2.3.4"]).describe(),
            "address-map 10.10.10.=127.0.10.\naddress-map 10.10.10.10=1.2.3.4\n"
        );
    }
}
