//! Berth's metadata store for high availability: [`MetaStore`] and the other store
//! traits on PostgreSQL, so that several Berth instances can share one database and
//! survive the failover of its primary.
//!
//! Semantics are exactly those of `berth-store-sqlite`: the same conformance suites pass
//! on both. Where SQLite gets atomicity from its single writer, this store gets it from
//! transactions, row locks and constraints; each module says which ones it relies on.
//! `pool.rs` owns connections, failover and retries; `migrate.rs` the schema.

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
mod quiet;
mod quota;
mod tls;
mod vulns;
mod webhooks;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::access::project_of;
use berth_core::natural::natural_key;
use berth_core::quota::QuotaUse;
use berth_core::store::identity::Page;
use berth_core::store::outbox::OutboxEvent;
use berth_core::store::{
    BlobInfo, MetaStore, NewManifest, PutManifestOutcome, Referrer, StoreError, StoreResult, StoredManifest, Upload,
    distinct_digests,
};
use berth_core::{Digest, Reference, RepoName, Tag};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;

/// The shortest wait for a connection of the digest-lock pool.
const LOCK_POOL_WAIT: Duration = Duration::from_secs(60);

/// Phase B's filter, for the test that checks its plan (`tests/plans.rs`).
#[doc(hidden)]
pub use gc::{REFERENCED, RUN_AND_DIGESTS};
pub use migrate::SCHEMA_VERSION;

pub(crate) use pool::{Conn, DbErr, Fail, Job, Stmt, Tx, backend, col, params, to_store};

/// How old `blobs.last_ref_at` may get before a read refreshes it (as in SQLite): a
/// refresh on every read would turn each blob HEAD into a write.
pub const LAST_REF_REFRESH_SECS: i64 = 300;

/// How to reach the database and how long to wait for it.
#[derive(Clone)]
pub struct PgOptions {
    /// A libpq URL or key-value string; several hosts and `target_session_attrs` are
    /// honoured, so a URL listing every node follows the primary through a failover.
    pub url: String,
    /// Pool size; each instance of a cluster holds up to this many connections.
    pub max_connections: usize,
    /// Per host, unless the URL sets its own `connect_timeout`.
    pub connect_timeout: Duration,
    /// How long a call waits for a free connection before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// Set on every connection, so that a stuck query fails instead of holding its
    /// connection forever.
    pub statement_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// The URL may carry a password.
impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

/// Connection pool gauges, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open (idle or in use).
    pub size: usize,
    pub idle: usize,
    pub max: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}

