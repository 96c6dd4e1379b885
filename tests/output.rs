//! What the commands print: `--json` lines checked against the documented schema
//! (docs/json-schema.json), `-q` printing nothing on success, and progress drawn on a terminal
//! but never into a pipe.
//!
//! Fast tier: `check`, `status`, `generations`, `verify` and a failing `build` under `--json`,
//! `-q`, and the schema checker's own negative canary. Integration tier (a real build from
//! Debian packages): `build --json` to the end, and `build` on a pseudo-terminal (util-linux
//! `script`) against the same build piped.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::schema::{check, check_lines, documented};
use serde_json::{json, Value};

fn infragen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infragen"))
        .args(args)
        .env_remove("INFRAGEN_FAILPOINT")
        .output()
        .expect("run infragen")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// The schema checker can fail: it refuses an unknown field, a missing one, a wrong type, an
/// unknown event and an unknown phase (a checker that accepts everything proves nothing).
#[test]
fn the_schema_checker_refuses_what_the_schema_does_not_allow() {
    let s = documented();
    let good = json!({"event": "done", "phase": "download", "name": "libc6", "bytes": 3});
    check(&s, &s, &good).expect("a valid event");
    for (bad, why) in [
        (
            json!({"event": "done", "phase": "download", "name": "libc6", "bytes": 3, "size": 1}),
            "unknown field",
        ),
        (
            json!({"event": "done", "phase": "download", "bytes": 3}),
            "missing name",
        ),
        (
            json!({"event": "done", "phase": "download", "name": "x", "bytes": "3"}),
            "bytes as a string",
        ),
        (
            json!({"event": "finished", "phase": "download"}),
            "unknown event",
        ),
        (
            json!({"event": "phase", "phase": "compile"}),
            "unknown phase",
        ),
        (
            json!({"event": "result", "command": "check", "ok": true, "exit": 0}),
            "a check result without its data",
        ),
        (
            json!({"event": "result", "command": "build", "ok": false, "exit": 1}),
            "a failure without its error",
        ),
    ] {
        assert!(check(&s, &s, &bad).is_err(), "accepted {why}: {bad}");
    }
}

