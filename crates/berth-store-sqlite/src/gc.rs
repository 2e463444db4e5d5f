//! [`GcStore`] on SQLite. The single writer orders every claim, reference and upload
//! commit totally, so the claim's predicate and its reference check are one atomic step.
//! The digest lock is in-process (Berth on SQLite is one process: the database is
//! opened by one instance): one mutex per digest in use, taken in digest order.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;
use berth_core::Digest;
use berth_core::store::gc::{
    DeleteBatch, DigestLock, DigestRange, GcBlob, GcStore, GcStoreError, HeldLock, UntaggedManifest,
};
use berth_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, params};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{Fail, SqliteStore, backend, now, parse_digest, sql_limit, to_u64};

/// The in-process digest locks: one mutex per digest in use, so that GC holding the
/// locks of a batch of blobs never delays a push of any other blob (striped locks made
/// a push wait for whole batches that merely shared a stripe).
#[derive(Default)]
pub(crate) struct DigestLocks(StdMutex<HashMap<String, Arc<Mutex<()>>>>);

impl DigestLocks {
    pub(crate) fn new() -> Arc<DigestLocks> {
        Arc::new(DigestLocks::default())
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<()>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks `digests` in digest order, so that two batches never wait for each other in
    /// a cycle.
    pub(crate) async fn lock(self: &Arc<Self>, digests: &[Digest]) -> Vec<DigestGuard> {
        let keys: BTreeSet<String> = digests.iter().map(Digest::to_string).collect();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            // Cloned under the table's lock, so a releaser sees the entry in use. (A
            // lock abandoned while waiting leaves an idle entry, reused or removed by
            // the next holder of that digest.)
            let m = Arc::clone(self.table().entry(key.clone()).or_default());
            let held = m.lock_owned().await;
            guards.push(DigestGuard { locks: Arc::clone(self), key, held: Some(held) });
        }
        guards
    }
}

pub(crate) struct DigestGuard {
    locks: Arc<DigestLocks>,
    key: String,
    held: Option<OwnedMutexGuard<()>>,
}

impl Drop for DigestGuard {
    fn drop(&mut self) {
        let mut table = self.locks.table();
        drop(self.held.take());
        // Nobody else holds or waits for it (waiters hold a clone, made under the table's
        // lock): the entry goes, so the table only ever holds digests in use.
        if table.get(&self.key).is_some_and(|m| Arc::strong_count(m) == 1) {
            table.remove(&self.key);
        }
    }
}

pub(crate) struct Held(#[allow(dead_code)] pub(crate) Vec<DigestGuard>);

#[async_trait]
impl HeldLock for Held {
    async fn release(self: Box<Self>) {}
}

pub(crate) async fn lock_digest(store: &SqliteStore, digest: &Digest) -> StoreResult<DigestLock> {
    let guards = store.digest_locks.lock(std::slice::from_ref(digest)).await;
    Ok(DigestLock::new(Box::new(Held(guards))))
}

fn blob_rows(rows: Vec<(String, i64)>) -> Result<Vec<GcBlob>, Fail> {
    rows.into_iter()
        .map(|(d, size)| Ok(GcBlob { digest: parse_digest(&d)?, size: to_u64(size, "blob size")? }))
        .collect()
}

/// `?N` placeholders for a list, numbered from `first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
}

/// The rule for an untagged manifest, on `m`: no tag, no index of its repository lists
/// it, no subject present in its repository (an accessory goes with its subject).
const UNTAGGED: &str = "NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM manifest_children mc JOIN manifests p ON p.id = mc.manifest_id
                     WHERE mc.child_digest = m.digest AND p.repository_id = m.repository_id)
    AND NOT (m.subject_digest IS NOT NULL AND EXISTS (
             SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest))";

fn untagged_rows(c: &Connection, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<UntaggedManifest>, Fail> {
    let rows = c
        .prepare(sql)?
        .query_map(p, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, repo, digest)| {
            Ok(UntaggedManifest {
                id,
                repo: repo.parse().map_err(|e| backend(format!("stored repository {repo:?} is invalid: {e}")))?,
                digest: parse_digest(&digest)?,
            })
        })
        .collect()
}

/// Rows one write of phase B deletes. A row costs about three random index pages
/// (the blob's digest, its link's key and digest), so a few hundred rows make a
/// transaction of megabytes: pushes waiting for the writer would wait for all of it.
const FINISH_CHUNK: usize = 50;

/// The filter "rows of this run in these digests", for statements that look up a few
/// digests. The `+` keeps SQLite off the partial index `blobs_deleting (gc_run)`, which
/// it otherwise prefers: that walks every row the run has claimed and not yet deleted
/// (thousands while the pipeline runs ahead) and reads each one's table page, for a
/// chunk of 50 (a Python replay of phase B at 300,000 blobs, 4,096 rows in flight: 203
/// µs a deleted row through that index, 73 µs through the digest's).
const RUN_AND_DIGESTS: &str = "state = 'deleting' AND +gc_run = ?1 AND digest IN";

