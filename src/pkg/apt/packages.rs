//! `Packages` indexes: one [`Package`] per stanza, with its `Depends`/`Pre-Depends`
//! relations and `Provides` parsed, and decompressing an index by its file suffix
//! (<https://wiki.debian.org/DebianRepository/Format#A.22Packages.22_Indices>).
//!
//! Pure: fetching and checking the index against `Release` are done elsewhere.

use std::fmt;
use std::io::Read;

use super::deb822::{stanzas, yes_no, Field, Stanza};
use super::AptError;
use crate::pkg::version::Relation;

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
        Some("xz") => liblzma::read::XzDecoder::new_multi_decoder(bytes).read_to_end(&mut out),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
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
}
