//! What the commands print: `--json` lines checked against the documented schema
//! (docs/json-schema.json), `-q` printing nothing on success, and progress drawn on a terminal
//! but never into a pipe.
//!
//! Fast tier: `check`, `status`, `generations`, `verify` and a failing `build` under `--json`,
//! `-q`, `-v`, and the schema checker's own negative canary. The parts that need a real build
//! from Debian packages (`build --json` to the end, progress on a pseudo-terminal against the
//! same build piped) are in `tests/output_integration.rs`.

mod common;

use std::path::Path;
use std::process::Output;

use common::schema::{check, check_lines, documented};
use serde_json::json;

fn infragen(args: &[&str]) -> Output {
    common::infragen()
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
               "generation": null, "interrupted": false, "units": [], "node_files": []})
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
    // stdout holds results only: here the content checks' report, which ran before the failure.
    let out = stdout(&o);
    assert!(
        out.lines().count() == 1 && out.starts_with("content checks: "),
        "{out}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("render\npki\nseal\nerror: "),
        "stderr:\n{err}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
}
