//! TLS for Berth, all on rustls with the ring provider (the one the S3 client already
//! links): the HTTPS listener's certificate, reloaded in place when its files change
//! (`server`), and client configurations for PostgreSQL and Redis that verify a server
//! the way libpq's `sslmode` says (`client`).

pub mod client;
pub mod server;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// ring, passed explicitly to every configuration built here, so nothing depends on which
/// process-wide default some other crate installed first.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file's certificates (a chain, or CA certificates), failing when there is none.
pub fn read_certs(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", path.display()));
    }
    Ok(certs)
}

#[cfg(feature = "testing")]
pub mod testing;
