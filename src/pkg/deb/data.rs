//! The data archive of a `.deb`: reading every entry and validating its type, path, parents,
//! link target and size, with the duplicate, parent and hardlink bookkeeping that needs.

use std::collections::BTreeMap;
use std::io::Read;

use super::archive::{drain, open, Budget};
use super::path::{hardlink_target, normalize, symlink_target};
use super::{entry_error, show, DebError, Entry, Kind, Member, Problem};

/// What an earlier data entry was, for duplicate, parent and hardlink checks.
pub(super) enum Seen {
    Dir(usize),
    File,
    Other,
}

/// Reads and validates every entry of the data archive.
pub(super) fn read_data(m: Member, budget: &Budget) -> Result<Vec<Entry>, DebError> {
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
