//! What a `.deb` says it is: the `Package`, `Version` and `Architecture` fields of its own
//! `control` file, with the size and sha256 of its bytes.
//!
//! A repository index or a lock only *claims* which package a file is; this is what the file
//! itself says, read without expanding its data archive. Comparing the two is the caller's job
//! (`lock` knows what was asked for); the SBOM lists this, not the claim.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::archive::Budget;
use super::{ar, control, DebError, Limits};

/// A package as its `.deb` describes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The control file's `Package`.
    pub package: String,
    /// The control file's `Version`.
    pub version: String,
    /// The control file's `Architecture`.
    pub architecture: String,
    /// Size of the `.deb` in bytes.
    pub size: u64,
    /// sha256 of the `.deb`, lowercase hex.
    pub sha256: String,
}

impl Identity {
    /// The identity of the package `bytes` whose control fields are `control` (which holds
    /// `Package`, `Version` and `Architecture`: [`super::read`] refuses a control file without
    /// them).
    pub fn of(control: &BTreeMap<String, String>, bytes: &[u8]) -> Self {
        let field = |name: &str| control.get(name).cloned().unwrap_or_default();
        Identity {
            package: field("Package"),
            version: field("Version"),
            architecture: field("Architecture"),
            size: bytes.len() as u64,
            sha256: crate::digest::sha256_hex(bytes),
        }
    }
}

/// Reads what the `.deb` `bytes` says it is: the outer layout and the control archive are
/// checked as [`super::read`] checks them; the data archive is not decompressed.
pub fn identity(bytes: &[u8], limits: &Limits) -> Result<Identity, DebError> {
    let members = ar::members(bytes)?;
    let (control_member, _) = ar::layout(&members)?;
    let budget = Budget {
        used: Cell::new(0),
        limits,
        deb: bytes.len() as u64,
    };
    let fields = control::read_control(control_member, &budget)?;
    Ok(Identity::of(&fields, bytes))
}
