//! Online garbage collection: the `GARBAGE_COLLECTION` job. Pushes and pulls go on while
//! it runs; the invariant that makes that safe is in `berth_core::store::gc` and
//! ARCHITECTURE.md ("Online GC").
//!
//! A run:
//! 1. with `delete_untagged`, deletes manifests no tag, index or present subject keeps
//!    (older than the time window), which dereferences their blobs;
//! 2. re-owns the `deleting` rows a stopped or killed run left, and removes them;
//! 3. claims unreferenced blobs older than the window in batches (phase A) and removes
//!    each batch's bytes under the digest locks before deleting its rows (phase B),
//!    `workers` sub-batches at a time;
//! 4. drops repository links to blobs that no longer exist;
//! 5. on a storage that is Berth's own (`BlobStore::owned`), removes blob files the
//!    database does not know, older than the window, each under its digest lock;
//! 6. removes abandoned uploads (idle longer than `uploads.max_idle_hours`) and their parts.
//!
//! All state is in the database (rows `deleting`, owned by a run), so a run that is
//! stopped, killed or lost with its instance is redone safely by the next one. A dry
//! run changes nothing and reports what a run would free.

use std::sync::Arc;

use berth_core::Digest;
use berth_core::blobstore::BlobStore;
use berth_core::registry::Registry;
use berth_core::store::gc::{GcBlob, GcStore, GcStoreError};
use berth_jobs::builtin::ParamError;
use berth_jobs::{Handler, JobCtx, JobError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::task::JoinSet;

/// Harbor's GC parameters (`/system/gc/schedule`, `berth gc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcParams {
    #[serde(default)]
    pub delete_untagged: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default = "one")]
    pub workers: u8,
}

fn one() -> u8 {
    1
}

impl Default for GcParams {
    fn default() -> GcParams {
        GcParams { delete_untagged: false, dry_run: false, workers: 1 }
    }
}

/// Harbor accepts 1 to 5 workers.
pub const MAX_WORKERS: u8 = 5;

fn flag(params: &Map<String, Value>, name: &str) -> Result<bool, ParamError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        _ => Err(param(name, "must be true or false")),
    }
}

fn param(field: &str, message: impl Into<String>) -> ParamError {
    ParamError { field: format!("parameters.{field}"), message: message.into() }
}

impl GcParams {
    /// Validates the `parameters` object of a request: known keys only, Harbor's types
    /// (Harbor's portal sends numbers and booleans as such; strings are accepted too).
    pub fn from_json(params: &Map<String, Value>) -> Result<GcParams, ParamError> {
        if let Some(k) = params.keys().find(|k| !["delete_untagged", "dry_run", "workers"].contains(&k.as_str())) {
            return Err(param(k, "is not a parameter of garbage collection (delete_untagged, dry_run, workers)"));
        }
        let workers = match params.get("workers") {
            None | Some(Value::Null) => Some(1),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| param("workers", "must be a whole number from 1 to 5"))?;
        if !(1..=i64::from(MAX_WORKERS)).contains(&workers) {
            return Err(param("workers", format!("{workers} is out of range (1 to {MAX_WORKERS})")));
        }
        Ok(GcParams {
            delete_untagged: flag(params, "delete_untagged")?,
            dry_run: flag(params, "dry_run")?,
            workers: workers as u8,
        })
    }
}

/// Rows per claim: one short transaction on the database (a push arriving meanwhile
/// waits for it on SQLite), one batch of locks.
const CLAIM_BATCH: usize = 500;
/// Manifests per untagged-deletion batch.
const UNTAGGED_BATCH: usize = 500;
/// Byte removals in flight per sub-batch (files or S3 requests).
const DELETES_IN_FLIGHT: usize = 16;
/// Blobs and manifests a run lists one by one in its log before it only counts (a job's
/// log is bounded, and a million lines help nobody).
const LISTED: u64 = 1000;

/// What a run did so far: its checkpoint, so that a resumed attempt reports the whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcProgress {
    pub manifests: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub failed: u64,
}

/// The `GARBAGE_COLLECTION` handler.
pub struct GarbageCollection {
    pub store: Arc<dyn GcStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// `gc.time_window_hours`: blobs and manifests younger than this are never collected.
    pub time_window_hours: u64,
    /// Abandoned uploads to remove at the end of a run: the registry and
    /// `uploads.max_idle_hours`. `None` leaves them to the janitor alone.
    pub uploads: Option<(Arc<Registry>, u64)>,
}

