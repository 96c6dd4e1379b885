//! Packages: Debian repositories (`apt`), dependency resolution (`resolve`), `.deb` reading (`deb`).
//!
//! Owns everything between an APT source and the verified files of a package. It does not
//! build layers (that is `oci`) and never runs maintainer scripts.

pub mod apt;
pub mod deb;
pub mod download;
pub mod fetch;
pub mod resolve;
pub mod version;
