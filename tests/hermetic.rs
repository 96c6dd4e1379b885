//! The tests keep off the user's cache: every run of the `infragen` binary goes through
//! `common::infragen()` (or `common::infragen_sh()`), which points `$XDG_CACHE_HOME` at the
//! tests' own directory under `target/tmp`; nothing in the tests names `~/.cache/infragen`.
//! Checked on the sources, and by a build with `$HOME` an empty directory.

mod common;

use std::fs;
use std::path::Path;

/// Every `.rs` file below `tests/`, relative to the repository, with its text.
fn test_sources() -> Vec<(String, String)> {
    let root = common::root();
    let mut out: Vec<(String, String)> = walkdir::WalkDir::new(root.join("tests"))
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            let rel = e.path().strip_prefix(&root).unwrap();
            (
                rel.display().to_string(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    assert!(out.len() > 20, "{} test sources", out.len());
    out.retain(|(_, text)| !text.is_empty());
    out
}

/// What is wrong in one test source: a run of the binary past the helper, the user's cache
/// named, the binary's path handed on without the tests' cache.
fn problems_in(file: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let at = format!("{file}:{}", n + 1);
        if line.contains(concat!("CARGO_BIN_EXE", "_infragen")) && file != "tests/common/mod.rs" {
            problems.push(format!(
                "{at}: runs the binary past `common::infragen()`, with the user's cache"
            ));
        }
        if line.contains(concat!(".cache/", "infragen")) {
            problems.push(format!(
                "{at}: names the user's cache; use `common::test_cache_home()`"
            ));
        }
        // The path handed to another program, which must be given the tests' cache too (or a
        // copy of the binary for a container's root, where it has its own).
        if line.contains(concat!("common::", "bin()")) {
            let near = lines[n.saturating_sub(2)..(n + 4).min(lines.len())].join("\n");
            if !near.contains("test_cache_home") && !near.contains("fs::copy") {
                problems.push(format!(
                    "{at}: hands the binary on without `XDG_CACHE_HOME` = `common::test_cache_home()`"
                ));
            }
        }
    }
    problems
}

#[test]
fn no_test_runs_the_binary_past_the_helper_or_names_the_users_cache() {
    let problems: Vec<String> = test_sources()
        .iter()
        .flat_map(|(file, text)| problems_in(file, text))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check above finds what it looks for.
#[test]
fn the_source_check_finds_each_planted_mistake() {
    let planted = [
        format!(
            "    let o = Command::new(env!(\"{}\")).arg(\"build\");",
            concat!("CARGO_BIN_EXE", "_infragen")
        ),
        format!(
            "    let c = home.join(\"{}\");",
            concat!(".cache/", "infragen")
        ),
        format!(
            "    Command::new(\"sh\")\n        .arg({})\n        .output();",
            concat!("common::", "bin()")
        ),
    ];
    for text in &planted {
        assert_eq!(problems_in("tests/x.rs", text).len(), 1, "{text}");
    }
    let fine = format!(
        "    // {}\n    Command::new(\"sh\")\n        .arg({})\n        .env(\"XDG_CACHE_HOME\", common::test_cache_home());",
        concat!(".cache/", "infragen"),
        concat!("common::", "bin()")
    );
    assert_eq!(problems_in("tests/x.rs", &fine), Vec::<String>::new());
}

fn entries(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .collect()
}

/// A build with no `--cache`, `$HOME` an empty directory and `$XDG_CACHE_HOME` unset by the
/// caller: the packages land in the tests' cache, nothing under `$HOME`.
#[test]
fn a_build_without_cache_option_writes_under_the_tests_cache_not_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    let repo = common::hermetic::repo(&dir.path().join("made"));
    let o = common::infragen()
        .args(["build", "--profile", "single-node", "--out"])
        .arg(dir.path().join("out"))
        .arg("--lock")
        .arg(&repo.lock)
        .arg("--repo")
        .arg(&repo.dir)
        .arg("--pki")
        .arg(dir.path().join("pki"))
        .env("HOME", &home)
        .env("http_proxy", "http://127.0.0.1:9")
        .output()
        .unwrap();
    common::ok(&o, "build");
    assert_eq!(entries(&home), Vec::<String>::new(), "written under $HOME");
    let lock: serde_json::Value = serde_json::from_slice(&fs::read(&repo.lock).unwrap()).unwrap();
    let nginx = lock["images"]["nginx"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "nginx")
        .unwrap();
    let cached = common::test_cache_home()
        .join("infragen/debs")
        .join(format!("{}.deb", nginx["sha256"].as_str().unwrap()));
    assert!(cached.is_file(), "{} is not there", cached.display());
}
