//! The README's two commands, read from README.md itself: the first fenced `sh` block under the
//! heading `## Two commands`, one command a line (a trailing `# comment` is dropped), and the
//! packages its prose says Rust's linker needs (the first `` `apt-get install …` `` span of the
//! section). `tests/readme.rs` checks their shape; `tests/fresh_debian.rs` runs them.

/// The heading the commands stand under.
pub const HEADING: &str = "## Two commands";

/// What the README tells a newcomer to run.
#[derive(Debug)]
pub struct TwoCommands {
    /// Debian packages to install before Rust's toolchain works (its C linker).
    pub packages: Vec<String>,
    /// The main job on the built-in default.
    pub first: String,
    /// The test command.
    pub second: String,
}

/// Reads the two commands from the README's text; panics naming what is missing.
pub fn two_commands(readme: &str) -> TwoCommands {
    let start = readme
        .lines()
        .position(|l| l.trim_end() == HEADING)
        .unwrap_or_else(|| panic!("README.md: no `{HEADING}` heading"));
    let section: Vec<&str> = readme
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    let fence = section
        .iter()
        .position(|l| l.trim_end() == "```sh")
        .unwrap_or_else(|| panic!("README.md: no ```sh block under `{HEADING}`"));
    let commands: Vec<String> = section[fence + 1..]
        .iter()
        .take_while(|l| l.trim_end() != "```")
        .map(|l| l.split_once(" #").map_or(*l, |(c, _)| c).trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let [first, second] = <[String; 2]>::try_from(commands).unwrap_or_else(|c| {
        panic!("README.md: the block under `{HEADING}` must hold two commands, it holds {c:?}")
    });
    let prose = section[..fence].join(" ");
    let packages = prose
        .split_once("`apt-get install ")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map_or_else(
            || panic!("README.md: no `apt-get install …` for Rust's linker before the commands"),
            |(list, _)| list.split_whitespace().map(str::to_owned).collect(),
        );
    TwoCommands {
        packages,
        first,
        second,
    }
}
