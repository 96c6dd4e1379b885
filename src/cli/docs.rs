//! Shell completions and man pages, generated from the clap definitions of [`super::Cli`].
//!
//! What the commands do lives in their clap attributes; this module only hands that definition
//! to the clap project's own generators (`clap_complete`, `clap_mangen`) and writes the result.
//! It owns no help text of its own. Output is deterministic: the man pages carry no date.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::Command;
use clap_complete::Shell;
use clap_mangen::Man;

/// Prints `shell`'s completion script for `cmd` to stdout.
pub(super) fn completions(mut cmd: Command, shell: Shell) -> i32 {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    emit(&script)
}

/// Prints the main man page to stdout, or with `out` writes it and one page per subcommand
/// (`infragen-build.1`, `infragen-key-generate.1`, …) into that directory.
pub(super) fn man(cmd: Command, out: Option<&Path>) -> i32 {
    // As clap_mangen's own `generate_to`: `help` is clap's, not a command to document.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let result = match out {
        None => render(&cmd).map(|page| emit(&page)),
        Some(dir) => write_pages(&cmd, dir).map(|()| 0),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        1
    })
}

/// One command's page. Its `.TH` line is written here: clap_mangen writes an empty date as
/// nothing at all, which moves the source and manual into the date's place. The date is left
/// empty (`""`) so that the same binary always writes the same bytes; the title is upper case,
/// as man-pages(7) asks.
fn render(cmd: &Command) -> anyhow::Result<Vec<u8>> {
    let title = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_uppercase();
    let th = format!(
        ".TH {title} 1 \"\" \"infragen {}\" \"infragen manual\"",
        env!("CARGO_PKG_VERSION")
    );
    let mut page = Vec::new();
    Man::new(cmd.clone())
        .render(&mut page)
        .context("rendering the man page")?;
    let page = String::from_utf8(page).context("rendering the man page")?;
    let lines: Vec<&str> = page.lines().collect();
    let mut out = String::with_capacity(page.len());
    for (i, line) in lines.iter().enumerate() {
        let blank = |j: Option<usize>| j.and_then(|j| lines.get(j)).is_some_and(|l| l.is_empty());
        if line.starts_with(".TH ") {
            out.push_str(&th);
        } else if *line == ".br" && (blank(i.checked_sub(1)) || blank(Some(i + 1))) {
            // A blank line already breaks the line (and adds space); a `.br` beside it is one
            // that mandoc's lint reports.
            continue;
        } else {
            out.push_str(&ascii(line));
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// `line` with every non-ASCII character (`…` in the help text) written as groff's `\[uXXXX]`:
/// troff reads bytes, so UTF-8 reaches it intact only through `preconv`, which `man` runs and
/// `groff` without `-k` does not; the escape reads the same everywhere (groff, mandoc).
fn ascii(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\[u{:04X}]", u32::from(c))
            }
        })
        .collect()
}

/// Writes `cmd`'s page and every (non-hidden) subcommand's, depth first, into `dir` (created
/// if missing; each page written beside its name and renamed over it).
fn write_pages(cmd: &Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let mut stack = vec![cmd];
    while let Some(c) = stack.pop() {
        stack.extend(c.get_subcommands().filter(|s| !s.is_hide_set()));
        let name = format!("{}.1", c.get_display_name().unwrap_or_else(|| c.get_name()));
        let path = dir.join(&name);
        let page = render(c).with_context(|| format!("`{name}`"))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a file in `{}`", dir.display()))?;
        tmp.write_all(&page)
            .with_context(|| format!("writing `{}`", path.display()))?;
        set_readable(tmp.as_file(), &path)?;
        tmp.persist(&path)
            .with_context(|| format!("renaming into `{}`", path.display()))?;
    }
    Ok(())
}

/// A man page is for everyone to read (0644), not private like the temporary file it started as.
fn set_readable(file: &std::fs::File, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of `{}`", path.display()))
}

/// Writes `bytes` to stdout; 0, or 1 with the error printed (a closed pipe included: the
/// reader wanted less, and the exit code says the output is incomplete).
fn emit(bytes: &[u8]) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_ascii_becomes_groff_escapes() {
        assert_eq!(super::ascii("a\\-b …"), "a\\-b \\[u2026]");
        assert_eq!(super::ascii("age1… é"), "age1\\[u2026] \\[u00E9]");
    }
}
