//! Connections and transactions: the pool, what a failure means, and when a failed
//! transaction may run again.
//!
//! Failover is handled here and nowhere else. A primary that dies takes its connections
//! with it; a demoted one turns read-only. Either way the connection that saw it is
//! discarded (never returned to the pool), so the next one is made afresh through the
//! URL's host list and `target_session_attrs`, which finds the new primary without a
//! restart. The caller sees `StoreError::Unavailable`, which it may retry.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_core::store::StoreError;
use deadpool_postgres::{ClientWrapper, Object, Pool, PoolError, TimeoutType};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::PgStore;

/// Attempts per operation, the first included. Few, because the caller (a registry
/// client) retries too, and a failover takes longer than any backoff worth waiting here.
const MAX_ATTEMPTS: u32 = 3;

/// Pause before the second attempt; it quadruples for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(25);

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A statement and its parameters, for [`Conn::pipeline`].
pub(crate) type Stmt<'a> = (&'a str, Vec<&'a (dyn ToSql + Sync)>);

/// The parameters of a [`Stmt`].
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$($p as &(dyn tokio_postgres::types::ToSql + Sync)),*]
    };
}
pub(crate) use params;

/// A boxed transaction body; boxed because a generic async closure cannot promise that
/// its future is `Send`, which `async_trait` needs.
pub(crate) type Job<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, Fail<E>>> + Send + 'a>>;

/// What a transaction may do, which decides how it starts and whether it may run again
/// after its outcome became unknown (a connection lost before the commit answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tx {
    /// One snapshot for all its statements (a page and its total agree); safe to retry.
    Read,
    /// A write whose second run changes nothing and answers the same: retried.
    Idempotent,
    /// A write whose second run would answer differently (a counter, an insert that would
    /// then conflict, a delete that would then find nothing): never retried once it may
    /// have committed.
    Write,
}

/// A database failure, kept as the driver's error as long as possible so that it can be
/// classified once, in [`PgStore::run`].
#[derive(Debug)]
pub(crate) enum DbErr {
    Pg(tokio_postgres::Error),
    /// No connection, or no answer in time; `lost` when the connection (or the attempt
    /// to make one) failed rather than ran out of time.
    Unavailable {
        msg: String,
        lost: bool,
    },
    Backend(String),
}

impl From<tokio_postgres::Error> for DbErr {
    fn from(e: tokio_postgres::Error) -> Self {
        DbErr::Pg(e)
    }
}

/// Why a transaction body gave up: a refusal `E` meant for the caller (rolled back like a
/// failure, but returned as is), or a database failure.
pub(crate) enum Fail<E> {
    No(E),
    Db(DbErr),
}

impl<E> From<tokio_postgres::Error> for Fail<E> {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(DbErr::Pg(e))
    }
}

impl<E> From<DbErr> for Fail<E> {
    fn from(e: DbErr) -> Self {
        Fail::Db(e)
    }
}

/// A corrupt or impossible row: a backend error, never a panic.
pub(crate) fn backend(msg: impl Into<String>) -> DbErr {
    DbErr::Backend(msg.into())
}

/// The connection a transaction body runs on. Statements are prepared once per
/// connection and cached.
///
/// Inside [`PgStore::run`] the transaction's BEGIN is not sent on its own: it goes out
/// with the body's first statement, in the same write to the socket (the driver
/// pipelines requests polled together, and the server answers them in order). A round
/// trip is two wake-ups, the server's and ours, and on a machine whose cores are busy
/// (GC's claims on a server that shares them) each wake-up waits for a core: a push
/// made about 35 round trips, and its latency grew with their number.
#[derive(Clone, Copy)]
pub(crate) struct Conn<'a>(&'a ClientWrapper, Option<&'a Opening>);

/// The BEGIN of a transaction not yet sent, and what became of it.
pub(crate) struct Opening {
    begin: &'static str,
    sent: AtomicBool,
    /// The BEGIN failed: nothing of the body ran, whatever it then reported.
    failed: AtomicBool,
    /// The body sent the COMMIT itself, with its last statements ([`Conn::pipeline`]).
    committed: AtomicBool,
}

impl Opening {
    fn new(begin: &'static str) -> Opening {
        Opening {
            begin,
            sent: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            committed: AtomicBool::new(false),
        }
    }
}

