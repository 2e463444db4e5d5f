//! Berth's embedded metadata store: [`MetaStore`] on one SQLite file.
//!
//! One writer connection, owned by a dedicated thread, serialises all writes (SQLite
//! allows one writer anyway, and queueing them here instead of in SQLite's busy handler
//! keeps latency predictable) and commits concurrent ones together, so that they share
//! one fsync (see `writer.rs`). Every write method is atomic on its own: one savepoint in
//! a shared transaction. A few read-only connections serve reads concurrently thanks to
//! WAL, on the blocking thread pool.

mod catalog;
mod cluster;
mod gc;
mod identity;
mod jobs;
mod labels;
mod migrate;
mod outbox;
mod policies;
mod pool;
mod quota;
mod refuse;
mod vulns;
mod webhooks;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::natural::natural_key;
use berth_core::quota::QuotaUse;
use berth_core::store::outbox::OutboxEvent;
use berth_core::store::{
    BlobInfo, MetaStore, NewManifest, PutManifestOutcome, Referrer, StoreError, StoreResult, StoredManifest, Upload,
    distinct_digests,
};
use berth_core::{Digest, Reference, RepoName, Tag};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};

pub use migrate::SCHEMA_VERSION;
pub use writer::WriterStats;

use pool::Pool;
use writer::Writer;

const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The writer's page cache, negative as SQLite wants a size in KiB: 256 MiB at most,
/// taken only as pages are read.
const WRITER_CACHE_KIB: i64 = -256 * 1024;

/// How old `blobs.last_ref_at` may get before a read refreshes it. Refreshing on every
/// read would turn each blob HEAD into a write; GC's grace period must be well above
/// this so that a blob checked within the window is never collected.
pub const LAST_REF_REFRESH_SECS: i64 = 300;

/// The SQLite metadata store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Writer>,
    readers: Arc<Pool>,
    /// Digest locks (see `gc.rs`).
    digest_locks: Arc<gc::DigestLocks>,
    /// Named locks (`ClusterStore::lock`): a table of their own, so that a named lock's
    /// holder taking a digest lock never waits for itself.
    named: Arc<gc::DigestLocks>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// date. Blocks; call it at startup. Refuses a database whose schema is newer than
    /// this binary knows.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = open_conn(path, flags)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| context(e, path, "enabling WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{}: could not enable WAL journaling (got {mode:?}); is it on a network file system?",
                path.display()
            )));
        }
        // FULL: in WAL mode NORMAL may lose the last commits on power loss, and a commit
        // acknowledged to a client (a pushed tag) must survive.
        writer.pragma_update(None, "synchronous", "FULL").map_err(|e| context(e, path, "configuring"))?;
        // The writer is the only connection whose cache outlives a commit (its own commits
        // do not invalidate it), and SQLite's default is 2 MiB: at a million blobs GC's
        // claims and deletions touch pages all over the tables and indexes, and each miss
        // is a read the writer thread makes while every request's commit waits behind it.
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB).map_err(|e| context(e, path, "configuring"))?;
        migrate::run(&mut writer).map_err(|Fail(e)| prefix(e, path))?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_conn(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?);
        }
        let checkpoints = open_conn(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        let writer = Writer::spawn(writer, Some(checkpoints))
            .map_err(|e| StoreError::Backend(format!("{}: starting the writer thread: {e}", path.display())))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Arc::new(writer),
            readers: Pool::new(readers),
            digest_locks: gc::DigestLocks::new(),
            named: gc::DigestLocks::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every commit so far durable, unsynced ones included: an fsync of the WAL.
    /// A commit not yet checkpointed is in it; one already checkpointed was synced into
    /// the database file by the checkpoint before the WAL could be reused.
    pub(crate) async fn sync_log(&self) -> StoreResult<()> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&wal)
                .and_then(|f| f.sync_data())
                .map_err(|e| StoreError::Backend(format!("{}: syncing: {e}", wal.display())))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("syncing the metadata log: {e}")))?
    }

    /// How many write jobs ran and how many commits they took (and of those, how many
    /// without an fsync), since open.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }
}

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let c = Connection::open_with_flags(path, flags).map_err(|e| context(e, path, "opening"))?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(|e| context(e, path, "configuring"))?;
    c.pragma_update(None, "foreign_keys", "ON").map_err(|e| context(e, path, "configuring"))?;
    // Every query is `prepare_cached`; the default 16 slots are fewer than the distinct
    // statements a mixed workload uses, and an evicted statement is compiled again.
    c.set_prepared_statement_cache_capacity(256);
    Ok(c)
}

