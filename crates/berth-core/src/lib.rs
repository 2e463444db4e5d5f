//! Berth's domain model. This crate knows nothing about HTTP, SQL or the disk layout:
//! it parses and validates what clients send (names, references, digests, manifests),
//! defines the error vocabulary, and declares the metadata store trait that the
//! SQLite and PostgreSQL backends implement.

pub mod access;
pub mod audit;
pub mod authn;
pub mod blobstore;
pub mod bootstrap;
pub mod cve_allowlist;
pub mod digest;
pub mod error;
pub mod identity;
pub mod manifest;
pub mod name;
pub mod natural;
pub mod policy;
pub mod pull_policy;
pub mod quota;
pub mod registry;
pub mod settings;
pub mod store;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::CoreError;
pub use name::{Reference, RepoName, Tag};
