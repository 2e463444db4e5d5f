//! What online garbage collection needs from the metadata store.
//!
//! The invariant (ARCHITECTURE.md, "Online GC"):
//! - (I1) a blob's bytes are removed only while the remover holds the blob's digest lock
//!   and its row is `deleting` and owned by the remover's run;
//! - (I2) a row becomes `deleting` only by a claim whose predicate sits on the row itself
//!   (`live`, last referenced before the time window) and that sees no manifest
//!   referencing it once it holds the row;
//! - (I3) whatever makes a blob reachable does so in one transaction that either locks
//!   the `live` row (manifest PUT, PostgreSQL `FOR SHARE`), updates it (touch, mount) or
//!   resurrects it `deleting → live` (upload finish, with the bytes written under the
//!   digest lock).
//!
//! Every backend runs the same conformance suite (`berth-store-tests`).

use async_trait::async_trait;

use super::StoreResult;
use crate::digest::Digest;
use crate::name::RepoName;

/// A blob GC looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcBlob {
    pub digest: Digest,
    pub size: u64,
}

/// An untagged manifest (Harbor's `delete_untagged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntaggedManifest {
    pub id: i64,
    pub repo: RepoName,
    pub digest: Digest,
}

/// A slice of the digest space, compared as text: digests after `after` and before
/// `before`, both exclusive, `None` unbounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestRange {
    pub after: Option<String>,
    pub before: Option<String>,
}

impl DigestRange {
    /// Every digest after `after` (all of them with `None`).
    pub fn after(after: Option<&Digest>) -> DigestRange {
        DigestRange { after: after.map(Digest::to_string), before: None }
    }

    /// `after` as SQL compares it: the empty string precedes every digest.
    pub fn lower(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }

    /// `before` as SQL compares it: `~` follows every digest (whose characters are
    /// letters, digits and `:+._-=`, all below it), so one statement serves both cases
    /// and keeps the index's range bounded on both ends.
    pub fn upper(&self) -> &str {
        self.before.as_deref().unwrap_or("~")
    }

    /// Whether `d` is in the range.
    pub fn contains(&self, d: &str) -> bool {
        d > self.lower() && d < self.upper()
    }
}

/// A batch of claimed blobs in phase B: the digest locks are held and the rows were
/// re-read as `deleting`, owned by this run and unreferenced. Dropping it without
/// [`DeleteBatch::finish`] releases the locks and deletes nothing.
#[async_trait]
pub trait DeleteBatch: Send {
    /// The rows confirmed for deletion; their bytes may be removed now.
    fn blobs(&self) -> &[GcBlob];
    /// Deletes the rows (and their repository links) of `done` — the blobs whose bytes
    /// are gone — commits and releases the locks. The rest stay `deleting`, to be
    /// retried by a later run (never `live`: their bytes may be partly gone).
    async fn finish(self: Box<Self>, done: &[Digest]) -> StoreResult<()>;
}

/// Why phase B refused a batch.
#[derive(Debug, thiserror::Error)]
pub enum GcStoreError {
    #[error(transparent)]
    Store(#[from] super::StoreError),
    /// A claimed row is referenced after all: a claim broke (I2). Nothing was removed.
    #[error("blob {0} is claimed for deletion but a manifest references it; nothing was deleted")]
    Referenced(Digest),
}

/// The per-digest lock that serialises removing a blob's bytes (GC, phase B) with
/// writing them (an upload finishing). Released by [`DigestLock::release`]; dropping it
/// releases it too, possibly later.
pub struct DigestLock(Option<Box<dyn HeldLock>>);

#[async_trait]
pub trait HeldLock: Send {
    async fn release(self: Box<Self>);
}

impl DigestLock {
    pub fn new(inner: Box<dyn HeldLock>) -> DigestLock {
        DigestLock(Some(inner))
    }

