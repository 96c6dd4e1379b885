//! `.deb` reading: the outer `ar` archive, the `control` fields and the validated entries of the
//! data archive, all in memory.
//!
//! Owns the checks of docs/reliability.md, "Safe extraction", for package bytes: every path,
//! entry type, link target and size is validated here, and a bad entry is an error, never a skip.
//! It does not verify the package's digest against the repository index (`apt` does), does not
//! write files (the layer builder does, and must not follow symlinks while writing) and never
//! runs maintainer scripts. Format: deb(5) <https://manpages.debian.org/bookworm/dpkg-dev/deb.5.en.html>,
//! fields: deb822(5) <https://manpages.debian.org/bookworm/dpkg-dev/deb822.5.en.html>.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Uncompressed size below which the compression ratio is not enforced: small packages of text
/// or zeros legitimately compress far better than 200:1.
pub const RATIO_FLOOR: u64 = 64 << 20;
/// Most memory the xz decoder may take; `dpkg-deb`'s presets need a few MiB.
const XZ_MEMLIMIT: u64 = 256 << 20;
/// Longest path component Linux file systems accept (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// Largest `control` file read; real ones are a few KiB.
const CONTROL_MAX: u64 = 1 << 20;

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

/// Splits an `ar` archive into its members (the System V / GNU common format, short names only).
pub fn members(bytes: &[u8]) -> Result<Vec<Member<'_>>, DebError> {
    let mut rest = bytes.strip_prefix(b"!<arch>\n").ok_or(DebError::NotAr)?;
    let mut offset = 8;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let bad = |reason: String| DebError::ArHeader { offset, reason };
        if rest.len() < 60 {
            return Err(bad(format!("truncated header of {} bytes", rest.len())));
        }
        let (header, tail) = rest.split_at(60);
        if &header[58..] != b"`\n" {
            return Err(bad("bad header terminator".into()));
        }
        let name = std::str::from_utf8(&header[..16])
            .unwrap_or("")
            .trim_end_matches(' ');
        let name = name.strip_suffix('/').unwrap_or(name);
        if name.is_empty()
            || name.starts_with('/')
            || name.starts_with("#1/")
            || !name.bytes().all(|b| b.is_ascii_graphic())
        {
            let shown = String::from_utf8_lossy(&header[..16])
                .trim_end()
                .escape_debug()
                .to_string();
            return Err(bad(format!("unsupported member name `{shown}`")));
        }
        let size = std::str::from_utf8(&header[48..58])
            .ok()
            .map(|s| s.trim_end_matches(' '))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| bad(format!("member `{name}`: bad size field")))?;
        let data = tail.get(..size).ok_or_else(|| {
            bad(format!(
                "member `{name}` of {size} bytes runs past the end of the file"
            ))
        })?;
        out.push(Member { name, data });
        // Members are padded to an even size; tolerate a missing pad after the last one.
        let padded = size + (size & 1);
        rest = tail.get(padded..).unwrap_or_default();
        offset += 60 + padded;
    }
    Ok(out)
}

/// Checks the member order dpkg requires and returns the control and data members.
fn layout<'a>(members: &[Member<'a>]) -> Result<(Member<'a>, Member<'a>), DebError> {
    let member = |m: &Member, reason: &str| DebError::Member {
        member: m.name.into(),
        reason: reason.into(),
    };
    let missing = |name: &str| DebError::Member {
        member: name.into(),
        reason: "missing".into(),
    };
    let (first, rest) = members
        .split_first()
        .ok_or_else(|| missing("debian-binary"))?;
    if first.name != "debian-binary" {
        return Err(member(
            first,
            "expected `debian-binary` as the first member",
        ));
    }
    let version = first
        .data
        .strip_suffix(b"\n")
        .and_then(|v| std::str::from_utf8(v).ok());
    if !version.is_some_and(|v| v.starts_with("2.")) {
        let shown = String::from_utf8_lossy(first.data)
            .escape_debug()
            .to_string();
        return Err(member(
            first,
            &format!("unsupported format version `{shown}`"),
        ));
    }
    let (mut control, mut data) = (None, None);
    for m in rest {
        if m.name.starts_with('_') {
            continue; // reserved for local additions; dpkg ignores them too
        }
        let slot = if m.name.starts_with("control.tar") {
            if data.is_some() {
                return Err(member(m, "comes after the data member"));
            }
            &mut control
        } else if m.name.starts_with("data.tar") {
            if control.is_none() {
                return Err(member(m, "comes before the control member"));
            }
            &mut data
        } else {
            return Err(member(m, "unexpected member"));
        };
        if slot.is_some() {
            return Err(member(m, "a second control or data member"));
        }
        *slot = Some(*m);
    }
    Ok((
        control.ok_or_else(|| missing("control.tar"))?,
        data.ok_or_else(|| missing("data.tar"))?,
    ))
}