#[async_trait::async_trait]
impl Handler for GarbageCollection {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let p: GcParams = ctx.args()?;
        let workers = p.workers.clamp(1, MAX_WORKERS) as usize;
        let window = i64::try_from(self.time_window_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        let job = ctx.job();
        let run = format!("{}:{}", job.id, job.attempt);
        let mut done: GcProgress = ctx.progress().unwrap_or_default();
        ctx.info(format!(
            "start to run gc in job: delete_untagged={}, dry_run={}, workers={workers}, time window {} hours",
            p.delete_untagged, p.dry_run, self.time_window_hours
        ));
        if p.dry_run {
            return self.dry_run(ctx, p, window).await;
        }
        if p.delete_untagged {
            self.delete_untagged(ctx, window, &mut done).await?;
        }
        // Stragglers first: their rows are already `deleting` (absent to every API),
        // only their bytes and rows are left to remove.
        loop {
            ctx.check()?;
            let adopted = self.store.adopt_stragglers(&run, CLAIM_BATCH).await?;
            if adopted.is_empty() {
                break;
            }
            ctx.info(format!("resuming the deletion of {} blobs an earlier run had marked", adopted.len()));
            self.sweep(ctx, &run, adopted, workers, &mut done).await?;
        }
        // The next batch is claimed while this one is swept: the database's work and the
        // storage's overlap. Claimed rows are owned by this run and absent to every API,
        // so a run that stops with a batch claimed and not swept leaves stragglers, which
        // the next run adopts.
        // One walk through the digests: each claim starts after the last one's last digest.
        // A blob that becomes unreferenced behind the cursor waits for the next run.
        let claim = |store: Arc<dyn GcStore>, run: String, after: Option<Digest>| {
            tokio::spawn(async move { store.claim_blobs(&run, window, after.as_ref(), CLAIM_BATCH).await })
        };
        let mut next = claim(Arc::clone(&self.store), run.clone(), None);
        loop {
            let claimed = next.await.map_err(|e| JobError::Retry(format!("a GC claim failed: {e}")))??;
            let Some(last) = claimed.last() else {
                break;
            };
            ctx.check()?;
            next = claim(Arc::clone(&self.store), run.clone(), Some(last.digest.clone()));
            self.sweep(ctx, &run, claimed, workers, &mut done).await?;
        }
        let mut links = 0;
        loop {
            ctx.check()?;
            let n = self.store.sweep_links(CLAIM_BATCH).await?;
            links += n;
            if n < CLAIM_BATCH as u64 {
                break;
            }
        }
        if links > 0 {
            ctx.info(format!("removed {links} repository links to blobs that no longer exist"));
        }
        let (files, file_bytes) = self.unknown_files(ctx, window, true).await?;
        if files > 0 {
            ctx.info(format!(
                "removed {files} blob files the database did not know ({}, {file_bytes} bytes)",
                human(file_bytes)
            ));
        }
        if let Some((registry, idle_hours)) = &self.uploads {
            ctx.check()?;
            let idle = i64::try_from(idle_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
            match registry.purge_stale_uploads(idle).await {
                Ok(0) => {}
                Ok(n) => ctx.info(format!("removed {n} uploads idle for more than {idle_hours} hours")),
                Err(e) => ctx.warn(format!("could not remove abandoned uploads: {e}")),
            }
        }
        // Usage is kept by triggers, exact by construction; the recomputation is the
        // check of that claim (Harbor's quota sync), and repairs what a bug or a manual
        // edit of the database would have made drift.
        ctx.check()?;
        for r in self.store.repair_storage_usage().await? {
            ctx.warn(format!(
                "storage usage of project {} was {} bytes, recomputed as {} bytes: corrected",
                r.project, r.stored, r.actual
            ));
        }
        ctx.info(format!(
            "{} manifests and {} blobs deleted, {} freed ({} bytes)",
            done.manifests,
            done.blobs,
            human(done.bytes),
            done.bytes
        ));
        if done.failed > 0 {
            ctx.warn(format!("{} blobs could not be removed from storage; the next run retries them", done.failed));
        }
        ctx.info("success to run gc in job.");
        ctx.checkpoint(&done).await
    }
}

impl GarbageCollection {
    async fn delete_untagged(&self, ctx: &JobCtx, window: i64, done: &mut GcProgress) -> Result<(), JobError> {
        let mut after = 0;
        loop {
            ctx.check()?;
            let found = self.store.untagged_manifests(window, after, UNTAGGED_BATCH).await?;
            let Some(last) = found.last() else { break };
            after = last.id;
            let ids: Vec<i64> = found.iter().map(|m| m.id).collect();
            for m in self.store.delete_untagged(&ids).await? {
                if done.manifests < LISTED {
                    ctx.info(format!("delete the untagged artifact {}@{}", m.repo, m.digest));
                }
                done.manifests += 1;
            }
            ctx.checkpoint(&*done).await?;
        }
        Ok(())
    }

