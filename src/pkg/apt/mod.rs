//! APT repository metadata: sources, `Release`/`InRelease`, `Packages` indexes, and checking an
//! index against its `Release`.
//!
//! Everything here is pure parse and compute over text and bytes: fetching is done by the caller
//! and the signature of an `InRelease` is checked by `gpgv` elsewhere (this module only
//! takes the signed text out). Formats follow deb822
//! (<https://manpages.debian.org/bookworm/dpkg-dev/deb822.5.en.html>), sources.list(5) and the
//! repository format (<https://wiki.debian.org/DebianRepository/Format>).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use sha2::{Digest, Sha256};

use super::version::Relation;

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

// ---------------------------------------------------------------------------------------------
// deb822 stanzas

/// One `Field: value` of a stanza; a multi-line value keeps its continuation lines, joined by
/// `\n` with their leading whitespace.
struct Field<'a> {
    name: &'a str,
    value: Cow<'a, str>,
    /// Line of the field name.
    line: usize,
    /// Line where the value starts (the next one for `SHA256:` and its list).
    value_line: usize,
}

/// One paragraph of a deb822 file.
struct Stanza<'a> {
    line: usize,
    fields: Vec<Field<'a>>,
}

impl<'a> Stanza<'a> {
    /// The field named `name`, case-insensitively as deb822 says.
    fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(|f| f.value.as_ref())
    }

    fn require(&self, file: &'static str, name: &'static str) -> Result<&Field<'a>, AptError> {
        self.get(name).ok_or(AptError::Missing {
            file,
            line: self.line,
            field: name,
        })
    }
}

/// The field being read: its value's byte range in the text, and whether a comment line
/// interrupted it (then its value is copied, leaving the comment out).
struct Open {
    start: usize,
    end: usize,
    split: bool,
    value_line: Option<usize>,
}

/// Splits deb822 text into stanzas. Blank lines separate stanzas, lines starting with `#` are
/// comments wherever they are, and lines starting with a space or tab continue the field above.
/// Values borrow from the text unless a comment splits them.
fn stanzas<'a>(file: &'static str, text: &'a str) -> Result<Vec<Stanza<'a>>, AptError> {
    let mut out = Vec::new();
    let mut current: Option<Stanza<'a>> = None;
    let mut open: Option<Open> = None;
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        if line.trim().is_empty() {
            close_field(text, current.as_mut(), open.take());
            out.extend(current.take());
        } else if line.starts_with('#') {
            if let Some(o) = open.as_mut() {
                o.split = true;
            }
        } else if line.starts_with([' ', '\t']) {
            let (Some(o), Some(stanza)) = (open.as_mut(), current.as_mut()) else {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: "continuation line outside a field".into(),
                });
            };
            if o.split {
                let field = stanza.fields.last_mut().expect("an open field exists");
                if let Cow::Borrowed(_) = field.value {
                    field.value = Cow::Owned(text[o.start..o.end].trim().to_owned());
                }
                let value = field.value.to_mut();
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(line);
            }
            o.end = end;
            o.value_line.get_or_insert(line_no);
        } else {
            close_field(text, current.as_mut(), open.take());
            let Some((name, value)) = line.split_once(':') else {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: format!("expected `Field: value`, found `{line}`"),
                });
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: format!("invalid field name `{name}`"),
                });
            }
            let stanza = current.get_or_insert_with(|| Stanza {
                line: line_no,
                fields: Vec::new(),
            });
            if stanza.get(name).is_some() {
                return Err(AptError::Syntax {
                    file,
                    line: line_no,
                    message: format!("field `{name}` appears twice in one stanza"),
                });
            }
            stanza.fields.push(Field {
                name,
                value: Cow::Borrowed(""),
                line: line_no,
                value_line: line_no,
            });
            open = Some(Open {
                start: start + name.len() + 1,
                end,
                split: false,
                value_line: (!value.trim().is_empty()).then_some(line_no),
            });
        }
    }
    close_field(text, current.as_mut(), open.take());
    out.extend(current);
    Ok(out)
}

/// Sets the last field's value from its byte range, unless a comment made it a copy already.
fn close_field<'a>(text: &'a str, stanza: Option<&mut Stanza<'a>>, open: Option<Open>) {
    let (Some(stanza), Some(open)) = (stanza, open) else {
        return;
    };
    let field = stanza.fields.last_mut().expect("an open field exists");
    if let Cow::Borrowed(_) = field.value {
        field.value = Cow::Borrowed(text[open.start..open.end].trim());
    }
    field.value_line = open.value_line.unwrap_or(field.line);
}

fn yes_no(file: &'static str, field: &Field<'_>) -> Result<bool, AptError> {
    match field.value.as_ref() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => Err(AptError::Field {
            file,
            line: field.line,
            field: field.name.to_owned(),
            message: format!("expected `yes` or `no`, found `{other}`"),
        }),
    }
}

fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------
// sources

/// One APT source: a repository URI with its suites and components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Base URI of the repository, as written.
    pub uri: String,
    /// Suites (`bookworm`, `bookworm-updates`); a flat repository has a path ending in `/`
    /// such as `./`.
    pub suites: Vec<String>,
    /// Components (`main`); empty for a flat repository.
    pub components: Vec<String>,
    /// `signed-by` / `Signed-By`: keyring paths or fingerprints, or an embedded armored key.
    pub signed_by: Option<String>,
    /// `arch` / `Architectures`, when restricted.
    pub arch: Option<Vec<String>>,
    /// `trusted=yes`: accept the repository without a signature.
    pub trusted: bool,
}

const SOURCES_LIST: &str = "sources.list";
const SOURCES: &str = "deb822 sources";

/// Parses the one-line format (`deb [opt=val ...] uri suite [component ...]`). `deb-src`
/// lines, comments and blank lines are skipped.
pub fn parse_sources_list(text: &str) -> Result<Vec<Source>, AptError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        // apt drops everything from `#` on.
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |message: String| AptError::Syntax {
            file: SOURCES_LIST,
            line: line_no,
            message,
        };
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match kind {
            "deb" => {}
            "deb-src" => continue,
            other => {
                return Err(syntax(format!(
                    "unknown type `{other}` (expected `deb` or `deb-src`)"
                )))
            }
        }
        let mut rest = rest.trim_start();
        let (mut arch, mut signed_by, mut trusted) = (None, None, false);
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                return Err(syntax("`[` without a closing `]`".into()));
            };
            for option in options.split_whitespace() {
                let Some((key, value)) = option.split_once('=') else {
                    return Err(syntax(format!("option `{option}` is not `key=value`")));
                };
                match key {
                    "arch" => arch = Some(value.split(',').map(str::to_owned).collect()),
                    "signed-by" => signed_by = Some(value.to_owned()),
                    "trusted" => {
                        trusted = match value {
                            "yes" => true,
                            "no" => false,
                            _ => {
                                return Err(syntax(format!(
                                    "`trusted={value}`: expected `yes` or `no`"
                                )))
                            }
                        }
                    }
                    // lang, target, pdiffs, by-hash, check-valid-until, …: fetch-time details.
                    _ => {}
                }
            }
            rest = after;
        }
        let mut parts = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (parts.next(), parts.next()) else {
            return Err(syntax("expected a URI and a suite".into()));
        };
        let source = Source {
            uri: uri.to_owned(),
            suites: vec![suite.to_owned()],
            components: parts.map(str::to_owned).collect(),
            signed_by,
            arch,
            trusted,
        };
        check_components(&source, syntax)?;
        out.push(source);
    }
    Ok(out)
}

/// A suite ending in `/` is a flat repository and takes no components; any other needs some.
fn check_components(source: &Source, error: impl Fn(String) -> AptError) -> Result<(), AptError> {
    for suite in &source.suites {
        let flat = suite.ends_with('/');
        if flat && !source.components.is_empty() {
            return Err(error(format!("flat suite `{suite}` takes no components")));
        }
        if !flat && source.components.is_empty() {
            return Err(error(format!(
                "suite `{suite}` needs at least one component"
            )));
        }
    }
    Ok(())
}

/// Parses the deb822 format of `*.sources` files: one [`Source`] per URI of each stanza whose
/// `Types` include `deb` and that is not `Enabled: no`.
pub fn parse_deb822_sources(text: &str) -> Result<Vec<Source>, AptError> {
    let mut out = Vec::new();
    for stanza in stanzas(SOURCES, text)? {
        let types = stanza.require(SOURCES, "Types")?;
        if !types.value.split_whitespace().any(|t| t == "deb") {
            continue;
        }
        if let Some(enabled) = stanza.get("Enabled") {
            if !yes_no(SOURCES, enabled)? {
                continue;
            }
        }
        let uris = words(&stanza.require(SOURCES, "URIs")?.value);
        let suites = words(&stanza.require(SOURCES, "Suites")?.value);
        let components = stanza.value("Components").map(words).unwrap_or_default();
        let trusted = match stanza.get("Trusted") {
            Some(field) => yes_no(SOURCES, field)?,
            None => false,
        };
        let signed_by = stanza.value("Signed-By").map(signed_by);
        let arch = stanza.value("Architectures").map(|v| {
            v.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect()
        });
        if uris.is_empty() || suites.is_empty() {
            let field = if uris.is_empty() { "URIs" } else { "Suites" };
            return Err(AptError::Missing {
                file: SOURCES,
                line: stanza.line,
                field,
            });
        }
        for uri in uris {
            let source = Source {
                uri,
                suites: suites.clone(),
                components: components.clone(),
                signed_by: signed_by.clone(),
                arch: arch.clone(),
                trusted,
            };
            check_components(&source, |message| AptError::Syntax {
                file: SOURCES,
                line: stanza.line,
                message,
            })?;
            out.push(source);
        }
    }
    Ok(out)
}