/// The uncompressed bytes spent so far, shared by the control and data archives.
struct Budget<'l> {
    used: Cell<u64>,
    limits: &'l Limits,
    deb: u64,
}

impl Budget<'_> {
    fn check(&self, total: u64) -> Result<(), Problem> {
        let limits = self.limits;
        if total > limits.max_total_bytes {
            return Err(Problem::TotalTooLarge(limits.max_total_bytes));
        }
        if total > RATIO_FLOOR && total > self.deb.saturating_mul(limits.max_ratio) {
            return Err(Problem::Ratio {
                total,
                ratio: limits.max_ratio,
                deb: self.deb,
            });
        }
        Ok(())
    }

    /// Checks, before decompressing it, that `size` more bytes still fit.
    fn admit(&self, size: u64) -> Result<(), Problem> {
        self.check(self.used.get().saturating_add(size))
    }
}

/// Counts decompressed bytes as the tar reader pulls them: the backstop for headers and padding
/// that [`Budget::admit`] does not see in advance.
struct Counting<'b, R> {
    inner: R,
    budget: &'b Budget<'b>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.budget.used.get().saturating_add(n as u64);
        self.budget.used.set(used);
        self.budget.check(used).map_err(io::Error::other)?;
        Ok(n)
    }
}

/// Opens a `*.tar{,.gz,.xz,.zst}` member as a tar archive that counts against the budget.
fn open<'a>(
    m: Member<'a>,
    budget: &'a Budget<'a>,
) -> Result<tar::Archive<Counting<'a, Box<dyn Read + 'a>>>, DebError> {
    let failed = |source| DebError::Read {
        member: m.name.into(),
        what: "cannot start decompressing",
        source,
    };
    let suffix = m.name.split_once(".tar").map_or("?", |(_, s)| s);
    let inner: Box<dyn Read + 'a> = match suffix {
        "" => Box::new(m.data),
        ".gz" => Box::new(flate2::read::GzDecoder::new(m.data)),
        ".xz" => {
            let stream = xz2::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(|e| failed(e.into()))?;
            Box::new(xz2::read::XzDecoder::new_stream(m.data, stream))
        }
        ".zst" => Box::new(
            ruzstd::decoding::StreamingDecoder::new(m.data)
                .map_err(|e| failed(io::Error::other(e.to_string())))?,
        ),
        _ => {
            let reason = "unsupported compression (expected none, `.gz`, `.xz` or `.zst`)".into();
            return Err(DebError::Member {
                member: m.name.into(),
                reason,
            });
        }
    };
    Ok(tar::Archive::new(Counting { inner, budget }))
}

/// Reads the rest of a decompressed stream so the decoder verifies its checksum.
fn drain<R: Read>(m: Member, archive: tar::Archive<R>) -> Result<(), DebError> {
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map(drop)
        .map_err(|source| DebError::Read {
            member: m.name.into(),
            what: "corrupt after the tar end",
            source,
        })
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

/// Reads the `control` file out of the control archive and parses its fields.
fn read_control(m: Member, budget: &Budget) -> Result<BTreeMap<String, String>, DebError> {
    let broken = |source| DebError::Read {
        member: m.name.into(),
        what: "broken archive",
        source,
    };
    let mut archive = open(m, budget)?;
    let mut control = None;
    let mut count = 0;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = entry.path_bytes().into_owned();
        count += 1;
        if count > budget.limits.max_entries {
            return Err(entry_error(
                &raw,
                Problem::TooManyEntries(budget.limits.max_entries),
            ));
        }
        budget
            .admit(entry.size())
            .map_err(|p| entry_error(&raw, p))?;
        if raw != b"./control" && raw != b"control" {
            continue;
        }
        if control.is_some() {
            return Err(entry_error(&raw, Problem::Duplicate));
        }
        if !entry.header().entry_type().is_file() {
            let reason = "`control` is not a regular file".into();
            return Err(DebError::Member {
                member: m.name.into(),
                reason,
            });
        }
        if entry.size() > CONTROL_MAX {
            return Err(entry_error(
                &raw,
                Problem::FileTooLarge {
                    size: entry.size(),
                    max: CONTROL_MAX,
                },
            ));
        }
        let mut text = Vec::new();
        entry
            .read_to_end(&mut text)
            .map_err(|e| entry_error(&raw, Problem::Unreadable(e.to_string())))?;
        control = Some(text);
    }
    drain(m, archive)?;
    let text = control.ok_or_else(|| DebError::Member {
        member: m.name.into(),
        reason: "no `control` file".into(),
    })?;
    let fail = |line, reason| DebError::Control {
        member: m.name.into(),
        line,
        reason,
    };
    let text = String::from_utf8(text).map_err(|_| fail(None, "not UTF-8".into()))?;
    let fields = parse_control(&text).map_err(|(line, reason)| fail(Some(line), reason))?;
    for required in ["Package", "Version", "Architecture"] {
        if !fields.contains_key(required) {
            return Err(fail(None, format!("missing field `{required}`")));
        }
    }
    Ok(fields)
}

