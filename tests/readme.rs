//! The README and the reference docs say what the code does: the parameter reference in
//! docs/profiles.md is the catalogue's, word for word; the README's two commands have the shape
//! `tests/fresh_debian.rs` runs (booted tier); every relative link of the README and of `docs/`
//! names a file that exists.

mod common;

use std::path::Path;

#[test]
fn parameter_table_matches_the_catalogue() {
    let doc = include_str!("../docs/profiles.md");
    let start = doc.find("<!-- params:begin -->\n").expect("begin marker")
        + "<!-- params:begin -->\n".len();
    let end = doc.find("<!-- params:end -->").expect("end marker");
    assert_eq!(
        &doc[start..end],
        infragen::cli::params_reference(),
        "run `infragen params` and paste it into docs/profiles.md"
    );
}

#[test]
fn the_two_commands_are_the_main_job_and_the_test_script() {
    let c = common::readme::two_commands(include_str!("../README.md"));
    assert!(
        c.first.starts_with("cargo run ") && c.first.contains(" -- build"),
        "the first command runs the main job (`infragen build`) through cargo: {:?}",
        c.first
    );
    assert!(
        !c.first.contains("--profile"),
        "the first command builds the built-in default: {:?}",
        c.first
    );
    assert_eq!(c.second, "./test");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("test").is_file(),
        "./test exists"
    );
    assert!(
        c.packages.iter().any(|p| p == "gcc"),
        "Rust's linker: {:?}",
        c.packages
    );
}

/// Every `](relative)` link target of `text`, without its `#fragment`.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .map(|(target, _)| target.split('#').next().unwrap_or("").to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

#[test]
fn relative_links_of_the_readme_and_docs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    files.extend(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    let mut broken = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for link in relative_links(&text) {
            if !f.parent().unwrap().join(&link).exists() {
                broken.push(format!("{}: {link}", f.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
