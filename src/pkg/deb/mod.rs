//! `.deb` reading: the outer `ar` archive, the `control` fields and the validated entries of the
//! data archive, all in memory.
//!
//! Owns the checks of docs/reliability.md, "Safe extraction", for package bytes: every path,
//! entry type, link target and size is validated here, and a bad entry is an error, never a skip.
//! It does not verify the package's digest against the repository index (`apt` does), does not
//! write files (the layer builder does, and must not follow symlinks while writing) and never
//! runs maintainer scripts. Format: deb(5) <https://manpages.debian.org/bookworm/dpkg-dev/deb.5.en.html>,
//! fields: deb822(5) <https://manpages.debian.org/bookworm/dpkg-dev/deb822.5.en.html>.
//!
//! Split by step: `ar` splits the outer archive and checks its layout, `archive` opens a
//! compressed tar member against the shared size budget, `control` reads the `control` file,
//! `data` validates the data entries and `path` holds the pure path and link-target checks;
//! `identity` is what a package says it is (its control fields, size and sha256), for checking
//! it against what asked for it. The types, errors and [`read`] live here.

mod ar;
mod archive;
mod control;
mod data;
mod identity;
mod path;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;

pub use ar::members;
pub use identity::{identity, Identity};
pub use path::{normalize, symlink_target};

use ar::layout;
use archive::Budget;
use control::read_control;
use data::read_data;

/// Uncompressed size below which the compression ratio is not enforced: small packages of text
/// or zeros legitimately compress far better than 200:1.
pub const RATIO_FLOOR: u64 = 64 << 20;

/// One validated entry of a package's data archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalized relative path: no leading `./` or `/`, no trailing `/`, no `""`, `.` or `..`.
    pub path: String,
    /// What the entry is, with its content or target.
    pub kind: Kind,
    /// Permission bits only, without setuid/setgid/sticky and without group/other write.
    pub mode: u32,
}

/// The kinds of entry a package may ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file and its content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink and its target, verbatim; relative targets stay inside the root.
    Symlink(String),
    /// A hardlink to the normalized path of an earlier regular file.
    Hardlink(String),
}

/// Bounds on what one package may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries in the control or the data archive, the root included.
    pub max_entries: usize,
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Most uncompressed bytes of the control and data archives together.
    pub max_total_bytes: u64,
    /// Longest normalized path or link target, in bytes.
    pub max_path_len: usize,
    /// Largest ratio of uncompressed bytes to the `.deb`'s size, past [`RATIO_FLOOR`].
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 200_000,
            max_file_bytes: 1 << 30,
            max_total_bytes: 4 << 30,
            max_path_len: 4096,
            max_ratio: 200,
        }
    }
}

/// A read package: its control fields and its data entries in archive order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    /// Fields of the `control` file (`Package`, `Version`, `Architecture`, `Depends`, …).
    pub control: BTreeMap<String, String>,
    /// Validated entries of the data archive, the root directory left out.
    pub entries: Vec<Entry>,
}