/// Parses one deb822 paragraph; continuation lines join their field with `\n`. The error is a
/// 1-based line number and a reason.
fn parse_control(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut ended = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let number = i + 1;
        if line.is_empty() {
            ended = !fields.is_empty();
            continue;
        }
        if ended {
            return Err((number, "a second paragraph".into()));
        }
        if line.starts_with([' ', '\t']) {
            let key = current
                .as_ref()
                .ok_or((number, "continuation line before any field".into()))?;
            let value = fields.get_mut(key).expect("current field is stored");
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or((number, "expected `Field: value`".into()))?;
        let valid = !name.is_empty()
            && !name.starts_with(['#', '-'])
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid {
            return Err((
                number,
                format!("invalid field name `{}`", name.escape_debug()),
            ));
        }
        if fields.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err((number, format!("field `{name}` listed twice")));
        }
        fields.insert(name.to_owned(), value.trim().to_owned());
        current = Some(name.to_owned());
    }
    Ok(fields)
}

/// What an earlier data entry was, for duplicate, parent and hardlink checks.
enum Seen {
    Dir(usize),
    File,
    Other,
}

/// Reads and validates every entry of the data archive.
fn read_data(m: Member, budget: &Budget) -> Result<Vec<Entry>, DebError> {
    let broken = |source| DebError::Read {
        member: m.name.into(),
        what: "broken archive",
        source,
    };
    let mut archive = open(m, budget)?;
    let mut entries = Vec::new();
    let mut seen = BTreeMap::new();
    let mut count = 0;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = entry.path_bytes().into_owned();
        count += 1;
        if count > budget.limits.max_entries {
            return Err(entry_error(
                &raw,
                Problem::TooManyEntries(budget.limits.max_entries),
            ));
        }
        if let Some(e) =
            validate(&mut entry, &raw, budget, &mut seen).map_err(|p| entry_error(&raw, p))?
        {
            if let Some(Seen::Dir(i)) = seen.get(&e.path) {
                entries[*i] = e; // a directory listed again: its last mode wins, as with tar
            } else {
                let mark = match e.kind {
                    Kind::Dir => Seen::Dir(entries.len()),
                    Kind::File(_) => Seen::File,
                    Kind::Symlink(_) | Kind::Hardlink(_) => Seen::Other,
                };
                seen.insert(e.path.clone(), mark);
                entries.push(e);
            }
        }
    }
    drain(m, archive)?;
    Ok(entries)
}

