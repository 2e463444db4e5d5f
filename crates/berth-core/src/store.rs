//! The metadata store: everything but blob bytes. Each method is one transaction.
//! Implemented by `berth-store-sqlite` (embedded default) and, for HA, PostgreSQL.
//! Every backend must pass the same conformance suite.

pub mod catalog;
pub mod cluster;
pub mod gc;
pub mod identity;
pub mod jobs;
pub mod labels;
pub mod outbox;
pub mod policies;
pub mod vulns;
pub mod webhooks;

use async_trait::async_trait;

use crate::digest::Digest;
use crate::name::{Reference, RepoName, Tag};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, timed out or out of connections; safe to retry.
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reports. Never shown to clients.
    #[error("metadata database error: {0}")]
    Backend(String),
    /// The write would take its project over its storage limit; nothing was written.
    #[error("{0}")]
    QuotaExceeded(crate::quota::QuotaExceeded),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A blob row. Rows in state `deleting` are treated as absent by every API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: bytes::Bytes,
}

/// A manifest whose `subject` is some other manifest, as the referrers API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// Everything a manifest PUT writes, committed in one transaction.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub repo: RepoName,
    pub digest: Digest,
    pub media_type: String,
    pub content: bytes::Bytes,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
    pub subject: Option<Digest>,
    /// Blobs (config, layers) that must be linked to the repository.
    pub blobs: Vec<Digest>,
    /// Child manifests (of an index) that must exist in the repository.
    pub children: Vec<Digest>,
    pub tag: Option<Tag>,
    /// The push event, written to the outbox in the same transaction.
    pub event: Option<outbox::OutboxEvent>,
}

/// `digests` as strings, each once, in the order first seen: how every backend reports
/// the references a manifest is missing.
pub fn distinct_digests(digests: &[Digest]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    digests.iter().filter(|d| seen.insert(*d)).map(Digest::to_string).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutManifestOutcome {
    Stored,
    /// Stored, new to a project with a storage limit: its usage before and after.
    StoredInQuota(crate::quota::QuotaUse),
    MissingBlobs(Vec<Digest>),
    MissingManifests(Vec<Digest>),
}

/// An upload session. Its bytes live in storage as committed parts; this row is the
/// truth about how many bytes were accepted, so any instance can continue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: String,
    pub repo: RepoName,
    /// Bytes accepted so far.
    pub offset: u64,
    /// Saved SHA-256 state after `offset` bytes (see `Hasher::save`), if known.
    pub hash_state: Option<Vec<u8>>,
    /// Storage keys of the committed parts, in order.
    pub parts: Vec<String>,
    pub started_at: i64,
}

/// Where the metadata database is and, when it is replicated, how far behind its standbys
/// are: what the health page shows an administrator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DbTopology {
    /// `sqlite` or `postgresql`.
    pub backend: String,
    /// `embedded` (SQLite), `primary` or `standby`.
    pub role: String,
    /// The server that answered (`address:port`), when there is one and it says.
    pub server: String,
    /// Standbys streaming from this primary.
    pub standbys: Vec<Standby>,
}

/// One standby as its primary sees it (PostgreSQL's `pg_stat_replication`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Standby {
    pub name: String,
    pub address: String,
    /// `streaming`, `catchup`, …
    pub state: String,
    /// `async`, `sync`, `potential` or `quorum`.
    pub sync_state: String,
    /// How long ago the standby had replayed what the primary had then written, if known.
    pub replay_lag_ms: Option<i64>,
    /// WAL the primary has written that the standby has not replayed yet, if known.
    pub replay_lag_bytes: Option<i64>,
}

