//! APT sources: the one-line `sources.list` format and the deb822 `*.sources` format, both
//! parsed into [`Source`] values (sources.list(5)).
//!
//! Pure: the caller reads the files. Options that only matter when fetching (`lang`, `pdiffs`,
//! `by-hash`, …) are ignored.

use super::deb822::{stanzas, words, yes_no};
use super::AptError;

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

impl Source {
    /// How messages name the source: its URI and suites (`http://deb.example/debian bookworm`).
    #[must_use]
    pub fn name(&self) -> String {
        format!("{} {}", self.uri, self.suites.join(" "))
    }

    /// Whether `given` (from `--drop-source`) names this source: its URI, with or without a
    /// trailing `/`.
    #[must_use]
    pub fn is(&self, given: &str) -> bool {
        self.uri.trim_end_matches('/') == given.trim().trim_end_matches('/')
    }
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
}