/// Validates one data entry and reads its content; `None` for the root directory.
fn validate<R: Read>(
    entry: &mut tar::Entry<R>,
    raw: &[u8],
    budget: &Budget,
    seen: &mut BTreeMap<String, Seen>,
) -> Result<Option<Entry>, Problem> {
    use tar::EntryType as T;
    let limits = budget.limits;
    let path = normalize(raw, limits.max_path_len)?;
    let kind = entry.header().entry_type();
    let type_name = match kind {
        T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link => None,
        T::Char => Some("character device".to_owned()),
        T::Block => Some("block device".to_owned()),
        T::Fifo => Some("fifo".to_owned()),
        T::GNUSparse => Some("GNU sparse".to_owned()),
        T::XGlobalHeader => Some("PAX global header".to_owned()),
        other => Some(format!("type `{}`", other.as_byte().escape_ascii())),
    };
    if let Some(name) = type_name {
        return Err(Problem::Type(name));
    }
    let Some(path) = path else {
        return if kind.is_dir() {
            Ok(None)
        } else {
            Err(Problem::RootNotDir)
        };
    };
    if !kind.is_dir() && raw.ends_with(b"/") {
        return Err(Problem::TrailingSlash);
    }
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| Problem::Unreadable(e.to_string()))?
    {
        for ext in pax {
            let key = ext
                .map_err(|e| Problem::Unreadable(e.to_string()))?
                .key_bytes()
                .to_vec();
            if key.starts_with(b"GNU.sparse") {
                return Err(Problem::Sparse(show(&key)));
            }
        }
    }
    match seen.get(&path) {
        Some(Seen::Dir(_)) if kind.is_dir() => {}
        Some(_) => return Err(Problem::Duplicate),
        None => check_parents(&path, seen)?,
    }
    let size = entry.size();
    budget.admit(size)?;
    let mode = entry
        .header()
        .mode()
        .map_err(|e| Problem::Unreadable(e.to_string()))?
        & 0o755;
    let kind = match kind {
        T::Directory => Kind::Dir,
        T::Symlink => Kind::Symlink(symlink_target(
            &path,
            entry.link_name_bytes().as_deref(),
            limits,
        )?),
        T::Link => Kind::Hardlink(hardlink_target(
            entry.link_name_bytes().as_deref(),
            limits,
            seen,
        )?),
        _ => {
            if size > limits.max_file_bytes {
                return Err(Problem::FileTooLarge {
                    size,
                    max: limits.max_file_bytes,
                });
            }
            let mut data = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
            entry
                .take(size)
                .read_to_end(&mut data)
                .map_err(|e| Problem::Unreadable(e.to_string()))?;
            if data.len() as u64 != size {
                return Err(Problem::Unreadable(format!(
                    "truncated at {} of {size} bytes",
                    data.len()
                )));
            }
            Kind::File(data)
        }
    };
    Ok(Some(Entry { path, kind, mode }))
}

/// Fails if an ancestor of `path` was listed as something other than a directory. Walks up only
/// to the nearest listed directory, whose own ancestors were checked when it was listed.
fn check_parents(path: &str, seen: &BTreeMap<String, Seen>) -> Result<(), Problem> {
    let mut parent = path;
    while let Some((up, _)) = parent.rsplit_once('/') {
        parent = up;
        match seen.get(parent) {
            Some(Seen::Dir(_)) => return Ok(()),
            Some(_) => return Err(Problem::ParentNotDir(parent.to_owned())),
            None => {}
        }
    }
    Ok(())
}

/// Normalizes an archive path: strips exactly one leading `./` and a trailing `/`, then rejects
/// absolute paths, NUL, non-UTF-8, empty, `.` and `..` components and over-long names. `None`
/// is the root (`./` or `.`).
pub fn normalize(raw: &[u8], max_len: usize) -> Result<Option<String>, Problem> {
    if raw.is_empty() {
        return Err(Problem::Empty);
    }
    let path = raw.strip_prefix(b"./").unwrap_or(raw);
    if path.starts_with(b"/") {
        return Err(Problem::Absolute);
    }
    let path = path.strip_suffix(b"/").unwrap_or(path);
    if path.len() > max_len {
        return Err(Problem::PathTooLong {
            len: path.len(),
            max: max_len,
        });
    }
    if path.contains(&0) {
        return Err(Problem::Nul);
    }
    let path = std::str::from_utf8(path).map_err(|_| Problem::NotUtf8)?;
    if path.is_empty() || path == "." {
        return Ok(None);
    }
    if path.split('/').any(|c| c == "..") {
        return Err(Problem::Escapes);
    }
    for component in path.split('/') {
        match component {
            "" | "." => return Err(Problem::BadComponent),
            c if c.len() > NAME_MAX => return Err(Problem::ComponentTooLong(c.len())),
            _ => {}
        }
    }
    Ok(Some(path.to_owned()))
}

