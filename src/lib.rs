//! infragen: compile a Pigsty-style INFRA inventory into immutable, validated, per-host artifacts.
//!
//! The pipeline, one module per stage: [`profile`] (parse the inventory) → [`plan`] (resolve
//! and validate) → [`render`] (file trees) → [`validate`] (the real programs check the files).
//! [`cli`] is the only module that prints.

pub mod activate;
pub mod age;
pub mod bases;
pub mod build;
pub mod bundle;
pub mod cli;
pub mod component;
pub mod content;
pub mod digest;
pub mod duration;
pub mod extraction;
pub mod fsx;
pub mod image;
pub mod keypath;
pub mod lock;
pub mod manifest;
pub mod net;
pub mod oci;
pub mod output;
pub mod params;
pub mod pkg;
pub mod pki;
pub mod plan;
pub mod plural;
pub mod problem;
pub mod profile;
pub mod progress;
pub mod registry;
pub mod render;
pub mod repo;
pub mod secrets;
pub mod ship;
pub mod sign;
pub mod tree;
pub mod upstream;
pub mod validate;
pub mod yaml;
