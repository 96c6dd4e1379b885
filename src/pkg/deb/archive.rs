//! Opening a control or data member as a tar archive: choosing the decompressor by suffix and
//! counting every decompressed byte against the package's [`Limits`] through a shared
//! [`Budget`].

use std::cell::Cell;
use std::io::{self, Read};

use super::{DebError, Limits, Member, Problem, RATIO_FLOOR};

/// Most memory the xz decoder may take; `dpkg-deb`'s presets need a few MiB.
const XZ_MEMLIMIT: u64 = 256 << 20;

/// The uncompressed bytes spent so far, shared by the control and data archives.
pub(super) struct Budget<'l> {
    pub(super) used: Cell<u64>,
    pub(super) limits: &'l Limits,
    pub(super) deb: u64,
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
    pub(super) fn admit(&self, size: u64) -> Result<(), Problem> {
        self.check(self.used.get().saturating_add(size))
    }
}

/// Counts decompressed bytes as the tar reader pulls them: the backstop for headers and padding
/// that [`Budget::admit`] does not see in advance.
pub(super) struct Counting<'b, R> {
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
pub(super) fn open<'a>(
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
            let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(|e| failed(e.into()))?;
            Box::new(liblzma::read::XzDecoder::new_stream(m.data, stream))
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
pub(super) fn drain<R: Read>(m: Member, archive: tar::Archive<R>) -> Result<(), DebError> {
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map(drop)
        .map_err(|source| DebError::Read {
            member: m.name.into(),
            what: "corrupt after the tar end",
            source,
        })
}
