//! Output directories: `render --out` and `build --out` replace only a directory that is new,
//! empty or marked as infragen's (`.infragen-out`); any other is refused with exit 2 and left
//! exactly as it was, with nothing written beside it.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

/// Runs `infragen <command> --profile single-node --out <out>` (build with its stores under
/// `dir`, so nothing outside the temporary directory is touched).
fn run(command: &str, dir: &Path, out: &Path) -> Output {
    let mut cmd = common::infragen();
    cmd.args([command, "--profile", "single-node", "--out"])
        .arg(out)
        .env_remove("RUST_BACKTRACE");
    if command == "build" {
        cmd.arg("--cache")
            .arg(dir.join("cache"))
            .arg("--pki")
            .arg(dir.join("pki"));
    }
    cmd.output().expect("run infragen")
}

/// Every entry below `dir`, with file contents, for before/after comparisons.
fn snapshot(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.expect("walk");
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("below")
                .display()
                .to_string();
            let data = e
                .file_type()
                .is_file()
                .then(|| fs::read(e.path()).expect("read"));
            (rel, data)
        })
        .collect()
}

fn stderr(o: &Output, dir: &Path) -> String {
    String::from_utf8_lossy(&o.stderr).replace(dir.to_str().expect("utf-8 path"), "{dir}")
}

#[test]
fn a_directory_with_files_infragen_did_not_write_is_refused_and_untouched() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let work = tmp.path().join("work");
    fs::create_dir_all(work.join("notes")).expect("mkdir");
    fs::write(work.join("thesis.tex"), "years of work").expect("write");
    fs::write(work.join("notes/todo"), "finish").expect("write");
    let before = snapshot(tmp.path());
    for command in ["render", "build"] {
        let o = run(command, tmp.path(), &work);
        assert_eq!(o.status.code(), Some(2), "{command}");
        assert_eq!(
            stderr(&o, tmp.path()),
            "error: --out {dir}/work: the directory holds files infragen did not write; nothing was changed\n\
             hint: choose an empty or new directory, or remove it first\n",
            "{command}"
        );
        assert!(o.stdout.is_empty(), "{command}");
        assert_eq!(snapshot(tmp.path()), before, "{command} changed something");
    }
    // A file where the directory should be is refused too.
    let file = tmp.path().join("work/thesis.tex");
    let o = run("render", tmp.path(), &file);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o, tmp.path()),
        "error: --out {dir}/work/thesis.tex: exists and is not a directory; nothing was changed\n\
         hint: choose an empty or new directory\n"
    );
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_marker_that_is_not_infragen_s_does_not_count() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    fs::write(out.join(".infragen-out"), "mine\n").expect("write");
    fs::write(out.join("data"), "keep").expect("write");
    let before = snapshot(tmp.path());
    let o = run("render", tmp.path(), &out);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn empty_new_and_marked_directories_are_written() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    // New (its parent too).
    let nested = tmp.path().join("a/b/out");
    let o = run("render", tmp.path(), &nested);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(nested.join("10.10.10.10").is_dir());
    // Empty.
    fs::create_dir(&out).expect("mkdir");
    let o = run("render", tmp.path(), &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let marker = fs::read_to_string(out.join(".infragen-out")).expect("marker");
    assert!(marker.starts_with("infragen output directory"), "{marker}");
    assert_eq!(marker.lines().count(), 1, "{marker}");
    // Marked, by the run before: replaced whole, including a file added since.
    fs::write(out.join("stale"), "from before").expect("write");
    let before = snapshot(&out);
    let o = run("render", tmp.path(), &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("stale").exists());
    let after = snapshot(&out);
    assert_eq!(after.len() + 1, before.len());
    // Nothing is left beside it (staging or the old tree).
    let mut names: Vec<String> = fs::read_dir(tmp.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "out"]);
}
