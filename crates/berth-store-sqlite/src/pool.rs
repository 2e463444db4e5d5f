//! A fixed set of connections, each used by one blocking task at a time.

use std::sync::{Arc, Mutex};

use berth_core::store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::Fail;

pub(crate) struct Pool {
    /// One permit per connection. Callers queue here, asynchronously, rather than
    /// parking blocking threads on the mutex.
    permits: Arc<Semaphore>,
    conns: Mutex<Vec<Connection>>,
}

impl Pool {
    pub(crate) fn new(conns: Vec<Connection>) -> Arc<Pool> {
        Arc::new(Pool { permits: Arc::new(Semaphore::new(conns.len())), conns: Mutex::new(conns) })
    }

    /// Runs `f` on a connection of this pool on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("metadata store is closed".into()))?;
        let pool = Arc::clone(self);
        // The permit moves into the task: if the caller is cancelled, the task still
        // finishes (and commits or rolls back) before the connection is reused.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut lease = Lease { pool: &pool, conn: pool.take() };
            let conn =
                lease.conn.as_mut().ok_or_else(|| StoreError::Backend("connection pool unexpectedly empty".into()))?;
            f(conn).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("metadata store task failed: {e}")))?
    }

    fn take(&self) -> Option<Connection> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }
}

/// Puts the connection back even if `f` panicked; any open transaction has been rolled
/// back by then, since `Transaction` rolls back on drop.
struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.conns.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
}
