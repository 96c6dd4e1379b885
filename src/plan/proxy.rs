//! `proxy_env`: Pigsty's environment for package downloads (`http_proxy`, `https_proxy`,
//! `all_proxy`, `no_proxy`), read as a mapping of strings. `net::Proxies` decides what it means
//! for a URL; the plan only checks its shape.

use std::collections::BTreeMap;

use crate::yaml::Value;

use super::read::Reader;
use crate::profile::kind;

/// The parameter.
pub const PARAM: &str = "proxy_env";

/// The host's `proxy_env`, every value a string (numbers and booleans as their text); a
/// problem at the key path for anything else.
pub(super) fn read(r: &mut Reader) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(var) = r.var(PARAM) else {
        return out;
    };
    let map = match &var.value {
        Value::Null => return out,
        Value::Mapping(m) => m.clone(),
        other => {
            r.problem(
                &var.path,
                format!(
                    "expected a mapping of variable names to values, found {}",
                    kind(other)
                ),
            );
            return out;
        }
    };
    for (k, v) in &map {
        let Some(key) = k.as_str() else {
            r.problem(
                &var.path,
                format!("expected variable names as keys, found {}", kind(k)),
            );
            continue;
        };
        let path = crate::keypath::join(&var.path, key);
        if let Some(value) = r.string_value(v, &path) {
            out.insert(key.to_owned(), value);
        }
    }
    out
}