/// `Signed-By` is either paths/fingerprints on one line or an embedded key block, whose lines
/// lose their leading space and whose `.` lines stand for blank lines.
fn signed_by(value: &str) -> String {
    if !value.contains('\n') {
        return value.to_owned();
    }
    value
        .lines()
        .map(|line| match line.trim() {
            "." => "",
            trimmed => trimmed,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// Release and InRelease

/// The parts of a `Release` file the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Suite` (`oldstable-updates`); flat repositories often have none.
    pub suite: Option<String>,
    /// `Codename` (`bookworm-updates`).
    pub codename: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `SHA256`: path relative to the suite → (size in bytes, lowercase hex digest).
    pub sha256: BTreeMap<String, (u64, String)>,
}

const RELEASE: &str = "Release";

/// Parses a `Release` file (the text of an `InRelease` after [`strip_clearsign`]).
pub fn parse_release(text: &str) -> Result<Release, AptError> {
    let mut stanzas = stanzas(RELEASE, text)?.into_iter();
    let Some(stanza) = stanzas.next() else {
        return Err(AptError::Syntax {
            file: RELEASE,
            line: 1,
            message: "file is empty".into(),
        });
    };
    if let Some(extra) = stanzas.next() {
        return Err(AptError::Syntax {
            file: RELEASE,
            line: extra.line,
            message: "a second stanza (Release has exactly one)".into(),
        });
    }
    let field = stanza.require(RELEASE, "SHA256")?;
    let mut sha256 = BTreeMap::new();
    for (index, entry) in field.value.lines().enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let bad = |message: String| AptError::Field {
            file: RELEASE,
            line: field.value_line + index,
            field: field.name.to_owned(),
            message,
        };
        let parts: Vec<&str> = entry.split_whitespace().collect();
        let [hex, size, path] = parts[..] else {
            return Err(bad(format!("expected `sha256 size path`, found `{entry}`")));
        };
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(format!("`{hex}` is not a sha256 digest")));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| bad(format!("size `{size}` of `{path}` is not a number")))?;
        sha256.insert(path.to_owned(), (size, hex.to_ascii_lowercase()));
    }
    Ok(Release {
        suite: stanza.value("Suite").map(str::to_owned),
        codename: stanza.value("Codename").map(str::to_owned),
        architectures: stanza.value("Architectures").map(words).unwrap_or_default(),
        components: stanza.value("Components").map(words).unwrap_or_default(),
        sha256,
    })
}

