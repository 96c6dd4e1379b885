//! The injection round trip (docs/reliability.md, "Config injection"), as a property: a hostile
//! string put into a free-form profile field is either refused, with an error naming the key,
//! or lands in the rendered files as exactly that value and nothing more: escaped in the portal
//! (no new markup), verbatim in a secret file and nowhere else, one `key = value` line in
//! grafana.ini reading back as the value. Strings are drawn, seeded, from an alphabet of the
//! meta-characters of every output format (HTML, nginx, INI, systemd, YAML, shell).

use std::collections::BTreeMap;

use infragen::yaml::{Mapping, Value};

mod common;

use common::Rng;

const PIECES: &[&str] = &[
    "a",
    "Z",
    "7",
    " ",
    "<",
    ">",
    "&",
    "\"",
    "'",
    "`",
    ";",
    "{",
    "}",
    "$",
    "${admin_ip}",
    "#",
    "%",
    "%n",
    "\\",
    "/",
    "=",
    ":",
    "[",
    "]",
    "\n",
    "\t",
    "\r",
    "é",
    "💥",
    "<script>",
    "include ",
    "\u{202e}",
    "--",
    "*",
    "?",
    "!",
    "|",
    "$(id)",
];

fn hostile(rng: &mut Rng) -> String {
    let n = 1 + rng.below(12);
    // A marker makes each value unique, so "nowhere else" can be checked by search.
    let mut s = format!("q{}", rng.next() % 1_000_000);
    for _ in 0..n {
        s.push_str(PIECES[rng.below(PIECES.len())]);
    }
    s
}

/// The text of HTML with its character references decoded (named ones the portal uses, and
/// numeric ones).
fn html_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        if let Some(c) = decoded {
            out.push(c);
            rest = &rest[end + 1..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The rendered tree of single-node with `all.vars.<key>` set to `value`, or the error.
/// `infra_services` takes one card whose description is the value.
fn render_with(base: &Value, key: &str, value: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut doc = base.clone();
    doc["all"]["vars"][key] = if key == "infra_services" {
        let mut card = Mapping::new();
        for (k, v) in [
            ("name", "Metrics"),
            ("url", "/vmetrics/vmui/"),
            ("icon", "metrics"),
        ] {
            card.insert(Value::from(k), Value::from(v));
        }
        card.insert(Value::from("desc"), Value::from(value));
        Value::Sequence(vec![Value::Mapping(card)])
    } else {
        Value::from(value)
    };
    let text = infragen::yaml::to_string(&doc).unwrap();
    let inventory = infragen::profile::parse("inject.yml", &text).map_err(|e| e.to_string())?;
    let plan = infragen::plan::resolve(&inventory).map_err(|e| e.to_string())?;
    let tree = infragen::render::plan(&plan).map_err(|e| format!("{e:#}"))?;
    Ok(tree
        .iter()
        .map(|(p, e)| (p.clone(), e.data.clone()))
        .collect())
}

fn text<'a>(tree: &'a BTreeMap<String, Vec<u8>>, path: &str) -> &'a str {
    std::str::from_utf8(&tree[path]).unwrap_or_else(|_| panic!("{path}: not UTF-8"))
}

/// Files other than `except` that contain `needle`.
fn found_elsewhere<'a>(
    tree: &'a BTreeMap<String, Vec<u8>>,
    needle: &str,
    except: &str,
) -> Vec<&'a String> {
    tree.iter()
        .filter(|(p, d)| {
            p.as_str() != except && d.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn hostile_strings_are_refused_or_round_trip_exactly() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let base: Value = infragen::yaml::from_str(
        &std::fs::read_to_string(root.join("profiles/single-node.yml")).unwrap(),
    )
    .unwrap();
    let baseline = render_with(&base, "version", "v4.5.0").expect("the baseline renders");
    let portal = "10.10.10.10/nginx/etc/nginx/html/index.html";
    let ini = "10.10.10.10/grafana/etc/grafana/grafana.ini";
    let tags = |t: &str| t.matches('<').count();
    let base_tags = tags(text(&baseline, portal));
    let one_card = render_with(&base, "infra_services", "plain").expect("one card renders");
    let card_tags = tags(text(&one_card, portal));
    let base_lines = text(&baseline, ini).lines().count();

    let mut rng = Rng(0x1e_c7ed_5eed);
    let mut tally: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for _ in 0..60 {
        for key in [
            "version",
            "infra_services",
            "grafana_admin_password",
            "grafana_view_password",
            "grafana_admin_username",
        ] {
            let value = hostile(&mut rng);
            let entry = tally.entry(key).or_default();
            let tree = match render_with(&base, key, &value) {
                Err(e) => {
                    assert!(
                        e.contains(key),
                        "{key} = {value:?}: the error names no key:\n{e}"
                    );
                    entry.1 += 1;
                    continue;
                }
                Ok(t) => t,
            };
            entry.0 += 1;
            match key {
                "version" | "infra_services" => {
                    let page = text(&tree, portal);
                    assert!(
                        html_unescape(page).contains(&value),
                        "{value:?} is not in the portal's text"
                    );
                    let want = if key == "version" {
                        base_tags
                    } else {
                        card_tags
                    };
                    assert_eq!(tags(page), want, "{value:?} added markup to the portal");
                }
                "grafana_admin_password" | "grafana_view_password" => {
                    let file = if key == "grafana_admin_password" {
                        "10.10.10.10/secrets/grafana/admin-password"
                    } else {
                        "10.10.10.10/secrets/grafana/meta-password"
                    };
                    assert_eq!(text(&tree, file), value, "{key} round trip");
                    let leaks = found_elsewhere(&tree, &value, file);
                    assert!(leaks.is_empty(), "{key} {value:?} leaked into {leaks:?}");
                }
                _ => {
                    let conf = text(&tree, ini);
                    assert_eq!(conf.lines().count(), base_lines, "{value:?} added lines");
                    let lines: Vec<&str> = conf
                        .lines()
                        .filter(|l| l.starts_with("admin_user = "))
                        .collect();
                    assert_eq!(lines.len(), 1, "{value:?}");
                    assert_eq!(lines[0].trim_start_matches("admin_user = ").trim(), value);
                }
            }
        }
    }
    eprintln!("accepted, refused: {tally:?}");
    // The property is only tested if both outcomes occur for the free-form fields.
    for key in [
        "infra_services",
        "grafana_admin_password",
        "grafana_view_password",
    ] {
        let (accepted, refused) = tally[key];
        assert!(
            accepted > 0 && refused > 0,
            "{key}: {accepted} accepted, {refused} refused"
        );
    }
}
