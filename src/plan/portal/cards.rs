//! Home-page service cards (`infra_services`, `infra_extra_services`): each needs a `name` and
//! a `url` that is a path or an http(s) URL; a bad card is reported and left out.

use super::Card;
use crate::keypath;
use crate::plan::read::Reader;
use crate::profile::kind;

pub(super) fn cards(r: &mut Reader, name: &str) -> Vec<Card> {
    let Some(var) = r.var(name) else {
        return Vec::new();
    };
    let Some(items) = var.value.as_sequence() else {
        if !var.value.is_null() {
            r.problem(
                &var.path,
                format!(
                    "expected a list of service cards, found {}",
                    kind(&var.value)
                ),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = keypath::index(&var.path, i);
        let Some(m) = item.as_mapping() else {
            r.problem(
                &path,
                format!(
                    "expected a mapping with `name` and `url`, found {}",
                    kind(item)
                ),
            );
            continue;
        };
        let mut field = |key: &str| -> String {
            m.get(key)
                .and_then(|v| r.string_value(v, &keypath::join(&path, key)))
                .unwrap_or_default()
        };
        let card = Card {
            name: field("name"),
            url: field("url"),
            desc: field("desc"),
            icon: field("icon"),
        };
        if card.name.is_empty() || card.url.is_empty() {
            r.problem(&path, "a service card needs `name` and `url`");
            continue;
        }
        let scheme_ok = ["/", "http://", "https://"]
            .iter()
            .any(|p| card.url.starts_with(p));
        if !scheme_ok || card.url.chars().any(char::is_whitespace) {
            let url = card.url.clone();
            r.problem(
                &keypath::join(&path, "url"),
                format!("`{url}` is not a link (a path or an http(s) URL)"),
            );
            continue;
        }
        out.push(card);
    }
    out
}