    pub async fn release(mut self) {
        if let Some(l) = self.0.take() {
            l.release().await;
        }
    }
}

#[async_trait]
pub trait GcStore: Send + Sync + 'static {
    /// Up to `limit` manifests after id `after` (in id order) with no tag, no index in
    /// their repository listing them and no subject present in their repository, created
    /// more than `window_secs` ago. Times are the stores' own (unix seconds), the clock
    /// that stamps `last_ref_at`.
    async fn untagged_manifests(
        &self,
        window_secs: i64,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<UntaggedManifest>>;
    /// Deletes those of `ids` that are still untagged and unlisted (re-checked once they
    /// are locked); returns the ones deleted.
    async fn delete_untagged(&self, ids: &[i64]) -> StoreResult<Vec<UntaggedManifest>>;

    /// Live blobs no manifest references, last referenced more than `window_secs` ago,
    /// in digest order after `after`: what a run would free (dry run).
    async fn gc_candidates(&self, window_secs: i64, after: Option<&Digest>, limit: usize) -> StoreResult<Vec<GcBlob>>;
    /// Phase A: in each of `ranges`, marks up to `limit` candidates `deleting`, owned by
    /// `run`, the first in digest order within the range, and returns them all in digest
    /// order; the predicate sits on each row and references are checked again once the
    /// rows are held. One transaction for all ranges.
    ///
    /// A run walks the digests once, each range's cursor (`after`) moving to the last
    /// digest claimed in it: each claim starts where the previous one ended instead of
    /// re-reading the blobs it skipped (referenced, young, or on PostgreSQL dead rows not
    /// yet vacuumed). Several ranges at once spread a batch over the storage: on a file
    /// system, blobs sharing a digest prefix share a directory, whose lock serializes
    /// their removals.
    async fn claim_blobs(
        &self,
        run: &str,
        window_secs: i64,
        ranges: &[DigestRange],
        limit: usize,
    ) -> StoreResult<Vec<GcBlob>>;
    /// Re-owns the `deleting` rows of earlier runs (stopped, killed, failed) for `run`,
    /// up to `limit`; returns them. Only one GC runs at a time across the cluster.
    async fn adopt_stragglers(&self, run: &str, limit: usize) -> StoreResult<Vec<GcBlob>>;
    /// Phase B: takes the digest locks of `digests` and re-reads them.
    async fn begin_delete(&self, run: &str, digests: &[Digest]) -> Result<Box<dyn DeleteBatch>, GcStoreError>;

    /// Repository links to blobs that have no row; deletes up to `limit`, returns how many.
    async fn sweep_links(&self, limit: usize) -> StoreResult<u64>;

    /// Recomputes every project's usage from its blobs and manifests and corrects the
    /// stored value where the two differ, each project in a transaction of its own that
    /// holds the project's usage row (so a concurrent push neither waits for the whole
    /// run nor slips between the sum and the correction). Returns the corrections.
    async fn repair_storage_usage(&self) -> StoreResult<Vec<crate::quota::UsageRepair>>;

    /// Those of `digests` that have no blob row at all (neither live nor `deleting`):
    /// files the database does not know.
    async fn unknown_blobs(&self, digests: &[Digest]) -> StoreResult<Vec<Digest>>;
    /// The digest lock a blob's publication holds across writing its file and committing
    /// its row: held while GC re-checks and removes a file the database does not know, a
    /// push of the same blob either committed its row before or writes its file after.
    async fn lock_for_sweep(&self, digest: &Digest) -> StoreResult<DigestLock>;
}

/// A digest's lock key: its first 32 bits. Two digests that share one only wait for
/// each other.
pub fn lock_key(d: &Digest) -> u32 {
    u32::from_str_radix(&d.hex()[..8], 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_bound_every_digest() {
        let all = DigestRange::default();
        for d in ["sha256:0000", "sha256:ffff", "sha512:ffff", "blake3:00", "sha256+b64u:AZaz09-_="] {
            assert!(all.contains(d), "{d}");
        }
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let from = DigestRange::after(Some(&d));
        assert!(!from.contains(&d.to_string()), "after is exclusive");
        assert!(from.contains(&format!("sha256:{}b", "a".repeat(63))));
        let lane = DigestRange { after: None, before: Some("sha256:8".into()) };
        assert!(lane.contains("sha256:7fff") && !lane.contains("sha256:8000") && !lane.contains("sha512:00"));
    }
}
