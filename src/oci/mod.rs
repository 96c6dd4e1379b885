//! OCI images: deterministic layers, canonical JSON, a content-addressed blob store and image
//! layouts (image-spec 1.1).

pub mod blob;
pub mod json;
pub mod layer;
pub mod layout;
