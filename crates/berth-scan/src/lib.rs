//! Berth's built-in scanner, free of HTTP and storage: apply an image's layers
//! ([`layers`]), read what is installed ([`packages`]), write SBOMs ([`sbom`]), compare
//! versions the way each ecosystem does ([`version`]), match OSV advisories ([`osv`]) and
//! shape Harbor's vulnerability report ([`report`]).

pub mod auditable;
pub mod cvss;
pub mod gobin;
pub mod import;
pub mod layers;
pub mod osv;
pub mod packages;
pub mod report;
pub mod rpmdb;
pub mod sbom;
#[cfg(feature = "testing")]
pub mod testing;
pub mod version;

pub use layers::Squashed;
pub use packages::{Inventory, inventory};

/// The inventory of an image whose layer blobs are given bottom first.
pub fn inventory_of_layers<'a>(layers: impl IntoIterator<Item = &'a [u8]>) -> Result<Inventory, layers::LayerError> {
    let mut fs = Squashed::default();
    for (i, l) in layers.into_iter().enumerate() {
        fs.apply(i, l)?;
    }
    Ok(inventory(&fs))
}
