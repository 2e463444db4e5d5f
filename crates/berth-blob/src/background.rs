//! A few threads for file work nobody waits for in a hurry (GC's removals), at the
//! lowest CPU priority (nice 19) and the lowest best-effort I/O priority: on a busy
//! machine requests' file work and the metadata store's writer get the cores and the
//! disk first, and however many removals GC has in flight, only this many run at once.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use crate::watchdog::{run, within};

/// Threads of the pool: removals are short system calls, so two keep GC's pace while
/// leaving the other cores of a small machine to requests.
const THREADS: usize = 2;

type Task = Box<dyn FnOnce() + Send>;

/// The pool, started on first use; `None` if no thread could be started (then the work
/// runs on the blocking pool as before).
fn pool() -> Option<&'static mpsc::Sender<Task>> {
    static POOL: OnceLock<Option<mpsc::Sender<Task>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let threads: usize = std::env::var("GCX_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(THREADS);
        let started = (0..threads)
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
                            // A panicking task loses its answer (its caller sees an
                            // error), not the thread.
                            let _ = catch_unwind(AssertUnwindSafe(task));
                        }
                    })
                    .is_ok()
            })
            .count();
        (started > 0).then_some(tx)
    })
    .as_ref()
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: system calls on the calling thread's own id; failures leave the thread
    // at its normal priority, which is only slower for everyone else.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // On Linux a thread id names the thread alone (not the whole process).
        libc::setpriority(
            libc::PRIO_PROCESS,
            tid,
            std::env::var("GCX_NICE").ok().and_then(|v| v.parse().ok()).unwrap_or(19),
        );
        // IOPRIO_WHO_PROCESS = 1; class best-effort (2) at its lowest level (7). Not the
        // idle class: that one may starve GC for as long as anything else does I/O.
        libc::syscall(libc::SYS_ioprio_set, 1, tid, (2 << 13) | 7);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `f` on a background thread, failing if it has not finished within `limit`
/// (time queued behind other background work counts; each is a few system calls).
pub(crate) async fn run_background<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let Some(pool) = pool() else {
        return run(limit, what, move |_| f()).await;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task: Task = Box::new(move || {
        let _ = tx.send(f());
    });
    pool.send(task).map_err(|_| io::Error::other("the background file threads stopped"))?;
    within(limit, what, async { rx.await.map_err(|_| io::Error::other(format!("{what} panicked")))? }).await
}
