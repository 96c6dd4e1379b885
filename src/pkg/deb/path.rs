//! Pure checks of archive paths and link targets: normalizing an entry path, and refusing
//! symlinks that climb above the root or hardlinks to anything but an earlier regular file.

use std::collections::BTreeMap;

use super::data::Seen;
use super::{show, Limits, Problem};
use crate::oci::layer::WHITEOUT_PREFIX;

/// Longest path component Linux file systems accept (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// Normalizes an archive path: strips exactly one leading `./` and a trailing `/`, then rejects
/// absolute paths, NUL, non-UTF-8, empty, `.` and `..` components, over-long names and names
/// starting with `.wh.` (OCI whiteouts once the content is a layer). `None` is the root (`./`
/// or `.`).
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
            c if c.starts_with(WHITEOUT_PREFIX) => return Err(Problem::Whiteout(c.to_owned())),
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
pub(super) fn hardlink_target(
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

    /// What [`normalize`] should return, borrowed.
    type Normalized<'a> = Result<Option<&'a str>, Problem>;

    #[test]
    fn normalizes_paths() {
        let long = "a".repeat(256);
        let deep = format!("./{}", "abcdefghij/".repeat(28));
        let cases: [(&[u8], Normalized); 22] = [
            (b"./", Ok(None)),
            (b".", Ok(None)),
            (b"./usr/", Ok(Some("usr"))),
            (b"./usr/bin/x", Ok(Some("usr/bin/x"))),
            (b"usr/bin/x", Ok(Some("usr/bin/x"))),
            (b"..data", Ok(Some("..data"))),
            (b"./usr/x.wh.y", Ok(Some("usr/x.wh.y"))),
            (
                b"./etc/.wh.passwd",
                Err(Problem::Whiteout(".wh.passwd".into())),
            ),
            (
                b"./etc/.wh..wh..opq",
                Err(Problem::Whiteout(".wh..wh..opq".into())),
            ),
            (b".wh.usr/bin/x", Err(Problem::Whiteout(".wh.usr".into()))),
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
}
