//! The outer `ar` archive of a `.deb`: splitting it into members (System V / GNU common
//! format, short names only) and checking the member order dpkg requires (deb(5)).

use super::{DebError, Member};

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
pub(super) fn layout<'a>(members: &[Member<'a>]) -> Result<(Member<'a>, Member<'a>), DebError> {
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
}