/// Checks a link target's bytes and returns it as text.
fn link_text(target: Option<&[u8]>, max_len: usize) -> Result<&str, Problem> {
    let target = target.unwrap_or_default();
    let bad = |reason: &str| Problem::BadTarget {
        target: show(target),
        reason: reason.into(),
    };
    if target.is_empty() {
        return Err(bad("empty"));
    }
    if target.len() > max_len {
        return Err(bad(&format!(
            "{} bytes, over the limit of {max_len}",
            target.len()
        )));
    }
    if target.contains(&0) {
        return Err(bad("contains NUL"));
    }
    std::str::from_utf8(target).map_err(|_| bad("not UTF-8"))
}

/// Checks a symlink target, verbatim: relative ones resolve from the link's directory,
/// absolute ones from the root, and neither may climb above the root. The check is lexical;
/// targets are only followed at run time, inside the image root.
pub fn symlink_target(
    link: &str,
    target: Option<&[u8]>,
    limits: &Limits,
) -> Result<String, Problem> {
    let text = link_text(target, limits.max_path_len)?;
    let mut depth = if text.starts_with('/') {
        0
    } else {
        link.matches('/').count()
    };
    for component in text.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Problem::SymlinkEscapes(text.to_owned()))?;
            }
            _ => depth += 1,
        }
    }
    Ok(text.to_owned())
}

