//! The domain's error vocabulary. The HTTP layer maps each variant to a protocol error
//! in one exhaustive match, so adding a variant forces a decision about its wire form.

use crate::digest::Digest;
use crate::manifest::ManifestError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(Digest),
    #[error("upload unknown to registry")]
    UploadUnknown,
    #[error("upload invalid: {0}")]
    UploadInvalid(String),
    #[error("digest did not match content: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("invalid digest {value:?}: {reason}")]
    DigestInvalid { value: String, reason: String },
    #[error("size invalid: {0}")]
    SizeInvalid(String),
    #[error("requested range not satisfiable: {0}")]
    RangeInvalid(String),
    #[error("manifest references unknown {kind}: {digests:?}")]
    ManifestBlobUnknown { kind: &'static str, digests: Vec<Digest> },
    #[error(transparent)]
    ManifestInvalid(#[from] ManifestError),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("invalid tag: {0}")]
    TagInvalid(String),
    #[error("invalid pagination parameter {param}: {reason}")]
    PaginationInvalid { param: &'static str, reason: String },
    #[error("operation unsupported: {0}")]
    Unsupported(String),
    #[error("storage is full or read-only: {0}")]
    StorageUnavailable(String),
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    #[error("the request body ended early or could not be read: {0}")]
    BodyIncomplete(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}
