//! The durable job queue: Harbor's execution/task model kept in the metadata database,
//! so that every instance of a cluster shares it and nothing lives only in Redis or in
//! one process's memory.
//!
//! An *execution* is one run of something (a GC, an audit purge, a replication) started
//! by a trigger; its *tasks* are jobs, each claimed by one worker at a time under a lease.
//! A worker's writes to a job carry a [`Fence`] (job id, attempt, owner); a worker whose
//! lease was taken over writes nothing, so a paused or partitioned worker can never
//! overwrite a newer owner's work. The engine (`berth-jobs`) decides; the stores only run
//! the statements, with the database's clock.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// A task's state. Harbor's names (`Pending`, `Running`, `Success`, `Stopped`, `Error`)
/// are what the API shows; these are what the rows hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `run_at` and a free worker (also after a retryable failure).
    Queued,
    Running,
    Succeeded,
    /// Stopped by a user before or while it ran.
    Cancelled,
    /// Failed for good: a permanent error, or out of attempts.
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 5] =
        [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Cancelled, JobState::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Cancelled => "cancelled",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Cancelled | JobState::Dead)
    }

    /// Harbor's task status.
    pub fn harbor(self) -> &'static str {
        match self {
            JobState::Queued => "Pending",
            JobState::Running => "Running",
            JobState::Succeeded => "Success",
            JobState::Cancelled => "Stopped",
            JobState::Dead => "Error",
        }
    }
}

/// A task to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: String,
    /// JSON the job's handler reads.
    pub args: String,
    pub priority: i16,
    /// Not before this many milliseconds from now.
    pub delay_ms: i64,
    pub max_attempts: i32,
    /// At most one running job per key across the cluster (e.g. one replication per
    /// policy); `None` for no such limit.
    pub concurrency_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, args: impl Into<String>) -> NewJob {
        NewJob {
            kind: kind.into(),
            args: args.into(),
            priority: 0,
            delay_ms: 0,
            max_attempts: 3,
            concurrency_key: None,
        }
    }
}

/// One run of something, with its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExecution {
    /// Harbor's vendor type: `GARBAGE_COLLECTION`, `PURGE_AUDIT_LOG`, `REPLICATION`, …
    pub vendor_type: String,
    /// The policy or object it belongs to; 0 for system jobs.
    pub vendor_id: i64,
    /// `MANUAL`, `SCHEDULE` or `EVENT`.
    pub trigger: String,
    /// JSON shown with the execution (the job's parameters, the schedule that fired it).
    pub extra_attrs: String,
}

/// An execution as listed, with its status derived from its tasks (nothing to keep in
/// step, so nothing that a lost callback can leave stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    pub trigger: String,
    pub extra_attrs: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The newest change of any of its tasks.
    pub updated_at: i64,
    /// When the last task ended, once all have.
    pub ended_at: Option<i64>,
    pub counts: TaskCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub cancelled: u64,
    pub dead: u64,
}

impl TaskCounts {
    pub fn add(&mut self, state: JobState, n: u64) {
        match state {
            JobState::Queued => self.queued += n,
            JobState::Running => self.running += n,
            JobState::Succeeded => self.succeeded += n,
            JobState::Cancelled => self.cancelled += n,
            JobState::Dead => self.dead += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.queued + self.running + self.succeeded + self.cancelled + self.dead
    }

    /// Harbor's execution status: running while any task is unfinished, then an error if
    /// any failed, stopped if any was stopped, success otherwise.
    pub fn harbor_status(&self) -> &'static str {
        if self.running > 0 {
            "Running"
        } else if self.queued > 0 {
            if self.succeeded + self.cancelled + self.dead > 0 { "Running" } else { "Pending" }
        } else if self.dead > 0 {
            "Error"
        } else if self.cancelled > 0 {
            "Stopped"
        } else {
            "Success"
        }
    }
}

/// A task row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub execution_id: i64,
    pub kind: String,
    pub args: String,
    pub state: JobState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub run_at: i64,
    pub cancel_requested: bool,
    /// The last checkpoint the job saved (JSON), for a resumed attempt.
    pub progress: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

/// What proves a worker still owns a job: every write it makes is conditioned on all three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub job_id: i64,
    pub attempt: i32,
    pub owner: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Succeeded,
    /// Failed; queued again after `retry_in_ms` if attempts remain, else dead.
    Failed {
        error: String,
        retry_in_ms: Option<i64>,
    },
    Cancelled,
}

