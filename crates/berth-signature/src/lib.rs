//! Signatures on artifacts, free of HTTP and storage.
//!
//! - [`accessory`]: which manifests Harbor counts as accessories of another (cosign
//!   signatures by `sha256-<hex>.sig` tag or by `subject`, Notation signatures, Harbor's
//!   SBOMs, any other `subject` manifest), with Harbor's type strings.
//! - [`trust`]: a project's trust configuration (cosign ECDSA P-256 public keys, Notation
//!   X.509 root certificates), parsed and checked, naming the bad field.
//! - [`cosign`]: verifies cosign's simple-signing layers: an ASN.1 DER ECDSA P-256
//!   signature over SHA-256 of the payload, whose `docker-manifest-digest` must be the
//!   signed manifest's.
//! - [`notation`]: verifies a Notation JWS envelope: the certificate chain in `x5c` up to
//!   a configured root (code-signing usage), the JWS signature with the leaf's key, the
//!   critical headers, expiry, and that the payload's target is the signed manifest.
//!
//! Harbor's own policy checks only that a signature exists; Berth verifies when the
//! project has trust configured (see docs/signatures.md).

pub mod accessory;
pub mod cosign;
pub mod notation;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trust;

pub use accessory::{AccessoryKind, classify, cosign_tag_for, cosign_tag_subject};
pub use trust::{Trust, TrustError};

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The envelope or payload is not what the format says.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// Well-formed, but no configured key or root accepts it.
    #[error("signature not trusted: {0}")]
    Untrusted(String),
    /// Valid, but for another manifest.
    #[error("signature is for {signed}, not {wanted}")]
    WrongSubject { signed: String, wanted: String },
}

fn b64_std(s: &str) -> Result<Vec<u8>, VerifyError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| VerifyError::Malformed(format!("bad base64: {e}")))
}

fn b64_url(s: &str) -> Result<Vec<u8>, VerifyError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| VerifyError::Malformed(format!("bad base64url: {e}")))
}
