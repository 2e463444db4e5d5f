//! A few threads for file work nobody waits for in a hurry (GC's removals), at the
//! lowest CPU priority (nice 19) and the lowest best-effort I/O priority: on a busy
//! machine requests' file work and the metadata store's writer get the cores and the
//! disk first, and however many removals GC has in flight, only this many run at once.
//! A task also waits (briefly) for the requests' file writes in flight to end.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, OnceLock, mpsc};
use std::time::Duration;

use crate::watchdog::{Progress, run, stalled};

/// Threads of the pool. A removal (unlink, rmdir) spends most of its time blocked in
/// the file system (its journal, the directory's lock), not on a core: with two
/// threads GC removed about 1,400 blobs/s of a million on ext4, with eight 2,160/s
/// (docs/benchmarks.md). At nice 19 the extra threads take no core from requests.
const THREADS: usize = 8;

type Task = Box<dyn FnOnce() + Send>;

/// Ticked by the threads as each task starts and ends: a waiter fails only when the pool
/// as a whole stops moving (a hung mount), not because its task queued behind others.
fn progress() -> &'static Progress {
    static PROGRESS: OnceLock<Progress> = OnceLock::new();
    PROGRESS.get_or_init(Progress::new)
}

/// The pool, started on first use; `None` if no thread could be started (then the work
/// runs on the blocking pool as before).
fn pool() -> Option<&'static mpsc::Sender<Task>> {
    static POOL: OnceLock<Option<mpsc::Sender<Task>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let started = (0..THREADS)
            .filter(|i| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("berth-background-{i}"))
                    .spawn(move || {
                        lower_priority();
                        loop {
                            let task = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            let Ok(task) = task else { return };
                            wait_for_quiet(YIELD_AT_MOST);
                            progress().tick();
                            // A panicking task loses its answer (its caller sees an
                            // error), not the thread.
                            let _ = catch_unwind(AssertUnwindSafe(task));
                            progress().tick();
                        }
                    })
                    .is_ok()
            })
            .count();
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// How long a background task waits for the foreground's file writes in flight to end
/// before it starts anyway. A removal that starts while an upload syncs joins the
/// journal transaction the upload's fsync commits, and makes it wait; one that waits
/// for the upload does not. Bounded, so that GC still moves on a site that is never
/// idle: at most one task per thread per this long while writes never stop. Uploads
/// sync for a few milliseconds; measured on ext4 (docs/benchmarks.md).
const YIELD_AT_MOST: Duration = Duration::from_millis(20);

/// The foreground's file writes in flight, and a signal for when there are none.
struct Foreground {
    writes: Mutex<usize>,
    quiet: Condvar,
}

fn foreground() -> &'static Foreground {
    static FOREGROUND: OnceLock<Foreground> = OnceLock::new();
    FOREGROUND.get_or_init(|| Foreground { writes: Mutex::new(0), quiet: Condvar::new() })
}

/// Held by a request's file write (its syncs, above all) while it runs: background
/// tasks wait for it to end (up to [`YIELD_AT_MOST`]).
pub(crate) struct Writing(());

pub(crate) fn writing() -> Writing {
    *foreground().writes.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    Writing(())
}

impl Drop for Writing {
    fn drop(&mut self) {
        let fg = foreground();
        let mut n = fg.writes.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            fg.quiet.notify_all();
        }
    }
}

/// Waits until no foreground write is in flight, or `at_most`.
fn wait_for_quiet(at_most: Duration) {
    let fg = foreground();
    let n = fg.writes.lock().unwrap_or_else(|e| e.into_inner());
    let _ = fg.quiet.wait_timeout_while(n, at_most, |n| *n > 0);
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: system calls on the calling thread's own id; failures leave the thread
    // at its normal priority, which is only slower for everyone else.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // On Linux a thread id names the thread alone (not the whole process).
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        // IOPRIO_WHO_PROCESS = 1; class best-effort (2) at its lowest level (7). Not the
        // idle class: that one may starve GC for as long as anything else does I/O.
        libc::syscall(libc::SYS_ioprio_set, 1, tid, (2 << 13) | 7);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `f` on a background thread, failing once the background threads have made no
/// progress for `limit` (a task queued behind others waits without failing while they
/// move).
pub(crate) async fn run_background<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let Some(pool) = pool() else {
        return run(limit, what, move |_| f()).await;
    };
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let task: Task = Box::new(move || {
        let _ = tx.send(f());
    });
    // Queuing counts as progress: an idle pool has not ticked for a while.
    progress().tick();
    pool.send(task).map_err(|_| io::Error::other("the background file threads stopped"))?;
    let every = (limit / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            r = &mut rx => return r.map_err(|_| io::Error::other(format!("{what} panicked")))?,
            _ = tokio::time::sleep(every) => {
                if progress().idle() >= limit {
                    return Err(stalled(what, limit));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn work_runs_at_the_lowest_priority_and_survives_a_panic() {
        let limit = Duration::from_secs(30);
        // SAFETY: reads the calling thread's own priority.
        let nice = run_background(limit, "reading the priority", || {
            Ok(unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) })
        })
        .await
        .unwrap();
        assert_eq!(nice, 19);
        let err = run_background::<()>(limit, "panicking", || panic!("on purpose")).await.unwrap_err();
        assert!(err.to_string().contains("panicking panicked"), "{err}");
        // The threads are still there.
        for _ in 0..2 * THREADS {
            assert_eq!(run_background(limit, "adding", || Ok(1 + 1)).await.unwrap(), 2);
        }
    }

    #[tokio::test]
    async fn work_waits_for_a_foreground_write_to_end() {
        let write = writing();
        let queued = Instant::now();
        let task = tokio::spawn(run_background(Duration::from_secs(30), "timing", || Ok(Instant::now())));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let ended = Instant::now();
        drop(write);
        let started = task.await.unwrap().unwrap();
        assert!(
            started >= ended || started - queued >= YIELD_AT_MOST,
            "the task started {:?} after it was queued, while the write was still in flight",
            started - queued
        );
    }

    #[tokio::test]
    async fn a_write_that_never_ends_only_slows_work_down() {
        let _write = writing();
        let t = Instant::now();
        for _ in 0..3 {
            let done = tokio::time::timeout(
                Duration::from_secs(10),
                run_background(Duration::from_secs(30), "adding", || Ok(2 + 2)),
            );
            assert_eq!(done.await.expect("background work went on").unwrap(), 4);
        }
        assert!(t.elapsed() >= YIELD_AT_MOST, "each task waited for the write, up to the bound");
    }
}