/// Where an attempt that ended `how` leaves its job: the new state, and for a retry the
/// delay before it may run again. The one rule both stores apply, to a worker's own
/// report and to a lease the reaper found expired.
pub fn next_state(how: &Finish, attempt: i32, max_attempts: i32, cancel_requested: bool) -> (JobState, Option<i64>) {
    match how {
        Finish::Succeeded => (JobState::Succeeded, None),
        Finish::Cancelled => (JobState::Cancelled, None),
        Finish::Failed { .. } if cancel_requested => (JobState::Cancelled, None),
        Finish::Failed { retry_in_ms: Some(ms), .. } if attempt < max_attempts => (JobState::Queued, Some(*ms)),
        Finish::Failed { .. } => (JobState::Dead, None),
    }
}

impl Finish {
    pub fn error(&self) -> Option<&str> {
        match self {
            Finish::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// How many due jobs a claim reads for every free slot: enough to step over jobs whose
/// concurrency key is busy without scanning the whole queue.
pub const CLAIM_LOOKAHEAD: u32 = 4;

/// Which of `candidates` (due jobs in claim order, with their concurrency keys) a claim
/// takes: at most `room`, never one whose key runs already or was taken just before.
pub fn pick_claimable(candidates: &[(i64, Option<String>)], running_keys: &[String], room: usize) -> Vec<i64> {
    let mut taken_keys: Vec<&str> = running_keys.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(room);
    for (id, key) in candidates {
        if out.len() == room {
            break;
        }
        if let Some(k) = key {
            if taken_keys.contains(&k.as_str()) {
                continue;
            }
            taken_keys.push(k);
        }
        out.push(*id);
    }
    out
}

/// Adds the pause flags to per-kind statistics (a paused kind with no jobs is listed
/// too), in kind order.
pub fn merge_paused(stats: &mut Vec<QueueStat>, paused: Vec<(String, bool)>) {
    for (kind, p) in paused {
        match stats.iter_mut().find(|s| s.kind == kind) {
            Some(s) => s.paused = p,
            None => stats.push(QueueStat { kind, queued: 0, running: 0, oldest_ms: 0, paused: p }),
        }
    }
    stats.sort_by(|a, b| a.kind.cmp(&b.kind));
}

/// Log lines kept per job, over all its attempts: a runaway job cannot fill the database.
pub const MAX_LOG_LINES: i64 = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }

    pub fn code(self) -> i16 {
        match self {
            LogLevel::Info => 0,
            LogLevel::Warning => 1,
            LogLevel::Error => 2,
        }
    }

    pub fn from_code(c: i16) -> LogLevel {
        match c {
            0 => LogLevel::Info,
            1 => LogLevel::Warning,
            _ => LogLevel::Error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub level: LogLevel,
    pub attempt: i32,
    pub message: String,
}

/// Per job kind: what waits and what runs, for `/jobservice/queues` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStat {
    pub kind: String,
    pub queued: u64,
    pub running: u64,
    /// Age in milliseconds of the oldest job that could run now, 0 if none.
    pub oldest_ms: i64,
    pub paused: bool,
}

/// A worker pool: one per instance, registered while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPool {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub concurrency: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// Harbor's schedule object, kept per (vendor type, vendor id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    /// `Hourly`, `Daily`, `Weekly` or `Custom` (`None` and `Manual` are not stored).
    pub cron_type: String,
    /// Six fields, seconds first, as Harbor writes them.
    pub cron: String,
    /// JSON parameters the fired execution gets.
    pub args: String,
    pub next_fire_at: i64,
    pub last_fired_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    pub vendor_type: String,
    pub vendor_id: i64,
    pub cron_type: String,
    pub cron: String,
    pub args: String,
    pub next_fire_at: i64,
}

#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// The database's clock in milliseconds: every instance measures leases and due
    /// times against the same clock.
    async fn job_clock(&self) -> StoreResult<i64>;