fn context(e: rusqlite::Error, path: &Path, what: &str) -> StoreError {
    prefix(map_sqlite(e), path).with_context(what)
}

fn prefix(e: StoreError, path: &Path) -> StoreError {
    e.with_context(&path.display().to_string())
}

trait WithContext {
    fn with_context(self, what: &str) -> Self;
}

impl WithContext for StoreError {
    fn with_context(self, what: &str) -> Self {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{what}: {m}")),
            StoreError::Backend(m) => StoreError::Backend(format!("{what}: {m}")),
            q @ StoreError::QuotaExceeded(_) => q,
        }
    }
}

/// Internal error so that `?` works on rusqlite results inside the blocking closures;
/// converted to [`StoreError`] where a job's result leaves the pool or the writer.
pub(crate) struct Fail(StoreError);

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail(map_sqlite(e))
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        f.0
    }
}

pub(crate) fn backend(msg: impl Into<String>) -> Fail {
    Fail(StoreError::Backend(msg.into()))
}

fn map_sqlite(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn to_i64(v: u64, what: &str) -> Result<i64, Fail> {
    i64::try_from(v).map_err(|_| backend(format!("{what} {v} does not fit the database")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, Fail> {
    u64::try_from(v).map_err(|_| backend(format!("stored {what} {v} is negative")))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn parse_digest(s: &str) -> Result<Digest, Fail> {
    s.parse().map_err(|e| backend(format!("stored digest {s:?} is invalid: {e}")))
}

fn repo_id(c: &Connection, name: &str) -> Result<Option<i64>, Fail> {
    Ok(c.prepare_cached("SELECT id FROM repositories WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?)
}

fn ensure_repo(c: &Connection, name: &str, now: i64) -> Result<i64, Fail> {
    c.prepare_cached("INSERT INTO repositories (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")?
        .execute(params![name, now])?;
    repo_id(c, name)?.ok_or_else(|| backend("repository row vanished inside its own transaction"))
}

/// Size and last reference time of a live blob linked to `repo`.
fn linked_blob(c: &Connection, repo: &str, digest: &str) -> Result<Option<(u64, Option<i64>)>, Fail> {
    let row: Option<(i64, Option<i64>)> = c
        .prepare_cached(
            "SELECT b.size, b.last_ref_at
               FROM repositories r
               JOIN repository_blobs rb ON rb.repository_id = r.id
               JOIN blobs b ON b.digest = rb.digest
              WHERE r.name = ?1 AND rb.digest = ?2 AND b.state = 'live'",
        )?
        .query_row([repo, digest], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(size, at)| Ok((to_u64(size, "blob size")?, at))).transpose()
}

fn link_blob(c: &Connection, repo_id: i64, digest: &str, now: i64) -> Result<(), Fail> {
    c.prepare_cached(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (repository_id, digest) DO NOTHING",
    )?
    .execute(params![repo_id, digest, now])?;
    Ok(())
}

/// Never moves the time backwards, so a clock step cannot shorten GC's grace period.
fn touch_blob(c: &Connection, digest: &str, now: i64) -> Result<(), Fail> {
    c.prepare_cached(
        "UPDATE blobs SET last_ref_at = ?2 WHERE digest = ?1 AND (last_ref_at IS NULL OR last_ref_at < ?2)",
    )?
    .execute(params![digest, now])?;
    Ok(())
}

fn manifest_row(r: &Row<'_>) -> rusqlite::Result<(String, String, Vec<u8>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

struct UploadRow {
    id: String,
    repo: String,
    offset: i64,
    hash_state: Option<Vec<u8>>,
    parts: String,
    started_at: i64,
}

const UPLOAD_COLUMNS: &str = r#"id, repository, "offset", hash_state, parts, started_at"#;

impl UploadRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
        Ok(UploadRow {
            id: r.get(0)?,
            repo: r.get(1)?,
            offset: r.get(2)?,
            hash_state: r.get(3)?,
            parts: r.get(4)?,
            started_at: r.get(5)?,
        })
    }

    fn into_upload(self) -> Result<Upload, Fail> {
        let repo =
            self.repo.parse().map_err(|e| backend(format!("upload {}: stored repository is invalid: {e}", self.id)))?;
        let parts = serde_json::from_str(&self.parts)
            .map_err(|e| backend(format!("upload {}: stored parts are not a JSON string array: {e}", self.id)))?;
        Ok(Upload {
            offset: to_u64(self.offset, "upload offset")?,
            id: self.id,
            repo,
            hash_state: self.hash_state,
            parts,
            started_at: self.started_at,
        })
    }
}

fn to_digests(v: Vec<String>) -> Result<Vec<Digest>, Fail> {
    v.iter().map(|s| parse_digest(s)).collect()
}

#[async_trait]
impl MetaStore for SqliteStore {
    async fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<BlobInfo>> {
        let (r, d) = (repo.as_str().to_owned(), digest.to_string());
        let found = self
            .readers
            .run({
                let (r, d) = (r.clone(), d.clone());
                move |c| linked_blob(c, &r, &d)
            })
            .await?;
        let Some((size, last_ref)) = found else {
            return Ok(None);
        };
        let now = now();
        if last_ref.is_some_and(|t| t >= now - LAST_REF_REFRESH_SECS) {
            return Ok(Some(BlobInfo { digest: digest.clone(), size }));
        }
        // Re-check on the writer: GC may have claimed the blob since the read, and the
        // refresh must be atomic with the liveness check to protect it.
        let size = self
            .writer
            .write(move |c| {
                let Some((size, _)) = linked_blob(c, &r, &d)? else {
                    return Ok(None);
                };
                touch_blob(c, &d, now)?;
                Ok(Some(size))
            })
            .await?;
        Ok(size.map(|size| BlobInfo { digest: digest.clone(), size }))
    }

    async fn commit_blob(
        &self,
        repo: &RepoName,
        blob: &BlobInfo,
        finished_upload: Option<&str>,
    ) -> StoreResult<Option<QuotaUse>> {
        let (r, d) = (repo.as_str().to_owned(), blob.digest.to_string());
        let size = to_i64(blob.size, "blob size")?;
        let upload = finished_upload.map(str::to_owned);
        self.writer
            .write(move |c| {
                let now = now();
                // Before anything is written: a refusal leaves the savepoint empty.
                let quota = quota::check(c, &r, &d, size as u64)?;
                // A 'deleting' row is resurrected: the bytes were just verified durable again.
                c.prepare_cached(
                    "INSERT INTO blobs (digest, size, state, last_ref_at, created_at) VALUES (?1, ?2, 'live', ?3, ?3)
                     ON CONFLICT (digest) DO UPDATE SET
                         state = 'live',
                         gc_run = NULL,
                         gc_claimed_at = NULL,
                         size = excluded.size,
                         last_ref_at = max(coalesce(blobs.last_ref_at, 0), excluded.last_ref_at)",
                )?
                .execute(params![d, size, now])?;
                let id = ensure_repo(c, &r, now)?;
                link_blob(c, id, &d, now)?;
                if let Some(upload) = upload {
                    c.prepare_cached("DELETE FROM uploads WHERE id = ?1")?.execute([upload])?;
                }
                Ok(quota)
            })
            .await
    }

    async fn mount_blob_with_quota(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<(BlobInfo, Option<QuotaUse>)>> {
        let (f, t, d) = (from.as_str().to_owned(), to.as_str().to_owned(), digest.to_string());
        let mounted = self
            .writer
            .write(move |c| {
                let now = now();
                let Some((size, _)) = linked_blob(c, &f, &d)? else {
                    return Ok(None);
                };
                let usage = quota::check(c, &t, &d, size)?;
                let id = ensure_repo(c, &t, now)?;
                link_blob(c, id, &d, now)?;
                touch_blob(c, &d, now)?;
                Ok(Some((size, usage)))
            })
            .await?;
        Ok(mounted.map(|(size, usage)| (BlobInfo { digest: digest.clone(), size }, usage)))
    }

    fn write_coming(&self) {
        self.writer.write_coming();
    }

    async fn lock_digest(&self, digest: &Digest) -> StoreResult<berth_core::store::gc::DigestLock> {
        gc::lock_digest(self, digest).await
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        let (r, d) = (repo.as_str().to_owned(), digest.to_string());
        self.writer
            .write(move |c| {
                // A link to a 'deleting' blob is removed too, but reported as absent like
                // everywhere else.
                let live = linked_blob(c, &r, &d)?.is_some();
                c.prepare_cached(
                    "DELETE FROM repository_blobs
                      WHERE digest = ?2 AND repository_id = (SELECT id FROM repositories WHERE name = ?1)",
                )?
                .execute([&r, &d])?;
                Ok(live)
            })
            .await
    }

    async fn put_manifest(&self, m: &NewManifest) -> StoreResult<PutManifestOutcome> {
        let m = m.clone();
        let size = to_i64(m.content.len() as u64, "manifest size")?;
        self.writer
            .write(move |c| {
                let now = now();
                let repo = m.repo.as_str();
                let digest = m.digest.to_string();
                let existing_repo = repo_id(c, repo)?;

                let blobs = distinct_digests(&m.blobs);
                let mut missing = Vec::new();
                for b in &blobs {
                    if existing_repo.is_none() || linked_blob(c, repo, b)?.is_none() {
                        missing.push(b.clone());
                    }
                }
                if !missing.is_empty() {
                    return Ok(PutManifestOutcome::MissingBlobs(to_digests(missing)?));
                }
                let children = distinct_digests(&m.children);
                for ch in &children {
                    let present = match existing_repo {
                        None => false,
                        Some(id) => c
                            .prepare_cached("SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2")?
                            .query_row(params![id, ch], |_| Ok(()))
                            .optional()?
                            .is_some(),
                    };
                    if !present {
                        missing.push(ch.clone());
                    }
                }
                if !missing.is_empty() {
                    return Ok(PutManifestOutcome::MissingManifests(to_digests(missing)?));
                }
                // A manifest new to a limited project counts against its quota, as in Harbor
                // (where manifests are blobs); a refusal writes nothing.
                let usage = quota::check(c, repo, &digest, m.content.len() as u64)?;

                let repo_id = match existing_repo {
                    Some(id) => id,
                    None => ensure_repo(c, repo, now)?,
                };
                // Same digest means same bytes, so a re-push keeps the first row (and its
                // created_at) and only moves the tag.
                let inserted =
                    c.prepare_cached(
                        "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, annotations,
                                                subject_digest, size, content, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (repository_id, digest) DO NOTHING",
                    )?
                    .execute(params![
                        repo_id,
                        digest,
                        m.media_type,
                        m.artifact_type,
                        m.annotations,
                        m.subject.as_ref().map(Digest::to_string),
                        size,
                        &m.content[..],
                        now
                    ])? == 1;
                let manifest_id: i64 = c
                    .prepare_cached("SELECT id FROM manifests WHERE repository_id = ?1 AND digest = ?2")?
                    .query_row(params![repo_id, digest], |r| r.get(0))?;
                if inserted {
                    for b in &blobs {
                        c.prepare_cached(
                            "INSERT INTO manifest_blobs (manifest_id, digest) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![manifest_id, b])?;
                    }
                    for ch in &children {
                        c.prepare_cached(
                            "INSERT INTO manifest_children (manifest_id, child_digest) VALUES (?1, ?2)
                             ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![manifest_id, ch])?;
                    }
                }
                for b in &blobs {
                    touch_blob(c, b, now)?;
                }
                if let Some(tag) = &m.tag {
                    c.prepare_cached(
                        "INSERT INTO tags (repository_id, name, manifest_id, updated_at, sort_key)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (repository_id, name) DO UPDATE SET
                             manifest_id = excluded.manifest_id, updated_at = excluded.updated_at,
                             -- a tag moved to another manifest was never pulled there
                             pulled_at = CASE WHEN tags.manifest_id = excluded.manifest_id
                                              THEN tags.pulled_at END,
                             -- an older binary's row has none yet
                             sort_key = excluded.sort_key",
                    )?
                    .execute(params![
                        repo_id,
                        tag.as_str(),
                        manifest_id,
                        now,
                        natural_key(tag.as_str())
                    ])?;
                }
                if let Some(e) = &m.event {
                    outbox::insert_event(c, e)?;
                }
                Ok(usage.map_or(PutManifestOutcome::Stored, PutManifestOutcome::StoredInQuota))
            })
            .await
    }

    async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Option<StoredManifest>> {
        let r = repo.as_str().to_owned();
        let reference = reference.clone();
        self.readers
            .run(move |c| {
                let row = match &reference {
                    Reference::Digest(d) => c
                        .prepare_cached(
                            "SELECT m.digest, m.media_type, m.content
                               FROM manifests m JOIN repositories r ON r.id = m.repository_id
                              WHERE r.name = ?1 AND m.digest = ?2",
                        )?
                        .query_row([r, d.to_string()], manifest_row)
                        .optional()?,
                    Reference::Tag(t) => c
                        .prepare_cached(
                            "SELECT m.digest, m.media_type, m.content
                               FROM tags t
                               JOIN repositories r ON r.id = t.repository_id
                               JOIN manifests m ON m.id = t.manifest_id
                              WHERE r.name = ?1 AND t.name = ?2",
                        )?
                        .query_row([r.as_str(), t.as_str()], manifest_row)
                        .optional()?,
                };
                row.map(|(digest, media_type, content)| {
                    Ok(StoredManifest { digest: parse_digest(&digest)?, media_type, content: content.into() })
                })
                .transpose()
            })
            .await
    }

    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        event: Option<&OutboxEvent>,
    ) -> StoreResult<bool> {
        let (r, d, event) = (repo.as_str().to_owned(), digest.to_string(), event.cloned());
        self.writer
            .write(move |c| {
                // Tags, manifest_blobs and manifest_children go by ON DELETE CASCADE.
                let n = c
                    .prepare_cached(
                        "DELETE FROM manifests
                          WHERE digest = ?2 AND repository_id = (SELECT id FROM repositories WHERE name = ?1)",
                    )?
                    .execute([r, d])?;
                if let (true, Some(e)) = (n > 0, &event) {
                    outbox::insert_event(c, e)?;
                }
                Ok(n > 0)
            })
            .await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, event: Option<&OutboxEvent>) -> StoreResult<bool> {
        let (r, t, event) = (repo.as_str().to_owned(), tag.as_str().to_owned(), event.cloned());
        self.writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "DELETE FROM tags
                          WHERE name = ?2 AND repository_id = (SELECT id FROM repositories WHERE name = ?1)",
                    )?
                    .execute([r, t])?;
                if let (true, Some(e)) = (n > 0, &event) {
                    outbox::insert_event(c, e)?;
                }
                Ok(n > 0)
            })
            .await
    }

    async fn list_tags(&self, repo: &RepoName, last: Option<&str>, limit: usize) -> StoreResult<Option<Vec<String>>> {
        let r = repo.as_str().to_owned();
        let last = last.map(str::to_owned);
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let Some(id) = repo_id(&tx, &r)? else {
                    return Ok(None);
                };
                let tags = tx
                    .prepare_cached(
                        "SELECT name FROM tags
                          WHERE repository_id = ?1 AND (?2 IS NULL OR name > ?2 COLLATE BINARY)
                          ORDER BY name COLLATE BINARY LIMIT ?3",
                    )?
                    .query_map(params![id, last, sql_limit(limit)], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(Some(tags))
            })
            .await
    }

    async fn list_repositories(&self, last: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        let last = last.map(str::to_owned);
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached(
                    "SELECT r.name FROM repositories r
                      WHERE (?1 IS NULL OR r.name > ?1 COLLATE BINARY)
                        AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
                             OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id))
                      ORDER BY r.name COLLATE BINARY LIMIT ?2",
                )?
                .query_map(params![last, sql_limit(limit)], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .await
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>> {
        let (r, s) = (repo.as_str().to_owned(), subject.to_string());
        let at = artifact_type.map(str::to_owned);
        self.readers
            .run(move |c| {
                let rows = c
                    .prepare_cached(
                        "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
                           FROM manifests m JOIN repositories r ON r.id = m.repository_id
                          WHERE r.name = ?1 AND m.subject_digest = ?2 AND (?3 IS NULL OR m.artifact_type = ?3)
                          ORDER BY m.digest COLLATE BINARY",
                    )?
                    .query_map(params![r, s, at], |r| {
                        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(digest, media_type, size, artifact_type, annotations)| {
                        Ok(Referrer {
                            digest: parse_digest(&digest)?,
                            media_type,
                            size: to_u64(size, "manifest size")?,
                            artifact_type,
                            annotations,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn create_upload(&self, upload: &Upload) -> StoreResult<()> {
        let u = upload.clone();
        let offset = to_i64(u.offset, "upload offset")?;
        let parts = serde_json::to_string(&u.parts).map_err(|e| StoreError::Backend(format!("encoding parts: {e}")))?;
        self.writer
            .write(move |c| {
                // updated_at starts at started_at: a session that never received a byte
                // has been idle since it began.
                c.prepare_cached(
                    r#"INSERT INTO uploads (id, repository, "offset", hash_state, parts, started_at, updated_at)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)"#,
                )?
                .execute(params![u.id, u.repo.as_str(), offset, u.hash_state, parts, u.started_at])?;
                Ok(())
            })
            .await
    }

    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<Upload>> {
        let (r, id) = (repo.as_str().to_owned(), id.to_owned());
        self.readers
            .run(move |c| {
                c.prepare_cached(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1 AND repository = ?2"))?
                    .query_row([id, r], UploadRow::read)
                    .optional()?
                    .map(UploadRow::into_upload)
                    .transpose()
            })
            .await
    }

    async fn append_upload_part(
        &self,
        id: &str,
        expected_offset: u64,
        new_offset: u64,
        hash_state: Option<&[u8]>,
        part: &str,
    ) -> StoreResult<bool> {
        let (id, part) = (id.to_owned(), part.to_owned());
        let hash_state = hash_state.map(<[u8]>::to_vec);
        let expected = to_i64(expected_offset, "upload offset")?;
        let new = to_i64(new_offset, "upload offset")?;
        self.writer
            .write(move |c| {
                // One statement, so the compare and the set cannot be separated.
                let n = c
                    .prepare_cached(
                        r#"UPDATE uploads
                              SET "offset" = ?3, hash_state = ?4, parts = json_insert(parts, '$[#]', ?5), updated_at = ?6
                            WHERE id = ?1 AND "offset" = ?2"#,
                    )?
                    .execute(params![id, expected, new, hash_state, part, now()])?;
                Ok(n == 1)
            })
            .await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        let id = id.to_owned();
        let row = self
            .writer
            .write(move |c| {
                Ok(c.prepare_cached(&format!("DELETE FROM uploads WHERE id = ?1 RETURNING {UPLOAD_COLUMNS}"))?
                    .query_row([id], UploadRow::read)
                    .optional()?)
            })
            .await?;
        // Decoded outside the job: a corrupt row is still deleted, and its error must not
        // roll the deletion back.
        Ok(row.map(UploadRow::into_upload).transpose()?)
    }

    async fn stale_uploads(&self, older_than: i64, limit: usize) -> StoreResult<Vec<Upload>> {
        self.readers
            .run(move |c| {
                let rows = c
                    .prepare_cached(&format!(
                        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_at < ?1 ORDER BY updated_at, id LIMIT ?2"
                    ))?
                    .query_map(params![older_than, sql_limit(limit)], UploadRow::read)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().map(UploadRow::into_upload).collect()
            })
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.readers
            .run(|c| {
                c.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
            .await
    }

    async fn topology(&self) -> StoreResult<berth_core::store::DbTopology> {
        Ok(berth_core::store::DbTopology { backend: "sqlite".into(), role: "embedded".into(), ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome};
    use bytes::Bytes;

    use super::*;

    type Call<'a> = Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'a>>;

    /// Many concurrent writes through the public API share commits, and each gets its
    /// own correct answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits() {
        const N: usize = 100;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db")).unwrap();
        let repo: RepoName = "batch/many".parse().unwrap();
        let blobs: Vec<BlobInfo> = (0..N)
            .map(|i| {
                let bytes = format!("blob {i}");
                BlobInfo { digest: Digest::sha256(bytes.as_bytes()), size: bytes.len() as u64 }
            })
            .collect();
        // Each manifest refers to a blob committed in the same batch, ahead of it.
        let manifests: Vec<NewManifest> = blobs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let content = format!(r#"{{"schemaVersion":2,"n":{i}}}"#);
                NewManifest {
                    event: None,
                    repo: repo.clone(),
                    digest: Digest::sha256(content.as_bytes()),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    content: Bytes::from(content),
                    artifact_type: None,
                    annotations: None,
                    subject: None,
                    blobs: vec![b.digest.clone()],
                    children: Vec::new(),
                    tag: Some(format!("t{i}").parse().unwrap()),
                }
            })
            .collect();

        // Hold the writer so that all 2N calls are queued before any runs; otherwise how
        // they batch depends on timing.
        let before = store.writer_stats();
        let (release, held) = store.writer.hold().await;
        let mut calls: Vec<Call<'_>> = Vec::new();
        for (b, m) in blobs.iter().zip(&manifests) {
            let (store, repo) = (&store, &repo);
            calls.push(Box::pin(async move { store.commit_blob(repo, b, None).await.map(drop) }));
            calls.push(Box::pin(async {
                assert_eq!(store.put_manifest(m).await?, PutManifestOutcome::Stored);
                Ok(())
            }));
        }
        // Polling a call once puts its job on the queue.
        std::future::poll_fn(|cx| {
            for call in &mut calls {
                assert!(call.as_mut().poll(cx).is_pending(), "answered before commit");
            }
            Poll::Ready(())
        })
        .await;
        drop(release);
        held.await.unwrap().unwrap();
        for call in calls {
            call.await.unwrap();
        }

        let after = store.writer_stats();
        let (jobs, commits) = (after.jobs - before.jobs, after.commits - before.commits);
        // Plus one job and one commit for the hold.
        assert_eq!(jobs, 1 + 2 * N as u64);
        assert_eq!(commits, 1 + (2 * N).div_ceil(writer::MAX_BATCH) as u64);
        for (b, m) in blobs.iter().zip(&manifests) {
            assert_eq!(store.repo_blob(&repo, &b.digest).await.unwrap(), Some(b.clone()));
            let tag = Reference::Tag(m.tag.clone().unwrap());
            let got = store.get_manifest(&repo, &tag).await.unwrap().unwrap();
            assert_eq!(got.digest, m.digest);
        }
    }

    /// A write that fails inside a batch leaves no trace and does not undo the writes
    /// around it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_in_a_batch_spares_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db")).unwrap();
        let repo: RepoName = "batch/isolated".parse().unwrap();
        let (a, b) =
            (BlobInfo { digest: Digest::sha256(b"a"), size: 1 }, BlobInfo { digest: Digest::sha256(b"b"), size: 1 });
        let upload =
            Upload { id: "u".into(), repo: repo.clone(), offset: 0, hash_state: None, parts: vec![], started_at: 0 };

        let before = store.writer_stats();
        let (release, held) = store.writer.hold().await;
        let mut calls: Vec<Call<'_>> = vec![
            Box::pin(async { store.commit_blob(&repo, &a, None).await.map(drop) }),
            Box::pin(store.create_upload(&upload)),
            // Fails on the row its neighbour just wrote, after writing one of its own.
            Box::pin(store.writer.write({
                let (r, d) = (repo.as_str().to_owned(), Digest::sha256(b"doomed").to_string());
                move |c| {
                    c.execute("INSERT INTO blobs (digest, size, state, created_at) VALUES (?1, 1, 'live', 0)", [&d])?;
                    let id = ensure_repo(c, &r, 0)?;
                    link_blob(c, id, &d, 0)?;
                    c.execute(
                        r#"INSERT INTO uploads (id, repository, "offset", parts, started_at, updated_at)
                           VALUES ('u', ?1, 0, '[]', 0, 0)"#,
                        [&r],
                    )?;
                    Ok(())
                }
            })),
            Box::pin(async { store.commit_blob(&repo, &b, Some("u")).await.map(drop) }),
        ];
        std::future::poll_fn(|cx| {
            for call in &mut calls {
                assert!(call.as_mut().poll(cx).is_pending());
            }
            Poll::Ready(())
        })
        .await;
        drop(release);
        held.await.unwrap().unwrap();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await);
        }

        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        assert!(matches!(&results[2], Err(StoreError::Backend(m)) if m.contains("UNIQUE")), "{:?}", results[2]);
        let after = store.writer_stats();
        assert_eq!(
            (after.jobs - before.jobs, after.commits - before.commits),
            (1 + 4, 1 + 1),
            "the hold, then all four in one transaction"
        );
        assert_eq!(store.repo_blob(&repo, &a.digest).await.unwrap(), Some(a));
        assert_eq!(store.repo_blob(&repo, &b.digest).await.unwrap(), Some(b));
        assert_eq!(store.repo_blob(&repo, &Digest::sha256(b"doomed")).await.unwrap(), None);
        assert_eq!(store.get_upload(&repo, "u").await.unwrap(), None, "created, then consumed by the last commit_blob");
    }
}
