//! [`GcStore`] on PostgreSQL.
//!
//! - The claim is one `UPDATE` whose candidates are taken `FOR UPDATE SKIP LOCKED` (a
//!   manifest PUT holding a row `FOR SHARE` is skipped, not waited for) and whose
//!   predicate sits on the row; a second statement, with a fresh snapshot once the rows
//!   are held, puts back any row a manifest committed a reference to meanwhile.
//! - The digest lock is a transaction-free advisory lock (class [`LOCK_CLASS`], key
//!   [`lock_key`]) on a connection of a pool of its own (half the size of the main one),
//!   held for the lock's life: uploads take it around the
//!   rename and `commit_blob`; phase B takes the transaction-scoped form of the same
//!   locks, in key order, and holds its transaction across the byte removal.

use async_trait::async_trait;
use berth_core::Digest;
use berth_core::store::gc::{
    DeleteBatch, DigestLock, DigestRange, GcBlob, GcStore, GcStoreError, HeldLock, UntaggedManifest, lock_key,
};
use berth_core::store::{StoreError, StoreResult};
use deadpool_postgres::Object;
use tokio_postgres::Row;

use crate::{Conn, DbErr, PgStore, Tx, col, now, parse_digest, to_store, to_u64};

/// The first half of every digest lock's key ("gc"), apart from other advisory locks.
const LOCK_CLASS: i32 = 0x6763;

fn key(d: &Digest) -> i32 {
    lock_key(d) as i32
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn blob_rows(rows: &[Row]) -> Result<Vec<GcBlob>, DbErr> {
    rows.iter()
        .map(|r| Ok(GcBlob { digest: parse_digest(&col::<String>(r, 0)?)?, size: to_u64(col(r, 1)?, "blob size")? }))
        .collect()
}

fn untagged_rows(rows: &[Row]) -> Result<Vec<UntaggedManifest>, DbErr> {
    rows.iter()
        .map(|r| {
            let repo: String = col(r, 1)?;
            Ok(UntaggedManifest {
                id: col(r, 0)?,
                repo: repo
                    .parse()
                    .map_err(|e| crate::backend(format!("stored repository {repo:?} is invalid: {e}")))?,
                digest: parse_digest(&col::<String>(r, 2)?)?,
            })
        })
        .collect()
}

/// As in SQLite: no tag, no index of its repository lists it, no subject present in its
/// repository.
const UNTAGGED: &str = "NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM manifest_children mc JOIN manifests p ON p.id = mc.manifest_id
                     WHERE mc.child_digest = m.digest AND p.repository_id = m.repository_id)
    AND NOT (m.subject_digest IS NOT NULL AND EXISTS (
             SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest))";

/// An advisory lock on a connection of its own; the connection goes back to the pool
/// only once the lock is released, and is closed (which releases it) otherwise.
pub(crate) struct Held {
    obj: Option<Object>,
    class: i32,
    key: i32,
}

#[async_trait]
impl HeldLock for Held {
    /// The holder does not wait for the unlock's answer (its work is committed; the lock
    /// only keeps others out a round trip longer): on a busy machine each round trip
    /// waits for a core, and an upload took this one while its client waited.
    async fn release(mut self: Box<Self>) {
        if let Some(obj) = self.obj.take() {
            let (class, key) = (self.class, self.key);
            tokio::spawn(async move {
                let ok = Conn::of(&obj).exec("SELECT pg_advisory_unlock($1, $2)", &[&class, &key]).await.is_ok();
                if !ok {
                    drop(Object::take(obj));
                }
            });
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            drop(Object::take(obj));
        }
    }
}

pub(crate) async fn lock_digest(store: &PgStore, digest: &Digest) -> StoreResult<DigestLock> {
    advisory_lock(store, LOCK_CLASS, key(digest)).await
}

/// A session advisory lock `(class, key)` on a connection of the lock pool.
pub(crate) async fn advisory_lock(store: &PgStore, class: i32, k: i32) -> StoreResult<DigestLock> {
    let obj = store.acquire_lock_conn().await.map_err(to_store)?;
    if let Err(e) = Conn::of(&obj).exec("SELECT pg_advisory_lock($1, $2)", &[&class, &k]).await {
        drop(Object::take(obj));
        return Err(to_store(e));
    }
    Ok(DigestLock::new(Box::new(Held { obj: Some(obj), class, key: k })))
}

/// Phase B's open transaction, holding the digest locks and the rows.
struct Batch {
    obj: Option<Object>,
    run: String,
    blobs: Vec<GcBlob>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            // Closing the connection rolls the transaction back and frees the locks.
            drop(Object::take(obj));
        }
    }
}