    async fn dry_run(&self, ctx: &JobCtx, p: GcParams, window: i64) -> Result<(), JobError> {
        let mut manifests = 0u64;
        if p.delete_untagged {
            let mut after = 0;
            loop {
                ctx.check()?;
                let found = self.store.untagged_manifests(window, after, UNTAGGED_BATCH).await?;
                let Some(last) = found.last() else { break };
                after = last.id;
                for m in &found {
                    if manifests < LISTED {
                        ctx.info(format!("untagged artifact eligible for deletion: {}@{}", m.repo, m.digest));
                    }
                    manifests += 1;
                }
            }
        }
        let (mut blobs, mut bytes) = (0u64, 0u64);
        let mut after: Option<Digest> = None;
        loop {
            ctx.check()?;
            let found = self.store.gc_candidates(window, after.as_ref(), CLAIM_BATCH).await?;
            let Some(last) = found.last() else { break };
            after = Some(last.digest.clone());
            for b in &found {
                if blobs < LISTED {
                    ctx.info(format!("blob eligible for deletion: {} ({} bytes)", b.digest, b.size));
                }
                blobs += 1;
                bytes += b.size;
            }
        }
        let (files, file_bytes) = self.unknown_files(ctx, window, false).await?;
        if files > 0 {
            ctx.info(format!(
                "dry run: {files} blob files the database does not know would be removed ({}, {file_bytes} bytes)",
                human(file_bytes)
            ));
        }
        ctx.info(format!(
            "dry run: {manifests} manifests and {blobs} blobs eligible for deletion, {} would be freed ({bytes} bytes){}",
            human(bytes),
            if manifests > 0 { "; blobs only the untagged manifests use are freed by a real run on top" } else { "" }
        ));
        ctx.checkpoint(&GcProgress { manifests, blobs, bytes, failed: 0 }).await
    }

    /// Blob files with no row at all, older than the window: left by a crash between
    /// writing a blob and committing its row, or by a row removed by hand. Only on a
    /// storage that is Berth's own: another registry's files served in place are not
    /// garbage. Each goes under its digest lock after a second look at the database, so
    /// a push of the same blob racing with the sweep keeps its file. Returns how many
    /// files (and bytes) were, or with `remove` false would be, removed.
    async fn unknown_files(&self, ctx: &JobCtx, window: i64, remove: bool) -> Result<(u64, u64), JobError> {
        let storage = |e: std::io::Error| JobError::Retry(format!("storage: {e}"));
        if !self.blobs.owned().await.map_err(storage)? {
            ctx.info(
                "the storage holds files Berth did not write (another registry's, served in place): blob files \
                 the database does not know are kept; `berth storage adopt` lets GC remove them",
            );
            return Ok((0, 0));
        }
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(window.max(0) as u64);
        let (mut files, mut bytes) = (0u64, 0u64);
        let mut after: Option<Digest> = None;
        loop {
            ctx.check()?;
            let page = self.blobs.list_blobs(after.as_ref(), CLAIM_BATCH).await.map_err(storage)?;
            let Some(last) = page.last() else { break };
            after = Some(last.digest.clone());
            // A file whose age the storage does not tell is only taken with no window.
            let old: Vec<Digest> = page
                .iter()
                .filter(|b| b.modified.map_or(window == 0, |m| m <= cutoff))
                .map(|b| b.digest.clone())
                .collect();
            for d in self.store.unknown_blobs(&old).await? {
                let size = page.iter().find(|b| b.digest == d).map_or(0, |b| b.size);
                if remove {
                    let lock = self.store.lock_for_sweep(&d).await?;
                    let outcome = async {
                        if self.store.unknown_blobs(std::slice::from_ref(&d)).await?.is_empty() {
                            return Ok(false);
                        }
                        self.blobs.delete(&d).await.map_err(storage)?;
                        Ok::<_, JobError>(true)
                    }
                    .await;
                    lock.release().await;
                    match outcome {
                        Ok(false) => continue,
                        Ok(true) => {}
                        Err(e) => {
                            ctx.warn(format!("failed to delete the unknown blob file {d}: {e}"));
                            continue;
                        }
                    }
                }
                if files < LISTED {
                    let verb = if remove {
                        "delete blob file the database does not know"
                    } else {
                        "unknown blob file eligible for deletion"
                    };
                    ctx.info(format!("{verb}: {d} ({size} bytes)"));
                }
                files += 1;
                bytes += size;
            }
        }
        Ok((files, bytes))
    }