/// Takes the signed text out of a clearsigned `InRelease` (RFC 4880 §7): after
/// `-----BEGIN PGP SIGNED MESSAGE-----`, `Hash:` headers and a blank line, up to
/// `-----BEGIN PGP SIGNATURE-----`, with `- ` dash-escaping removed. Each body line is returned
/// with a trailing `\n`. Text before the message or after the signature is refused, as apt
/// does, so nothing unsigned can ride along. The signature itself is checked by `gpgv`.
pub fn strip_clearsign(text: &str) -> Result<String, AptError> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
    const END: &str = "-----END PGP SIGNATURE-----";
    let err = |line: usize, message: &str| AptError::Clearsign {
        line,
        message: message.to_owned(),
    };
    let mut lines = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, BEGIN)) => {}
        _ => return Err(err(1, "expected `-----BEGIN PGP SIGNED MESSAGE-----`")),
    }
    loop {
        match lines.next() {
            Some((_, "")) => break,
            Some((_, header)) if header.starts_with("Hash:") => {}
            Some((line, _)) => return Err(err(line, "expected a `Hash:` header or a blank line")),
            None => return Err(err(text.lines().count(), "message ends inside its headers")),
        }
    }
    let mut body = String::with_capacity(text.len());
    loop {
        match lines.next() {
            Some((_, SIGNATURE)) => break,
            Some((line, l)) if l.starts_with('-') => {
                let Some(unescaped) = l.strip_prefix("- ") else {
                    return Err(err(line, "line starts with `-` but is not dash-escaped"));
                };
                body.push_str(unescaped);
                body.push('\n');
            }
            Some((_, l)) => {
                body.push_str(l);
                body.push('\n');
            }
            None => {
                return Err(err(
                    text.lines().count(),
                    "no `-----BEGIN PGP SIGNATURE-----`",
                ))
            }
        }
    }
    loop {
        match lines.next() {
            Some((_, END)) => break,
            Some((line, l)) if l.starts_with("-----") => {
                return Err(err(line, "expected `-----END PGP SIGNATURE-----`"))
            }
            Some(_) => {}
            None => {
                return Err(err(
                    text.lines().count(),
                    "no `-----END PGP SIGNATURE-----`",
                ))
            }
        }
    }
    if let Some((line, _)) = lines.find(|(_, l)| !l.trim().is_empty()) {
        return Err(err(line, "text after the signature"));
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// Packages

/// One binary package of a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture` (`amd64`, `all`, …).
    pub arch: String,
    /// `Depends`: groups of alternatives, all groups required.
    pub depends: Vec<Vec<Dep>>,
    /// `Pre-Depends`, as `depends`.
    pub pre_depends: Vec<Vec<Dep>>,
    /// `Provides`: virtual name and, when versioned, the provided version.
    pub provides: Vec<(String, Option<String>)>,
    /// `Filename`: path of the `.deb` relative to the repository root.
    pub filename: String,
    /// `Size` of the `.deb` in bytes.
    pub size: u64,
    /// `SHA256` of the `.deb`, lowercase hex.
    pub sha256: String,
    /// `Installed-Size` in KiB (0 when absent).
    pub installed_size: u64,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority` (`required`, `important`, `standard`, `optional`, `extra`).
    pub priority: Option<String>,
    /// `Multi-Arch` (`same`, `foreign`, `allowed`, `no`).
    pub multi_arch: Option<String>,
}

/// One alternative of a dependency: `name[:arch] [(relation version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Package or virtual package name.
    pub name: String,
    /// Architecture qualifier, from `name:any` or `name:amd64`.
    pub arch: Option<String>,
    /// Version constraint.
    pub constraint: Option<(Relation, String)>,
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((relation, version)) = &self.constraint {
            write!(f, " ({relation} {version})")?;
        }
        Ok(())
    }
}

const PACKAGES: &str = "Packages";

/// Parses a `Packages` index (already decompressed).
pub fn parse_packages(text: &str) -> Result<Vec<Package>, AptError> {
    stanzas(PACKAGES, text)?.iter().map(package).collect()
}

fn package(stanza: &Stanza<'_>) -> Result<Package, AptError> {
    let text = |name: &'static str| -> Result<String, AptError> {
        let field = stanza.require(PACKAGES, name)?;
        if field.value.is_empty() || field.value.contains(char::is_whitespace) {
            return Err(invalid(
                field,
                format!("expected one word, found `{}`", field.value),
            ));
        }
        Ok(field.value.to_string())
    };
    let number = |field: &Field<'_>| -> Result<u64, AptError> {
        field
            .value
            .parse()
            .map_err(|_| invalid(field, format!("`{}` is not a number", field.value)))
    };
    let relations = |name: &str| -> Result<Vec<Vec<Dep>>, AptError> {
        stanza.get(name).map_or(Ok(Vec::new()), parse_relations)
    };
    let sha256 = text("SHA256")?;
    if sha256.len() != 64 || !sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
        let field = stanza.require(PACKAGES, "SHA256")?;
        return Err(invalid(field, format!("`{sha256}` is not a sha256 digest")));
    }
    Ok(Package {
        name: text("Package")?,
        version: text("Version")?,
        arch: text("Architecture")?,
        depends: relations("Depends")?,
        pre_depends: relations("Pre-Depends")?,
        provides: stanza
            .get("Provides")
            .map_or(Ok(Vec::new()), parse_provides)?,
        filename: text("Filename")?,
        size: number(stanza.require(PACKAGES, "Size")?)?,
        sha256: sha256.to_ascii_lowercase(),
        installed_size: stanza.get("Installed-Size").map_or(Ok(0), number)?,
        essential: stanza
            .get("Essential")
            .map_or(Ok(false), |f| yes_no(PACKAGES, f))?,
        priority: stanza.value("Priority").map(str::to_owned),
        multi_arch: stanza.value("Multi-Arch").map(str::to_owned),
    })
}

fn invalid(field: &Field<'_>, message: String) -> AptError {
    AptError::Field {
        file: PACKAGES,
        line: field.line,
        field: field.name.to_owned(),
        message,
    }
}

/// `a (>= 1) | b, c:any` → `[[a (>= 1), b], [c:any]]`.
fn parse_relations(field: &Field<'_>) -> Result<Vec<Vec<Dep>>, AptError> {
    field
        .value
        .split(',')
        .map(str::trim)
        .filter(|group| !group.is_empty())
        .map(|group| {
            group
                .split('|')
                .map(|alt| parse_dep(alt).map_err(|m| invalid(field, m)))
                .collect()
        })
        .collect()
}

