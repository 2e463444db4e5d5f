//! The writer thread: group commit for every write of the store.
//!
//! With `synchronous=FULL` each COMMIT costs an fsync, and that, not the SQL, bounds
//! how many writes per second the store can take. So writes queue here and one thread
//! runs whatever has queued up in a single transaction: while one batch waits for its
//! fsync, the next one fills. Each job runs inside its own savepoint, so a job that
//! fails leaves nothing behind and does not undo its neighbours; and no caller hears
//! "done" before the COMMIT holding its work has succeeded.
//!
//! Two lanes: requests' writes (a push waits for them) and background writes (GC's
//! claims and deletions, big and not waited for by anyone in a hurry). A background job
//! runs only when no request's write is queued and none has ended for [`QUIET`] (a push
//! is a short series of writes with its file fsyncs between them: GC does not slip into
//! those gaps), in a transaction of its own, so a request never shares a commit (and its
//! fsync) with one, and waits at most for the one background transaction already running
//! when it arrived. Background work cannot be starved for good: after [`FAIR_TURNS`]
//! request batches in a row with background work waiting, one background job goes.
//!
//! Background work whose loss in a crash is harmless (GC deleting rows it already owns:
//! a lost deletion leaves them `deleting`, for the next run to finish) commits without
//! its own fsync ([`Lane::BackgroundUnsynced`]): in WAL mode the next synced commit or
//! checkpoint makes it durable, and a crash before that only loses a suffix of the log,
//! never reorders it.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

use berth_core::store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Fail, map_sqlite};

/// Upper bound on jobs per transaction, so that a long queue cannot make one batch hold
/// the write lock (and its callers' replies) for long.
pub(crate) const MAX_BATCH: usize = 128;

/// WAL size (pages) at which the writer checkpoints by itself: only if the checkpoint
/// thread falls far behind. SQLite's default (1000) would have every large write (GC
/// deleting a batch of rows) followed by a checkpoint in the writer thread, copying
/// thousands of pages and fsyncing the database while every other write waits.
const WRITER_AUTOCHECKPOINT: i64 = 16_384;

/// Request batches the writer runs in a row while background work waits, before it lets
/// one background job go: background work gets at least one turn in this many even
/// under a continuous stream of requests.
pub(crate) const FAIR_TURNS: u32 = 8;

/// How long after a request's write the writer keeps background work waiting, while no
/// request is queued: longer than the gaps between one push's writes (a blob's file
/// fsyncs), short enough that GC goes on between pushes.
pub(crate) const QUIET: std::time::Duration = std::time::Duration::from_millis(8);

/// Which queue a write joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A request's write: batched with other requests', ahead of background work.
    Request,
    /// Background work (GC): runs alone, when no request's write is queued.
    Background,
    /// Background work committed without an fsync of its own (see the module's doc):
    /// only for writes a crash may undo without harm.
    BackgroundUnsynced,
}

/// Counters of the writer thread, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed; each paid an fsync but the `unsynced_commits`.
    pub commits: u64,
    /// Of `commits`, those of the unsynced background lane.
    pub unsynced_commits: u64,
    /// Write jobs run, whatever their outcome (not counting those turned away because
    /// their transaction could not begin).
    pub jobs: u64,
    /// Of `jobs`, those of the background lane.
    pub background_jobs: u64,
    /// Time spent in background transactions (BEGIN to COMMIT), which a request's write
    /// arriving meanwhile waits for.
    pub background_busy: std::time::Duration,
    /// The longest background transaction.
    pub background_max: std::time::Duration,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    unsynced_commits: AtomicU64,
    jobs: AtomicU64,
    background_jobs: AtomicU64,
    background_busy_us: AtomicU64,
    background_max_us: AtomicU64,
}

/// The two lanes, shared by the callers and the writer thread.
#[derive(Default)]
struct Queue {
    lanes: Mutex<Lanes>,
    ready: Condvar,
}

#[derive(Default)]
struct Lanes {
    request: VecDeque<Box<dyn Job>>,
    /// With the lane each job asked for (synced or not).
    background: VecDeque<(Lane, Box<dyn Job>)>,
    /// When the last batch of requests' writes ended: background work waits for
    /// [`QUIET`] after it.
    last_request: Option<std::time::Instant>,
    /// Set by drop: the thread runs what is queued, then stops.
    closed: bool,
}