/// One member of the outer `ar` archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Member name without the GNU trailing `/` or padding.
    pub name: &'a str,
    /// Member content.
    pub data: &'a [u8],
}

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// The bytes do not start with the `ar` magic.
    #[error("not a .deb: missing the `!<arch>` magic")]
    NotAr,
    /// An `ar` header is malformed.
    #[error("ar header at byte {offset}: {reason}")]
    ArHeader {
        /// Offset of the header in the `.deb`.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A member is missing, misplaced, duplicated or unsupported.
    #[error("member `{member}`: {reason}")]
    Member {
        /// Member name.
        member: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A member could not be decompressed or its tar structure is broken.
    #[error("member `{member}`: {what}")]
    Read {
        /// Member name.
        member: String,
        /// What was being done.
        what: &'static str,
        /// The decoder's or tar reader's error.
        #[source]
        source: io::Error,
    },
    /// The `control` file is not a valid deb822 paragraph.
    #[error("`control` in `{member}`{}: {reason}", at_line(*.line))]
    Control {
        /// The control archive's member name.
        member: String,
        /// 1-based line number, when one line is at fault.
        line: Option<usize>,
        /// What is wrong with the line.
        reason: String,
    },
    /// An entry of the control or data archive breaks a rule or a limit.
    #[error("entry `{path}`: {problem}")]
    Entry {
        /// The entry's path as written in the archive (shortened, control characters escaped).
        path: String,
        /// The rule or limit broken.
        problem: Problem,
    },
}

/// `, line N` for messages about one line of a file, nothing otherwise.
fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

/// The rule or limit an entry breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The path is empty.
    #[error("path is empty")]
    Empty,
    /// The path contains a NUL byte.
    #[error("path contains NUL")]
    Nul,
    /// The path is not UTF-8.
    #[error("path is not UTF-8")]
    NotUtf8,
    /// The path is absolute.
    #[error("path is absolute")]
    Absolute,
    /// The path has a `..` component.
    #[error("path escapes the root")]
    Escapes,
    /// The path has an empty or `.` component.
    #[error("path has an empty or `.` component")]
    BadComponent,
    /// The path is longer than the limit.
    #[error("path of {len} bytes is over the limit of {max}")]
    PathTooLong {
        /// Normalized length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A component is longer than `NAME_MAX`.
    #[error("path component of {0} bytes is over the limit of 255")]
    ComponentTooLong(usize),
    /// A component starts with `.wh.`: in an OCI layer it would be a whiteout, deleting files
    /// of the layers below instead of being content.
    #[error("path component `{0}` starts with `.wh.`, an OCI whiteout; packages may not ship it")]
    Whiteout(String),
    /// The root entry is not a directory.
    #[error("the root must be a directory")]
    RootNotDir,
    /// A non-directory path ends with `/`.
    #[error("path ends with `/` but the entry is not a directory")]
    TrailingSlash,
    /// Devices, fifos and unknown types are refused.
    #[error("{0} entries are not allowed")]
    Type(String),
    /// A PAX header describes a sparse file, whose data would be misread.
    #[error("sparse file (PAX key `{0}`) is not supported")]
    Sparse(String),
    /// The path was listed before as something else, or is not a directory listed twice.
    #[error("path listed twice")]
    Duplicate,
    /// An ancestor was listed as something other than a directory.
    #[error("parent `{0}` is not a directory")]
    ParentNotDir(String),
    /// A link target is empty, not UTF-8, contains NUL or is too long.
    #[error("link target `{target}`: {reason}")]
    BadTarget {
        /// The target as written.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A symlink target climbs above the root.
    #[error("symlink target `{0}` escapes the root")]
    SymlinkEscapes(String),
    /// A hardlink target is not an earlier entry.
    #[error("hardlink target `{0}` is not an earlier entry")]
    HardlinkMissing(String),
    /// A hardlink target is not a regular file.
    #[error("hardlink target `{0}` is not a regular file")]
    HardlinkNotFile(String),
    /// More entries than [`Limits::max_entries`].
    #[error("more than {0} entries")]
    TooManyEntries(usize),
    /// A file larger than [`Limits::max_file_bytes`].
    #[error("file of {size} bytes is over the limit of {max}")]
    FileTooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The archives expand past [`Limits::max_total_bytes`].
    #[error("uncompressed size would pass the limit of {0} bytes")]
    TotalTooLarge(u64),
    /// The archives expand past [`Limits::max_ratio`] times the package size.
    #[error(
        "uncompressed size would reach {total} bytes, over {ratio} times the {deb}-byte package"
    )]
    Ratio {
        /// Uncompressed bytes so far, this entry included.
        total: u64,
        /// The limit.
        ratio: u64,
        /// Size of the `.deb`.
        deb: u64,
    },
    /// The header or data could not be read.
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// Reads and validates a `.deb`: layout, control fields, then every data entry.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Deb, DebError> {
    let members = members(bytes)?;
    let (control, data) = layout(&members)?;
    let budget = Budget {
        used: Cell::new(0),
        limits,
        deb: bytes.len() as u64,
    };
    let control = read_control(control, &budget)?;
    let entries = read_data(data, &budget)?;
    Ok(Deb { control, entries })
}

/// An entry-level error with the entry's path as written.
fn entry_error(raw: &[u8], problem: Problem) -> DebError {
    DebError::Entry {
        path: show(raw),
        problem,
    }
}

/// A raw path fit for a message: lossy UTF-8, control characters escaped, at most 300 bytes.
fn show(raw: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], raw.len()),
        None => text,
    }
}
