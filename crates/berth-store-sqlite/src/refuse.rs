//! Writes that may be refused (a conflict, a missing row) as well as fail. A refusal
//! must roll back the job's savepoint like a failure, yet reach the caller as its own
//! typed error; and query helpers shared by the identity, catalog and label views.

use std::sync::{Arc, Mutex, PoisonError};

use berth_core::store::StoreError;
use berth_core::store::identity::Page;
use rusqlite::Connection;

use crate::{Fail, SqliteStore, backend};

/// Why a write job gave up: a refusal `E` for the caller, or a database failure.
pub(crate) enum Refuse<E> {
    No(E),
    Db(Fail),
}

impl<E> From<rusqlite::Error> for Refuse<E> {
    fn from(e: rusqlite::Error) -> Self {
        Refuse::Db(Fail::from(e))
    }
}

impl<E> From<Fail> for Refuse<E> {
    fn from(f: Fail) -> Self {
        Refuse::Db(f)
    }
}

/// Marks, inside the writer, a job that failed because it was refused.
const REFUSED: &str = "\u{0}write refused";

impl SqliteStore {
    /// Runs `f` as one writer job; a refusal rolls the job back and is returned as is.
    pub(crate) async fn refusable_write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Refuse<E>> + Send + 'static,
    {
        let refusal: Arc<Mutex<Option<E>>> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&refusal);
        let out = self
            .writer
            .write(move |c| match f(c) {
                Ok(v) => Ok(v),
                Err(Refuse::Db(e)) => Err(e),
                Err(Refuse::No(e)) => {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    Err(backend(REFUSED))
                }
            })
            .await;
        match out {
            Ok(v) => Ok(v),
            // Only when the job's own answer got through: had its transaction been lost,
            // the writer would report that instead, and the refusal (possibly about rows
            // that never got committed) would not stand.
            Err(StoreError::Backend(m)) if m == REFUSED => Err(refusal
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| E::from(StoreError::Backend("write refused".into())))),
            Err(e) => Err(E::from(e)),
        }
    }
}

/// LIKE pattern matching `s` anywhere, with `ESCAPE '\'`.
pub(crate) fn contains_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// LIMIT and OFFSET of a page, clamped to what SQLite takes (a huge page never
/// overflows; it is simply past the end).
pub(crate) fn limit_offset(page: &Page) -> (i64, i64) {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    (clamp(page.page_size), clamp(page.page.saturating_sub(1).saturating_mul(page.page_size)))
}
