//! Deadlines for blocking file operations. A hung NFS server blocks a thread in a system
//! call that nothing can interrupt; what a request can do is stop waiting for it and
//! answer 503. The deadline measures *stalls*, not total time: copying a 10 GB layer is
//! fine as long as bytes keep moving, while an operation that makes no progress for the
//! limit fails. The abandoned thread finishes (or not) on its own; whatever it writes is
//! an unreferenced part file, never a visible blob.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Shared between a blocking operation and its waiter: the time of the last progress.
#[derive(Clone)]
pub(crate) struct Progress {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress { start: Instant::now(), last_ms: Arc::new(AtomicU64::new(0)) }
    }

    /// Called by the blocking side after each unit of work (a block read or written).
    pub(crate) fn tick(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn idle(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

pub(crate) fn stalled(what: &str, limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("blob storage made no progress for {} s while {what} (a hung mount?)", limit.as_secs_f64()),
    )
}

/// Waits for `task`, failing once `progress` has not moved for `limit`.
pub(crate) async fn watch<T>(
    mut task: tokio::task::JoinHandle<T>,
    progress: &Progress,
    limit: Duration,
    what: &str,
) -> io::Result<T> {
    let every = (limit / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            r = &mut task => return r.map_err(io::Error::other),
            _ = tokio::time::sleep(every) => {
                if progress.idle() >= limit {
                    return Err(stalled(what, limit));
                }
            }
        }
    }
}

/// Runs `f` on a blocking thread under [`watch`].
pub(crate) async fn run<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce(&Progress) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let progress = Progress::new();
    let p = progress.clone();
    watch(tokio::task::spawn_blocking(move || f(&p)), &progress, limit, what).await?
}

/// An async file operation (tokio::fs) with a plain deadline.
pub(crate) async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(limit, f).await.map_err(|_| stalled(what, limit))?
}

/// The chunks a reader thread sends; if none arrives for `limit` while the client is
/// waiting, the stream ends with an error (a slow client never triggers it: then the
/// thread is the one waiting).
pub(crate) struct DeadlineStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl DeadlineStream {
    pub(crate) fn new(rx: mpsc::Receiver<io::Result<Bytes>>, limit: Duration) -> Self {
        DeadlineStream { rx, limit, sleep: Box::pin(tokio::time::sleep(limit)), done: false }
    }
}

impl futures_core::Stream for DeadlineStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(item) => {
                let deadline = tokio::time::Instant::now() + self.limit;
                self.sleep.as_mut().reset(deadline);
                Poll::Ready(item)
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    Poll::Ready(Some(Err(stalled("reading a blob", self.limit))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
