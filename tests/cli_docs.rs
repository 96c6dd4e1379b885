//! `infragen completions SHELL` and `infragen man [--out DIR]`: what they print is accepted by
//! the programs that read it and names every command.
//!
//! The commands are taken from `infragen --help` (and `infragen <command> --help` for nested
//! ones), so a command added later is checked without this file changing.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `infragen args…`; panics with both streams unless it succeeded with nothing on stderr.
fn infragen(args: &[&str]) -> Vec<u8> {
    let out = common::infragen()
        .args(args)
        .output()
        .expect("run infragen");
    ok(&out, &format!("infragen {}", args.join(" ")));
    out.stdout
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program args…` with `input` on stdin.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The names under `Commands:` in `infragen <prefix…> --help`, clap's `help` excluded.
fn commands_of(prefix: &[&str]) -> Vec<String> {
    let mut args = prefix.to_vec();
    args.push("--help");
    let help = String::from_utf8(infragen(&args)).unwrap();
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path, top level first: `["build"]`, …, `["key", "generate"]`, ….
fn command_paths() -> Vec<Vec<String>> {
    let top = commands_of(&[]);
    for known in [
        "check",
        "render",
        "build",
        "activate",
        "push",
        "completions",
        "man",
    ] {
        assert!(
            top.iter().any(|c| c == known),
            "`{known}` missing from `infragen --help`: {top:?}"
        );
    }
    let mut paths: Vec<Vec<String>> = top.iter().map(|c| vec![c.clone()]).collect();
    for c in &top {
        for sub in commands_of(&[c]) {
            paths.push(vec![c.clone(), sub]);
        }
    }
    assert!(paths.contains(&vec!["key".into(), "generate".into()]));
    paths
}

#[test]
fn the_bash_completion_script_parses_and_completes_every_command() {
    let script = infragen(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("infragen.bash");
    fs::write(&file, &script).unwrap();

    let syntax = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    ok(&syntax, "bash -n");

    // Load the script as bash-completion would and ask it for the first word: every
    // top-level command must be offered.
    let complete = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"; COMP_WORDS=(infragen ""); COMP_CWORD=1; COMP_LINE="infragen "; COMP_POINT=9
               _infragen infragen "" infragen; printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&file)
        .output()
        .unwrap();
    ok(&complete, "completing `infragen `");
    let offered = String::from_utf8(complete.stdout).unwrap();
    let offered: Vec<&str> = offered.lines().collect();
    for path in command_paths().iter().filter(|p| p.len() == 1) {
        assert!(
            offered.contains(&path[0].as_str()),
            "`{}` not offered: {offered:?}",
            path[0]
        );
    }
}

#[test]
fn every_shell_gets_a_script_naming_every_command() {
    let paths = command_paths();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = String::from_utf8(infragen(&["completions", shell])).unwrap();
        for path in &paths {
            let name = path.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "{shell}: `{}` not in the script",
                path.join(" ")
            );
        }
        assert_eq!(
            script.as_bytes(),
            infragen(&["completions", shell]),
            "{shell}: the script differs between runs"
        );
    }
    let bad = common::infragen()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// `page` through groff with every warning on: the text, after nothing on stderr.
fn groff(page: &[u8], name: &str) -> String {
    // -P-cbou: plain text, without grotty's overstriking for bold and underline.
    let out = pipe("groff", &["-man", "-Tutf8", "-ww", "-P-cbou"], page);
    ok(&out, &format!("groff -man -Tutf8 -ww {name}"));
    // groff -Tutf8 prints `\-` as U+2212 and may hyphenate with U+2010.
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(['\u{2212}', '\u{2010}'], "-")
}

/// `mandoc -T lint -W warning` when it is installed (it is not part of the CI image): no
/// warning but the one the empty date causes, which is deliberate (a date would make the
/// output depend on when it was made).
fn mandoc_lint(page: &[u8], name: &str) {
    if installed("mandoc") {
        let out = pipe("mandoc", &["-T", "lint", "-W", "warning"], page);
        let report = String::from_utf8_lossy(&out.stdout);
        let rest: Vec<&str> = report
            .lines()
            .filter(|l| !l.ends_with(r#"WARNING: missing date, using "": TH"#))
            .collect();
        assert!(
            rest.is_empty() && out.stderr.is_empty(),
            "mandoc -T lint {name}:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_man_page_is_clean_roff_naming_every_command() {
    let page = infragen(&["man"]);
    assert!(
        page.starts_with(b".ie \\n(.g .ds Aq \\(aq\n") || page.starts_with(b".TH INFRAGEN 1 "),
        "not a man page:\n{}",
        String::from_utf8_lossy(&page[..page.len().min(200)])
    );
    let text = groff(&page, "infragen.1");
    mandoc_lint(&page, "infragen.1");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "VERSION",
    ] {
        assert!(
            text.lines().any(|l| l == section),
            "no {section} section:\n{text}"
        );
    }
    for path in command_paths().iter().filter(|p| p.len() == 1) {
        let reference = format!("infragen-{}(1)", path[0]);
        assert!(text.contains(&reference), "`{reference}` not in:\n{text}");
    }
    assert_eq!(page, infragen(&["man"]), "the page differs between runs");

    if installed("man") {
        let out = Command::new("sh")
            .args(["-c", "infragen=\"$1\"; \"$infragen\" man | man -l -"])
            .arg("sh")
            .arg(common::bin())
            .env("XDG_CACHE_HOME", common::test_cache_home())
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        ok(&out, "infragen man | man -l -");
        assert!(String::from_utf8_lossy(&out.stdout).contains("infragen"));
    }
}

fn read_dir(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            (
                e.file_name().into_string().unwrap(),
                (fs::read(e.path()).unwrap(), mode),
            )
        })
        .collect()
}

#[test]
fn man_out_writes_one_clean_page_per_command_the_same_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let out = dir.to_str().unwrap();
    assert!(
        infragen(&["man", "--out", out]).is_empty(),
        "--out prints nothing"
    );
    let first = read_dir(&dir);

    let mut expected: Vec<String> = command_paths()
        .iter()
        .map(|p| format!("infragen-{}.1", p.join("-")))
        .collect();
    expected.push("infragen.1".into());
    expected.sort();
    assert_eq!(first.keys().cloned().collect::<Vec<_>>(), expected);

    for (name, (page, mode)) in &first {
        assert_eq!(*mode, 0o644, "{name}: mode {mode:o}");
        let title = name.trim_end_matches(".1").to_uppercase();
        let th = format!(
            "\n.TH {title} 1 \"\" \"infragen {}\" \"infragen manual\"\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            String::from_utf8_lossy(page).contains(&th),
            "{name}: no `{th}` (a date or another title)"
        );
        // Words as groff sets them, whatever spaces justification put between them.
        let text = groff(page, name)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        mandoc_lint(page, name);
        let command = name.trim_end_matches(".1").replacen('-', " ", usize::MAX);
        assert!(
            text.contains(&command),
            "{name}: `{command}` not in:\n{text}"
        );
    }
    assert_eq!(
        first["infragen.1"].0,
        infragen(&["man"]),
        "--out's infragen.1 is what `infragen man` prints"
    );

    // A second run over the same directory, and one into a new directory: the same bytes.
    infragen(&["man", "--out", out]);
    assert_eq!(read_dir(&dir), first, "a second run changed the pages");
    let other = tmp.path().join("again");
    infragen(&["man", "--out", other.to_str().unwrap()]);
    assert_eq!(read_dir(&other), first);
}