/// Resolves a hardlink target to the normalized path of an earlier regular file.
fn hardlink_target(
    target: Option<&[u8]>,
    limits: &Limits,
    seen: &BTreeMap<String, Seen>,
) -> Result<String, Problem> {
    let text = link_text(target, limits.max_path_len)?;
    let bad = |reason: String| Problem::BadTarget {
        target: text.to_owned(),
        reason,
    };
    let path = normalize(text.as_bytes(), limits.max_path_len)
        .map_err(|p| bad(p.to_string()))?
        .ok_or_else(|| Problem::HardlinkNotFile(text.to_owned()))?;
    match seen.get(&path) {
        Some(Seen::File) => Ok(path),
        Some(_) => Err(Problem::HardlinkNotFile(text.to_owned())),
        None => Err(Problem::HardlinkMissing(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            out.extend(
                format!(
                    "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                    0,
                    0,
                    0,
                    100_644,
                    data.len()
                )
                .bytes(),
            );
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    #[test]
    fn ar_members() {
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar/", b"abc"),
            ("data.tar.xz", b""),
        ]);
        let got = members(&bytes).unwrap();
        let names: Vec<_> = got.iter().map(|m| (m.name, m.data)).collect();
        assert_eq!(
            names,
            [
                ("debian-binary", &b"2.0\n"[..]),
                ("control.tar", b"abc"),
                ("data.tar.xz", b"")
            ]
        );
        // The pad after an odd last member may be missing.
        let odd_last = ar(&[("a", b"x")]);
        assert_eq!(
            members(&odd_last[..odd_last.len() - 1]).unwrap()[0].data,
            b"x"
        );
    }

    #[test]
    fn ar_errors() {
        let good = ar(&[("debian-binary", b"2.0\n")]);
        let mut bad_size = good.clone();
        bad_size[8 + 48] = b'x';
        let mut bad_magic = good.clone();
        bad_magic[8 + 58] = b'!';
        let cases: [(&[u8], &str); 7] = [
            (b"", "not a .deb: missing the `!<arch>` magic"),
            (b"!<arch>\nshort", "ar header at byte 8: truncated header of 5 bytes"),
            (&bad_size, "ar header at byte 8: member `debian-binary`: bad size field"),
            (&bad_magic, "ar header at byte 8: bad header terminator"),
            (&good[..good.len() - 1], "ar header at byte 8: member `debian-binary` of 4 bytes runs past the end of the file"),
            (&ar(&[("/", b"")]), "ar header at byte 8: unsupported member name `/`"),
            (&ar(&[("#1/long", b"")]), "ar header at byte 8: unsupported member name `#1/long`"),
        ];
        for (bytes, want) in cases {
            assert_eq!(members(bytes).unwrap_err().to_string(), want);
        }
    }

    /// Members as name and content.
    type Members<'a> = &'a [(&'a str, &'a [u8])];

    #[test]
    fn layouts() {
        let cases: [(Members, &str); 7] = [
            (&[], "member `debian-binary`: missing"),
            (
                &[("control.tar", b"")],
                "member `control.tar`: expected `debian-binary` as the first member",
            ),
            (
                &[("debian-binary", b"3.0\n")],
                "member `debian-binary`: unsupported format version `3.0\\n`",
            ),
            (
                &[("debian-binary", b"2.0\n"), ("data.tar", b"")],
                "member `data.tar`: comes before the control member",
            ),
            (
                &[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar", b""),
                    ("control.tar.gz", b""),
                ],
                "member `control.tar.gz`: a second control or data member",
            ),
            (
                &[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar", b""),
                    ("evil", b""),
                ],
                "member `evil`: unexpected member",
            ),
            (
                &[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar", b""),
                    ("_sig", b""),
                ],
                "member `data.tar`: missing",
            ),
        ];
        for (list, want) in cases {
            let list: Vec<_> = list
                .iter()
                .map(|&(name, data)| Member { name, data })
                .collect();
            assert_eq!(layout(&list).unwrap_err().to_string(), want);
        }
    }

    /// What [`normalize`] should return, borrowed.
    type Normalized<'a> = Result<Option<&'a str>, Problem>;

    #[test]
    fn normalizes_paths() {
        let long = "a".repeat(256);
        let deep = format!("./{}", "abcdefghij/".repeat(28));
        let cases: [(&[u8], Normalized); 18] = [
            (b"./", Ok(None)),
            (b".", Ok(None)),
            (b"./usr/", Ok(Some("usr"))),
            (b"./usr/bin/x", Ok(Some("usr/bin/x"))),
            (b"usr/bin/x", Ok(Some("usr/bin/x"))),
            (b"..data", Ok(Some("..data"))),
            (b"", Err(Problem::Empty)),
            (b"/etc/x", Err(Problem::Absolute)),
            (b".//etc", Err(Problem::Absolute)),
            (b"././etc", Err(Problem::BadComponent)),
            (b"../x", Err(Problem::Escapes)),
            (b"./a/../../x", Err(Problem::Escapes)),
            (b"a//b", Err(Problem::BadComponent)),
            (b"a/./b", Err(Problem::BadComponent)),
            (b"a\0b", Err(Problem::Nul)),
            (b"a\xffb", Err(Problem::NotUtf8)),
            (long.as_bytes(), Err(Problem::ComponentTooLong(256))),
            (
                deep.as_bytes(),
                Err(Problem::PathTooLong { len: 307, max: 300 }),
            ),
        ];
        for (raw, want) in cases {
            let got = normalize(raw, 300);
            assert_eq!(got, want.map(|p| p.map(str::to_owned)), "{}", show(raw));
        }
    }

    #[test]
    fn symlink_targets() {
        let limits = Limits::default();
        let cases: [(&str, &str, bool); 10] = [
            ("usr/bin/x", "y", true),
            ("usr/bin/x", "../lib/y", true),
            ("usr/bin/x", "../../etc/y", true),
            ("usr/bin/x", "../../../etc/y", false),
            ("a", "../../etc", false),
            ("a", "b/../..", false),
            ("a", "./b/./c/", true),
            ("a", "/etc/alternatives/x", true),
            ("a", "/usr/../etc", true),
            ("a", "/../etc", false),
        ];
        for (link, target, ok) in cases {
            let got = symlink_target(link, Some(target.as_bytes()), &limits);
            assert_eq!(got.is_ok(), ok, "{link} -> {target}: {got:?}");
        }
        assert!(matches!(
            symlink_target("a", None, &limits),
            Err(Problem::BadTarget { .. })
        ));
    }

    #[test]
    fn control_fields() {
        let text =
            "Package: dnsmasq-base\nVersion: 2.90-4\nDescription: small\n caching\n .\n server\n\n";
        let fields = parse_control(text).unwrap();
        assert_eq!(fields["Package"], "dnsmasq-base");
        assert_eq!(fields["Description"], "small\n caching\n .\n server");
        let cases = [
            (" lead\n", (1, "continuation line before any field")),
            ("A: 1\nno colon\n", (2, "expected `Field: value`")),
            ("A: 1\na: 2\n", (2, "field `a` listed twice")),
            ("A: 1\n\nB: 2\n", (3, "a second paragraph")),
            ("#A: 1\n", (1, "invalid field name `#A`")),
        ];
        for (text, (line, reason)) in cases {
            assert_eq!(
                parse_control(text),
                Err((line, reason.to_owned())),
                "{text:?}"
            );
        }
    }
}