impl Queue {
    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        // A panic never happens with the lock held (jobs run outside it).
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, lane: Lane, job: Box<dyn Job>) -> bool {
        let mut l = self.lanes();
        if l.closed {
            return false;
        }
        match lane {
            Lane::Request => l.request.push_back(job),
            Lane::Background | Lane::BackgroundUnsynced => l.background.push_back((lane, job)),
        }
        drop(l);
        self.ready.notify_one();
        true
    }

    /// The next batch, waiting for one; `None` once closed and empty. `streak` counts
    /// request batches run in a row while background work waited.
    fn next(&self, streak: &mut u32) -> Option<(Lane, VecDeque<Box<dyn Job>>)> {
        let mut l = self.lanes();
        loop {
            // Time left before the writer is quiet enough for background work.
            let wait = l.last_request.map_or(std::time::Duration::ZERO, |t| QUIET.saturating_sub(t.elapsed()));
            let background_due =
                !l.background.is_empty() && ((l.request.is_empty() && wait.is_zero()) || *streak >= FAIR_TURNS);
            if background_due {
                *streak = 0;
                return l.background.pop_front().map(|(lane, j)| (lane, VecDeque::from([j])));
            }
            if !l.request.is_empty() {
                if !l.background.is_empty() {
                    *streak += 1;
                }
                let n = l.request.len().min(MAX_BATCH);
                return Some((Lane::Request, l.request.drain(..n).collect()));
            }
            if l.closed {
                // Background work still queued runs now: nothing else will come.
                if let Some((lane, j)) = l.background.pop_front() {
                    return Some((lane, VecDeque::from([j])));
                }
                return None;
            }
            l = if l.background.is_empty() {
                self.ready.wait(l).unwrap_or_else(|p| p.into_inner())
            } else {
                self.ready.wait_timeout(l, wait).unwrap_or_else(|p| p.into_inner()).0
            };
        }
    }
}

pub(crate) struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
    /// Copies the WAL back into the database off the writer thread (see
    /// [`WRITER_AUTOCHECKPOINT`]); stops when the writer thread does.
    checkpointer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread on `conn`, and, given a second connection to the same
    /// database, a checkpoint thread that keeps the WAL short after commits.
    pub(crate) fn spawn(conn: Connection, checkpoints: Option<Connection>) -> std::io::Result<Writer> {
        let queue = Arc::new(Queue::default());
        let counters = Arc::new(Counters::default());
        let (committed, checkpointer) = match checkpoints {
            Some(cp) => {
                conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT).map_err(std::io::Error::other)?;
                let (tx, rx) = mpsc::sync_channel::<()>(1);
                let t = std::thread::Builder::new().name("berth-sqlite-checkpoint".into()).spawn(move || {
                    while rx.recv().is_ok() {
                        // PASSIVE: copies what no reader still needs, never waits for
                        // the writer or readers; what it leaves goes next time.
                        let _ = cp.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    }
                })?;
                (Some(tx), Some(t))
            }
            None => (None, None),
        };
        let thread = std::thread::Builder::new().name("berth-sqlite-writer".into()).spawn({
            let (counters, queue) = (Arc::clone(&counters), Arc::clone(&queue));
            move || run(&conn, &queue, &counters, committed.as_ref())
        })?;
        Ok(Writer { queue, thread: Some(thread), checkpointer, counters })
    }

    /// Runs `f` on the writer connection, inside the transaction of the next batch, and
    /// answers once that transaction has committed. `f` must not BEGIN, COMMIT or use
    /// savepoints itself. If it returns an error (or panics), whatever it wrote is undone
    /// and the rest of the batch is unaffected.
    ///
    /// The job runs even if the returned future is dropped, like a request whose
    /// client went away after sending it.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.write_in(Lane::Request, f).await
    }

    /// [`Writer::write`] in the background lane: after every request's write queued,
    /// in a transaction of its own. For GC's writes.
    pub(crate) async fn write_background<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.write_in(Lane::Background, f).await
    }

    /// [`Writer::write_background`] committed without an fsync of its own: only for
    /// writes whose loss in a crash is harmless (see the module's doc).
    pub(crate) async fn write_background_unsynced<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.write_in(Lane::BackgroundUnsynced, f).await
    }

    async fn write_in<T, F>(&self, lane: Lane, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.submit(lane, f)?.await.map_err(|_| StoreError::Backend("metadata store writer thread stopped".into()))?
    }

    /// Queues `f` without waiting; `write_in` is this plus awaiting the answer.
    fn submit<T, F>(&self, lane: Lane, f: F) -> StoreResult<oneshot::Receiver<StoreResult<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending { f: Some(f), out: None, reply });
        if !self.queue.push(lane, job) {
            return Err(StoreError::Unavailable("metadata store is closed".into()));
        }
        Ok(answer)
    }

    /// Occupies the writer thread until the returned sender is dropped, so that the
    /// jobs queued meanwhile all land in one batch.
    #[cfg(test)]
    pub(crate) async fn hold(&self) -> (mpsc::Sender<()>, oneshot::Receiver<StoreResult<()>>) {
        let (release, gate) = mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let held = self
            .submit(Lane::Request, move |_| {
                let _ = started.send(());
                let _ = gate.recv();
                Ok(())
            })
            .unwrap();
        running.await.unwrap();
        (release, held)
    }

    /// A request's write is on its way (see `MetaStore::write_coming`): background work
    /// waits [`QUIET`] from now, as after a request's write. A push's first write used
    /// to find the writer inside a background transaction more often than not, and
    /// waited for its end (docs/benchmarks.md).
    pub(crate) fn write_coming(&self) {
        let now = std::time::Instant::now();
        let mut l = self.queue.lanes();
        if l.last_request.is_none_or(|t| t < now) {
            l.last_request = Some(now);
        }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            unsynced_commits: self.counters.unsynced_commits.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
            background_jobs: self.counters.background_jobs.load(Ordering::Relaxed),
            background_busy: std::time::Duration::from_micros(self.counters.background_busy_us.load(Ordering::Relaxed)),
            background_max: std::time::Duration::from_micros(self.counters.background_max_us.load(Ordering::Relaxed)),
        }
    }
}