#[async_trait]
impl DeleteBatch for Batch {
    fn blobs(&self) -> &[GcBlob] {
        &self.blobs
    }

    async fn finish(mut self: Box<Self>, done: &[Digest]) -> StoreResult<()> {
        let obj = self.obj.take().ok_or_else(|| StoreError::Backend("phase B batch finished twice".into()))?;
        let done: Vec<String> = done.iter().map(Digest::to_string).collect();
        let result = async {
            let c = Conn::of(&obj);
            // Not waiting for this commit's WAL flush: a deletion lost in a crash or a
            // failover leaves its rows `deleting`, owned by a dead run, which the next run
            // adopts and finishes (removing bytes already gone is a no-op). The claim that
            // made them `deleting` was a synchronous commit, before any byte was removed.
            // A later synchronous commit (a push of the same digest) flushes this one first.
            c.batch("SET LOCAL synchronous_commit TO OFF").await?;
            c.exec(&format!("DELETE FROM blobs WHERE {RUN_AND_DIGESTS}"), &[&done, &self.run]).await?;
            // Not `NOT EXISTS`: without statistics (a freshly loaded table autovacuum has
            // not analyzed yet) the planner guesses thousands of links per digest and
            // hash-anti-joins against every blob row, about 2 s per chunk at a million
            // blobs; a subquery bounded by the same digests stays on the primary key.
            c.exec(
                "DELETE FROM repository_blobs rb WHERE rb.digest = ANY($1)
                   AND rb.digest NOT IN (SELECT b.digest FROM blobs b WHERE b.digest = ANY($1))",
                &[&done],
            )
            .await?;
            c.batch("COMMIT").await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                drop(Object::take(obj));
                Err(to_store(e))
            }
        }
    }
}

/// Phase B's rows: those of the digests `$1` still `deleting` and owned by run `$2`, found
/// through the primary key. Written plainly (`state = 'deleting' AND gc_run = $2`) the
/// filter matches the partial index `blobs_deleting`, which the planner prefers and which
/// holds every row the run has claimed and not yet deleted, thousands while the pipeline
/// runs ahead, each then tested against the whole digest list: 5.2 ms a statement of 100
/// digests with 4,096 rows claimed (the generic plan a prepared statement gets), against
/// 0.3 ms through the key. `state || ''` tests the same; the index's predicate no longer
/// matches it.
pub const RUN_AND_DIGESTS: &str = "digest = ANY($1) AND state || '' = 'deleting' AND gc_run = $2";

/// One of the digests `$1` that a manifest references, if any: one index probe per
/// digest. Written `digest = ANY($1)`, the generic plan of the prepared statement scans
/// all of manifest_blobs against the whole list (5 ms for 512 digests against 468
/// references, growing with the references).
pub const REFERENCED: &str = "SELECT x.digest FROM unnest($1::text[]) AS d(digest)
      CROSS JOIN LATERAL (SELECT mb.digest FROM manifest_blobs mb WHERE mb.digest = d.digest LIMIT 1) x
     LIMIT 1";

impl PgStore {
    async fn open_batch(&self, obj: &Object, run: &str, digests: &[Digest]) -> Result<Batch0, DbErr> {
        let c = Conn::of(obj);
        c.batch("BEGIN").await?;
        let mut keys: Vec<i32> = digests.iter().map(key).collect();
        keys.sort_unstable();
        keys.dedup();
        // In key order (the ordered subquery feeds the aggregate in order), so that two
        // batches never wait for each other in a cycle.
        c.exec(
            "SELECT count(pg_advisory_xact_lock($1, k)) FROM (SELECT unnest($2::int4[]) AS k ORDER BY 1) s",
            &[&LOCK_CLASS, &keys],
        )
        .await?;
        let list: Vec<String> = digests.iter().map(Digest::to_string).collect();
        let rows = c
            .rows(
                &format!("SELECT digest, size FROM blobs WHERE {RUN_AND_DIGESTS} ORDER BY digest FOR UPDATE"),
                &[&list, &run],
            )
            .await?;
        let blobs = blob_rows(&rows)?;
        let held: Vec<String> = blobs.iter().map(|b| b.digest.to_string()).collect();
        let referenced = c.opt(REFERENCED, &[&held]).await?;
        let referenced = referenced.map(|r| col::<String>(&r, 0)).transpose()?;
        Ok(Batch0 { blobs, referenced })
    }
}

struct Batch0 {
    blobs: Vec<GcBlob>,
    referenced: Option<String>,
}