#[test]
fn check_json_is_one_result_with_every_host() {
    let o = infragen(&["check", "--json", "--profile", "three-node"]);
    assert_eq!(o.status.code(), Some(0));
    let lines = check_lines(&documented(), &stdout(&o));
    assert_eq!(lines.len(), 1, "check has no events: {lines:?}");
    let r = &lines[0];
    assert_eq!(r["ok"], true);
    assert_eq!(r["source"], "builtin:three-node");
    assert_eq!(r["hosts"].as_array().map(Vec::len), Some(3));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn errors_under_json_end_with_a_result_naming_them_and_exit_non_zero() {
    let s = documented();
    let o = infragen(&["check", "--json", "--profile", "no-such-profile"]);
    assert_eq!(o.status.code(), Some(2));
    let r = check_lines(&s, &stdout(&o)).pop().unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["exit"], 2);
    assert!(
        r["error"].as_str().unwrap().contains("`no-such-profile`"),
        "{r}"
    );
    // A usage error, and --json on a command without it, still end with a result.
    let o = infragen(&["check", "--json", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let r = check_lines(&s, &stdout(&o)).pop().unwrap();
    assert!(
        r["error"].as_str().unwrap().contains("--no-such-flag"),
        "{r}"
    );
    let o = infragen(&["params", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let r = check_lines(&s, &stdout(&o)).pop().unwrap();
    assert_eq!(r["command"], "params");
    // verify of a directory that is no bundle.
    let dir = tempfile::tempdir().unwrap();
    let o = infragen(&["verify", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let r = check_lines(&s, &stdout(&o)).pop().unwrap();
    assert_eq!(r["command"], "verify");
    assert_eq!(r["ok"], false);
}

/// A build that fails once its phases have begun (no lock file): the phase events, then the
/// failure, each line as documented; nothing else on stdout.
#[test]
fn a_failing_build_reports_its_phases_then_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_str().unwrap();
    let o = infragen(&[
        "build",
        "--json",
        "--out",
        &format!("{t}/out"),
        "--lock",
        &format!("{t}/missing.lock"),
        "--pki",
        &format!("{t}/pki"),
        "--cache",
        &format!("{t}/cache"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let lines = check_lines(&documented(), &stdout(&o));
    let phases: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "phase")
        .map(|l| l["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["render", "pki", "seal"]);
    let r = lines.last().unwrap();
    assert_eq!(r["command"], "build");
    assert!(r["error"].as_str().unwrap().contains("missing.lock"), "{r}");
    assert!(!Path::new(&format!("{t}/out")).exists());
}

#[test]
fn status_and_generations_of_a_host_without_generations() {
    let s = documented();
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let o = infragen(&["status", "--json", "--root", r]);
    assert_eq!(o.status.code(), Some(0));
    let got = check_lines(&s, &stdout(&o)).pop().unwrap();
    assert_eq!(
        got,
        json!({"event": "result", "command": "status", "ok": true, "exit": 0,
               "generation": null, "interrupted": false, "units": []})
    );
    let o = infragen(&["generations", "--json", "--root", r]);
    let got = check_lines(&s, &stdout(&o)).pop().unwrap();
    assert_eq!(got["generations"], json!([]));
}

/// `-q`: nothing at all on success, the error alone on failure.
#[test]
fn quiet_prints_nothing_on_success_and_the_error_on_failure() {
    let root = tempfile::tempdir().unwrap();
    for args in [
        vec!["-q", "check", "--profile", "three-node"],
        vec!["check", "--quiet"],
        vec!["-q", "status", "--root", root.path().to_str().unwrap()],
    ] {
        let o = infragen(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
        assert!(
            o.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = infragen(&["-q", "check", "--profile", "no-such-profile"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: profile `no-such-profile`"));
    // -q and --json exclude each other: --json's stdout is for programs already.
    assert_eq!(infragen(&["-q", "--json", "check"]).status.code(), Some(2));
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
        common::root().join("infragen.lock").display().to_string(),
        "--pki".into(),
        format!("{d}/pki"),
    ]
}

/// `build --json` to the end: every line as documented, an image event per image of the
/// result, a bundle event per host.
#[test]
fn build_json_matches_the_schema() {
    if !common::tier::part(
        common::tier::Tier::Integration,
        "tests/output.rs::build_json_matches_the_schema: a build from Debian packages",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut args = build_args(tmp.path());
    args.push("--json".into());
    let o = Command::new(env!("CARGO_BIN_EXE_infragen"))
        .args(&args)
        .output()
        .unwrap();
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
    if !common::tier::part(
        common::tier::Tier::Integration,
        "tests/output.rs::progress_appears_on_a_terminal_and_not_in_a_pipe: a build from Debian packages, util-linux `script`",
    ) {
        return;
    }
    common::tier::require(
        "tests/output.rs::progress_appears_on_a_terminal_and_not_in_a_pipe",
        &[("script", "util-linux")],
    );
    let tmp = tempfile::tempdir().unwrap();
    let args = build_args(tmp.path());
    let piped = Command::new(env!("CARGO_BIN_EXE_infragen"))
        .args(&args)
        .output()
        .unwrap();
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
    let line = std::iter::once(env!("CARGO_BIN_EXE_infragen").to_owned())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let tty = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
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

/// `-v`: one plain line per event on stderr (no escape codes), stdout left to the result.
#[test]
fn verbose_prints_one_plain_line_per_event_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_str().unwrap();
    let o = infragen(&[
        "-v",
        "build",
        "--out",
        &format!("{t}/out"),
        "--lock",
        &format!("{t}/missing.lock"),
        "--pki",
        &format!("{t}/pki"),
        "--cache",
        &format!("{t}/cache"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("render\npki\nseal\nerror: "),
        "stderr:\n{err}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
}