/// `name (= version)`, comma-separated; only `=` is allowed in `Provides`.
fn parse_provides(field: &Field<'_>) -> Result<Vec<(String, Option<String>)>, AptError> {
    field
        .value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let dep = parse_dep(p).map_err(|m| invalid(field, m))?;
            if dep.arch.is_some() {
                return Err(invalid(
                    field,
                    format!("`{p}`: an architecture qualifier cannot be provided"),
                ));
            }
            match dep.constraint {
                None => Ok((dep.name, None)),
                Some((Relation::Eq, version)) => Ok((dep.name, Some(version))),
                Some((relation, _)) => Err(invalid(
                    field,
                    format!("`{p}`: only `=` may be provided, not `{relation}`"),
                )),
            }
        })
        .collect()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
}

/// One alternative: `name[:arch] [( relation version )]`, whitespace anywhere between tokens.
fn parse_dep(text: &str) -> Result<Dep, String> {
    let text = text.trim();
    let name_end = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err(format!("`{text}`: expected a package name"));
    }
    let mut rest = &text[name_end..];
    let mut arch = None;
    if let Some(qualified) = rest.strip_prefix(':') {
        let end = qualified
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(qualified.len());
        if end == 0 {
            return Err(format!("`{text}`: expected an architecture after `:`"));
        }
        arch = Some(qualified[..end].to_owned());
        rest = &qualified[end..];
    }
    let rest = rest.trim_start();
    let mut constraint = None;
    if let Some(inner) = rest.strip_prefix('(') {
        let Some((inner, after)) = inner.split_once(')') else {
            return Err(format!("`{text}`: `(` without a closing `)`"));
        };
        if !after.trim().is_empty() {
            return Err(format!(
                "`{text}`: unexpected `{}` after the version",
                after.trim()
            ));
        }
        let inner = inner.trim();
        let op_end = inner
            .find(|c| !matches!(c, '<' | '>' | '='))
            .unwrap_or(inner.len());
        let relation = Relation::parse(&inner[..op_end]).ok_or_else(|| {
            format!("`{text}`: expected a relation (`<<`, `<=`, `=`, `>=` or `>>`)")
        })?;
        let version = inner[op_end..].trim();
        if version.is_empty() || version.contains(char::is_whitespace) {
            return Err(format!("`{text}`: expected one version after `{relation}`"));
        }
        constraint = Some((relation, version.to_owned()));
    } else if !rest.is_empty() {
        return Err(format!("`{text}`: unexpected `{rest}` after the name"));
    }
    Ok(Dep {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

/// Decompresses an index file by the suffix of its name: `.gz`, `.xz`, or none.
pub fn decompress(name: &str, bytes: &[u8]) -> Result<Vec<u8>, AptError> {
    let file = name.rsplit('/').next().unwrap_or(name);
    let suffix = file.rsplit_once('.').map(|(_, s)| s);
    let mut out = Vec::new();
    let result = match suffix {
        Some("gz") => flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out),
        Some("xz") => xz2::read::XzDecoder::new_multi_decoder(bytes).read_to_end(&mut out),
        Some("bz2" | "lzma" | "lz4" | "zst" | "Z") => {
            return Err(AptError::Compression {
                path: name.to_owned(),
            })
        }
        _ => return Ok(bytes.to_vec()),
    };
    result.map_err(|source| AptError::Decompress {
        path: name.to_owned(),
        source,
    })?;
    Ok(out)
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that `bytes`, fetched as `path` (relative to the suite, as listed in `Release`, e.g.
/// `main/binary-amd64/Packages.xz`), have the size and sha256 that `release` lists. An index
/// that `Release` does not list, or that differs, is refused.
pub fn verify(path: &str, bytes: &[u8], release: &Release) -> Result<(), AptError> {
    let Some((expected_size, expected)) = release.sha256.get(path) else {
        return Err(AptError::NotInRelease {
            path: path.to_owned(),
        });
    };
    let actual = sha256_hex(bytes);
    let actual_size = bytes.len() as u64;
    if actual_size != *expected_size || actual != *expected {
        return Err(AptError::Mismatch {
            path: path.to_owned(),
            expected_size: *expected_size,
            expected: expected.clone(),
            actual_size,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/etc/apt/sources.list.d/debian.sources` of a bookworm machine, host names replaced.
    const DEBIAN_SOURCES: &str = "\
Types: deb
# http://snapshot.invalid/archive/debian/20250520T000000Z
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.invalid/archive/debian-security/20250520T000000Z
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    fn source(uri: &str, suites: &[&str], components: &[&str]) -> Source {
        Source {
            uri: uri.into(),
            suites: suites.iter().map(|s| (*s).to_owned()).collect(),
            components: components.iter().map(|s| (*s).to_owned()).collect(),
            signed_by: None,
            arch: None,
            trusted: false,
        }
    }

    #[test]
    fn deb822_sources_of_this_machine() {
        let keyring = Some("/usr/share/keyrings/debian-archive-keyring.gpg".to_owned());
        let got = parse_deb822_sources(DEBIAN_SOURCES).unwrap();
        let want = vec![
            Source {
                signed_by: keyring.clone(),
                ..source(
                    "http://mirror.invalid/debian",
                    &["bookworm", "bookworm-updates"],
                    &["main"],
                )
            },
            Source {
                signed_by: keyring,
                ..source(
                    "http://mirror.invalid/debian-security",
                    &["bookworm-security"],
                    &["main"],
                )
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn deb822_sources_options_and_skips() {
        let text = "\
# leading comment
Types: deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs: http://mirror.invalid/a
 http://mirror.invalid/b
Suites: bookworm
Components: main
 contrib
# a comment between fields
Architectures: amd64 arm64
Trusted: yes

Enabled: no
Types: deb
URIs: http://mirror.invalid/off
Suites: bookworm
Components: main

types: deb
uris: file:/www/pigsty/
suites: ./
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF
 -----END PGP PUBLIC KEY BLOCK-----
";
        let got = parse_deb822_sources(text).unwrap();
        let arch = Some(vec!["amd64".to_owned(), "arm64".to_owned()]);
        let multi = |uri| Source {
            arch: arch.clone(),
            trusted: true,
            ..source(uri, &["bookworm"], &["main", "contrib"])
        };
        let flat = Source {
            signed_by: Some(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----"
                    .into(),
            ),
            ..source("file:/www/pigsty/", &["./"], &[])
        };
        assert_eq!(
            got,
            vec![
                multi("http://mirror.invalid/a"),
                multi("http://mirror.invalid/b"),
                flat
            ]
        );
    }

    #[test]
    fn deb822_sources_errors() {
        let cases = [
            (
                "Types: deb\nSuites: x\nComponents: main\n",
                "deb822 sources line 1: stanza has no `URIs` field",
            ),
            (
                "Types: deb\nURIs: http://mirror.invalid/\nSuites: x\n",
                "deb822 sources line 1: suite `x` needs at least one component",
            ),
            (
                "Types: deb\nURIs: u\nSuites: x\nComponents: main\nEnabled: maybe\n",
                "deb822 sources line 5: field `Enabled`: expected `yes` or `no`, found `maybe`",
            ),
            (
                " stray\n",
                "deb822 sources line 1: continuation line outside a field",
            ),
            (
                "Types deb\n",
                "deb822 sources line 1: expected `Field: value`, found `Types deb`",
            ),
            (
                "Types: deb\ntypes: deb\n",
                "deb822 sources line 2: field `types` appears twice in one stanza",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_deb822_sources(text).unwrap_err().to_string(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn one_line_sources() {
        let text = "\
# comment
deb http://mirror.invalid/debian bookworm main contrib non-free-firmware

deb-src http://mirror.invalid/debian bookworm main
deb [ arch=amd64,arm64 signed-by=/etc/apt/keyrings/pg.asc ] http://mirror.invalid/pg bookworm-pgdg main # trailing
deb [trusted=yes] file:/www/pigsty/ ./
";
        let got = parse_sources_list(text).unwrap();
        assert_eq!(
            got,
            vec![
                source(
                    "http://mirror.invalid/debian",
                    &["bookworm"],
                    &["main", "contrib", "non-free-firmware"]
                ),
                Source {
                    arch: Some(vec!["amd64".into(), "arm64".into()]),
                    signed_by: Some("/etc/apt/keyrings/pg.asc".into()),
                    ..source("http://mirror.invalid/pg", &["bookworm-pgdg"], &["main"])
                },
                Source {
                    trusted: true,
                    ..source("file:/www/pigsty/", &["./"], &[])
                },
            ]
        );
    }

    #[test]
    fn one_line_sources_errors() {
        let cases = [
            (
                "rpm http://x/ y main\n",
                "sources.list line 1: unknown type `rpm` (expected `deb` or `deb-src`)",
            ),
            (
                "\ndeb http://x/\n",
                "sources.list line 2: expected a URI and a suite",
            ),
            (
                "deb [arch=amd64 http://x/ y main\n",
                "sources.list line 1: `[` without a closing `]`",
            ),
            (
                "deb [trusted] http://x/ y main\n",
                "sources.list line 1: option `trusted` is not `key=value`",
            ),
            (
                "deb http://x/ bookworm\n",
                "sources.list line 1: suite `bookworm` needs at least one component",
            ),
            (
                "deb file:/r/ ./ main\n",
                "sources.list line 1: flat suite `./` takes no components",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_sources_list(text).unwrap_err().to_string(),
                want,
                "{text}"
            );
        }
    }

    const SIGNED: &str = "\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: oldstable-updates
Codename: bookworm-updates
Architectures: all amd64 arm64
Components: main contrib
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 contrib/Contents-all
 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae        3 main/binary-amd64/Packages
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE
=abcd
-----END PGP SIGNATURE-----
";

    #[test]
    fn clearsigned_body() {
        let body = strip_clearsign(SIGNED).unwrap();
        assert!(
            body.starts_with("Origin: Debian\nSuite: oldstable-updates\n"),
            "{body}"
        );
        assert!(body.ends_with("main/binary-amd64/Packages\n"), "{body}");
        assert!(!body.contains("PGP"));
        let escaped = "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\nA: 1\r\n- - b\r\n\
                       - -----x\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nabc\r\n-----END PGP SIGNATURE-----\r\n\r\n";
        assert_eq!(strip_clearsign(escaped).unwrap(), "A: 1\n- b\n-----x\n");
    }

    #[test]
    fn clearsign_errors() {
        let cases = [
            (
                format!("junk\n{SIGNED}"),
                "InRelease line 1: expected `-----BEGIN PGP SIGNED MESSAGE-----`",
            ),
            (
                format!("{SIGNED}Suite: evil\n"),
                "InRelease line 17: text after the signature",
            ),
            (
                SIGNED.replace("Hash: SHA256", "Comment: x"),
                "InRelease line 2: expected a `Hash:` header or a blank line",
            ),
            (
                SIGNED.replace("Origin:", "-Origin:"),
                "InRelease line 4: line starts with `-` but is not dash-escaped",
            ),
            (
                SIGNED.replace("-----END PGP SIGNATURE-----\n", ""),
                "InRelease line 15: no `-----END PGP SIGNATURE-----`",
            ),
            (
                SIGNED
                    .split("-----BEGIN PGP SIGNATURE")
                    .next()
                    .unwrap()
                    .to_owned(),
                "InRelease line 11: no `-----BEGIN PGP SIGNATURE-----`",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(strip_clearsign(&text).unwrap_err().to_string(), want);
        }
    }

    fn release() -> Release {
        parse_release(&strip_clearsign(SIGNED).unwrap()).unwrap()
    }

    #[test]
    fn release_fields() {
        let r = release();
        assert_eq!(r.suite.as_deref(), Some("oldstable-updates"));
        assert_eq!(r.codename.as_deref(), Some("bookworm-updates"));
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(
            r.sha256.get("main/binary-amd64/Packages"),
            Some(&(
                3,
                "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".to_owned()
            ))
        );
        assert_eq!(r.sha256.len(), 2);
    }

    #[test]
    fn release_errors() {
        let cases = [
            ("", "Release line 1: file is empty"),
            ("Suite: x\n", "Release line 1: stanza has no `SHA256` field"),
            (
                "Suite: x\nSHA256:\n abc 1 p\n",
                "Release line 3: field `SHA256`: `abc` is not a sha256 digest",
            ),
            (
                "Suite: x\nSHA256:\n abc p\n",
                "Release line 3: field `SHA256`: expected `sha256 size path`, found `abc p`",
            ),
            (
                "Suite: x\nSHA256:\n\n\nSuite: y\n",
                "Release line 5: a second stanza (Release has exactly one)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_release(text).unwrap_err().to_string(),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn verify_against_release() {
        let r = release();
        verify("main/binary-amd64/Packages", b"foo", &r).unwrap();
        let err = verify("main/binary-amd64/Packages", b"fox", &r)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "`main/binary-amd64/Packages` does not match Release: got 3 bytes with sha256 {}, \
                 Release says 3 bytes with sha256 \
                 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                sha256_hex(b"fox")
            )
        );
        let err = verify("main/binary-arm64/Packages", b"foo", &r)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "`main/binary-arm64/Packages` is not listed in the SHA256 field of Release"
        );
        let err = verify("main/binary-amd64/Packages", b"fooo", &r)
            .unwrap_err()
            .to_string();
        assert!(err.contains("got 4 bytes"), "{err}");
    }

    const PACKAGES_TEXT: &str = "\
Package: nginx-light
Source: nginx
Version: 1.22.1-9+deb12u9
Installed-Size: 92
Architecture: all
Depends: libnginx-mod-http-echo (>= 1:0.63-4~), nginx (>= 1.22.1-9+deb12u9), nginx (<< 1.22.1-9+deb12u9.1~)
Description: nginx web/proxy server (basic version)
Tag: implemented-in::c, interface::daemon,
 role::program, web::server
Priority: optional
Filename: pool/main/n/nginx/nginx-light_1.22.1-9+deb12u9_all.deb
Size: 81060
SHA256: 0ce1d5e09be853c9d02ee820d152078111e2a99af810aca891e75a9215b3b926

Package:   mawk
Version: 1.3.4.20200120-3.1
Architecture: amd64
Essential: yes
Multi-Arch: foreign
Pre-Depends: libc6 (>= 2.34)
Provides: awk
Depends: a(>=1)|b ,
 c:any ,d:amd64( << 2~ )
Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
Size: 102
SHA256: 0CE1D5E09BE853C9D02EE820D152078111E2A99AF810ACA891E75A9215B3B926
";

    fn dep(name: &str, arch: Option<&str>, constraint: Option<(Relation, &str)>) -> Dep {
        Dep {
            name: name.into(),
            arch: arch.map(str::to_owned),
            constraint: constraint.map(|(r, v)| (r, v.to_owned())),
        }
    }

    #[test]
    fn packages_index() {
        let pkgs = parse_packages(PACKAGES_TEXT).unwrap();
        assert_eq!(pkgs.len(), 2);
        let light = &pkgs[0];
        assert_eq!(light.name, "nginx-light");
        assert_eq!(light.arch, "all");
        assert_eq!(light.installed_size, 92);
        assert_eq!(light.size, 81060);
        assert_eq!(light.priority.as_deref(), Some("optional"));
        assert_eq!(
            light.depends,
            vec![
                vec![dep(
                    "libnginx-mod-http-echo",
                    None,
                    Some((Relation::Ge, "1:0.63-4~"))
                )],
                vec![dep("nginx", None, Some((Relation::Ge, "1.22.1-9+deb12u9")))],
                vec![dep(
                    "nginx",
                    None,
                    Some((Relation::Lt, "1.22.1-9+deb12u9.1~"))
                )],
            ]
        );
        let mawk = &pkgs[1];
        assert_eq!(mawk.name, "mawk");
        assert!(mawk.essential);
        assert_eq!(mawk.multi_arch.as_deref(), Some("foreign"));
        assert_eq!(mawk.provides, vec![("awk".to_owned(), None)]);
        assert_eq!(
            mawk.pre_depends,
            vec![vec![dep("libc6", None, Some((Relation::Ge, "2.34")))]]
        );
        assert_eq!(
            mawk.depends,
            vec![
                vec![
                    dep("a", None, Some((Relation::Ge, "1"))),
                    dep("b", None, None)
                ],
                vec![dep("c", Some("any"), None)],
                vec![dep("d", Some("amd64"), Some((Relation::Lt, "2~")))],
            ]
        );
        assert_eq!(mawk.sha256, light.sha256);
        assert_eq!(mawk.installed_size, 0);
        assert_eq!(mawk.depends[2][0].to_string(), "d:amd64 (<< 2~)");
    }

    #[test]
    fn packages_errors() {
        let base = "Package: p\nVersion: 1\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: \
                    0ce1d5e09be853c9d02ee820d152078111e2a99af810aca891e75a9215b3b926\n";
        let cases = [
            (format!("{base}Depends: a (>= )\n"), "Packages line 7: field `Depends`: `a (>= )`: expected one version after `>=`"),
            (format!("{base}Depends: a (~ 1)\n"), "Packages line 7: field `Depends`: `a (~ 1)`: expected a relation (`<<`, `<=`, `=`, `>=` or `>>`)"),
            (format!("{base}Depends: a (>= 1\n"), "Packages line 7: field `Depends`: `a (>= 1`: `(` without a closing `)`"),
            (format!("{base}Depends: A\n"), "Packages line 7: field `Depends`: `A`: expected a package name"),
            (format!("{base}Provides: v (>= 1)\n"), "Packages line 7: field `Provides`: `v (>= 1)`: only `=` may be provided, not `>=`"),
            (format!("{base}Installed-Size: big\n"), "Packages line 7: field `Installed-Size`: `big` is not a number"),
            (base.replace("Size: 1\n", ""), "Packages line 1: stanza has no `Size` field"),
            (base.replace("SHA256: 0", "SHA256: x"), "Packages line 6: field `SHA256`: `xce1d5e09be853c9d02ee820d152078111e2a99af810aca891e75a9215b3b926` is not a sha256 digest"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_packages(&text).unwrap_err().to_string(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn decompresses_by_suffix() {
        use std::io::Write;
        let text = PACKAGES_TEXT.as_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(text).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(
            decompress("main/binary-amd64/Packages", text).unwrap(),
            text
        );
        assert_eq!(
            decompress("main/binary-amd64/Packages.gz", &gz).unwrap(),
            text
        );
        assert_eq!(
            decompress("main/binary-amd64/Packages.xz", &xz).unwrap(),
            text
        );
        assert_eq!(
            decompress("Packages.xz", &gz).unwrap_err().to_string(),
            "`Packages.xz`: cannot decompress"
        );
        assert!(matches!(
            decompress("Packages.bz2", text),
            Err(AptError::Compression { .. })
        ));
    }

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