impl Drop for Writer {
    /// Waits for the jobs already queued (those of callers that gave up waiting) so
    /// that the connection is closed, and the WAL checkpointed, before drop returns.
    /// At most one batch, bounded by the busy timeout.
    fn drop(&mut self) {
        self.queue.lanes().closed = true;
        self.queue.ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.checkpointer.take() {
            let _ = t.join();
        }
    }
}

/// A queued write with its reply channel, its result type erased so that one queue
/// carries them all.
trait Job: Send {
    /// Runs the work; false if it failed, so that its savepoint must be rolled back.
    fn run(&mut self, c: &Connection) -> bool;
    /// Replies to the caller: with the job's own result, or with `lost` if the
    /// transaction that held its work did not commit.
    fn finish(self: Box<Self>, lost: Option<StoreError>);
}

struct Pending<T, F> {
    f: Option<F>,
    out: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, Fail> + Send,
{
    fn run(&mut self, c: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        // AssertUnwindSafe: after a panic the only shared state is the connection, and
        // the caller rolls its savepoint back before anyone else uses it.
        let out = match catch_unwind(AssertUnwindSafe(|| f(c))) {
            Ok(r) => r.map_err(StoreError::from),
            Err(p) => Err(StoreError::Backend(format!("metadata store write panicked: {}", panic_message(p.as_ref())))),
        };
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, lost: Option<StoreError>) {
        let out = match (lost, self.out) {
            (Some(e), _) => Err(e),
            (None, Some(out)) => out,
            (None, None) => Err(StoreError::Backend("write job was never run".into())),
        };
        // The caller may have stopped waiting; its work stands regardless.
        let _ = self.reply.send(out);
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn run(c: &Connection, queue: &Queue, counters: &Counters, committed: Option<&mpsc::SyncSender<()>>) {
    // No waiting for more jobs to arrive: whatever queues during one batch's fsync forms
    // the next batch, so a lone writer pays no extra latency.
    let mut streak = 0;
    while let Some((lane, mut batch)) = queue.next(&mut streak) {
        let started = std::time::Instant::now();
        let background = lane != Lane::Request;
        if background {
            // Counted before its caller hears back, like `jobs`.
            counters.background_jobs.fetch_add(1, Ordering::Relaxed);
        }
        // On failure the commit is synced as usual: slower, never less durable.
        let unsynced = lane == Lane::BackgroundUnsynced && c.execute_batch("PRAGMA synchronous = NORMAL").is_ok();
        let commits = counters.commits.load(Ordering::Relaxed);
        while !batch.is_empty() {
            transaction(c, &mut batch, counters);
        }
        if unsynced {
            let made = counters.commits.load(Ordering::Relaxed) - commits;
            counters.unsynced_commits.fetch_add(made, Ordering::Relaxed);
        }
        // Requests' commits must not go unsynced: if FULL cannot be restored, stop writing
        // rather than acknowledge writes a crash could lose. Callers see the writer gone.
        if unsynced && c.execute_batch("PRAGMA synchronous = FULL").is_err() {
            return;
        }
        if lane == Lane::Request {
            queue.lanes().last_request = Some(std::time::Instant::now());
        }
        if background {
            let us = started.elapsed().as_micros() as u64;
            counters.background_busy_us.fetch_add(us, Ordering::Relaxed);
            counters.background_max_us.fetch_max(us, Ordering::Relaxed);
        }
        // Wakes the checkpoint thread; one wake-up pending is enough.
        if let Some(tx) = committed {
            let _ = tx.try_send(());
        }
    }
}

/// Runs jobs from the front of `queue` in one transaction and replies to them. Usually
/// takes them all; stops early, leaving the rest for a fresh transaction, if the
/// transaction is lost midway.
fn transaction(c: &Connection, queue: &mut VecDeque<Box<dyn Job>>, counters: &Counters) {
    if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
        // Typically another process holding the lock past the busy timeout; the whole
        // batch waited for it together, and gets the answer together.
        let e = map_sqlite(e);
        for job in queue.drain(..) {
            job.finish(Some(dup(&e)));
        }
        return;
    }
    let mut done: Vec<Box<dyn Job>> = Vec::with_capacity(queue.len());
    while let Some(mut job) = queue.pop_front() {
        counters.jobs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = c.execute_batch("SAVEPOINT j") {
            done.push(job);
            return abandon(c, done, &map_sqlite(e));
        }
        let ok = job.run(c);
        if c.is_autocommit() {
            // SQLite rolls back the whole transaction on some errors (disk full, I/O
            // error, out of memory), taking every earlier job's work with it. Those
            // callers must not be told their write succeeded; the jobs still queued get
            // a fresh transaction.
            abandon(
                c,
                done,
                &StoreError::Unavailable("the transaction was rolled back after another write in it failed".into()),
            );
            // A job that ended the transaction and still claims success cannot know
            // what became of its work.
            let own = ok.then(|| StoreError::Backend("write ended its transaction; outcome unknown".into()));
            return job.finish(own);
        }
        done.push(job);
        let end = if ok { "RELEASE j" } else { "ROLLBACK TO j; RELEASE j" };
        if let Err(e) = c.execute_batch(end) {
            return abandon(c, done, &map_sqlite(e));
        }
    }
    match c.execute_batch("COMMIT") {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            for job in done {
                job.finish(None);
            }
        }
        Err(e) => abandon(c, done, &map_sqlite(e)),
    }
}

/// Rolls back the open transaction, if SQLite has not already, and tells every job in
/// it that its work is gone. A failed job gets `e` too: its own error may have been
/// about rows that now never existed.
fn abandon(c: &Connection, done: Vec<Box<dyn Job>>, e: &StoreError) {
    if !c.is_autocommit() {
        let _ = c.execute_batch("ROLLBACK");
    }
    for job in done {
        job.finish(Some(dup(e)));
    }
}

fn dup(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        StoreError::QuotaExceeded(q) => StoreError::QuotaExceeded(q.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend;

    fn writer(dir: &tempfile::TempDir) -> (Writer, Connection) {
        let path = dir.path().join("w.db");
        let c = Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_millis(200)).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE t (v TEXT PRIMARY KEY) STRICT;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        let side = Connection::open(&path).unwrap();
        side.busy_timeout(Duration::from_secs(5)).unwrap();
        (Writer::spawn(c, None).unwrap(), side)
    }

    fn insert(c: &Connection, v: &str) -> Result<(), Fail> {
        c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
        Ok(())
    }

    fn rows(side: &Connection) -> Vec<String> {
        rows_by(side, "v")
    }

    /// `order` "rowid": in the order they were written.
    fn rows_by(side: &Connection, order: &str) -> Vec<String> {
        side.prepare(&format!("SELECT v FROM t ORDER BY {order}"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    async fn answer<T>(r: oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
        r.await.expect("every queued job gets an answer")
    }

    #[tokio::test]
    async fn a_failing_job_does_not_undo_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let before = w.stats();
        let (release, held) = w.hold().await;

        let a = w.submit(Lane::Request, |c| insert(c, "a")).unwrap();
        let b = w
            .submit(Lane::Request, |c| {
                insert(c, "b")?;
                Err::<(), _>(backend("b fails after writing"))
            })
            .unwrap();
        let c = w
            .submit(Lane::Request, |c| -> Result<(), Fail> {
                insert(c, "c")?;
                panic!("c panics after writing");
            })
            .unwrap();
        // A constraint violation on a row a neighbour wrote in this same transaction.
        let d = w
            .submit(Lane::Request, |c| {
                insert(c, "d")?;
                insert(c, "a")
            })
            .unwrap();
        let e = w.submit(Lane::Request, |c| insert(c, "e")).unwrap();
        drop(release);
        answer(held).await.unwrap();

        answer(a).await.unwrap();
        assert!(matches!(answer(b).await, Err(StoreError::Backend(m)) if m.contains("b fails")));
        assert!(matches!(answer(c).await, Err(StoreError::Backend(m)) if m.contains("c panics")));
        assert!(matches!(answer(d).await, Err(StoreError::Backend(m)) if m.contains("UNIQUE")));
        answer(e).await.unwrap();
        assert_eq!(rows(&side), ["a", "e"]);
        let after = w.stats();
        assert_eq!(
            (after.jobs - before.jobs, after.commits - before.commits),
            (1 + 5, 1 + 1),
            "the hold, then all five in one transaction"
        );

        // The thread survived the panic.
        w.write(|c| insert(c, "f")).await.unwrap();
        assert_eq!(rows(&side), ["a", "e", "f"]);
    }

    #[tokio::test]
    async fn a_lost_transaction_is_reported_to_every_job_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let (release, held) = w.hold().await;

        let a = w.submit(Lane::Request, |c| insert(c, "a")).unwrap();
        // Stands in for SQLite rolling the whole transaction back on a disk-full or I/O
        // error.
        let b = w
            .submit(Lane::Request, |c| {
                c.execute_batch("ROLLBACK")?;
                Err::<(), _>(backend("b lost the transaction"))
            })
            .unwrap();
        let c = w.submit(Lane::Request, |c| insert(c, "c")).unwrap();
        drop(release);
        answer(held).await.unwrap();

        assert!(matches!(answer(a).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(answer(b).await, Err(StoreError::Backend(m)) if m.contains("b lost")));
        answer(c).await.unwrap();
        assert_eq!(rows(&side), ["c"], "a's work is gone, c got a transaction of its own");
    }

    #[tokio::test]
    async fn a_failed_commit_fails_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let (release, held) = w.hold().await;
        let a = w.submit(Lane::Request, |c| insert(c, "a")).unwrap();
        // Deferred constraints are checked only at COMMIT, so this job itself succeeds.
        let b = w
            .submit(Lane::Request, |c| {
                c.execute("INSERT INTO child (p) VALUES (42)", [])?;
                Ok(())
            })
            .unwrap();
        drop(release);
        answer(held).await.unwrap();
        for r in [a, b] {
            assert!(matches!(answer(r).await, Err(StoreError::Backend(m)) if m.contains("FOREIGN KEY")));
        }
        assert!(rows(&side).is_empty());
        // And the connection is usable again: the failed transaction was rolled back.
        w.write(|c| insert(c, "after")).await.unwrap();
        assert_eq!(rows(&side), ["after"]);
    }

    #[tokio::test]
    async fn a_busy_database_fails_the_batch_as_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        side.execute_batch("BEGIN IMMEDIATE").unwrap();
        // BEGIN gives up after the writer connection's (short) busy timeout.
        let err = w.write(|c| insert(c, "a")).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        side.execute_batch("ROLLBACK").unwrap();
        w.write(|c| insert(c, "a")).await.unwrap();
    }

    #[tokio::test]
    async fn the_checkpoint_thread_copies_the_wal_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT PRIMARY KEY) STRICT;").unwrap();
        let cp = Connection::open(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let w = Writer::spawn(c, Some(cp)).unwrap();
        // Far below the writer's own threshold: only the checkpoint thread copies pages
        // into the database file (in WAL mode nothing else writes it).
        for i in 0..50 {
            let v = format!("{i:0>2000}");
            w.write(move |c| insert(c, &v)).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&path).unwrap().len() <= before + 50 * 2000 {
            assert!(std::time::Instant::now() < deadline, "the WAL was never checkpointed");
            w.write(|_| Ok(())).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(w);
    }

    #[tokio::test]
    async fn background_work_waits_for_requests_and_commits_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let before = w.stats();
        let (release, held) = w.hold().await;
        let bg = w.submit(Lane::Background, |c| insert(c, "background")).unwrap();
        let a = w.submit(Lane::Request, |c| insert(c, "a")).unwrap();
        let b = w.submit(Lane::Request, |c| insert(c, "b")).unwrap();
        drop(release);
        answer(held).await.unwrap();
        for r in [bg, a, b] {
            answer(r).await.unwrap();
        }
        assert_eq!(rows_by(&side, "rowid"), ["a", "b", "background"], "queued first, run last");
        let after = w.stats();
        assert_eq!(after.commits - before.commits, 3, "the hold, the two requests together, the background job alone");
        assert_eq!(after.background_jobs - before.background_jobs, 1);
    }

