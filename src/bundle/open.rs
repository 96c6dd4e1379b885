//! Reading a bundle as a host does: every file exactly once, through a digest check.
//!
//! [`Opened::open`] reads `manifest.json` (bounded, strictly typed) and `manifest.sig`; the
//! caller checks the signature and the host before anything else is read. [`Opened::check_files`]
//! then reads every listed file once: blobs are hashed while they are copied into a private
//! directory (or only hashed), every other file is kept in memory — so nothing is read from the
//! bundle directory again after its digest was checked. The bundle is read through
//! [`crate::fsx::Root`]: a symlink, device or fifo in it is a problem, never followed.

use std::collections::BTreeMap;
use std::io::{Read as _, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::digest::HashWriter;
use crate::fsx::{Kind, Links, Root};
use crate::manifest::{Digest, Manifest, SIGNATURE};

/// The largest `manifest.json` or non-blob file read into memory.
const SMALL: u64 = 64 << 20;

/// All non-blob files of a bundle together (units, secrets, SBOMs: a few MiB in practice).
const SMALL_TOTAL: u64 = 256 << 20;

/// A bundle whose manifest has been read.
pub struct Opened {
    root: Root,
    /// The manifest, parsed and checked.
    pub manifest: Manifest,
    /// Its exact bytes (what the signature covers).
    pub bytes: Vec<u8>,
    /// `manifest.sig`, when present.
    pub signature: Option<Vec<u8>>,
    /// Problems of the manifest itself (form, generation id).
    pub problems: Vec<String>,
}

/// What [`Opened::check_files`] read.
pub struct Checked {
    /// Every listed file that is not a blob, by bundle path, as read and verified.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Blobs copied into the private directory (by digest); those the host had are not.
    pub blobs: Vec<Digest>,
    /// Differences from the manifest.
    pub problems: Vec<String>,
}

fn read_small(root: &Root, rel: &Path) -> Result<Vec<u8>> {
    let mut f = root.open_file(rel)?;
    let mut out = Vec::new();
    (&mut f).take(SMALL + 1).read_to_end(&mut out)?;
    if out.len() as u64 > SMALL {
        anyhow::bail!("{}: larger than {} MiB", rel.display(), SMALL >> 20);
    }
    Ok(out)
}

impl Opened {
    /// Reads and checks the manifest of the bundle directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let root = Root::open(dir, Links::Refuse)?;
        let bytes = read_small(&root, Path::new("manifest.json"))
            .with_context(|| format!("reading {}/manifest.json", dir.display()))?;
        let manifest =
            Manifest::parse(&bytes).with_context(|| format!("bundle {}", dir.display()))?;
        let mut problems = Vec::new();
        if manifest.to_canonical() != bytes {
            problems.push("manifest.json: not in canonical form".to_owned());
        }
        let computed = manifest.compute_generation();
        if manifest.id() != computed {
            problems.push(format!(
                "manifest.json: generation {} is not the digest of its content ({computed})",
                manifest.id()
            ));
        }
        let signature = match root.meta(Path::new(SIGNATURE))? {
            Some(m) if m.kind == Kind::File => Some(read_small(&root, Path::new(SIGNATURE))?),
            Some(_) => {
                problems.push(format!("{SIGNATURE}: not a regular file"));
                None
            }
            None => None,
        };
        Ok(Self {
            root,
            manifest,
            bytes,
            signature,
            problems,
        })
    }

    /// Reads every file once against the manifest: blobs into `blob_dir` (named by their
    /// hex digest, only when they verify) or only hashed (without a `blob_dir`, or when `have`
    /// says the host has the blob already); the rest into memory.
    pub fn check_files(
        &self,
        blob_dir: Option<&Root>,
        have: &dyn Fn(&Digest) -> bool,
    ) -> Result<Checked> {
        let mut problems = Vec::new();
        let mut files = BTreeMap::new();
        let mut blobs = Vec::new();
        let mut present = BTreeMap::new();
        let mut in_memory = 0u64;
        for (rel, meta) in self.root.walk()? {
            let rel_s = rel.to_string_lossy().into_owned();
            if rel_s == "manifest.json" || rel_s == SIGNATURE {
                continue;
            }
            match meta.kind {
                Kind::Dir => {}
                Kind::File => {
                    present.insert(rel_s, rel);
                }
                _ => problems.push(format!("{rel_s}: not a regular file")),
            }
        }
        for (rel, want) in &self.manifest.files {
            let blob = rel.strip_prefix("oci/blobs/sha256/").is_some();
            let Some(path) = present.remove(rel) else {
                // A pulled bundle leaves out the blobs the host's store holds (verified when they
                // entered it, and again whenever they are read).
                if !(blob && have(&want.digest)) {
                    problems.push(format!("{rel}: missing"));
                }
                continue;
            };
            let mut copied = false;
            let got = if blob {
                let to = blob_dir.filter(|_| !have(&want.digest));
                copied = to.is_some();
                self.copy_blob(&path, &want.digest, to)?
            } else {
                let bytes = read_small(&self.root, &path)?;
                in_memory += bytes.len() as u64;
                if in_memory > SMALL_TOTAL {
                    anyhow::bail!(
                        "{rel}: the bundle's files other than blobs exceed {} MiB in all",
                        SMALL_TOTAL >> 20
                    );
                }
                let d = Digest::of(&bytes);
                if d == want.digest {
                    files.insert(rel.clone(), bytes);
                }
                d
            };
            if got == want.digest {
                if copied {
                    blobs.push(want.digest.clone());
                }
            } else {
                problems.push(format!(
                    "{rel}: sha256 is {got}, the manifest says {}",
                    want.digest
                ));
            }
        }
        for rel in present.keys() {
            problems.push(format!("{rel}: not in the manifest"));
        }
        Ok(Checked {
            files,
            blobs,
            problems,
        })
    }

    /// Hashes a blob while copying it into `to` (under a temporary name, renamed to its digest
    /// only when it verifies); returns what it hashed to.
    fn copy_blob(&self, rel: &Path, want: &Digest, to: Option<&Root>) -> Result<Digest> {
        let mut src = std::io::BufReader::with_capacity(1 << 20, self.root.open_file(rel)?);
        let mut out = to
            .map(|dir| dir.create_atomic(Path::new(want.hex()), 0o644))
            .transpose()?;
        let mut sink = std::io::sink();
        let mut hashed = HashWriter::new(match out.as_mut() {
            Some(o) => o as &mut dyn Write,
            None => &mut sink,
        });
        std::io::copy(&mut src, &mut hashed)
            .with_context(|| format!("copying {}", rel.display()))?;
        let got = hashed.digest();
        // Named by its digest only when it verifies; otherwise dropping it removes it.
        if let Some(o) = out.filter(|_| &got == want) {
            o.commit()?;
        }
        Ok(got)
    }
}
