//! Supply chain of infragen itself (docs/reliability.md): every crate in `Cargo.lock` comes from
//! the crates.io registry (no git or path dependencies besides infragen), and its license
//! expression is satisfiable with permissive licenses only. `cargo deny` would do this and the
//! advisory check too, but its advisory database lives on GitHub, which this machine cannot
//! reach; the license and source rules are checked here from `cargo metadata`.

use std::process::Command;

/// Licenses a dependency may be used under.
const ALLOWED: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "0BSD",
    "Unlicense",
    "BSL-1.0",
    "CC0-1.0",
    "Unicode-3.0",
    "CDLA-Permissive-2.0",
];

/// Whether an SPDX license expression can be satisfied with `ALLOWED` licenses: `OR` (also the
/// old `/`) needs one side, `AND` both; `WITH` keeps the exception with its license.
fn satisfiable(expr: &str) -> bool {
    let spaced = expr
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let ok = or(&tokens, &mut at);
    ok && at == tokens.len()
}

fn or(t: &[&str], at: &mut usize) -> bool {
    let mut ok = and(t, at);
    while t.get(*at) == Some(&"OR") {
        *at += 1;
        ok |= and(t, at);
    }
    ok
}

fn and(t: &[&str], at: &mut usize) -> bool {
    let mut ok = atom(t, at);
    while t.get(*at) == Some(&"AND") {
        *at += 1;
        ok &= atom(t, at);
    }
    ok
}

fn atom(t: &[&str], at: &mut usize) -> bool {
    match t.get(*at) {
        Some(&"(") => {
            *at += 1;
            let ok = or(t, at);
            if t.get(*at) == Some(&")") {
                *at += 1;
                ok
            } else {
                false
            }
        }
        Some(id) => {
            *at += 1;
            let mut name = (*id).to_owned();
            if t.get(*at) == Some(&"WITH") {
                name = format!("{name} WITH {}", t.get(*at + 1).unwrap_or(&""));
                *at += 2;
            }
            ALLOWED.contains(&name.as_str())
        }
        None => false,
    }
}

#[test]
fn the_expression_reader_decides_correctly() {
    assert!(satisfiable("MIT OR Apache-2.0"));
    assert!(satisfiable("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(satisfiable("MIT/Apache-2.0"));
    assert!(satisfiable("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
    assert!(satisfiable("Apache-2.0 WITH LLVM-exception"));
    assert!(!satisfiable("GPL-3.0-only"));
    assert!(!satisfiable("MIT AND GPL-2.0-only"));
    assert!(!satisfiable("LGPL-2.1-or-later WITH LLVM-exception"));
    assert!(!satisfiable("(MIT"));
    assert!(!satisfiable(""));
}

#[test]
fn every_dependency_is_from_crates_io_under_a_permissive_license() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let o = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut problems = Vec::new();
    let packages = meta["packages"].as_array().unwrap();
    for p in packages {
        let id = format!(
            "{} {}",
            p["name"].as_str().unwrap(),
            p["version"].as_str().unwrap()
        );
        if p["name"] == "infragen" {
            continue;
        }
        match p["source"].as_str() {
            Some(s) if s.starts_with("registry+") && s.ends_with("crates.io-index") => {}
            other => problems.push(format!("{id}: source {other:?}")),
        }
        match p["license"].as_str() {
            Some(l) if satisfiable(l) => {}
            other => problems.push(format!("{id}: license {other:?}")),
        }
    }
    assert!(packages.len() > 50, "{} packages", packages.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
