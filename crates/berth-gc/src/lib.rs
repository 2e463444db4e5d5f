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
use std::time::{Duration, Instant};

use berth_core::Digest;
use berth_core::blobstore::BlobStore;
use berth_core::registry::Registry;
use berth_core::store::gc::{DigestRange, GcBlob, GcStore, GcStoreError};
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
    /// `gc.pause_percent`: after each claim, the next one waits this percentage of the
    /// claim's time. A claim is the database's busiest work in a run; unpaced, a run goes
    /// as fast as the database can claim and takes the cores requests need (push p50
    /// during GC 40 ms against 10-12 idle on a 2-core machine running PostgreSQL beside
    /// Berth; 13 ms with 100 %, docs/benchmarks.md). 0 runs at full speed.
    pub pause_percent: u32,
}

/// The wait before the next claim, after one that took `took`.
pub fn pause_after(took: Duration, pause_percent: u32) -> Duration {
    took.saturating_mul(pause_percent) / 100
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
        let mut spent = Spent::default();
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
        let mut sweep = Sweep::new(workers);
        // Stragglers first: their rows are already `deleting` (absent to every API),
        // only their bytes and rows are left to remove.
        loop {
            sweep.check(ctx, &mut done, &mut spent).await?;
            let adopted = self.store.adopt_stragglers(&run, CLAIM_BATCH).await?;
            if adopted.is_empty() {
                break;
            }
            ctx.info(format!("resuming the deletion of {} blobs an earlier run had marked", adopted.len()));
            sweep.add(self, ctx, &run, adopted, &mut done, &mut spent).await?;
        }
        // The next batch is claimed while this one is swept, and a batch's rows are
        // deleted while the next one's bytes go: the database's work and the storage's
        // overlap. Claimed rows are owned by this run and absent to every API, so a run
        // that stops with a batch claimed and not swept leaves stragglers, which the next
        // run adopts.
        // One walk through the digests, in `LANES` ranges at once: each claim takes the
        // next few candidates of every range, after the last one claimed there. A blob
        // that becomes unreferenced behind a cursor waits for the next run.
        // A claim starts after the pause the one before it earned (see `pause_percent`),
        // while phase B already works on that one's rows.
        let claim = |store: Arc<dyn GcStore>, run: String, lanes: Vec<DigestRange>, pause: Duration| {
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                let t = Instant::now();
                let r = store.claim_blobs(&run, window, &lanes, PER_LANE).await;
                (r, t.elapsed())
            })
        };
        let mut lanes = lanes();
        let mut next = Some(claim(Arc::clone(&self.store), run.clone(), lanes.clone(), Duration::ZERO));
        while let Some(pending) = next.take() {
            let waited = Instant::now();
            let (claimed, took) = pending.await.map_err(|e| JobError::Retry(format!("a GC claim failed: {e}")))?;
            let claimed = claimed?;
            spent.claims += waited.elapsed();
            advance(&mut lanes, &claimed);
            sweep.check(ctx, &mut done, &mut spent).await?;
            if !lanes.is_empty() {
                let pause = pause_after(took, self.pause_percent);
                spent.paused += pause;
                next = Some(claim(Arc::clone(&self.store), run.clone(), lanes.clone(), pause));
            }
            sweep.add(self, ctx, &run, claimed, &mut done, &mut spent).await?;
        }
        sweep.finish(ctx, &mut done, &mut spent).await?;
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
        if done.blobs > 0 {
            ctx.info(spent.to_string());
        }
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
}

/// Ranges of the digest space a run walks at once: one per first hex digit of a sha256
/// digest (the first and last also take other algorithms). On a file system the blobs of
/// one range share a few directories, those of different ranges never: a batch drawn
/// from all of them spreads its removals over 16 directories, whose locks (held by the
/// file system across each removal, including the discard of its blocks where the mount
/// discards) no longer make removals wait for each other. Measured on ext4: about twice
/// the removals per second of one walk in digest order (docs/benchmarks.md).
const LANES: u32 = 16;
/// Candidates per range per claim: a claim is up to `LANES × PER_LANE` rows.
const PER_LANE: usize = CLAIM_BATCH / LANES as usize;

fn lanes() -> Vec<DigestRange> {
    let bound = |i: u32| (i > 0 && i < LANES).then(|| format!("sha256:{i:x}"));
    (0..LANES).map(|i| DigestRange { after: bound(i), before: bound(i + 1) }).collect()
}