/// The PostgreSQL metadata store. Cheap to share behind an `Arc`.
pub struct PgStore {
    pool: Pool,
    /// Connections that hold an upload's digest lock (see `gc.rs`) while the upload
    /// commits through `pool`: separate, so that uploads holding locks can never use up
    /// the connections they need to finish.
    locks: Pool,
    opts: PgOptions,
    /// Hosts and database, without credentials, for error messages.
    target: String,
    hosts: usize,
    /// This instance's requests' writes, for GC's claims to start between them.
    requests: quiet::Requests,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, brings the schema up to date (refusing a schema newer than this binary
    /// can use) and returns with an empty pool. Fails within about `connect_timeout` per
    /// host when no server answers.
    pub async fn connect(opts: PgOptions) -> Result<PgStore, StoreError> {
        let tls = tls::prepare(&opts.url)?;
        let mut config: tokio_postgres::Config = tls.url.parse().map_err(|e| {
            StoreError::Backend(format!("invalid PostgreSQL URL (not shown, it may hold a password): {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(opts.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("berth");
        }
        let options = config.get_options().unwrap_or_default().to_owned();
        if !options.contains("statement_timeout") {
            let ms = opts.statement_timeout.as_millis().max(1);
            config.options(format!("{options} -c statement_timeout={ms}").trim_start());
        }
        let target = describe_target(&config);
        let hosts = config.get_hosts().len().max(config.get_hostaddrs().len()).max(1);
        let pool = pool::build_pool(
            config.clone(),
            tls.connector.clone(),
            opts.max_connections.max(1),
            opts.acquire_timeout,
            create_timeout(&opts, hosts),
        )?;
        // A digest lock holds its connection while the blob is moved into place and
        // committed, so a burst of concurrent pushes queues here behind healthy work, not
        // behind a stuck database (connecting and statements have their own deadlines):
        // waiting only `acquire_timeout` turned such bursts into 503s.
        let locks = pool::build_pool(
            config.clone(),
            tls.connector.clone(),
            (opts.max_connections / 2).max(2),
            opts.acquire_timeout.max(LOCK_POOL_WAIT),
            create_timeout(&opts, hosts),
        )?;
        let store = PgStore { pool, locks, opts, target, hosts, requests: quiet::Requests::new() };
        migrate::run(&config, tls.connector, &store.target, store.create_timeout()).await.map_err(|e| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(tls::explain(m, &tls.checks)),
            other => other,
        })?;
        Ok(store)
    }

    pub fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus { size: s.size, idle: s.available, max: s.max_size, waiting: s.waiting }
    }

    /// Holds a connection for `secs` seconds in `pg_sleep`, for tests of pool exhaustion
    /// and statement timeouts. Never retried.
    #[doc(hidden)]
    pub async fn sleep_for_tests(&self, secs: f64) -> StoreResult<()> {
        self.db(Tx::Write, &secs, |c, secs| {
            Box::pin(async move {
                c.exec("SELECT pg_sleep($1)", &[secs]).await?;
                Ok(())
            })
        })
        .await
    }

    /// How long making one connection may take: every host in turn may use its
    /// `connect_timeout`.
    fn create_timeout(&self) -> Duration {
        create_timeout(&self.opts, self.hosts)
    }

    /// [`PgStore::run`] for operations that fail only as the database fails.
    async fn db<A, T>(
        &self,
        tx: Tx,
        args: &A,
        job: for<'a> fn(Conn<'a>, &'a A) -> Job<'a, T, StoreError>,
    ) -> StoreResult<T>
    where
        A: Sync + ?Sized,
        T: Send,
    {
        self.run(tx, args, job).await
    }
}

fn create_timeout(opts: &PgOptions, hosts: usize) -> Duration {
    opts.connect_timeout * u32::try_from(hosts).unwrap_or(u32::MAX) + Duration::from_secs(1)
}

/// `host:port,host:port/dbname`, which is what an operator needs to see in an error.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            Host::Tcp(name) => format!("{name}:{}", port(i)),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config.get_hostaddrs().iter().enumerate().map(|(i, a)| format!("{a}:{}", port(i))).collect();
    }
    format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or_default())
}