/// Every GC write goes in the writer's background lane: each in a transaction of its
/// own, only when no request's write is queued, so pushes' writes go first and no
/// transaction holds more than one chunk of GC's deletions (`writer.rs`). Phase B's
/// deletions commit without an fsync of their own: one lost in a crash leaves its rows
/// `deleting` and owned by a run that is gone, which the next run adopts and finishes
/// (their files are already absent, which removal takes as done). The claims stay
/// synced: files are removed only after their claim is durable.
struct Batch {
    store: Arc<crate::writer::Writer>,
    run: String,
    blobs: Vec<GcBlob>,
    _guards: Vec<DigestGuard>,
}

#[async_trait]
impl DeleteBatch for Batch {
    fn blobs(&self) -> &[GcBlob] {
        &self.blobs
    }

    async fn finish(self: Box<Self>, done: &[Digest]) -> StoreResult<()> {
        for chunk in done.chunks(FINISH_CHUNK) {
            let done: Vec<String> = chunk.iter().map(Digest::to_string).collect();
            let run = self.run.clone();
            self.store
                .write_background_unsynced(move |c| {
                    let list = placeholders(2, done.len());
                    let mut p: Vec<&dyn rusqlite::ToSql> = vec![&run];
                    p.extend(done.iter().map(|d| d as &dyn rusqlite::ToSql));
                    c.prepare(&format!("DELETE FROM blobs WHERE {RUN_AND_DIGESTS} ({list})"))?.execute(&p[..])?;
                    c.prepare(&format!(
                        "DELETE FROM repository_blobs WHERE digest IN ({list})
                           AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = repository_blobs.digest)"
                    ))?
                    .execute(&p[..])?;
                    Ok(())
                })
                .await?;
        }
        // The locks go with `self` only now, after the last commit.
        Ok(())
    }
}