#[async_trait]
impl GcStore for PgStore {
    async fn untagged_manifests(&self, window_secs: i64, after: i64, n: usize) -> StoreResult<Vec<UntaggedManifest>> {
        let args = (after, now() - window_secs, limit(n));
        self.db(Tx::Read, &args, |c, (after, before, n)| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT m.id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
                      WHERE m.id > $1 AND m.created_at <= $2 AND {UNTAGGED} ORDER BY m.id LIMIT $3"
                );
                Ok(untagged_rows(&c.rows(&sql, &[after, before, n]).await?)?)
            })
        })
        .await
    }

    async fn delete_untagged(&self, ids: &[i64]) -> StoreResult<Vec<UntaggedManifest>> {
        let ids = ids.to_vec();
        self.db(Tx::Idempotent, &ids, |c, ids| {
            Box::pin(async move {
                // Locked first; the DELETE's own snapshot then sees any tag or index
                // that committed before the locks were granted.
                c.exec("SELECT id FROM manifests WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[ids]).await?;
                let sql = format!(
                    "DELETE FROM manifests m USING repositories r
                      WHERE r.id = m.repository_id AND m.id = ANY($1) AND {UNTAGGED}
                  RETURNING m.id, r.name, m.digest"
                );
                let mut gone = untagged_rows(&c.rows(&sql, &[ids]).await?)?;
                gone.sort_by_key(|m| m.id);
                Ok(gone)
            })
        })
        .await
    }

    async fn gc_candidates(&self, window_secs: i64, after: Option<&Digest>, n: usize) -> StoreResult<Vec<GcBlob>> {
        let args = (after.map(Digest::to_string).unwrap_or_default(), now() - window_secs, limit(n));
        self.db(Tx::Read, &args, |c, (after, before, n)| {
            Box::pin(async move {
                // As in `claim_blobs`: follow the primary key from the cursor, never sort.
                c.batch("SET LOCAL enable_sort = off").await?;
                let rows = c
                    .rows(
                        "SELECT b.digest, b.size FROM blobs b
                          WHERE b.digest > $1 AND b.state = 'live' AND coalesce(b.last_ref_at, b.created_at) <= $2
                            AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = b.digest)
                          ORDER BY b.digest LIMIT $3",
                        &[after, before, n],
                    )
                    .await?;
                Ok(blob_rows(&rows)?)
            })
        })
        .await
    }

    async fn claim_blobs(
        &self,
        run: &str,
        window_secs: i64,
        ranges: &[DigestRange],
        n: usize,
    ) -> StoreResult<Vec<GcBlob>> {
        // In a gap between this instance's pushes (see `quiet.rs`).
        self.requests.quiet().await;
        let now = now();
        let (lower, upper): (Vec<String>, Vec<String>) =
            ranges.iter().map(|r| (r.lower().to_owned(), r.upper().to_owned())).unzip();
        let args = (run, now, now - window_secs, limit(n), lower, upper);
        self.db(Tx::Write, &args, |c, (run, now, before, n, lower, upper)| {
            Box::pin(async move {
                // The walk must follow the primary key from the cursor and stop after `n`
                // candidates. On tables not yet analyzed (a bulk load, a fresh import) the
                // planner guesses a hundred matching rows and reads every digest past the
                // cursor to sort them: 1 s a claim at 300,000 blobs. No sort is right here,
                // but only for this statement: the usage triggers the UPDATE fires sort
                // what they lock, and without sorting would walk a whole index instead.
                c.batch("SET LOCAL enable_sort = off").await?;
                // All ranges in one statement: a claim is one round trip to the server,
                // not one per range, each of which waits for a core on a busy machine.
                let rows = c
                    .rows(
                        "SELECT x.digest FROM unnest($1::text[], $2::text[]) AS r(after, until)
                          CROSS JOIN LATERAL (
                            SELECT b.digest FROM blobs b
                             WHERE b.digest > r.after AND b.digest < r.until AND b.state = 'live'
                               AND coalesce(b.last_ref_at, b.created_at) <= $3
                               AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = b.digest)
                             ORDER BY b.digest LIMIT $4 FOR UPDATE SKIP LOCKED) x",
                        &[lower, upper, before, n],
                    )
                    .await?;
                let cand: Vec<String> = rows.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?;
                c.batch("SET LOCAL enable_sort = on").await?;
                if cand.is_empty() {
                    return Ok(Vec::new());
                }
                // The rows are held: the predicate, rechecked on their newest versions when
                // they were locked, still holds.
                let rows = c
                    .rows(
                        "UPDATE blobs b SET state = 'deleting', gc_run = $1, gc_claimed_at = $2
                          WHERE b.digest = ANY($3) AND b.state = 'live'
                            AND coalesce(b.last_ref_at, b.created_at) <= $4
                         RETURNING b.digest, b.size",
                        &[run, now, &cand, before],
                    )
                    .await?;
                let mut claimed = blob_rows(&rows)?;
                if claimed.is_empty() {
                    return Ok(claimed);
                }
                // A new snapshot: a manifest that committed a reference after the
                // candidates were read but before the rows were held is seen here.
                let list: Vec<String> = claimed.iter().map(|b| b.digest.to_string()).collect();
                let back = c
                    .rows(
                        "UPDATE blobs b SET state = 'live', gc_run = NULL, gc_claimed_at = NULL
                          WHERE b.digest = ANY($1) AND b.gc_run = $2
                            AND EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = b.digest)
                         RETURNING b.digest",
                        &[&list, run],
                    )
                    .await?;
                let back: Vec<String> = back.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?;
                claimed.retain(|b| !back.contains(&b.digest.to_string()));
                claimed.sort_by(|a, b| a.digest.cmp(&b.digest));
                Ok(claimed)
            })
        })
        .await
    }

    async fn adopt_stragglers(&self, run: &str, n: usize) -> StoreResult<Vec<GcBlob>> {
        let args = (run, limit(n));
        self.db(Tx::Idempotent, &args, |c, (run, n)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        "UPDATE blobs SET gc_run = $1
                          WHERE digest IN (SELECT digest FROM blobs
                                            WHERE state = 'deleting' AND gc_run IS DISTINCT FROM $1
                                            LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING digest, size",
                        &[run, n],
                    )
                    .await?;
                Ok(blob_rows(&rows)?)
            })
        })
        .await
    }

    async fn begin_delete(&self, run: &str, digests: &[Digest]) -> Result<Box<dyn DeleteBatch>, GcStoreError> {
        let obj = self.acquire().await.map_err(to_store)?;
        match self.open_batch(&obj, run, digests).await {
            Ok(Batch0 { referenced: Some(d), .. }) => {
                drop(Object::take(obj));
                let d = d.parse().map_err(|e| StoreError::Backend(format!("stored digest {d:?} is invalid: {e}")))?;
                Err(GcStoreError::Referenced(d))
            }
            Ok(Batch0 { blobs, referenced: None }) => {
                Ok(Box::new(Batch { obj: Some(obj), run: run.to_owned(), blobs }))
            }
            Err(e) => {
                drop(Object::take(obj));
                Err(to_store(e).into())
            }
        }
    }

    async fn repair_storage_usage(&self) -> StoreResult<Vec<berth_core::quota::UsageRepair>> {
        let projects: Vec<String> = self
            .db(Tx::Read, &(), |c, _| {
                Box::pin(async move {
                    let rows = c.rows(crate::quota::PROJECTS, &[]).await?;
                    Ok(rows.iter().map(|r| col(r, 0)).collect::<Result<Vec<String>, _>>()?)
                })
            })
            .await?;
        let mut repairs = Vec::new();
        for p in &projects {
            // Idempotent: a second run finds the row already corrected.
            let r = self
                .db(Tx::Idempotent, p, |c, p| Box::pin(async move { Ok(crate::quota::repair(c, p).await?) }))
                .await?;
            repairs.extend(r);
        }
        Ok(repairs)
    }

    async fn sweep_links(&self, n: usize) -> StoreResult<u64> {
        self.db(Tx::Idempotent, &limit(n), |c, n| {
            Box::pin(async move {
                Ok(c.exec(
                    "DELETE FROM repository_blobs WHERE ctid IN (
                         SELECT rb.ctid FROM repository_blobs rb
                          WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = rb.digest) LIMIT $1)",
                    &[n],
                )
                .await?)
            })
        })
        .await
    }

    async fn unknown_blobs(&self, digests: &[Digest]) -> StoreResult<Vec<Digest>> {
        let ds: Vec<String> = digests.iter().map(Digest::to_string).collect();
        if ds.is_empty() {
            return Ok(Vec::new());
        }
        self.db(Tx::Read, &ds, |c, ds| {
            Box::pin(async move {
                let rows = c.rows("SELECT digest FROM blobs WHERE digest = ANY($1)", &[ds]).await?;
                let known: std::collections::HashSet<String> =
                    rows.iter().map(|r| col::<String>(r, 0)).collect::<Result<_, _>>()?;
                Ok(ds.iter().filter(|d| !known.contains(*d)).map(|d| parse_digest(d)).collect::<Result<Vec<_>, _>>()?)
            })
        })
        .await
    }

    async fn lock_for_sweep(&self, digest: &Digest) -> StoreResult<DigestLock> {
        lock_digest(self, digest).await
    }
}