#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    // --- blobs ---
    /// A live blob linked to `repo`. A hit refreshes the blob's last-referenced time so
    /// that GC leaves it alone while a push that checked it is still running.
    async fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<BlobInfo>>;
    /// Records a verified, durable blob and links it to `repo` (creating the repository).
    /// If the blob is new to a project with a storage limit, the project's usage is read
    /// and the limit checked in the same transaction, serialised per project with every
    /// other such check (PostgreSQL: a transaction-scoped advisory lock; SQLite: the
    /// single writer): `StoreError::QuotaExceeded` and nothing written if it would be
    /// exceeded, else `Some` usage before and after (`None` when no limit applies).
    async fn commit_blob(
        &self,
        repo: &RepoName,
        blob: &BlobInfo,
        finished_upload: Option<&str>,
    ) -> StoreResult<Option<crate::quota::QuotaUse>>;
    /// Links a blob that is linked to `from` into `to`; `None` if `from` has no such blob.
    /// Checked against `to`'s project quota as `commit_blob` is, and reporting the usage
    /// before and after as it does (`None` when no limit applies or the project already
    /// held the blob).
    async fn mount_blob_with_quota(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<(BlobInfo, Option<crate::quota::QuotaUse>)>>;
    /// [`MetaStore::mount_blob_with_quota`] without the usage.
    async fn mount_blob(&self, from: &RepoName, to: &RepoName, digest: &Digest) -> StoreResult<Option<BlobInfo>> {
        Ok(self.mount_blob_with_quota(from, to, digest).await?.map(|(b, _)| b))
    }
    /// A request has begun that will write shortly (an upload's bytes are being stored):
    /// a store that interleaves background work with requests' writes (SQLite's single
    /// writer, PostgreSQL's GC claims) starts no new background transaction for a
    /// moment, so that the write does not queue behind one.
    fn write_coming(&self) {}
    /// Holds the digest lock (see `gc.rs`) for an upload about to make `digest`'s bytes
    /// visible: GC cannot remove them between the write and `commit_blob`.
    async fn lock_digest(&self, digest: &Digest) -> StoreResult<gc::DigestLock>;
    /// Removes a blob's link from a repository; `false` if there was none.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool>;

    // --- manifests and tags ---
    /// Stores a manifest whose blobs and children are in the repository. A manifest new to
    /// a project with a storage limit is checked against it as `commit_blob` checks a
    /// blob (its size counts, once per project): `StoreError::QuotaExceeded` and nothing
    /// written if it would exceed the limit.
    async fn put_manifest(&self, m: &NewManifest) -> StoreResult<PutManifestOutcome>;
    async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Option<StoredManifest>>;
    /// Deletes a manifest and every tag pointing at it; `false` if it did not exist. A
    /// deletion that happened writes `event` to the outbox in the same transaction.
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        event: Option<&outbox::OutboxEvent>,
    ) -> StoreResult<bool>;
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, event: Option<&outbox::OutboxEvent>) -> StoreResult<bool>;
    /// Tags in lexical order after `last`, at most `limit`; `None` if the repository is unknown.
    async fn list_tags(&self, repo: &RepoName, last: Option<&str>, limit: usize) -> StoreResult<Option<Vec<String>>>;
    async fn list_repositories(&self, last: Option<&str>, limit: usize) -> StoreResult<Vec<String>>;
    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>>;

    // --- uploads ---
    async fn create_upload(&self, upload: &Upload) -> StoreResult<()>;
    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<Upload>>;
    /// Appends a committed part if the upload is still at `expected_offset` (compare and
    /// set): a stale writer — a frozen instance, a retried request — cannot clobber a
    /// newer state. Returns `false` if the offset moved or the upload is gone.
    async fn append_upload_part(
        &self,
        id: &str,
        expected_offset: u64,
        new_offset: u64,
        hash_state: Option<&[u8]>,
        part: &str,
    ) -> StoreResult<bool>;
    async fn delete_upload(&self, id: &str) -> StoreResult<Option<Upload>>;
    /// Uploads idle since before `older_than` (unix seconds), for cleanup.
    async fn stale_uploads(&self, older_than: i64, limit: usize) -> StoreResult<Vec<Upload>>;

    /// Cheap round trip for health checks.
    async fn ping(&self) -> StoreResult<()>;

    /// The database's role and its standbys (health page).
    async fn topology(&self) -> StoreResult<DbTopology>;
}