/// A request to send in a pipeline, boxed so that different requests share a list.
type Sent<'f> = Pin<Box<dyn Future<Output = Result<Option<Vec<Row>>, tokio_postgres::Error>> + Send + 'f>>;

impl<'a> Conn<'a> {
    /// A connection held outside [`PgStore::run`] (a lock or transaction that spans I/O).
    pub(crate) fn of(obj: &'a Object) -> Conn<'a> {
        Conn(obj, None)
    }

    /// The client itself, for code shared with the migrations' own connection; the
    /// transaction is begun first.
    pub(crate) async fn client(self) -> Result<&'a tokio_postgres::Client, DbErr> {
        if let Some(begin) = self.take_begin() {
            self.begun(self.0.batch_execute(begin).await)?;
        }
        Ok(self.0)
    }

    /// The BEGIN still to send, claimed by the caller that will send it. Claimed and sent
    /// within one poll, so nothing else can go out on the connection before it.
    fn take_begin(self) -> Option<&'static str> {
        let o = self.1?;
        (!o.sent.swap(true, Ordering::Relaxed)).then_some(o.begin)
    }

    fn begun(self, r: Result<(), tokio_postgres::Error>) -> Result<(), tokio_postgres::Error> {
        if r.is_err()
            && let Some(o) = self.1
        {
            o.failed.store(true, Ordering::Relaxed);
        }
        r
    }

    /// Sends `request` (not yet polled), preceded by the BEGIN if it is still to go.
    async fn send<T>(
        self,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        match self.take_begin() {
            None => request.await,
            Some(begin) => {
                let (b, r) = tokio::join!(biased; self.0.batch_execute(begin), request);
                self.begun(b)?;
                r
            }
        }
    }

    pub(crate) async fn batch(self, sql: &str) -> Result<(), DbErr> {
        Ok(self.send(self.0.batch_execute(sql)).await?)
    }

    async fn statement(self, sql: &str) -> Result<tokio_postgres::Statement, DbErr> {
        Ok(self.0.prepare_cached(sql).await?)
    }

    pub(crate) async fn rows(self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, DbErr> {
        let st = self.statement(sql).await?;
        Ok(self.send(self.0.query(&st, params)).await?)
    }

    pub(crate) async fn opt(self, sql: &str, params: Params<'_>) -> Result<Option<Row>, DbErr> {
        let st = self.statement(sql).await?;
        Ok(self.send(self.0.query_opt(&st, params)).await?)
    }

    pub(crate) async fn one(self, sql: &str, params: Params<'_>) -> Result<Row, DbErr> {
        let st = self.statement(sql).await?;
        Ok(self.send(self.0.query_one(&st, params)).await?)
    }

    pub(crate) async fn exec(self, sql: &str, params: Params<'_>) -> Result<u64, DbErr> {
        let st = self.statement(sql).await?;
        Ok(self.send(self.0.execute(&st, params)).await?)
    }

    /// Like [`Conn::exec`], but the driver's error is kept for the caller to inspect (a
    /// unique violation that means a conflict).
    pub(crate) async fn exec_raw(self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let st = self.0.prepare_cached(sql).await?;
        self.send(self.0.execute(&st, params)).await
    }

    /// Like [`Conn::one`], keeping the driver's error.
    pub(crate) async fn one_raw(self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
        let st = self.0.prepare_cached(sql).await?;
        self.send(self.0.query_one(&st, params)).await
    }

    /// Runs `statements` in order in one round trip (with the BEGIN if it is still to go)
    /// and returns each one's rows. The server runs them one after the other as if each
    /// had been awaited, so their locks are taken in the listed order; none may need an
    /// earlier one's answer. After a failure the rest fail too (the transaction is
    /// aborted) and the first error is returned.
    ///
    /// With `commit`, the COMMIT goes in the same round trip, so only statements after
    /// which the body cannot refuse belong here: a failed statement turns that COMMIT
    /// into a rollback, and the body's error then reaches [`PgStore::run`] as usual.
    pub(crate) async fn pipeline(self, statements: &[Stmt<'_>], commit: bool) -> Result<Vec<Vec<Row>>, DbErr> {
        let mut prepared = Vec::with_capacity(statements.len());
        for (sql, _) in statements {
            prepared.push(self.statement(sql).await?);
        }
        let begin = self.take_begin();
        let mut sent: Vec<Sent<'_>> = Vec::with_capacity(statements.len() + 2);
        if let Some(begin) = begin {
            sent.push(Box::pin(async move { self.0.batch_execute(begin).await.map(|()| None) }));
        }
        for (st, (_, params)) in prepared.iter().zip(statements) {
            sent.push(Box::pin(async move { self.0.query(st, params.as_slice()).await.map(Some) }));
        }
        if commit {
            if let Some(o) = self.1 {
                o.committed.store(true, Ordering::Relaxed);
            }
            sent.push(Box::pin(async move { self.0.batch_execute("COMMIT").await.map(|()| None) }));
        }
        // `join_all` polls in list order, and each request is written to the connection
        // when first polled.
        let mut answers = futures_util::future::join_all(sent).await.into_iter();
        if begin.is_some() {
            self.begun(answers.next().expect("the BEGIN's answer").map(|_| ()))?;
        }
        let mut rows = Vec::with_capacity(statements.len());
        for a in answers {
            if let Some(r) = a? {
                rows.push(r);
            }
        }
        Ok(rows)
    }
}

/// The constraint a unique violation names, if `e` is one: how a race that a check
/// before the write could not see is told apart and reported as a conflict.
pub(crate) fn unique_constraint(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint()).flatten()
}