/// Moves each range's cursor to the last digest claimed in it; a range that yielded
/// nothing is done.
fn advance(lanes: &mut Vec<DigestRange>, claimed: &[GcBlob]) {
    let digests: Vec<String> = claimed.iter().map(|b| b.digest.to_string()).collect();
    lanes.retain_mut(|lane| match digests.iter().rev().find(|d| lane.contains(d)) {
        Some(last) => {
            lane.after = Some(last.clone());
            true
        }
        None => false,
    });
}

/// Takes the blobs of a batch from its ranges in turn (the first of each, then the
/// second of each, …), so that the removals in flight at any time are in different
/// ranges.
fn interleave(batch: Vec<GcBlob>) -> Vec<GcBlob> {
    let all = lanes();
    let mut groups: Vec<Vec<GcBlob>> = vec![Vec::new(); all.len()];
    for b in batch {
        let d = b.digest.to_string();
        let i = all.iter().position(|l| l.contains(&d)).unwrap_or(0);
        groups[i].push(b);
    }
    let mut iters: Vec<_> = groups.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        out.extend(iters.iter_mut().filter_map(Iterator::next));
        if out.len() == before {
            return out;
        }
    }
}

/// Phase B as a pipeline: each batch goes as `workers` sub-batches, and up to twice
/// that many are in flight, so that while some delete their rows, others remove bytes.
struct Sweep {
    workers: usize,
    inflight: JoinSet<Result<Removed, GcStoreError>>,
    error: Option<JobError>,
}

impl Sweep {
    fn new(workers: usize) -> Sweep {
        Sweep { workers, inflight: JoinSet::new(), error: None }
    }

    /// `ctx.check()`, letting the sub-batches in flight end first when it fails: their
    /// rows are deleted, not left as stragglers, and counted in the checkpoint an attempt
    /// that resumes the run starts from.
    async fn check(&mut self, ctx: &JobCtx, done: &mut GcProgress, spent: &mut Spent) -> Result<(), JobError> {
        if let Err(e) = ctx.check() {
            // The stop's (or the lost lease's) error is the one to report; a checkpoint
            // refused for a lost lease changes nothing.
            let _ = self.finish(ctx, done, spent).await;
            return Err(e);
        }
        Ok(())
    }

    async fn add(
        &mut self,
        gc: &GarbageCollection,
        ctx: &JobCtx,
        run: &str,
        batch: Vec<GcBlob>,
        done: &mut GcProgress,
        spent: &mut Spent,
    ) -> Result<(), JobError> {
        let batch = interleave(batch);
        let per = batch.len().div_ceil(self.workers).max(1);
        for chunk in batch.chunks(per) {
            while self.inflight.len() >= 2 * self.workers {
                let r = self.inflight.join_next().await.expect("in flight");
                self.collect(ctx, r, done, spent);
            }
            if self.error.is_some() {
                return self.finish(ctx, done, spent).await;
            }
            let (store, blobs, run) = (Arc::clone(&gc.store), Arc::clone(&gc.blobs), run.to_owned());
            let digests: Vec<Digest> = chunk.iter().map(|b| b.digest.clone()).collect();
            self.inflight.spawn(async move { remove(store, blobs, &run, &digests).await });
        }
        ctx.checkpoint(&*done).await
    }

