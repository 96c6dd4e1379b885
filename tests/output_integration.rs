//! What the commands print, the parts that need a real build from Debian packages (integration
//! tier): `build --json` to the end checked against the documented schema
//! (docs/json-schema.json), and progress drawn on a pseudo-terminal (util-linux `script`) but
//! never into a pipe. The fast parts: `tests/output.rs`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::schema::{check_lines, documented};
use serde_json::Value;

const FILE: &str = "tests/output_integration.rs";

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// The arguments of a single-node build into `dir` (its own output, PKI and lock copy).
fn build_args(dir: &Path) -> Vec<String> {
    let d = dir.display();
    vec![
        "build".into(),
        "--profile".into(),
        "single-node".into(),
        "--out".into(),
        format!("{d}/out"),
        "--lock".into(),
        common::lock().display().to_string(),
        "--pki".into(),
        format!("{d}/pki"),
    ]
}

/// `build --json` to the end: every line as documented, an image event per image of the
/// result, a bundle event per host.
#[test]
fn build_json_matches_the_schema() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    let tmp = tempfile::tempdir().unwrap();
    let mut args = build_args(tmp.path());
    args.push("--json".into());
    let o = common::infragen().args(&args).output().unwrap();
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = check_lines(&documented(), &out);
    let r = lines.last().unwrap();
    let images: Vec<&Value> = lines.iter().filter(|l| l["event"] == "image").collect();
    assert_eq!(images.len(), r["images"].as_array().unwrap().len());
    assert!(!images.is_empty());
    let bundles: Vec<&Value> = lines.iter().filter(|l| l["event"] == "bundle").collect();
    assert_eq!(bundles.len(), 1);
    assert_eq!(bundles[0]["generation"], r["generations"]["10.10.10.10"]);
    let m: Value = serde_json::from_slice(
        &fs::read(tmp.path().join("out/10.10.10.10/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["generation"], bundles[0]["generation"]);
}

/// Progress is drawn on a pseudo-terminal (escape sequences, carriage returns, the phase
/// names), and a piped run of the same build writes neither escape codes nor `\r` to stdout or
/// stderr.
#[test]
fn progress_appears_on_a_terminal_and_not_in_a_pipe() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    common::tier::require(
        "tests/output_integration.rs::progress_appears_on_a_terminal_and_not_in_a_pipe",
        &[("script", "util-linux")],
    );
    let tmp = tempfile::tempdir().unwrap();
    let args = build_args(tmp.path());
    let piped = common::infragen().args(&args).output().unwrap();
    assert_eq!(piped.status.code(), Some(0));
    for (name, bytes) in [("stdout", &piped.stdout), ("stderr", &piped.stderr)] {
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&b'\r'),
            "piped {name} has escape codes or \\r:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert!(stdout(&piped).contains("built "));
    // The same build on a terminal: `script` runs it on a pseudo-terminal and copies what the
    // terminal received to its own stdout.
    fs::remove_dir_all(tmp.path().join("out")).unwrap();
    let cache_home = common::test_cache_home();
    let line = std::iter::once(common::bin().to_owned())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let tty = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("XDG_CACHE_HOME", &cache_home)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&tty.stdout);
    assert_eq!(tty.status.code(), Some(0), "{text}");
    assert!(
        text.contains('\u{1b}') && text.contains('\r'),
        "no drawing on the terminal:\n{text:?}"
    );
    // Phases drawn: a short one may end before the next frame (10 per second), not all.
    let drawn: Vec<&str> = ["render", "pki", "layers", "images", "bundle", "write"]
        .into_iter()
        .filter(|p| text.contains(p))
        .collect();
    assert!(!drawn.is_empty(), "no phase on the terminal:\n{text:?}");
    // The result lines are there too, once the bars are gone.
    assert!(text.contains("built "), "{text:?}");
}