/// Reads column `i`, a decoding failure being a backend error.
pub(crate) fn col<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> Result<T, DbErr> {
    Ok(row.try_get(i)?)
}

/// A pooled connection that goes back to the pool only when [`Lease::release`]d; any
/// other end (an error that may have broken it, a cancelled request, a timeout in the
/// middle of a transaction) discards it, so that no connection in an unknown state is
/// ever handed out again.
struct Lease(Option<Object>);

impl Lease {
    fn conn<'a>(&'a self, opening: &'a Opening) -> Conn<'a> {
        Conn(self.0.as_ref().expect("lease holds its connection until released or dropped"), Some(opening))
    }

    fn client(&self) -> &ClientWrapper {
        self.0.as_ref().expect("lease holds its connection until released or dropped")
    }

    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            drop(Object::take(obj));
        }
    }
}

/// How far a failed attempt got, which bounds what a retry could repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No connection could be had: any operation may be tried again.
    Start,
    /// A pooled connection failed its BEGIN: it died while idle (a server restart, a
    /// failover, `pg_terminate_backend`) before the pool noticed. Nothing ran, and the
    /// next connection is likely fine, so this is tried again at once and not counted
    /// as an attempt (up to the pool's size, since every idle connection may be dead).
    Stale,
    /// The body ran, and the commit may or may not have happened.
    Body,
}

/// What a failure means for the caller and for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The server rolled the transaction back (serialization failure, deadlock, a row
    /// it referred to deleted concurrently): always safe to run again.
    Rollback,
    /// The server or the connection is gone, or is a standby: discard the connection;
    /// retry where the stage and the operation allow.
    Lost,
    /// Out of time (statement timeout, pool exhausted): unavailable, but running it
    /// again would only wait as long again.
    Slow,
    /// Anything else: a bug or a corrupt row, reported as a backend error.
    Other,
}

fn kind_of(e: &DbErr) -> Kind {
    let e = match e {
        DbErr::Pg(e) => e,
        DbErr::Unavailable { lost: true, .. } => return Kind::Lost,
        DbErr::Unavailable { lost: false, .. } => return Kind::Slow,
        DbErr::Backend(_) => return Kind::Other,
    };
    if let Some(code) = e.code() {
        let c = code.code();
        return if code == &SqlState::T_R_SERIALIZATION_FAILURE
            || code == &SqlState::T_R_DEADLOCK_DETECTED
            || code == &SqlState::FOREIGN_KEY_VIOLATION
        {
            Kind::Rollback
        } else if code == &SqlState::QUERY_CANCELED {
            Kind::Slow
        } else if code == &SqlState::READ_ONLY_SQL_TRANSACTION
            || c.starts_with("08")
            || c.starts_with("57P")
            || c.starts_with("53")
        {
            Kind::Lost
        } else {
            Kind::Other
        };
    }
    if e.is_closed() || is_transport(e) { Kind::Lost } else { Kind::Other }
}