    /// Records an execution and its tasks atomically; returns the execution id.
    async fn create_execution(&self, exec: &NewExecution, tasks: &[NewJob]) -> StoreResult<i64>;
    async fn execution(&self, id: i64) -> StoreResult<Option<Execution>>;
    /// Newest first; `vendor_id` `None` for all; with the total count.
    async fn executions(
        &self,
        vendor_type: &str,
        vendor_id: Option<i64>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<(Vec<Execution>, u64)>;
    async fn execution_tasks(&self, execution_id: i64) -> StoreResult<Vec<Job>>;
    /// Deletes finished executions of `vendor_type` that ended before `before`, keeping
    /// at least the newest `keep`; returns how many went.
    async fn prune_executions(&self, vendor_type: &str, before: i64, keep: u64) -> StoreResult<u64>;

    /// Claims up to `n` due jobs of `kind` for `owner` with a lease of `lease_ms`, never
    /// letting more than `limit` of the kind run across the cluster nor two with one
    /// concurrency key. Paused kinds yield nothing. Increments each job's attempt.
    async fn claim(&self, kind: &str, owner: &str, n: u32, limit: u32, lease_ms: i64) -> StoreResult<Vec<Job>>;
    /// Extends the lease; `None` if it was lost, else whether a stop was requested.
    async fn heartbeat(&self, fence: &Fence, lease_ms: i64) -> StoreResult<Option<bool>>;
    /// Saves a checkpoint; `false` if the lease was lost.
    async fn save_progress(&self, fence: &Fence, progress: &str) -> StoreResult<bool>;
    /// Appends log lines; `false` if the lease was lost (nothing written).
    async fn append_log(&self, fence: &Fence, lines: &[LogLine]) -> StoreResult<bool>;
    /// Ends the attempt; `false` if the lease was lost (nothing written).
    async fn finish(&self, fence: &Fence, how: &Finish) -> StoreResult<bool>;
    /// Ends several attempts, each fenced on its own as by [`JobStore::finish`], in one
    /// transaction: the engine ends the short jobs that finished meanwhile together, in
    /// one round trip and one commit instead of one each. Returns, per entry, whether it
    /// was recorded; on an error none was.
    async fn finish_many(&self, ends: &[(Fence, Finish)]) -> StoreResult<Vec<bool>>;
    /// Adds `tasks` to the fenced job's execution and ends the job as succeeded, in one
    /// transaction: a planning task (a replication run listing what to copy) hands its
    /// work on. A planner that dies before this commits plans again; after it, nothing is
    /// planned twice. `false` if the lease was lost (nothing written).
    async fn hand_off(&self, fence: &Fence, tasks: &[NewJob]) -> StoreResult<bool>;
    /// Jobs whose lease ran out: each goes back to the queue after `retry_in_ms(attempt)`,
    /// or is cancelled (a stop was requested) or dead (no attempts left). Returns how many.
    async fn reap_expired(&self, retry_in_ms: &(dyn Fn(i32) -> i64 + Sync)) -> StoreResult<u64>;

    /// Stops a job: a queued one is cancelled at once, a running one is told through its
    /// heartbeat. `false` if it is unknown or already finished.
    async fn stop_job(&self, job_id: i64) -> StoreResult<bool>;
    /// Stops every unfinished task of an execution; `false` if there was none.
    async fn stop_execution(&self, execution_id: i64) -> StoreResult<bool>;
    /// Stops every unfinished job of a kind; returns how many.
    async fn stop_kind(&self, kind: &str) -> StoreResult<u64>;
    async fn job(&self, job_id: i64) -> StoreResult<Option<Job>>;
    /// Log lines of every attempt, in order.
    async fn job_log(&self, job_id: i64) -> StoreResult<Vec<LogLine>>;

    async fn set_kind_paused(&self, kind: &str, paused: bool) -> StoreResult<()>;
    /// One entry per kind that has jobs or a pause flag.
    async fn queue_stats(&self) -> StoreResult<Vec<QueueStat>>;
    /// The jobs of `kind` waiting in its queue (state queued, due or not), in the order a
    /// worker claims them (priority, then due time, then id: the `jobs_fetch` index's
    /// order), a page from `offset`, with how many wait in all.
    async fn queued_jobs(&self, kind: &str, offset: u64, limit: u64) -> StoreResult<(Vec<Job>, u64)>;

    /// Registers or refreshes this instance's pool.
    async fn pool_heartbeat(&self, pool: &WorkerPool) -> StoreResult<()>;
    /// Pools that reported within `fresh_ms`.
    async fn pools(&self, fresh_ms: i64) -> StoreResult<Vec<WorkerPool>>;
    /// Jobs running under `owner`.
    async fn running_jobs(&self, owner: &str) -> StoreResult<Vec<Job>>;

    /// Creates or replaces the schedule of (vendor type, vendor id).
    async fn put_schedule(&self, s: &NewSchedule) -> StoreResult<Schedule>;
    async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> StoreResult<Option<Schedule>>;
    async fn delete_schedule(&self, vendor_type: &str, vendor_id: i64) -> StoreResult<bool>;
    async fn schedules(&self) -> StoreResult<Vec<Schedule>>;
    /// Schedules whose next firing is due, unless the `SCHEDULER` queue is paused.
    async fn due_schedules(&self, limit: u32) -> StoreResult<Vec<Schedule>>;
    /// Fires a schedule exactly once: advances it from `expected_next` to `new_next` and
    /// creates the execution in the same transaction. `None` if another instance fired
    /// it (or it was edited) first.
    async fn fire_schedule(
        &self,
        schedule_id: i64,
        expected_next: i64,
        new_next: i64,
        exec: &NewExecution,
        tasks: &[NewJob],
    ) -> StoreResult<Option<i64>>;
}
