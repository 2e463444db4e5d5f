//! Berth's job service: the background half of Harbor (GC, audit purge, and later
//! retention, replication, scanning, webhooks) as jobs kept in the shared metadata
//! database ([`JobStore`]).
//!
//! Every instance runs one [`JobService`] loop: it reaps expired leases, fires due
//! schedules (exactly once per tick across the cluster: a compare-and-set in the store),
//! and claims jobs for the kinds it serves, within each kind's cluster-wide limit and
//! its own worker count. A running job gets a [`JobCtx`]: its arguments and last
//! checkpoint, buffered logs, and a stop signal fed by its heartbeat. Every write a job
//! makes is fenced by (job, attempt, owner), so a worker that was paused past its lease
//! and replaced writes nothing more.
//!
//! Nothing here knows HTTP; `berth-http` starts executions and reads them through the
//! store, and the binary registers the job kinds.

pub mod builtin;
mod engine;
pub mod schedule;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use berth_core::store::StoreError;
use berth_core::store::jobs::{Fence, Job, JobStore, LogLevel, LogLine, NewJob};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use engine::{EngineConfig, JobService, JobServiceBuilder, KindSpec};
pub use schedule::{CronExpr, ScheduleError, ScheduleSpec, ScheduleType};

/// Harbor's job type names, used as Berth's job kinds and execution vendor types.
pub mod kinds {
    pub const GARBAGE_COLLECTION: &str = "GARBAGE_COLLECTION";
    pub const PURGE_AUDIT_LOG: &str = "PURGE_AUDIT_LOG";
    pub const EXECUTION_SWEEP: &str = "EXECUTION_SWEEP";
    /// Harbor's demo job; registered only when configured.
    pub const SAMPLE: &str = "SAMPLE";
    /// Not a job: pausing this queue pauses every schedule, as in Harbor.
    pub const SCHEDULER: &str = "SCHEDULER";
}

/// How a job's run ended, if not with success.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt after a backoff (a network error, an unavailable database).
    #[error("{0}")]
    Retry(String),
    /// As `Retry`, with the backoff capped at this delay (a webhook endpoint that comes
    /// back must hear of its events within a minute, not after an hour's backoff).
    #[error("{0}")]
    RetryCapped(String, std::time::Duration),
    /// Will fail the same way again (bad arguments): dead at once.
    #[error("{0}")]
    Fatal(String),
    /// A user stopped it; it ended cleanly at a safe point.
    #[error("stopped")]
    Cancelled,
    /// Another worker owns the job now; nothing more may be written.
    #[error("lease lost")]
    LeaseLost,
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Retry(e.to_string())
    }
}

/// What a job kind does.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError>;
}

const RUNNING: u8 = 0;
const STOP_REQUESTED: u8 = 1;
const LEASE_LOST: u8 = 2;

/// Flush the log buffer once it holds this many lines.
const LOG_BATCH: usize = 200;

/// A running job's view of itself.
pub struct JobCtx {
    job: Job,
    fence: Fence,
    store: Arc<dyn JobStore>,
    signal: Arc<AtomicU8>,
    logs: Mutex<Vec<LogLine>>,
    /// Ended by [`JobCtx::hand_off`]: the engine records nothing more.
    handed_off: AtomicBool,
}

impl JobCtx {
    fn new(job: Job, owner: &str, store: Arc<dyn JobStore>) -> JobCtx {
        let fence = Fence { job_id: job.id, attempt: job.attempt, owner: owner.to_owned() };
        JobCtx {
            job,
            fence,
            store,
            signal: Arc::new(AtomicU8::new(RUNNING)),
            logs: Mutex::new(Vec::new()),
            handed_off: AtomicBool::new(false),
        }
    }

    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job's arguments; a job whose arguments do not parse can never succeed.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.job.args)
            .map_err(|e| JobError::Fatal(format!("job {} has invalid arguments: {e}", self.job.id)))
    }

    /// The checkpoint an earlier attempt saved, to resume from.
    pub fn progress<T: DeserializeOwned>(&self) -> Option<T> {
        self.job.progress.as_deref().and_then(|p| serde_json::from_str(p).ok())
    }

    /// Saves a checkpoint (and the logs so far) if this worker still owns the job.
    pub async fn checkpoint<T: Serialize>(&self, progress: &T) -> Result<(), JobError> {
        self.flush_logs().await?;
        let p = serde_json::to_string(progress).map_err(|e| JobError::Fatal(format!("checkpoint: {e}")))?;
        if self.store.save_progress(&self.fence, &p).await? {
            Ok(())
        } else {
            self.signal.store(LEASE_LOST, Ordering::SeqCst);
            Err(JobError::LeaseLost)
        }
    }

    /// Ends this job as succeeded and adds `tasks` to its execution, atomically (a
    /// planning job handing its work on); return `Ok(())` from the handler afterwards.
    pub async fn hand_off(&self, tasks: &[NewJob]) -> Result<(), JobError> {
        self.flush_logs().await?;
        if self.store.hand_off(&self.fence, tasks).await? {
            self.handed_off.store(true, Ordering::SeqCst);
            Ok(())
        } else {
            self.signal.store(LEASE_LOST, Ordering::SeqCst);
            Err(JobError::LeaseLost)
        }
    }

    pub fn info(&self, msg: impl Into<String>) {
        self.log(LogLevel::Info, msg.into());
    }

    pub fn warn(&self, msg: impl Into<String>) {
        self.log(LogLevel::Warning, msg.into());
    }

    pub fn error(&self, msg: impl Into<String>) {
        self.log(LogLevel::Error, msg.into());
    }

    fn log(&self, level: LogLevel, message: String) {
        let line = LogLine { at: now_ms(), level, attempt: self.job.attempt, message };
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    /// A cheap handle on [`JobCtx::stopping`] that can travel into a stream (a transfer
    /// checks it for every chunk it moves).
    pub fn stop_flag(&self) -> StopFlag {
        StopFlag(self.signal.clone())
    }

    /// Whether the job should stop at its next safe point.
    pub fn stopping(&self) -> bool {
        self.signal.load(Ordering::SeqCst) != RUNNING
    }

    /// `Err` once a stop was requested or the lease was lost: call it between units of
    /// work (a batch, a chunk), and return the error.
    pub fn check(&self) -> Result<(), JobError> {
        match self.signal.load(Ordering::SeqCst) {
            RUNNING => Ok(()),
            STOP_REQUESTED => Err(JobError::Cancelled),
            _ => Err(JobError::LeaseLost),
        }
    }

    /// Writes buffered log lines; lines of a worker that lost its lease are dropped.
    pub async fn flush_logs(&self) -> Result<(), JobError> {
        let lines = std::mem::take(&mut *self.logs.lock().unwrap_or_else(|p| p.into_inner()));
        if lines.is_empty() {
            return Ok(());
        }
        if self.store.append_log(&self.fence, &lines).await? {
            Ok(())
        } else {
            self.signal.store(LEASE_LOST, Ordering::SeqCst);
            Err(JobError::LeaseLost)
        }
    }

    fn pending_logs(&self) -> usize {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// See [`JobCtx::stop_flag`].
#[derive(Clone)]
pub struct StopFlag(Arc<AtomicU8>);

impl StopFlag {
    /// A flag nobody sets (for code that runs outside a job).
    pub fn never() -> StopFlag {
        StopFlag(Arc::new(AtomicU8::new(RUNNING)))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst) != RUNNING
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