/// Failures of the connection itself rather than of a statement: the driver reports them
/// without an SQLSTATE and only tells them apart by kind, which it shows in its message.
fn is_transport(e: &tokio_postgres::Error) -> bool {
    let msg = e.to_string();
    [
        "error communicating with the server",
        "error connecting to server",
        "timeout waiting for server",
        "connection closed",
    ]
    .iter()
    .any(|m| msg.starts_with(m))
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn describe(e: &DbErr) -> String {
    match e {
        DbErr::Pg(e) => describe_chain(e),
        DbErr::Unavailable { msg, .. } | DbErr::Backend(msg) => msg.clone(),
    }
}

pub(crate) fn to_store(e: DbErr) -> StoreError {
    let unavailable = match (&e, kind_of(&e)) {
        // Retried, and still failing: a missing row that no retry brings back is a bug,
        // not an outage.
        (DbErr::Pg(pg), Kind::Rollback) => pg.code() != Some(&SqlState::FOREIGN_KEY_VIOLATION),
        (_, kind) => kind != Kind::Other,
    };
    if unavailable { StoreError::Unavailable(describe(&e)) } else { StoreError::Backend(describe(&e)) }
}

fn begin_sql(tx: Tx) -> &'static str {
    match tx {
        Tx::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        // Writes check and change rows in READ COMMITTED, relying on row locks and
        // constraints (see the modules) rather than on SERIALIZABLE, whose aborts under
        // contention (many pushes of one image) would exhaust the retries.
        Tx::Idempotent | Tx::Write => "BEGIN",
    }
}

impl PgStore {
    pub(crate) async fn acquire(&self) -> Result<Object, DbErr> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    /// A connection of the digest-lock pool.
    pub(crate) async fn acquire_lock_conn(&self) -> Result<Object, DbErr> {
        self.locks.get().await.map_err(|e| self.pool_error(e))
    }

    fn pool_error(&self, e: PoolError) -> DbErr {
        let (msg, lost) = match e {
            PoolError::Timeout(TimeoutType::Wait) => (
                format!(
                    "metadata connection pool exhausted: all {} connections stayed busy for {:?}",
                    self.pool.status().max_size,
                    self.opts.acquire_timeout
                ),
                false,
            ),
            PoolError::Timeout(TimeoutType::Create) => {
                (format!("connecting to {} timed out after {:?}", self.target, self.create_timeout()), true)
            }
            PoolError::Timeout(TimeoutType::Recycle) => {
                (format!("checking a connection to {} timed out", self.target), true)
            }
            PoolError::Backend(e) => (format!("connecting to {}: {}", self.target, describe_chain(&e)), true),
            other => (format!("metadata connection pool: {other}"), false),
        };
        DbErr::Unavailable { msg, lost }
    }