    /// Phase B for claimed rows, `workers` sub-batches at once.
    async fn sweep(
        &self,
        ctx: &JobCtx,
        run: &str,
        claimed: Vec<GcBlob>,
        workers: usize,
        done: &mut GcProgress,
    ) -> Result<(), JobError> {
        let per = claimed.len().div_ceil(workers).max(1);
        let mut set = JoinSet::new();
        for chunk in claimed.chunks(per) {
            let (store, blobs, run) = (Arc::clone(&self.store), Arc::clone(&self.blobs), run.to_owned());
            let digests: Vec<Digest> = chunk.iter().map(|b| b.digest.clone()).collect();
            set.spawn(async move { remove(store, blobs, &run, &digests).await });
        }
        let mut error = None;
        while let Some(r) = set.join_next().await {
            match r.map_err(|e| JobError::Retry(format!("a GC worker failed: {e}")))? {
                Ok(outcome) => {
                    let (mut unlisted, mut unlisted_bytes) = (0u64, 0u64);
                    for b in &outcome.removed {
                        if done.blobs < LISTED {
                            ctx.info(format!("delete blob from storage: {} ({} bytes)", b.digest, b.size));
                        } else {
                            unlisted += 1;
                            unlisted_bytes += b.size;
                        }
                        done.blobs += 1;
                        done.bytes += b.size;
                    }
                    if unlisted > 0 {
                        ctx.info(format!("deleted {unlisted} more blobs from storage ({unlisted_bytes} bytes)"));
                    }
                    for (d, e) in &outcome.failed {
                        ctx.warn(format!("failed to delete blob {d} from storage: {e}"));
                        done.failed += 1;
                    }
                }
                Err(GcStoreError::Referenced(d)) => {
                    let msg = format!(
                        "blob {d} was marked for deletion while a manifest references it; GC stopped before \
                         removing its bytes (please report this)"
                    );
                    ctx.error(msg.clone());
                    error = Some(JobError::Fatal(msg));
                }
                Err(GcStoreError::Store(e)) => error = error.or(Some(JobError::from(e))),
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        ctx.checkpoint(&*done).await
    }
}

struct Removed {
    removed: Vec<GcBlob>,
    failed: Vec<(Digest, String)>,
}

/// Phase B for one sub-batch: under the digest locks, the bytes of rows still
/// `deleting` and owned by `run` go, then those rows. A failed removal leaves its row
/// `deleting` for the next run (never `live`: part of the bytes may be gone).
async fn remove(
    store: Arc<dyn GcStore>,
    blobs: Arc<dyn BlobStore>,
    run: &str,
    digests: &[Digest],
) -> Result<Removed, GcStoreError> {
    let batch = store.begin_delete(run, digests).await?;
    let held = batch.blobs().to_vec();
    let mut removed = Vec::with_capacity(held.len());
    let mut failed = Vec::new();
    for group in held.chunks(DELETES_IN_FLIGHT) {
        let mut set = JoinSet::new();
        for b in group {
            let (blobs, b) = (Arc::clone(&blobs), b.clone());
            set.spawn(async move {
                let r = blobs.delete(&b.digest).await;
                (b, r)
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok((b, Ok(()))) => removed.push(b),
                Ok((b, Err(e))) => failed.push((b.digest, e.to_string())),
                Err(e) => return Err(GcStoreError::Store(berth_core::store::StoreError::Backend(e.to_string()))),
            }
        }
    }
    removed.sort_by(|a, b| a.digest.cmp(&b.digest));
    let gone: Vec<Digest> = removed.iter().map(|b| b.digest.clone()).collect();
    batch.finish(&gone).await?;
    Ok(Removed { removed, failed })
}

/// Bytes as Harbor's log shows them.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.2} {}", UNITS[u]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Result<GcParams, ParamError> {
        GcParams::from_json(v.as_object().unwrap())
    }

    #[test]
    fn params_as_harbor_sends_them() {
        let p = params(serde_json::json!({"delete_untagged": true, "dry_run": false, "workers": 3})).unwrap();
        assert_eq!(p, GcParams { delete_untagged: true, dry_run: false, workers: 3 });
        assert_eq!(params(serde_json::json!({})).unwrap(), GcParams::default());
        assert_eq!(params(serde_json::json!({"workers": "5", "dry_run": "true"})).unwrap().workers, 5);
    }

    #[test]
    fn param_refusals_name_the_field() {
        let field = |v| params(v).unwrap_err().field;
        assert_eq!(field(serde_json::json!({"workers": 0})), "parameters.workers");
        assert_eq!(field(serde_json::json!({"workers": 6})), "parameters.workers");
        assert_eq!(field(serde_json::json!({"workers": "many"})), "parameters.workers");
        assert_eq!(field(serde_json::json!({"dry_run": 1})), "parameters.dry_run");
        assert_eq!(field(serde_json::json!({"delete_untagged": "yes"})), "parameters.delete_untagged");
        assert_eq!(field(serde_json::json!({"purge": true})), "parameters.purge");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.50 KiB");
        assert_eq!(human(3 * 1024 * 1024 * 1024), "3.00 GiB");
    }
}
