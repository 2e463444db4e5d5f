//! GC's claims start in the gaps between this instance's requests' writes.
//!
//! SQLite's writer runs background work only after requests have been quiet for a
//! moment; PostgreSQL has no writer queue, so a claim (hundreds of rows updated, their
//! usage released) ran on the server whenever its pause ended, and a push arriving then
//! waited for the server's cores behind it. Requests announce their writes
//! (`MetaStore::write_coming`, at the start of each upload and manifest); a claim waits
//! until none has been announced for [`QUIET`], at most [`MAX_WAIT`], so that GC still
//! moves on an instance whose requests never pause. Only this instance's requests are
//! seen: with several instances, the others' pushes are not waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long after a request's announced write a claim may start: a push's next step
/// (layer after config, manifest after layers) is announced within a few milliseconds.
const QUIET: Duration = Duration::from_millis(10);

/// The longest a claim waits for a gap.
const MAX_WAIT: Duration = Duration::from_millis(100);

pub(crate) struct Requests {
    epoch: Instant,
    /// Microseconds after `epoch` of the last announcement, plus one; 0 for none yet.
    last: AtomicU64,
}

impl Requests {
    pub(crate) fn new() -> Requests {
        Requests { epoch: Instant::now(), last: AtomicU64::new(0) }
    }

    pub(crate) fn announce(&self) {
        let at = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1) + 1;
        self.last.fetch_max(at, Ordering::Relaxed);
    }

    /// Returns once no write has been announced for [`QUIET`], or after [`MAX_WAIT`] at
    /// most.
    pub(crate) async fn quiet(&self) {
        let deadline = Instant::now() + MAX_WAIT;
        loop {
            let last = self.last.load(Ordering::Relaxed);
            if last == 0 {
                return;
            }
            let announced = self.epoch + Duration::from_micros(last - 1);
            let now = Instant::now();
            let until = (announced + QUIET).min(deadline);
            if until <= now {
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn nothing_announced_no_wait() {
        let r = Requests::new();
        let t = Instant::now();
        r.quiet().await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_quiet_after_the_last_announcement() {
        let r = Requests::new();
        r.announce();
        tokio::time::advance(Duration::from_millis(4)).await;
        let t = Instant::now();
        r.quiet().await;
        assert_eq!(t.elapsed(), Duration::from_millis(6), "10 ms after the announcement, 4 of them already gone");
        // An announcement while waiting moves the gap's start.
        let r = std::sync::Arc::new(Requests::new());
        r.announce();
        let again = tokio::spawn({
            let r = r.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                r.announce();
            }
        });
        let t = Instant::now();
        r.quiet().await;
        again.await.unwrap();
        assert_eq!(t.elapsed(), Duration::from_millis(15));
    }

    #[tokio::test(start_paused = true)]
    async fn never_waits_longer_than_max() {
        let r = std::sync::Arc::new(Requests::new());
        r.announce();
        let busy = tokio::spawn({
            let r = r.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    r.announce();
                }
            }
        });
        let t = Instant::now();
        r.quiet().await;
        busy.abort();
        assert_eq!(t.elapsed(), MAX_WAIT, "requests that never pause hold a claim back for MAX_WAIT only");
    }
}