#[async_trait]
impl GcStore for SqliteStore {
    async fn untagged_manifests(
        &self,
        window_secs: i64,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<UntaggedManifest>> {
        self.readers
            .run(move |c| {
                untagged_rows(
                    c,
                    &format!(
                        "SELECT m.id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
                          WHERE m.id > ?1 AND m.created_at <= ?2 AND {UNTAGGED} ORDER BY m.id LIMIT ?3"
                    ),
                    params![after, now() - window_secs, sql_limit(limit)],
                )
            })
            .await
    }

    async fn delete_untagged(&self, ids: &[i64]) -> StoreResult<Vec<UntaggedManifest>> {
        let ids = ids.to_vec();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.writer
            .write_background(move |c| {
                let p: Vec<&dyn rusqlite::ToSql> = ids.iter().map(|i| i as &dyn rusqlite::ToSql).collect();
                let list = placeholders(1, ids.len());
                let gone = untagged_rows(
                    c,
                    &format!(
                        "SELECT m.id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
                          WHERE m.id IN ({list}) AND {UNTAGGED} ORDER BY m.id"
                    ),
                    &p,
                )?;
                for m in &gone {
                    c.prepare_cached("DELETE FROM manifests WHERE id = ?1")?.execute([m.id])?;
                }
                Ok(gone)
            })
            .await
    }

    async fn gc_candidates(&self, window_secs: i64, after: Option<&Digest>, limit: usize) -> StoreResult<Vec<GcBlob>> {
        let after = after.map(Digest::to_string).unwrap_or_default();
        self.readers
            .run(move |c| {
                let rows = c
                    .prepare_cached(
                        "SELECT b.digest, b.size FROM blobs b
                          WHERE b.digest > ?1 AND b.state = 'live' AND coalesce(b.last_ref_at, b.created_at) <= ?2
                            AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = b.digest)
                          ORDER BY b.digest LIMIT ?3",
                    )?
                    .query_map(params![after, now() - window_secs, sql_limit(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                blob_rows(rows)
            })
            .await
    }

    async fn claim_blobs(
        &self,
        run: &str,
        window_secs: i64,
        ranges: &[DigestRange],
        limit: usize,
    ) -> StoreResult<Vec<GcBlob>> {
        // One background transaction per range, one after the other: a request's write
        // that arrives while the claim runs waits for one range's UPDATE, not for all
        // sixteen (a push's first upload took 9.2 ms on average during GC, 5.4 ms with
        // this; docs/benchmarks.md). A claim that fails after some ranges committed leaves
        // their rows `deleting`, owned by this run: stragglers the next attempt adopts.
        //
        // Unsynced, then one fsync of the log for the whole claim: sixteen fsyncs a claim
        // made GC wait for the disk most of its run, and each shared the device's flush
        // with a push's. Nothing acts on a claim before `sync_log` returns: until then a
        // crash may undo it, which leaves the rows `live` and their files in place.
        let now = now();
        let mut rows = Vec::new();
        for r in ranges {
            let (run, lower, upper) = (run.to_owned(), r.lower().to_owned(), r.upper().to_owned());
            let found = self
                .writer
                .write_background_unsynced(move |c| {
                    let mut claim = c.prepare_cached(
                        "UPDATE blobs SET state = 'deleting', gc_run = ?1, gc_claimed_at = ?2
                          WHERE digest IN (
                                SELECT b.digest FROM blobs b
                                 WHERE b.digest > ?5 AND b.digest < ?6 AND b.state = 'live'
                                   AND coalesce(b.last_ref_at, b.created_at) <= ?3
                                   AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = b.digest)
                                 ORDER BY b.digest LIMIT ?4)
                         RETURNING digest, size",
                    )?;
                    let found = claim
                        .query_map(params![run, now, now - window_secs, sql_limit(limit), lower, upper], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    blob_rows(found)
                })
                .await?;
            rows.extend(found);
        }
        if !rows.is_empty() {
            self.sync_log().await?;
        }
        rows.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(rows)
    }

    async fn adopt_stragglers(&self, run: &str, limit: usize) -> StoreResult<Vec<GcBlob>> {
        let run = run.to_owned();
        self.writer
            .write_background(move |c| {
                let rows = c
                    .prepare_cached(
                        "UPDATE blobs SET gc_run = ?1
                          WHERE digest IN (SELECT digest FROM blobs
                                            WHERE state = 'deleting' AND (gc_run IS NULL OR gc_run <> ?1) LIMIT ?2)
                         RETURNING digest, size",
                    )?
                    .query_map(params![run, sql_limit(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                blob_rows(rows)
            })
            .await
    }

    async fn begin_delete(&self, run: &str, digests: &[Digest]) -> Result<Box<dyn DeleteBatch>, GcStoreError> {
        let guards = self.digest_locks.lock(digests).await;
        let list: Vec<String> = digests.iter().map(Digest::to_string).collect();
        let r = run.to_owned();
        // A read begun after the locks were taken sees every commit made before (an
        // upload that resurrected one of these rows committed before releasing its
        // lock). On a reader: the writer, which pushes wait for, is not held for it.
        let (blobs, referenced) = self
            .readers
            .run(move |c| {
                if list.is_empty() {
                    return Ok((Vec::new(), None));
                }
                let ph = placeholders(2, list.len());
                let mut p: Vec<&dyn rusqlite::ToSql> = vec![&r];
                p.extend(list.iter().map(|d| d as &dyn rusqlite::ToSql));
                let rows = c
                    .prepare(&format!(
                        "SELECT digest, size FROM blobs WHERE {RUN_AND_DIGESTS} ({ph})
                          ORDER BY digest"
                    ))?
                    .query_map(&p[..], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let referenced: Option<String> = c
                    .prepare(&format!(
                        "SELECT mb.digest FROM manifest_blobs mb
                          WHERE mb.digest IN (SELECT digest FROM blobs WHERE {RUN_AND_DIGESTS} ({ph})) LIMIT 1"
                    ))?
                    .query_map(&p[..], |r| r.get(0))?
                    .next()
                    .transpose()?;
                Ok((blob_rows(rows)?, referenced))
            })
            .await?;
        if let Some(d) = referenced {
            let d = d.parse().map_err(|e| StoreError::Backend(format!("stored digest {d:?} is invalid: {e}")))?;
            return Err(GcStoreError::Referenced(d));
        }
        Ok(Box::new(Batch { store: Arc::clone(&self.writer), run: run.to_owned(), blobs, _guards: guards }))
    }

    async fn repair_storage_usage(&self) -> StoreResult<Vec<berth_core::quota::UsageRepair>> {
        let projects = self.readers.run(|c| crate::quota::projects(c)).await?;
        let mut repairs = Vec::new();
        for p in projects {
            if let Some(r) = self.writer.write(move |c| crate::quota::repair(c, &p)).await? {
                repairs.push(r);
            }
        }
        Ok(repairs)
    }

    async fn sweep_links(&self, limit: usize) -> StoreResult<u64> {
        self.writer
            .write_background(move |c| {
                let n = c
                    .prepare_cached(
                        "DELETE FROM repository_blobs WHERE rowid IN (
                             SELECT rb.rowid FROM repository_blobs rb
                              WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = rb.digest) LIMIT ?1)",
                    )?
                    .execute([sql_limit(limit)])?;
                Ok(n as u64)
            })
            .await
    }

    async fn unknown_blobs(&self, digests: &[Digest]) -> StoreResult<Vec<Digest>> {
        let ds: Vec<String> = digests.iter().map(Digest::to_string).collect();
        if ds.is_empty() {
            return Ok(Vec::new());
        }
        self.readers
            .run(move |c| {
                let p: Vec<&dyn rusqlite::ToSql> = ds.iter().map(|d| d as &dyn rusqlite::ToSql).collect();
                let known: BTreeSet<String> = c
                    .prepare(&format!("SELECT digest FROM blobs WHERE digest IN ({})", placeholders(1, ds.len())))?
                    .query_map(p.as_slice(), |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                ds.iter().filter(|d| !known.contains(*d)).map(|d| parse_digest(d)).collect()
            })
            .await
    }

    async fn lock_for_sweep(&self, digest: &Digest) -> StoreResult<DigestLock> {
        lock_digest(self, digest).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Phase B's lookups by run and digests (`begin_delete`'s two reads, `finish`'s
    /// delete) go through the digest's index, whatever the planner would otherwise prefer
    /// (see [`RUN_AND_DIGESTS`]).
    #[test]
    fn lookups_by_run_and_digests_use_the_digest_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        let ph = placeholders(2, 50);
        for sql in [
            format!("DELETE FROM blobs WHERE {RUN_AND_DIGESTS} ({ph})"),
            format!("SELECT digest, size FROM blobs WHERE {RUN_AND_DIGESTS} ({ph}) ORDER BY digest"),
            format!(
                "SELECT mb.digest FROM manifest_blobs mb
                  WHERE mb.digest IN (SELECT digest FROM blobs WHERE {RUN_AND_DIGESTS} ({ph})) LIMIT 1"
            ),
        ] {
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(std::iter::repeat_n("x", 51)), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains("(digest=?)") && !plan.contains("blobs_deleting"), "{sql}: {plan}");
        }
    }

    /// A claim's ranges commit without an fsync each, and one sync of the log makes the
    /// whole claim durable before it is returned: its rows are in the WAL file, synced.
    #[tokio::test]
    async fn a_claim_commits_its_ranges_unsynced() {
        use berth_core::store::{BlobInfo, MetaStore};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db")).unwrap();
        let repo: berth_core::RepoName = "p/r".parse().unwrap();
        let digests: Vec<Digest> = (0..40).map(|i| Digest::sha256(format!("blob {i}").as_bytes())).collect();
        for d in &digests {
            store.commit_blob(&repo, &BlobInfo { digest: d.clone(), size: 1 }, None).await.unwrap();
        }
        // Four ranges, split where the sorted digests are.
        let mut sorted: Vec<String> = digests.iter().map(Digest::to_string).collect();
        sorted.sort();
        let cut = |i: usize| Some(sorted[i].clone());
        let ranges = [
            DigestRange { after: None, before: cut(10) },
            DigestRange { after: cut(9), before: cut(20) },
            DigestRange { after: cut(19), before: cut(30) },
            DigestRange { after: cut(29), before: None },
        ];
        let before = store.writer_stats();
        let claimed = store.claim_blobs("run-1", 0, &ranges, 100).await.unwrap();
        let after = store.writer_stats();
        let got: Vec<String> = claimed.iter().map(|b| b.digest.to_string()).collect();
        assert_eq!(got, sorted, "every blob, once, in digest order");
        assert_eq!(
            (after.commits - before.commits, after.unsynced_commits - before.unsynced_commits),
            (4, 4),
            "one unsynced commit per range"
        );
        // `sync_log` is what made them durable: it syncs the file they are in.
        let wal = dir.path().join("meta.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the claims are in the log");
        store.sync_log().await.unwrap();
        std::fs::remove_file(&wal).unwrap();
        let e = store.sync_log().await.unwrap_err().to_string();
        assert!(e.contains("meta.db-wal"), "a failed sync names the file: {e}");
    }

    #[tokio::test]
    async fn digest_locks_are_per_digest_and_leave_nothing_behind() {
        let locks = DigestLocks::new();
        let (a, b) = (Digest::sha256(b"a"), Digest::sha256(b"b"));
        let held = locks.lock(&[a.clone(), b.clone(), a.clone()]).await;
        assert_eq!(held.len(), 2, "one lock per distinct digest");
        // A digest nobody holds is had at once, whatever else is held.
        let c = Digest::sha256(b"c");
        let other = tokio::time::timeout(Duration::from_secs(5), locks.lock(std::slice::from_ref(&c))).await.unwrap();
        drop(other);
        // A held one is not.
        assert!(tokio::time::timeout(Duration::from_millis(50), locks.lock(std::slice::from_ref(&a))).await.is_err());
        let waiter = tokio::spawn({
            let (locks, a) = (Arc::clone(&locks), a.clone());
            async move { locks.lock(&[a]).await.len() }
        });
        drop(held);
        assert_eq!(waiter.await.unwrap(), 1);
        assert!(locks.table().is_empty(), "entries go with their last holder");
    }
}