    /// Runs `job` in one transaction of kind `tx`, trying again (at most
    /// [`MAX_ATTEMPTS`] times in all) when that is safe: after a rollback the server chose,
    /// after a failure before the body ran, and after a lost connection for the kinds
    /// that may run twice. A refusal from the body rolls back and reaches the caller.
    pub(crate) async fn run<A, T, E>(
        &self,
        tx: Tx,
        args: &A,
        job: for<'a> fn(Conn<'a>, &'a A) -> Job<'a, T, E>,
    ) -> Result<T, E>
    where
        A: Sync + ?Sized,
        T: Send,
        E: From<StoreError> + Send,
    {
        let mut attempt = 1;
        let mut stale = 0;
        loop {
            let (stage, err) = match tokio::time::timeout(self.deadline(), self.attempt(tx, args, job)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err((_, Fail::No(e)))) => return Err(e),
                Ok(Err((stage, Fail::Db(e)))) => (stage, e),
                // The attempt was dropped, and its connection discarded with it.
                Err(_) => (
                    Stage::Body,
                    DbErr::Unavailable {
                        msg: format!("no answer from {} within {:?}", self.target, self.deadline()),
                        lost: true,
                    },
                ),
            };
            let kind = kind_of(&err);
            if kind == Kind::Lost && stage == Stage::Stale && stale < self.opts.max_connections {
                stale += 1;
                tracing::debug!(error = %describe(&err), "discarded a dead pooled connection");
                continue;
            }
            let retry = match kind {
                Kind::Rollback => true,
                Kind::Lost => stage != Stage::Body || tx != Tx::Write,
                Kind::Slow | Kind::Other => false,
            };
            if !retry || attempt >= MAX_ATTEMPTS {
                return Err(E::from(to_store(err)));
            }
            tracing::debug!(attempt, ?kind, error = %describe(&err), "retrying a metadata transaction");
            tokio::time::sleep(FIRST_BACKOFF * 4u32.pow(attempt - 1)).await;
            attempt += 1;
        }
    }

    /// The longest a whole attempt may take. The server enforces `statement_timeout`,
    /// but a server that vanished without closing its sockets (a power cut, a network
    /// partition) answers nothing at all, and only a client-side limit notices.
    fn deadline(&self) -> Duration {
        self.opts.acquire_timeout + self.create_timeout() + self.opts.statement_timeout + Duration::from_secs(1)
    }

    async fn attempt<A, T, E>(
        &self,
        tx: Tx,
        args: &A,
        job: for<'a> fn(Conn<'a>, &'a A) -> Job<'a, T, E>,
    ) -> Result<T, (Stage, Fail<E>)>
    where
        A: Sync + ?Sized,
    {
        let lease = Lease(Some(self.acquire().await.map_err(|e| (Stage::Start, Fail::Db(e)))?));
        let opening = Opening::new(begin_sql(tx));
        let result = job(lease.conn(&opening), args).await;
        let sent = opening.sent.load(Ordering::Relaxed);
        match result {
            Ok(v) if !sent || opening.committed.load(Ordering::Relaxed) => {
                lease.release();
                Ok(v)
            }
            // A read's answer is complete before its COMMIT, which cannot change it: the
            // COMMIT is written to the connection (on the first poll) and not waited for,
            // and the connection goes back to the pool at once. Its next user's requests
            // follow the COMMIT on the socket; the driver reads and drops its answer. A
            // COMMIT that failed means a dead connection, which that user's BEGIN finds
            // (and retries elsewhere, see `Stage::Stale`).
            Ok(v) if tx == Tx::Read => {
                let _ = futures_util::FutureExt::now_or_never(lease.client().batch_execute("COMMIT"));
                lease.release();
                Ok(v)
            }
            Ok(v) => match lease.client().batch_execute("COMMIT").await {
                Ok(()) => {
                    lease.release();
                    Ok(v)
                }
                Err(e) => Err((Stage::Body, Fail::Db(e.into()))),
            },
            // The BEGIN failed, or was never sent (a statement's preparation failed
            // first): nothing of the body ran on the server.
            Err(fail) if opening.failed.load(Ordering::Relaxed) || !sent => {
                if !sent && matches!(fail, Fail::No(_)) {
                    lease.release();
                }
                Err((Stage::Stale, fail))
            }
            Err(fail) => {
                let healthy = match &fail {
                    Fail::Db(e) => kind_of(e) != Kind::Lost,
                    Fail::No(_) => true,
                };
                // A COMMIT sent with the body's last statements has ended the
                // transaction either way; a ROLLBACK then only warns.
                if healthy && lease.client().batch_execute("ROLLBACK").await.is_ok() {
                    lease.release();
                }
                Err((Stage::Body, fail))
            }
        }
    }
}

/// The driver's message with its causes ("error connecting to server: Connection
/// refused"), which it does not print by itself.
pub(crate) fn describe_chain(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cause = c.source();
    }
    msg
}

/// Creates the pool; connections are made on demand.
pub(crate) fn build_pool(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    max: usize,
    acquire: Duration,
    create: Duration,
) -> Result<Pool, StoreError> {
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tls,
        // Fast: a closed connection is noticed without a round trip; one that breaks
        // unnoticed fails its BEGIN, which is retried on a fresh connection.
        deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
    );
    Pool::builder(manager)
        .max_size(max)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(acquire))
        .create_timeout(Some(create))
        .recycle_timeout(Some(acquire))
        .build()
        .map_err(|e| StoreError::Backend(format!("building the connection pool: {e}")))
}
