//! The blob store: bytes only, addressed by digest. The filesystem driver lives in
//! `berth-blob`; an S3-compatible one will implement the same trait.

use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

use crate::digest::{Digest, Hasher};
use crate::name::RepoName;

/// A request or response body as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// The client's body failed (connection closed early, malformed chunking).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("request body: {0}")]
    Body(#[from] BodyError),
    #[error("request body is longer than {limit} bytes")]
    TooLong { limit: u64 },
    #[error("storage: {0}")]
    Io(#[from] io::Error),
}

/// One part of an upload, written and made durable.
#[derive(Debug)]
pub struct WrittenPart {
    pub name: String,
    pub len: u64,
    pub hasher: Hasher,
}

/// A blob file as the storage lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    pub digest: Digest,
    pub size: u64,
    /// When the file was last written; `None` if the storage did not say.
    pub modified: Option<std::time::SystemTime>,
}

/// The marker [`BlobStore::mark_owned`] writes, under `docker/registry/v2/`: outside the
/// `blobs` and `repositories` trees, where Distribution never looks.
pub const OWNED_MARKER: &str = "berth-owned";

/// A readable blob: its length and a stream of the requested bytes.
pub struct BlobReader {
    pub len: u64,
    pub body: Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a stored blob, `None` if absent.
    async fn stat(&self, digest: &Digest) -> io::Result<Option<u64>>;
    /// Opens `len` bytes from `start`. The caller checked the range against the size.
    async fn open(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobReader>;
    /// Streams `body` into a new durable part of an upload, hashing as it arrives.
    /// On any failure nothing is left behind.
    async fn write_part(
        &self,
        repo: &RepoName,
        upload_id: &str,
        hasher: Hasher,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<WrittenPart, WriteError>;
    /// Re-reads the parts to compute a digest with `algorithm` (used when the saved
    /// hash state is missing or of another algorithm).
    async fn hash_parts(
        &self,
        repo: &RepoName,
        upload_id: &str,
        parts: &[String],
        hasher: Hasher,
    ) -> io::Result<Digest>;
    /// Makes the concatenated parts visible as blob `digest`, durably and atomically.
    /// The caller verified the digest.
    async fn commit(&self, repo: &RepoName, upload_id: &str, parts: &[String], digest: &Digest) -> io::Result<()>;
    /// Removes an upload's parts (after commit, cancel or failure). Absent is fine.
    async fn delete_upload(&self, repo: &RepoName, upload_id: &str) -> io::Result<()>;
    /// Removes a part that was written but not recorded.
    async fn delete_part(&self, repo: &RepoName, upload_id: &str, part: &str) -> io::Result<()>;
    /// Upload directories last modified before `before`, as (repository, upload id):
    /// the janitor removes those the metadata DB does not know (left by a crash).
    async fn upload_dirs_older_than(&self, before: std::time::SystemTime) -> io::Result<Vec<(RepoName, String)>>;
    /// Removes a blob's bytes (garbage collection only). Absent is fine.
    async fn delete(&self, digest: &Digest) -> io::Result<()>;
    /// Checks that storage is reachable and writable, for health checks.
    async fn check(&self) -> io::Result<()>;
    /// Up to `limit` stored blobs whose digests sort after `after`, in digest order: GC
    /// pages through them to find files the database does not know.
    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> io::Result<Vec<ListedBlob>>;
    /// Whether this storage is Berth's own: created empty by Berth, or adopted by an
    /// operator (`berth storage adopt`). Only then may GC remove blob files the database
    /// does not know; a Distribution or Harbor storage served in place keeps them.
    async fn owned(&self) -> io::Result<bool>;
    /// Records that the storage is Berth's own (see [`BlobStore::owned`]).
    async fn mark_owned(&self) -> io::Result<()>;
    /// A URL from which a client can fetch the blob directly for `expires`, if this
    /// storage can hand those out (S3 presigned GETs); `None` means serve the bytes.
    fn presigned_get(&self, _digest: &Digest, _expires: std::time::Duration) -> Option<String> {
        None
    }
}