    /// Waits for every sub-batch in flight and counts what they did; returns the first
    /// error any sub-batch met, else checkpoints.
    async fn finish(&mut self, ctx: &JobCtx, done: &mut GcProgress, spent: &mut Spent) -> Result<(), JobError> {
        while let Some(r) = self.inflight.join_next().await {
            self.collect(ctx, r, done, spent);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        ctx.checkpoint(&*done).await
    }

    fn collect(
        &mut self,
        ctx: &JobCtx,
        r: Result<Result<Removed, GcStoreError>, tokio::task::JoinError>,
        done: &mut GcProgress,
        spent: &mut Spent,
    ) {
        match r {
            Err(e) => self.error = self.error.take().or(Some(JobError::Retry(format!("a GC worker failed: {e}")))),
            Ok(Ok(outcome)) => {
                spent.locks += outcome.locks;
                spent.files += outcome.files;
                spent.rows += outcome.rows;
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
            Ok(Err(GcStoreError::Referenced(d))) => {
                let msg = format!(
                    "blob {d} was marked for deletion while a manifest references it; GC stopped before removing \
                     its bytes (please report this)"
                );
                ctx.error(msg.clone());
                self.error = Some(JobError::Fatal(msg));
            }
            Ok(Err(GcStoreError::Store(e))) => self.error = self.error.take().or(Some(JobError::from(e))),
        }
    }
}

struct Removed {
    removed: Vec<GcBlob>,
    failed: Vec<(Digest, String)>,
    locks: Duration,
    files: Duration,
    rows: Duration,
}

/// Where a run's time went, for its log: whether the database or the storage bounds a
/// run is what an operator tuning `workers` (or the database) needs to know.
#[derive(Debug, Default)]
struct Spent {
    /// Waiting for the next claim (the database's phase A not keeping up with phase B),
    /// including the pacing pauses.
    claims: Duration,
    /// The pacing pauses before claims (`pause_percent`).
    paused: Duration,
    /// Summed over the workers: taking the digest locks and re-reading the rows,
    /// removing the bytes, deleting the rows.
    locks: Duration,
    files: Duration,
    rows: Duration,
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "time spent waiting for claims {:.1} s (pausing between them {:.1} s); in the workers (summed) locking \
             {:.1} s, removing bytes {:.1} s, deleting rows {:.1} s",
            self.claims.as_secs_f64(),
            self.paused.as_secs_f64(),
            self.locks.as_secs_f64(),
            self.files.as_secs_f64(),
            self.rows.as_secs_f64()
        )
    }
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
    let t = Instant::now();
    let batch = store.begin_delete(run, digests).await?;
    let locks = t.elapsed();
    let held = interleave(batch.blobs().to_vec());
    let mut removed = Vec::with_capacity(held.len());
    let mut failed = Vec::new();
    // A sliding window rather than groups in lockstep: one slow removal does not hold
    // back the others.
    let mut set = JoinSet::new();
    let mut queue = held.into_iter();
    loop {
        while set.len() < DELETES_IN_FLIGHT {
            let Some(b) = queue.next() else { break };
            let blobs = Arc::clone(&blobs);
            set.spawn(async move {
                let r = blobs.delete(&b.digest).await;
                (b, r)
            });
        }
        match set.join_next().await {
            None => break,
            Some(Ok((b, Ok(())))) => removed.push(b),
            Some(Ok((b, Err(e)))) => failed.push((b.digest, e.to_string())),
            Some(Err(e)) => return Err(GcStoreError::Store(berth_core::store::StoreError::Backend(e.to_string()))),
        }
    }
    let files = t.elapsed() - locks;
    removed.sort_by(|a, b| a.digest.cmp(&b.digest));
    let gone: Vec<Digest> = removed.iter().map(|b| b.digest.clone()).collect();
    batch.finish(&gone).await?;
    let rows = t.elapsed() - locks - files;
    Ok(Removed { removed, failed, locks, files, rows })
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

    fn blob(hex_start: &str) -> GcBlob {
        let hex = format!("{hex_start}{}", "0".repeat(64 - hex_start.len()));
        GcBlob { digest: format!("sha256:{hex}").parse().unwrap(), size: 1 }
    }

    #[test]
    fn lanes_cover_every_digest_once() {
        let all = lanes();
        assert_eq!(all.len(), LANES as usize);
        let sha512 = format!("sha512:{}", "0".repeat(128));
        for d in (0..16).map(|i| blob(&format!("{i:x}")).digest.to_string()).chain([sha512]) {
            assert_eq!(all.iter().filter(|l| l.contains(&d)).count(), 1, "{d}");
        }
    }

    #[test]
    fn cursors_move_per_lane_and_empty_lanes_end() {
        let mut l = lanes();
        let claimed = [blob("01"), blob("02"), blob("a1")];
        advance(&mut l, &claimed);
        assert_eq!(l.len(), 2, "only the lanes that yielded blobs go on");
        assert_eq!(l[0].after.as_deref(), Some(claimed[1].digest.to_string().as_str()));
        assert_eq!(l[1].after.as_deref(), Some(claimed[2].digest.to_string().as_str()));
        assert_eq!(l[1].before.as_deref(), Some("sha256:b"), "a lane keeps its end");
    }

    #[test]
    fn removals_alternate_between_lanes() {
        let order: Vec<String> = interleave(vec![blob("01"), blob("02"), blob("03"), blob("51"), blob("f1")])
            .iter()
            .map(|b| b.digest.hex()[..2].to_owned())
            .collect();
        assert_eq!(order, ["01", "51", "f1", "02", "03"]);
    }

    #[test]
    fn pauses_are_a_share_of_the_claim() {
        let took = Duration::from_millis(40);
        assert_eq!(pause_after(took, 100), took, "100 %: as long as the claim");
        assert_eq!(pause_after(took, 50), Duration::from_millis(20));
        assert_eq!(pause_after(took, 0), Duration::ZERO, "0: full speed");
        assert_eq!(pause_after(Duration::MAX, 1000), Duration::MAX / 100, "saturates, never panics");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.50 KiB");
        assert_eq!(human(3 * 1024 * 1024 * 1024), "3.00 GiB");
    }
}