// --- helpers shared by the modules ---

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, DbErr> {
    i64::try_from(v).map_err(|_| backend(format!("{what} {v} does not fit the database")))
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, DbErr> {
    u64::try_from(v).map_err(|_| backend(format!("stored {what} {v} is negative")))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// LIMIT and OFFSET of a page, clamped so that a huge page is simply past the end.
pub(crate) fn limit_offset(page: &Page) -> (i64, i64) {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    (clamp(page.page_size), clamp(page.offset()))
}

/// ILIKE pattern matching `s` anywhere, `%`, `_` and `\` taken literally (backslash is
/// PostgreSQL's default escape). Columns are `COLLATE "C"`, under which ILIKE folds ASCII
/// only, like SQLite's LIKE.
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

/// Query arguments whose number depends on a filter.
pub(crate) type Args = Vec<Box<dyn ToSql + Sync + Send>>;

/// A filtered, paged listing and its total, built once outside the transaction and run
/// inside it: the filters decide how many arguments there are, so the SQL is assembled
/// at run time (and cached per shape by the connection).
pub(crate) struct Listing {
    total_sql: String,
    page_sql: String,
    args: Args,
    /// How many of `args` the filter uses; the page adds LIMIT and OFFSET.
    filtered: usize,
}

impl Listing {
    /// `select_from` is `SELECT columns FROM tables`, `count_from` the `FROM` part the
    /// total counts over; `conds` refer to `args` as `$1`, `$2`, ….
    pub(crate) fn new(
        select_from: &str,
        count_from: &str,
        conds: &[String],
        order: &str,
        mut args: Args,
        page: &Page,
    ) -> Listing {
        let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
        let filtered = args.len();
        let (limit, offset) = limit_offset(page);
        args.push(Box::new(limit));
        args.push(Box::new(offset));
        Listing {
            total_sql: format!("SELECT count(*) FROM {count_from}{filter}"),
            page_sql: format!(
                "{select_from}{filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
                filtered + 1,
                filtered + 2
            ),
            args,
            filtered,
        }
    }

    pub(crate) async fn run(&self, c: Conn<'_>) -> Result<(Vec<Row>, u64), DbErr> {
        let all: Vec<&(dyn ToSql + Sync)> = self.args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
        let total = count(c, &self.total_sql, &all[..self.filtered]).await?;
        Ok((c.rows(&self.page_sql, &all).await?, total))
    }
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest, DbErr> {
    s.parse().map_err(|e| backend(format!("stored digest {s:?} is invalid: {e}")))
}

pub(crate) async fn count(c: Conn<'_>, sql: &str, params: pool::Params<'_>) -> Result<u64, DbErr> {
    let row = c.one(sql, params).await?;
    to_u64(col(&row, 0)?, "row count")
}

pub(crate) async fn repo_id(c: Conn<'_>, name: &str) -> Result<Option<i64>, DbErr> {
    c.opt(REPO_ID, &[&name]).await?.map(|r| col(&r, 0)).transpose()
}

/// The repository's id, creating its row if needed. A concurrent `delete_repository`
/// that removes the row after this returns makes the caller's next insert fail its
/// foreign key, which rolls back and retries (see `pool.rs`), so a push never lands in
/// a deleted repository.
async fn ensure_repo(c: Conn<'_>, name: &str, now: i64) -> Result<i64, DbErr> {
    let answers = c.pipeline(&[(INSERT_REPO, params![&name, &now]), (REPO_ID, params![&name])], false).await?;
    repo_id_of(&answers[1])
}

/// The repository `$1` created at `$2` unless it exists: [`ensure_repo`] in parts, for a
/// caller that sends them with other statements. [`REPO_ID`] after it, in the same
/// transaction, finds the row either way.
const INSERT_REPO: &str = "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const REPO_ID: &str = "SELECT id FROM repositories WHERE name = $1";

fn repo_id_of(rows: &[Row]) -> Result<i64, DbErr> {
    col(rows.first().ok_or_else(|| backend("repository row vanished inside its own transaction"))?, 0)
}

/// Size and last reference time of a live blob linked to `repo`.
async fn linked_blob(c: Conn<'_>, repo: &str, digest: &str) -> Result<Option<(u64, Option<i64>)>, DbErr> {
    let row = c
        .opt(
            "SELECT b.size, b.last_ref_at
               FROM repositories r
               JOIN repository_blobs rb ON rb.repository_id = r.id
               JOIN blobs b ON b.digest = rb.digest
              WHERE r.name = $1 AND rb.digest = $2 AND b.state = 'live'",
            &[&repo, &digest],
        )
        .await?;
    row.map(|r| Ok((to_u64(col(&r, 0)?, "blob size")?, col(&r, 1)?))).transpose()
}

/// [`linked_blob`] in a write: the live row is held until the commit, so a GC claim
/// cannot take it meanwhile (it skips held rows), and a row claimed before is seen
/// `deleting` and absent. `update` for a caller that will touch the row (a share lock
/// upgraded by two callers at once deadlocks).
async fn linked_blob_held(
    c: Conn<'_>,
    repo: &str,
    digest: &str,
    update: bool,
) -> Result<Option<(u64, Option<i64>)>, DbErr> {
    let sql = if update { LINKED_BLOB_UPDATE } else { LINKED_BLOB_SHARE };
    let row = c.opt(sql, &[&repo, &digest]).await?;
    row.map(|r| Ok((to_u64(col(&r, 0)?, "blob size")?, col(&r, 1)?))).transpose()
}

macro_rules! linked_blob_sql {
    ($lock:literal) => {
        concat!(
            "SELECT b.size, b.last_ref_at
               FROM repositories r
               JOIN repository_blobs rb ON rb.repository_id = r.id
               JOIN blobs b ON b.digest = rb.digest
              WHERE r.name = $1 AND rb.digest = $2 AND b.state = 'live' ",
            $lock
        )
    };
}

/// [`linked_blob_held`]'s statements: `$1` the repository, `$2` the digest.
const LINKED_BLOB_SHARE: &str = linked_blob_sql!("FOR SHARE OF b");
const LINKED_BLOB_UPDATE: &str = linked_blob_sql!("FOR NO KEY UPDATE OF b");

async fn link_blob(c: Conn<'_>, repo_id: i64, digest: &str, now: i64) -> Result<(), DbErr> {
    c.exec(LINK_BLOB, &[&repo_id, &digest, &now]).await?;
    Ok(())
}

const LINK_BLOB: &str = "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, digest) DO NOTHING";

/// A blob `$1` of `$2` bytes committed live at `$3`.
const INSERT_BLOB: &str =
    "INSERT INTO blobs (digest, size, state, last_ref_at, created_at) VALUES ($1, $2, 'live', $3, $3)
     ON CONFLICT (digest) DO UPDATE SET
         state = 'live',
         gc_run = NULL,
         gc_claimed_at = NULL,
         size = excluded.size,
         last_ref_at = greatest(coalesce(blobs.last_ref_at, 0), excluded.last_ref_at)";

/// Never moves the time backwards, so a clock step cannot shorten GC's grace period.
async fn touch_blob(c: Conn<'_>, digest: &str, now: i64) -> Result<(), DbErr> {
    c.exec(
        "UPDATE blobs SET last_ref_at = $2 WHERE digest = $1 AND (last_ref_at IS NULL OR last_ref_at < $2)",
        &[&digest, &now],
    )
    .await?;
    Ok(())
}

struct UploadRow {
    id: String,
    repo: String,
    offset: i64,
    hash_state: Option<Vec<u8>>,
    parts: Vec<String>,
    started_at: i64,
}

const UPLOAD_COLUMNS: &str = r#"id, repository, "offset", hash_state, parts, started_at"#;

impl UploadRow {
    fn read(r: &Row) -> Result<UploadRow, DbErr> {
        Ok(UploadRow {
            id: col(r, 0)?,
            repo: col(r, 1)?,
            offset: col(r, 2)?,
            hash_state: col(r, 3)?,
            parts: col(r, 4)?,
            started_at: col(r, 5)?,
        })
    }

    fn into_upload(self) -> Result<Upload, DbErr> {
        let repo =
            self.repo.parse().map_err(|e| backend(format!("upload {}: stored repository is invalid: {e}", self.id)))?;
        Ok(Upload {
            offset: to_u64(self.offset, "upload offset")?,
            id: self.id,
            repo,
            hash_state: self.hash_state,
            parts: self.parts,
            started_at: self.started_at,
        })
    }
}

fn to_digests(v: Vec<String>) -> Result<Vec<Digest>, DbErr> {
    v.iter().map(|s| parse_digest(s)).collect()
}

/// Writes the manifest, its references, the refresh of its blobs and its tag, and
/// commits: one round trip. `blobs` in digest order.
async fn store_manifest(
    c: Conn<'_>,
    m: &NewManifest,
    repo_id: i64,
    blobs: &[String],
    children: &[String],
    event: Option<&OutboxEvent>,
) -> Result<(), DbErr> {
    let now = now();
    let stale = now - LAST_REF_REFRESH_SECS;
    let digest = m.digest.to_string();
    let size = to_i64(m.content.len() as u64, "manifest size")?;
    let subject = m.subject.as_ref().map(Digest::to_string);
    let content = &m.content[..];
    let tag = m.tag.as_ref().map(|t| (t.as_str(), natural_key(t.as_str())));
    // Same digest means same bytes, so a re-push keeps the first row (and its
    // created_at) and only moves the tag; its references are there already, and
    // inserting them again does nothing.
    let mut all: Vec<Stmt<'_>> = vec![
        (
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, annotations,
                                    subject_digest, size, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repository_id, digest) DO NOTHING",
            params![
                &repo_id,
                &digest,
                &m.media_type,
                &m.artifact_type,
                &m.annotations,
                &subject,
                &size,
                &content,
                &now
            ],
        ),
        (
            "INSERT INTO manifest_blobs (manifest_id, digest)
             SELECT m.id, unnest($3::text[]) FROM manifests m WHERE m.repository_id = $1 AND m.digest = $2
             ON CONFLICT DO NOTHING",
            params![&repo_id, &digest, &blobs],
        ),
    ];
    if !children.is_empty() {
        all.push((
            "INSERT INTO manifest_children (manifest_id, child_digest)
             SELECT m.id, unnest($3::text[]) FROM manifests m WHERE m.repository_id = $1 AND m.digest = $2
             ON CONFLICT DO NOTHING",
            params![&repo_id, &digest, &children],
        ));
    }
    // Only rows older than the refresh interval: the rows are held `FOR SHARE`, and
    // upgrading a share lock deadlocks with a concurrent push doing the same (detected
    // and retried, but rare this way). In digest order, like the locks.
    for b in blobs {
        all.push((
            "UPDATE blobs SET last_ref_at = $2 WHERE digest = $1 AND (last_ref_at IS NULL OR last_ref_at < $3)",
            params![b, &now, &stale],
        ));
    }
    if let Some((name, key)) = &tag {
        all.push((
            // A VALUES row, not a SELECT: should the manifest vanish meanwhile (a delete
            // racing a re-push), the NULL id fails the push instead of leaving the tag
            // where it was.
            "INSERT INTO tags (repository_id, name, manifest_id, updated_at, sort_key)
             VALUES ($1, $2, (SELECT m.id FROM manifests m WHERE m.repository_id = $1 AND m.digest = $3), $4, $5)
             ON CONFLICT (repository_id, name) DO UPDATE SET
                 manifest_id = excluded.manifest_id, updated_at = excluded.updated_at,
                 -- a tag moved to another manifest was never pulled there
                 pulled_at = CASE WHEN tags.manifest_id = excluded.manifest_id THEN tags.pulled_at END,
                 -- an older binary's row has none yet
                 sort_key = excluded.sort_key",
            params![&repo_id, name, &digest, &now, key],
        ));
    }
    if let Some(e) = event {
        all.push((outbox::INSERT_EVENT, params![&e.operation, &e.repo, &e.reference, &e.digest, &e.username, &e.at]));
    }
    c.pipeline(&all, true).await?;
    Ok(())
}

/// Retries (see `pool.rs`): reads always; of the writes, `repo_blob`'s refresh,
/// `commit_blob`, `mount_blob` and `put_manifest`, whose second run finds its own work
/// done and answers the same. The others answer differently the second time (a delete
/// finds nothing, an insert conflicts, a compare-and-set sees its own offset) and run
/// again only when they certainly never started.
#[async_trait]
impl MetaStore for PgStore {
    async fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<BlobInfo>> {
        let args = (repo.as_str(), digest.to_string(), now());
        let found =
            self.db(Tx::Read, &args, |c, (r, d, _)| Box::pin(async move { Ok(linked_blob(c, r, d).await?) })).await?;
        let Some((size, last_ref)) = found else {
            return Ok(None);
        };
        if last_ref.is_some_and(|t| t >= args.2 - LAST_REF_REFRESH_SECS) {
            return Ok(Some(BlobInfo { digest: digest.clone(), size }));
        }
        // Re-checked in the write: GC may have claimed the blob since the read, and the
        // refresh must be atomic with the liveness check to protect it.
        let size = self
            .db(Tx::Idempotent, &args, |c, (r, d, now)| {
                Box::pin(async move {
                    let Some((size, _)) = linked_blob_held(c, r, d, true).await? else {
                        return Ok(None);
                    };
                    touch_blob(c, d, *now).await?;
                    Ok(Some(size))
                })
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
        let args = (
            repo.as_str(),
            blob.digest.to_string(),
            to_i64(blob.size, "blob size").map_err(pool::to_store)?,
            finished_upload,
        );
        self.db(Tx::Idempotent, &args, |c, (r, d, size, upload)| {
            Box::pin(async move {
                let now = now();
                let project = project_of(r);
                // A 'deleting' row is resurrected: the bytes were just verified durable again.
                // The blob's row is locked before the quota check locks the project's usage
                // row (the order GC's claims take them in); a refusal rolls it all back.
                // Two round trips: the checks, then the writes with the COMMIT.
                let mut first: Vec<Stmt<'_>> =
                    vec![(INSERT_BLOB, params![d, size, &now]), (INSERT_REPO, params![r, &now]), (REPO_ID, params![r])];
                // As late as possible: from here to the commit, pushes into a limited
                // project wait for each other.
                if let Some(p) = &project {
                    first.push((quota::CHECK, params![p, d]));
                }
                let answers = c.pipeline(&first, false).await?;
                let id = repo_id_of(&answers[2])?;
                let quota = match (&project, answers.get(3).and_then(|rows| rows.first())) {
                    (Some(p), Some(row)) => quota::judge(p, row, *size as u64)?,
                    _ => None,
                };
                let mut last: Vec<Stmt<'_>> = vec![(LINK_BLOB, params![&id, d, &now])];
                if let Some(upload) = upload {
                    last.push(("DELETE FROM uploads WHERE id = $1", params![upload]));
                }
                c.pipeline(&last, true).await?;
                Ok(quota)
            })
        })
        .await
    }

    async fn mount_blob_with_quota(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<(BlobInfo, Option<QuotaUse>)>> {
        let args = (from.as_str(), to.as_str(), digest.to_string());
        let mounted = self
            .db(Tx::Idempotent, &args, |c, (f, t, d)| {
                Box::pin(async move {
                    let now = now();
                    let Some((size, _)) = linked_blob_held(c, f, d, true).await? else {
                        return Ok(None);
                    };
                    let usage = quota::check(c, t, d, size).await?;
                    let id = ensure_repo(c, t, now).await?;
                    link_blob(c, id, d, now).await?;
                    touch_blob(c, d, now).await?;
                    Ok(Some((size, usage)))
                })
            })
            .await?;
        Ok(mounted.map(|(size, usage)| (BlobInfo { digest: digest.clone(), size }, usage)))
    }

    fn write_coming(&self) {
        self.requests.announce();
    }

    async fn lock_digest(&self, digest: &Digest) -> StoreResult<berth_core::store::gc::DigestLock> {
        gc::lock_digest(self, digest).await
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        let args = (repo.as_str(), digest.to_string());
        self.db(Tx::Write, &args, |c, (r, d)| {
            Box::pin(async move {
                // A link to a 'deleting' blob is removed too, but reported as absent like
                // everywhere else.
                let live = linked_blob(c, r, d).await?.is_some();
                c.exec(
                    "DELETE FROM repository_blobs
                      WHERE digest = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
                    &[r, d],
                )
                .await?;
                Ok(live)
            })
        })
        .await
    }

    async fn put_manifest(&self, m: &NewManifest) -> StoreResult<PutManifestOutcome> {
        self.db(Tx::Idempotent, m, |c, m| {
            Box::pin(async move {
                let repo = m.repo.as_str();
                let blobs = distinct_digests(&m.blobs);
                // Held in digest order, so that two pushes sharing blobs take them alike;
                // then the quota check (after the blob rows' locks, like every quota
                // check). One round trip; a refusal rolls it all back.
                let mut sorted = blobs.clone();
                sorted.sort_unstable();
                let project = project_of(repo);
                let digest = m.digest.to_string();
                let mut first: Vec<Stmt<'_>> = vec![(REPO_ID, params![&repo])];
                first.extend(sorted.iter().map(|b| (LINKED_BLOB_SHARE, params![&repo, b])));
                if let Some(p) = &project {
                    first.push((quota::CHECK, params![p, &digest]));
                }
                let answers = c.pipeline(&first, false).await?;
                let existing_repo = answers[0].first().map(|r| col::<i64>(r, 0)).transpose()?;
                let absent: std::collections::HashSet<&String> =
                    sorted.iter().zip(&answers[1..]).filter(|(_, rows)| rows.is_empty()).map(|(b, _)| b).collect();
                let mut missing: Vec<String> = blobs.iter().filter(|b| absent.contains(b)).cloned().collect();
                if !missing.is_empty() {
                    return Ok(PutManifestOutcome::MissingBlobs(to_digests(missing)?));
                }
                let children = distinct_digests(&m.children);
                if let (Some(id), false) = (existing_repo, children.is_empty()) {
                    let checks: Vec<Stmt<'_>> = children
                        .iter()
                        .map(|ch| {
                            ("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2", params![&id, ch])
                        })
                        .collect();
                    let found = c.pipeline(&checks, false).await?;
                    missing.extend(
                        children.iter().zip(found).filter(|(_, rows)| rows.is_empty()).map(|(ch, _)| ch.clone()),
                    );
                } else {
                    missing.extend(children.iter().cloned());
                }
                if !missing.is_empty() {
                    return Ok(PutManifestOutcome::MissingManifests(to_digests(missing)?));
                }
                // A manifest new to a limited project counts against its quota, as in Harbor
                // (where manifests are blobs); a refusal writes nothing.
                let usage = match (&project, answers.last().and_then(|rows| rows.first())) {
                    (Some(p), Some(row)) => quota::judge(p, row, m.content.len() as u64)?,
                    _ => None,
                };
                let repo_id = match existing_repo {
                    Some(id) => id,
                    None => ensure_repo(c, repo, now()).await?,
                };
                // A retried transaction whose first commit did land writes the event
                // twice: delivery is at least once anyway.
                store_manifest(c, m, repo_id, &sorted, &children, m.event.as_ref()).await?;
                Ok(usage.map_or(PutManifestOutcome::Stored, PutManifestOutcome::StoredInQuota))
            })
        })
        .await
    }

    async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Option<StoredManifest>> {
        let args = (repo.as_str(), reference);
        self.db(Tx::Read, &args, |c, (r, reference)| {
            Box::pin(async move {
                let row = match reference {
                    Reference::Digest(d) => {
                        c.opt(
                            "SELECT m.digest, m.media_type, m.content
                               FROM manifests m JOIN repositories r ON r.id = m.repository_id
                              WHERE r.name = $1 AND m.digest = $2",
                            &[r, &d.to_string()],
                        )
                        .await?
                    }
                    Reference::Tag(t) => {
                        c.opt(
                            "SELECT m.digest, m.media_type, m.content
                               FROM tags t
                               JOIN repositories r ON r.id = t.repository_id
                               JOIN manifests m ON m.id = t.manifest_id
                              WHERE r.name = $1 AND t.name = $2",
                            &[r, &t.as_str()],
                        )
                        .await?
                    }
                };
                let Some(row) = row else { return Ok(None) };
                let digest: String = col(&row, 0)?;
                let content: Vec<u8> = col(&row, 2)?;
                Ok(Some(StoredManifest {
                    digest: parse_digest(&digest)?,
                    media_type: col(&row, 1)?,
                    content: content.into(),
                }))
            })
        })
        .await
    }

    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        event: Option<&OutboxEvent>,
    ) -> StoreResult<bool> {
        let args = (repo.as_str(), digest.to_string(), event);
        self.db(Tx::Write, &args, |c, (r, d, event)| {
            Box::pin(async move {
                // Tags, manifest_blobs, manifest_children and label references go by
                // ON DELETE CASCADE.
                let n = c
                    .exec(
                        "DELETE FROM manifests
                          WHERE digest = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
                        &[r, d],
                    )
                    .await?;
                if let (true, Some(e)) = (n > 0, event) {
                    outbox::insert_event(c, e).await?;
                }
                Ok(n > 0)
            })
        })
        .await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, event: Option<&OutboxEvent>) -> StoreResult<bool> {
        let args = (repo.as_str(), tag.as_str(), event);
        self.db(Tx::Write, &args, |c, (r, t, event)| {
            Box::pin(async move {
                let n = c
                    .exec(
                        "DELETE FROM tags
                          WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
                        &[r, t],
                    )
                    .await?;
                if let (true, Some(e)) = (n > 0, event) {
                    outbox::insert_event(c, e).await?;
                }
                Ok(n > 0)
            })
        })
        .await
    }

    async fn list_tags(&self, repo: &RepoName, last: Option<&str>, limit: usize) -> StoreResult<Option<Vec<String>>> {
        let args = (repo.as_str(), last, sql_limit(limit));
        self.db(Tx::Read, &args, |c, (r, last, limit)| {
            Box::pin(async move {
                let Some(id) = repo_id(c, r).await? else {
                    return Ok(None);
                };
                let rows = c
                    .rows(
                        "SELECT name FROM tags
                          WHERE repository_id = $1 AND ($2::text IS NULL OR name > $2)
                          ORDER BY name LIMIT $3",
                        &[&id, last, limit],
                    )
                    .await?;
                Ok(Some(rows.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?))
            })
        })
        .await
    }

    async fn list_repositories(&self, last: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        let args = (last, sql_limit(limit));
        self.db(Tx::Read, &args, |c, (last, limit)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        "SELECT r.name FROM repositories r
                          WHERE ($1::text IS NULL OR r.name > $1)
                            AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
                                 OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id))
                          ORDER BY r.name LIMIT $2",
                        &[last, limit],
                    )
                    .await?;
                Ok(rows.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>> {
        let args = (repo.as_str(), subject.to_string(), artifact_type);
        self.db(Tx::Read, &args, |c, (r, s, at)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
                           FROM manifests m JOIN repositories r ON r.id = m.repository_id
                          WHERE r.name = $1 AND m.subject_digest = $2 AND ($3::text IS NULL OR m.artifact_type = $3)
                          ORDER BY m.digest",
                        &[r, s, at],
                    )
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let digest: String = col(row, 0)?;
                    out.push(Referrer {
                        digest: parse_digest(&digest)?,
                        media_type: col(row, 1)?,
                        size: to_u64(col(row, 2)?, "manifest size")?,
                        artifact_type: col(row, 3)?,
                        annotations: col(row, 4)?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    async fn create_upload(&self, upload: &Upload) -> StoreResult<()> {
        let args = (upload, to_i64(upload.offset, "upload offset").map_err(pool::to_store)?);
        self.db(Tx::Write, &args, |c, (u, offset)| {
            Box::pin(async move {
                // updated_at starts at started_at: a session that never received a byte
                // has been idle since it began.
                c.exec(
                    r#"INSERT INTO uploads (id, repository, "offset", hash_state, parts, started_at, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $6)"#,
                    &[&u.id, &u.repo.as_str(), offset, &u.hash_state, &u.parts, &u.started_at],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<Upload>> {
        let args = (repo.as_str(), id);
        self.db(Tx::Read, &args, |c, (r, id)| {
            Box::pin(async move {
                let row = c
                    .opt(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1 AND repository = $2"), &[id, r])
                    .await?;
                Ok(row.map(|r| UploadRow::read(&r)?.into_upload()).transpose()?)
            })
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
        let offsets = (to_i64(expected_offset, "upload offset"), to_i64(new_offset, "upload offset"));
        let (expected, new) = match offsets {
            (Ok(e), Ok(n)) => (e, n),
            (Err(e), _) | (_, Err(e)) => return Err(pool::to_store(e)),
        };
        let args = (id, expected, new, hash_state, part);
        self.db(Tx::Write, &args, |c, (id, expected, new, hash_state, part)| {
            Box::pin(async move {
                // One statement, so the compare and the set cannot be separated: a
                // concurrent writer waits for the row lock, then finds the offset moved.
                let n = c
                    .exec(
                        r#"UPDATE uploads
                              SET "offset" = $3, hash_state = $4, parts = array_append(parts, $5::text), updated_at = $6
                            WHERE id = $1 AND "offset" = $2"#,
                        &[id, expected, new, hash_state, part, &now()],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        let row = self
            .db(Tx::Write, &id, |c, id| {
                Box::pin(async move {
                    let row =
                        c.opt(&format!("DELETE FROM uploads WHERE id = $1 RETURNING {UPLOAD_COLUMNS}"), &[id]).await?;
                    Ok(row.map(|r| UploadRow::read(&r)).transpose()?)
                })
            })
            .await?;
        // Decoded after the commit: a corrupt row is still deleted.
        row.map(UploadRow::into_upload).transpose().map_err(pool::to_store)
    }

    async fn stale_uploads(&self, older_than: i64, limit: usize) -> StoreResult<Vec<Upload>> {
        let args = (older_than, sql_limit(limit));
        self.db(Tx::Read, &args, |c, (older_than, limit)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_at < $1 ORDER BY updated_at, id LIMIT $2"
                        ),
                        &[older_than, limit],
                    )
                    .await?;
                Ok(rows.iter().map(|r| UploadRow::read(r)?.into_upload()).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db(Tx::Read, &(), |c, ()| {
            Box::pin(async move {
                c.one("SELECT 1", &[]).await?;
                Ok(())
            })
        })
        .await
    }

    async fn topology(&self) -> StoreResult<berth_core::store::DbTopology> {
        self.db(Tx::Read, &(), |c, ()| {
            Box::pin(async move {
                let row = c
                    .one(
                        "SELECT pg_is_in_recovery(), \
                         COALESCE(host(inet_server_addr()) || ':' || inet_server_port()::text, '')",
                        &[],
                    )
                    .await?;
                let standby: bool = row.get(0);
                // Without the pg_monitor role the columns other than the name are NULL.
                let rows = c
                    .rows(
                        "SELECT COALESCE(application_name, ''), COALESCE(host(client_addr), ''), \
                         COALESCE(state, ''), COALESCE(sync_state, ''), \
                         (EXTRACT(EPOCH FROM replay_lag) * 1000)::bigint, \
                         CASE WHEN pg_is_in_recovery() THEN NULL \
                              ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END \
                         FROM pg_stat_replication ORDER BY application_name",
                        &[],
                    )
                    .await?;
                let standbys = rows
                    .iter()
                    .map(|r| berth_core::store::Standby {
                        name: r.get(0),
                        address: r.get(1),
                        state: r.get(2),
                        sync_state: r.get(3),
                        replay_lag_ms: r.get(4),
                        replay_lag_bytes: r.get(5),
                    })
                    .collect();
                Ok(berth_core::store::DbTopology {
                    backend: "postgresql".into(),
                    role: if standby { "standby" } else { "primary" }.into(),
                    server: row.get(1),
                    standbys,
                })
            })
        })
        .await
    }
}
