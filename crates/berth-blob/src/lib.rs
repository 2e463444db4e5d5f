//! Blob storage drivers. Only the filesystem driver exists so far; it keeps the CNCF
//! Distribution layout so an existing Distribution or Harbor store can be served in place.

mod background;
mod fs;
mod watchdog;

pub use fs::{DEFAULT_STALL_LIMIT, FsBlobStore};
