//! Raw tar, written and walked byte for byte: the `tar` crate refuses to write most of what a
//! hostile archive holds (`..`, absolute names, devices, lying sizes), and the fuzzer edits
//! headers in place.

use std::io::Read as _;

/// One tar entry as an attacker writes it.
#[derive(Clone)]
pub struct Raw {
    /// The name (cut to 100 bytes in the header: a PAX `path` carries a longer one).
    pub name: Vec<u8>,
    /// The type flag (`b'0'` file, `b'5'` directory, `b'2'` symlink, …).
    pub kind: u8,
    /// The mode field.
    pub mode: u32,
    /// The data.
    pub data: Vec<u8>,
    /// The size the header claims (the data's length unless set).
    pub size: Option<u64>,
    /// The link target.
    pub link: Vec<u8>,
    /// PAX records written in an `x` header before this entry.
    pub pax: Vec<(&'static str, Vec<u8>)>,
}

impl Raw {
    /// An entry of `kind` without data.
    pub fn new(name: impl AsRef<[u8]>, kind: u8) -> Self {
        Self {
            name: name.as_ref().to_vec(),
            kind,
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            data: Vec::new(),
            size: None,
            link: Vec::new(),
            pax: Vec::new(),
        }
    }

    /// A regular file.
    pub fn file(name: impl AsRef<[u8]>, data: &[u8]) -> Self {
        Self {
            data: data.to_vec(),
            ..Self::new(name, b'0')
        }
    }

    /// A directory.
    pub fn dir(name: impl AsRef<[u8]>) -> Self {
        Self::new(name, b'5')
    }

    /// A symlink.
    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self {
            link: target.as_ref().to_vec(),
            mode: 0o777,
            ..Self::new(name, b'2')
        }
    }

    /// A hard link.
    pub fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self {
            link: target.as_ref().to_vec(),
            ..Self::new(name, b'1')
        }
    }

    /// With this mode.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// With this type flag.
    pub fn kind(mut self, kind: u8) -> Self {
        self.kind = kind;
        self
    }

    /// With a PAX record.
    pub fn pax(mut self, key: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.pax.push((key, value.as_ref().to_vec()));
        self
    }
}

/// Writes `value` in octal into a numeric header field (NUL-terminated, high digits cut).
pub fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// Recomputes the checksum of the header block `h`.
pub fn checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h[..512].iter().map(|&b| u64::from(b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
}

/// A ustar header block.
pub fn header(name: &[u8], kind: u8, mode: u32, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    if kind == b'3' || kind == b'4' {
        octal(&mut h[329..337], 1); // major 1, minor 3: /dev/null
        octal(&mut h[337..345], 3);
    }
    checksum(&mut h);
    h
}

/// Pads `out` to a whole block.
pub fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// PAX records (`<len> <key>=<value>\n`, the length counting itself).
pub fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = k.len() + v.len() + 3; // space, `=`, newline
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// Entries without the end-of-archive blocks.
pub fn tar_body(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if !e.pax.is_empty() {
            let records = pax_records(&e.pax);
            out.extend_from_slice(&header(
                b"PaxHeaders/x",
                b'x',
                0o644,
                records.len() as u64,
                b"",
            ));
            out.extend_from_slice(&records);
            pad(&mut out);
        }
        let size = e.size.unwrap_or(e.data.len() as u64);
        out.extend_from_slice(&header(&e.name, e.kind, e.mode, size, &e.link));
        out.extend_from_slice(&e.data);
        pad(&mut out);
    }
    out
}

/// A whole archive.
pub fn tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = tar_body(entries);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The offsets of the header blocks of a tar stream, as far as its size fields can be followed
/// (PAX and GNU long-name headers count as entries of their own); and where they end.
pub fn headers(tar: &[u8]) -> (Vec<usize>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        out.push(at);
        let text: String = tar[at + 124..at + 136]
            .iter()
            .take_while(|&&b| b != 0 && b != b' ')
            .map(|&b| char::from(b))
            .collect();
        let size = u64::from_str_radix(text.trim_start(), 8).unwrap_or(0);
        let Some(next) = usize::try_from(size.div_ceil(512) * 512)
            .ok()
            .and_then(|n| (at + 512).checked_add(n))
        else {
            break;
        };
        at = next;
    }
    (out, at.min(tar.len()))
}

/// The entries of a tar stream, up to (without) its end-of-archive blocks.
pub fn strip_end(tar: &[u8]) -> &[u8] {
    &tar[..headers(tar).1]
}

/// Decompresses a gzip stream whole.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}
