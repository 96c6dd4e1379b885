//! APT repository metadata: sources, `Release`/`InRelease`, `Packages` indexes, and checking an
//! index against its `Release`.
//!
//! Everything here is pure parse and compute over text and bytes: fetching is done by the caller
//! and the signature of an `InRelease` is checked by `gpgv` elsewhere (this module only
//! takes the signed text out). Formats follow deb822
//! (<https://manpages.debian.org/bookworm/dpkg-dev/deb822.5.en.html>), sources.list(5) and the
//! repository format (<https://wiki.debian.org/DebianRepository/Format>).
//!
//! The module is split by file kind: `sources` for `sources.list` and `*.sources`, `release`
//! for `Release`/`InRelease` and checking an index against it, `validity` for when a Release
//! may be used (its `Date` and `Valid-Until` against a clock), `packages` for `Packages`
//! indexes; `deb822` holds the stanza reader they share. The error type lives here.

mod deb822;
mod packages;
mod release;
mod sources;
pub mod validity;

pub use packages::{decompress, parse_packages, Dep, Package};
pub use release::{parse_release, strip_clearsign, verify, Release};
pub use sources::{parse_deb822_sources, parse_sources_list, Source};

/// What went wrong reading APT metadata; messages name the file, field and line.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    /// A line that is not valid for the format.
    #[error("{file} line {line}: {message}")]
    Syntax {
        /// The kind of file (`sources.list`, `Release`, `Packages`, …).
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A field whose value is invalid.
    #[error("{file} line {line}: field `{field}`: {message}")]
    Field {
        /// The kind of file.
        file: &'static str,
        /// 1-based line number of the field.
        line: usize,
        /// The field name as written.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A stanza that lacks a required field.
    #[error("{file} line {line}: stanza has no `{field}` field")]
    Missing {
        /// The kind of file.
        file: &'static str,
        /// 1-based line number where the stanza starts.
        line: usize,
        /// The missing field.
        field: &'static str,
    },
    /// An `InRelease` that is not a well-formed clearsigned message.
    #[error("InRelease line {line}: {message}")]
    Clearsign {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file name with a compression suffix this module cannot read.
    #[error(
        "`{path}`: unsupported compression (hint: use `Packages`, `Packages.gz` or `Packages.xz`)"
    )]
    Compression {
        /// The file name.
        path: String,
    },
    /// A compressed file that does not decompress.
    #[error("`{path}`: cannot decompress")]
    Decompress {
        /// The file name.
        path: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// An index file that `Release` does not list.
    #[error("`{path}` is not listed in the SHA256 field of Release")]
    NotInRelease {
        /// The index path relative to the suite.
        path: String,
    },
    /// An index file whose size or sha256 differs from `Release`.
    #[error(
        "`{path}` does not match Release: got {actual_size} bytes with sha256 {actual}, \
         Release says {expected_size} bytes with sha256 {expected}"
    )]
    Mismatch {
        /// The index path relative to the suite.
        path: String,
        /// Size listed in `Release`.
        expected_size: u64,
        /// sha256 listed in `Release`.
        expected: String,
        /// Size of the bytes given.
        actual_size: u64,
        /// sha256 of the bytes given.
        actual: String,
    },
    /// An error from a named file (added by the caller that read it).
    #[error("`{path}`")]
    At {
        /// The file's path.
        path: String,
        /// The error inside it.
        #[source]
        source: Box<AptError>,
    },
}

impl AptError {
    /// Wraps the error with the path of the file it came from.
    #[must_use]
    pub fn at(self, path: impl Into<String>) -> AptError {
        AptError::At {
            path: path.into(),
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_at_path() {
        let err = parse_release("").unwrap_err().at("dists/bookworm/Release");
        assert_eq!(err.to_string(), "`dists/bookworm/Release`");
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "Release line 1: file is empty"
        );
    }
}