    /// Each request job queues the next before it ends, so there is always a request
    /// waiting: background work still gets its turn.
    #[tokio::test]
    async fn background_work_is_not_starved_by_a_stream_of_requests() {
        fn chain(w: Arc<Writer>, left: u32) {
            let next = Arc::clone(&w);
            // Nobody waits for the answers: the rows say what ran, and in which order.
            drop(
                w.submit(Lane::Request, move |c| {
                    insert(c, &format!("r{left:02}"))?;
                    if left > 0 {
                        chain(next, left - 1);
                    }
                    Ok(())
                })
                .unwrap(),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let w = Arc::new(w);
        let (release, held) = w.hold().await;
        let bg = w.submit(Lane::Background, |c| insert(c, "background")).unwrap();
        chain(Arc::clone(&w), FAIR_TURNS * 2);
        drop(release);
        answer(held).await.unwrap();
        answer(bg).await.unwrap();
        // The chain's last link has run once its row is there.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !rows_by(&side, "rowid").contains(&"r00".to_owned()) {
            assert!(std::time::Instant::now() < deadline, "the chain of requests never finished");
            w.write(|_| Ok(())).await.unwrap();
        }
        let order = rows_by(&side, "rowid");
        let at = order.iter().position(|v| v == "background").unwrap();
        assert_eq!(at, FAIR_TURNS as usize, "after {FAIR_TURNS} request batches in a row: {order:?}");
    }

    /// An unsynced background job commits like any other, and the request after it is
    /// synced again.
    #[tokio::test]
    async fn unsynced_background_work_leaves_requests_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let sync = |c: &Connection| c.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0)).map_err(Fail::from);
        let during = w
            .write_background_unsynced(move |c| {
                insert(c, "gc")?;
                sync(c)
            })
            .await
            .unwrap();
        let after = w.write(move |c| sync(c)).await.unwrap();
        assert_eq!((during, after), (1, 2), "NORMAL for the background job, FULL again for requests");
        assert_eq!(rows(&side), ["gc"]);
        assert_eq!((w.stats().background_jobs, w.stats().commits, w.stats().unsynced_commits), (1, 2, 1));
    }

    /// Background work waits until requests have been quiet for a while, not merely
    /// until none is queued.
    #[tokio::test]
    async fn background_work_waits_for_a_quiet_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _side) = writer(&dir);
        w.write(|_| Ok(())).await.unwrap();
        let ran = w.write_background(|_| Ok(std::time::Instant::now())).await.unwrap();
        let ended = w.queue.lanes().last_request.expect("the request's end is recorded");
        assert!(ran.duration_since(ended) >= QUIET, "background work ran {:?} after a request", ran - ended);
    }

    /// A write announced (an upload under way) holds background work back as a
    /// request's write does, before any write of the request has queued.
    #[tokio::test]
    async fn an_announced_write_holds_background_work_back() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _side) = writer(&dir);
        let announced = std::time::Instant::now();
        w.write_coming();
        let ran = w.write_background(|_| Ok(std::time::Instant::now())).await.unwrap();
        assert!(ran.duration_since(announced) >= QUIET, "background work ran {:?} after", ran - announced);
        // An announcement never moves the quiet period's start back.
        let later = std::time::Instant::now() + Duration::from_secs(3600);
        w.queue.lanes().last_request = Some(later);
        w.write_coming();
        assert_eq!(w.queue.lanes().last_request, Some(later));
    }

    #[tokio::test]
    async fn drop_runs_queued_jobs_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (w, side) = writer(&dir);
        let (release, held) = w.hold().await;
        // A caller that gave up waiting: its job is queued, nobody reads the answer.
        drop(w.submit(Lane::Request, |c| insert(c, "abandoned")).unwrap());
        drop(release);
        drop(held);
        drop(w);
        assert_eq!(rows(&side), ["abandoned"]);
    }
}
