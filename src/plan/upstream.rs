//! `infragen_upstream_images`: which components come from their upstream image, read once per
//! infra host and required to be the same on all of them (an image is shared by every host).

use std::collections::BTreeMap;

use crate::yaml::Value;

use crate::plan::Component;
use crate::profile::kind;
use crate::upstream::{refused, Upstream, PARAM};

use super::read::Reader;

/// The components the host's variables take from an upstream image; problems at each key.
pub(super) fn read(r: &mut Reader) -> BTreeMap<Component, Upstream> {
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
                    "expected a mapping of component to `name:tag`, found {}",
                    kind(other)
                ),
            );
            return out;
        }
    };
    let recipes = crate::image::recipes().expect("embedded recipes parse");
    for (k, v) in &map {
        let Some(key) = k.as_str() else {
            r.problem(
                &var.path,
                format!("expected component names as keys, found {}", kind(k)),
            );
            continue;
        };
        let path = crate::keypath::join(&var.path, key);
        let Some(c) = Component::ALL.into_iter().find(|c| c.name() == key) else {
            r.problem(
                &path,
                format!(
                    "`{key}` is not a component; one of {} can come from its upstream image",
                    crate::upstream::choosable()
                ),
            );
            continue;
        };
        if let Some(why) = refused(c, &recipes[&c]) {
            r.problem(&path, why);
            continue;
        }
        let Some(s) = r.string_value(v, &path) else {
            continue;
        };
        match Upstream::parse(&s) {
            Ok(u) => {
                out.insert(c, u);
            }
            Err(e) => r.problem(&path, e),
        }
    }
    out
}
