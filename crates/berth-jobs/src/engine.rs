//! The loop every instance runs: reap, fire schedules, claim, run, heartbeat, finish.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_core::store::jobs::{Fence, Finish, Job, JobStore, NewExecution, NewJob, QueueStat, Schedule, WorkerPool};
use berth_core::store::{StoreError, StoreResult};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinSet;

use crate::schedule::CronExpr;
use crate::{Handler, JobCtx, JobError, LEASE_LOST, LOG_BATCH, STOP_REQUESTED, kinds, now_ms};

/// Timing of the engine. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This instance's worker pool id (unique per process).
    pub owner: String,
    pub host: String,
    /// How long a claim lasts without a heartbeat: a dead instance's jobs are taken
    /// over this long after its last heartbeat.
    pub lease: Duration,
    pub heartbeat: Duration,
    /// How often an idle instance looks for work, due schedules and expired leases.
    pub poll: Duration,
    /// First retry delay; it doubles per attempt up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl EngineConfig {
    pub fn new(owner: impl Into<String>, host: impl Into<String>) -> EngineConfig {
        EngineConfig {
            owner: owner.into(),
            host: host.into(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
        }
    }

    /// Delay before attempt `attempt + 1`: exponential with a deterministic spread of
    /// up to a third, so that jobs failing together do not retry together.
    pub fn retry_delay_ms(&self, attempt: i32, salt: i64) -> i64 {
        self.retry_delay_capped_ms(attempt, salt, self.retry_cap)
    }

    /// As [`EngineConfig::retry_delay_ms`] with a lower cap (and a base no larger).
    pub fn retry_delay_capped_ms(&self, attempt: i32, salt: i64, cap: Duration) -> i64 {
        let cap = cap.min(self.retry_cap);
        let base = self.retry_base.min(cap).as_millis() as i64;
        let exp = base.saturating_mul(1i64 << attempt.clamp(1, 30).saturating_sub(1));
        let capped = exp.min(cap.as_millis() as i64);
        let spread = (salt.wrapping_mul(0x9E37_79B9).rem_euclid(1000)) * capped / 3000;
        capped + spread
    }
}

/// A job kind this instance serves.
#[derive(Clone)]
pub struct KindSpec {
    pub name: &'static str,
    pub handler: Arc<dyn Handler>,
    /// Most jobs of this kind running at once across the cluster.
    pub cluster_limit: u32,
    /// Most jobs of this kind running at once in this instance.
    pub local_workers: u32,
    /// A run longer than this is asked to stop (a hung transfer cannot hold a worker
    /// forever).
    pub max_runtime: Option<Duration>,
}

type Planner = Arc<dyn Fn(&Schedule) -> Vec<NewJob> + Send + Sync>;

pub struct JobServiceBuilder {
    store: Arc<dyn JobStore>,
    cfg: EngineConfig,
    kinds: Vec<KindSpec>,
    planners: HashMap<String, Planner>,
}

impl JobServiceBuilder {
    pub fn kind(mut self, spec: KindSpec) -> Self {
        self.kinds.push(spec);
        self
    }

    /// How a schedule of `vendor_type` becomes tasks; by default one task of the kind
    /// named like the vendor type, with the schedule's parameters.
    pub fn planner(mut self, vendor_type: &str, f: impl Fn(&Schedule) -> Vec<NewJob> + Send + Sync + 'static) -> Self {
        self.planners.insert(vendor_type.to_owned(), Arc::new(f));
        self
    }

    pub fn build(self) -> Arc<JobService> {
        let (stop, _) = watch::channel(false);
        Arc::new(JobService {
            store: self.store,
            cfg: self.cfg,
            kinds: self.kinds.into_iter().map(|k| (k.name, k)).collect(),
            planners: self.planners,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            stop,
            started_at: now_ms(),
            last_tick: AtomicI64::new(0),
            ending: Mutex::new(Vec::new()),
            end_turn: tokio::sync::Mutex::new(()),
        })
    }
}

#[derive(Default)]
struct Stats {
    /// (kind, outcome) → count.
    finished: BTreeMap<(String, &'static str), u64>,
    /// kind → (runs, seconds).
    runtime: BTreeMap<String, (u64, f64)>,
    queues: Vec<QueueStat>,
}

/// The job service of one instance.
pub struct JobService {
    store: Arc<dyn JobStore>,
    cfg: EngineConfig,
    kinds: BTreeMap<&'static str, KindSpec>,
    planners: HashMap<String, Planner>,
    wake: Notify,
    /// kind → jobs running here now.
    running: Mutex<HashMap<&'static str, u32>>,
    stats: Mutex<Stats>,
    stop: watch::Sender<bool>,
    started_at: i64,
    /// When the loop last went round (0: not running).
    last_tick: AtomicI64,
    /// Attempts that ended and wait to be recorded, with whom to tell (see
    /// [`JobService::record_end`]).
    ending: Mutex<Vec<Ending>>,
    /// Held by the one caller recording a batch of `ending`.
    end_turn: tokio::sync::Mutex<()>,
}

type Ending = (Fence, Finish, oneshot::Sender<StoreResult<bool>>);

impl JobService {
    /// This instance's worker pool id: unique per process, also the lease owner of other
    /// per-instance claims (the event outbox).
    pub fn owner(&self) -> &str {
        &self.cfg.owner
    }

    pub fn builder(store: Arc<dyn JobStore>, cfg: EngineConfig) -> JobServiceBuilder {
        JobServiceBuilder { store, cfg, kinds: Vec::new(), planners: HashMap::new() }
    }

    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Records an execution and wakes this instance's workers at once (others find it
    /// at their next poll).
    pub async fn start(&self, exec: &NewExecution, tasks: &[NewJob]) -> StoreResult<i64> {
        let id = self.store.create_execution(exec, tasks).await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// The next time a schedule with `cron` fires, from the database's clock (`None`
    /// only for a pattern that never fires, which [`CronExpr::parse`] refuses).
    pub async fn next_fire(&self, cron: &CronExpr) -> StoreResult<Option<i64>> {
        Ok(cron.next_after(self.store.job_clock().await?))
    }

    /// Runs the loop until [`JobService::shutdown`]; then stops claiming, asks running
    /// jobs to stop and waits up to `grace` for them.
    pub async fn run(self: Arc<Self>, grace: Duration) {
        let mut stop = self.stop.subscribe();
        let mut tasks = JoinSet::new();
        let mut last_maintenance: Option<Instant> = None;
        let mut last_schedules: Option<Instant> = None;
        let pool = WorkerPool {
            id: self.cfg.owner.clone(),
            host: self.cfg.host.clone(),
            pid: i64::from(std::process::id()),
            concurrency: self.kinds.values().map(|k| i64::from(k.local_workers)).sum(),
            started_at: self.started_at,
            heartbeat_at: 0,
        };
        while !*stop.borrow() {
            self.last_tick.store(now_ms(), Ordering::Relaxed);
            if last_maintenance.is_none_or(|t| t.elapsed() >= self.cfg.heartbeat.min(Duration::from_secs(5))) {
                last_maintenance = Some(Instant::now());
                self.maintain(&pool).await;
            }
            // Schedules tick in whole seconds: looking once per poll is enough, and a
            // wake-up for every finished job need not ask again.
            if last_schedules.is_none_or(|t| t.elapsed() >= self.cfg.poll) {
                last_schedules = Some(Instant::now());
                self.fire_schedules().await;
            }
            self.claim_all(&mut tasks).await;
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = stop.changed() => {}
            }
        }
        // Shutting down: whatever runs is told to stop; what does not stop in time is
        // left to its lease, and another instance takes it over.
        let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    }

    /// Healthy while the loop goes round; a loop stuck (on a database that does not
    /// answer) for half a minute is reported.
    pub fn health(&self) -> Result<(), String> {
        let last = self.last_tick.load(Ordering::Relaxed);
        if last == 0 {
            return Err("the job service is not running".into());
        }
        let limit = (self.cfg.poll.as_millis() as i64 * 10).max(30_000) + self.cfg.lease.as_millis() as i64;
        let idle = now_ms() - last;
        if idle > limit { Err(format!("the job service loop has not run for {} s", idle / 1000)) } else { Ok(()) }
    }

    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    async fn maintain(&self, pool: &WorkerPool) {
        // A lease runs out because its instance died or froze, not because the job
        // failed: it is taken over at once (attempts still bound a job that keeps
        // killing its workers).
        if let Err(e) = self.store.reap_expired(&|_| 0).await {
            tracing::warn!(error = %e, "job service: reaping expired leases failed");
        }
        if let Err(e) = self.store.pool_heartbeat(pool).await {
            tracing::warn!(error = %e, "job service: pool heartbeat failed");
        }
        match self.store.queue_stats().await {
            Ok(q) => self.stats.lock().unwrap_or_else(|p| p.into_inner()).queues = q,
            Err(e) => tracing::warn!(error = %e, "job service: reading queue statistics failed"),
        }
    }

    async fn fire_schedules(&self) {
        let due = match self.store.due_schedules(100).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "job service: reading due schedules failed");
                return;
            }
        };
        for s in due {
            let cron = match CronExpr::parse(&s.cron) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(schedule = s.id, error = %e, "job service: stored schedule is invalid; skipped");
                    continue;
                }
            };
            let now = match self.store.job_clock().await {
                Ok(n) => n,
                Err(_) => return,
            };
            // Missed ticks (all instances down) collapse into this one firing.
            let Some(next) = cron.next_after(now.max(s.next_fire_at)) else { continue };
            let tasks = match self.planners.get(&s.vendor_type) {
                Some(plan) => plan(&s),
                None => vec![NewJob::new(&s.vendor_type, &s.args)],
            };
            let exec = NewExecution {
                vendor_type: s.vendor_type.clone(),
                vendor_id: s.vendor_id,
                trigger: "SCHEDULE".into(),
                extra_attrs: s.args.clone(),
            };
            match self.store.fire_schedule(s.id, s.next_fire_at, next, &exec, &tasks).await {
                Ok(Some(id)) => {
                    tracing::info!(schedule = s.id, vendor_type = %s.vendor_type, execution = id, "schedule fired")
                }
                Ok(None) => {} // another instance fired it
                Err(e) => tracing::warn!(schedule = s.id, error = %e, "job service: firing a schedule failed"),
            }
        }
    }

    async fn claim_all(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        for spec in self.kinds.values() {
            let busy = *self.running.lock().unwrap_or_else(|p| p.into_inner()).get(spec.name).unwrap_or(&0);
            let free = spec.local_workers.saturating_sub(busy);
            if free == 0 {
                continue;
            }
            let lease = self.cfg.lease.as_millis() as i64;
            let claimed = match self.store.claim(spec.name, &self.cfg.owner, free, spec.cluster_limit, lease).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(kind = spec.name, error = %e, "job service: claiming failed");
                    continue;
                }
            };
            for job in claimed {
                *self.running.lock().unwrap_or_else(|p| p.into_inner()).entry(spec.name).or_default() += 1;
                let me = Arc::clone(self);
                let spec = spec.clone();
                tasks.spawn(async move {
                    me.execute(&spec, job).await;
                    if let Some(n) = me.running.lock().unwrap_or_else(|p| p.into_inner()).get_mut(spec.name) {
                        *n = n.saturating_sub(1);
                    }
                    // A slot came free: look for more work now.
                    me.wake.notify_one();
                });
            }
        }
    }

    /// Runs one claimed job to its end, heartbeating and flushing its logs meanwhile.
    async fn execute(&self, spec: &KindSpec, job: Job) {
        let started = Instant::now();
        let (id, attempt) = (job.id, job.attempt);
        let ctx = Arc::new(JobCtx::new(job, &self.cfg.owner, Arc::clone(&self.store)));
        let mut stop = self.stop.subscribe();
        let handler = Arc::clone(&spec.handler);
        let run = {
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move { handler.run(&ctx).await })
        };
        tokio::pin!(run);
        let mut last_beat = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250).min(self.cfg.heartbeat));
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => {}
                _ = stop.changed() => ctx.signal.store(STOP_REQUESTED, Ordering::SeqCst),
            }
            if ctx.pending_logs() >= LOG_BATCH || last_beat.elapsed() >= Duration::from_secs(1) {
                let _ = ctx.flush_logs().await;
            }
            if last_beat.elapsed() >= self.cfg.heartbeat {
                last_beat = Instant::now();
                match self.store.heartbeat(&ctx.fence, self.cfg.lease.as_millis() as i64).await {
                    Ok(None) => ctx.signal.store(LEASE_LOST, Ordering::SeqCst),
                    Ok(Some(true)) => {
                        let _ = ctx.signal.compare_exchange(0, STOP_REQUESTED, Ordering::SeqCst, Ordering::SeqCst);
                    }
                    Ok(Some(false)) => {}
                    // The database is unreachable: keep running; the lease decides.
                    Err(e) => tracing::warn!(job = id, error = %e, "job heartbeat failed"),
                }
            }
            if spec.max_runtime.is_some_and(|m| started.elapsed() > m) && !ctx.stopping() {
                ctx.warn(format!("stopped: ran longer than the limit of {:?}", spec.max_runtime.unwrap_or_default()));
                ctx.signal.store(STOP_REQUESTED, Ordering::SeqCst);
            }
        };
        let outcome = match result {
            Ok(r) => r,
            Err(e) => Err(JobError::Retry(format!("the job panicked: {e}"))),
        };
        if outcome.is_ok() && ctx.handed_off.load(Ordering::SeqCst) {
            self.count(spec.name, "succeeded", started);
            return;
        }
        let finish = match &outcome {
            Ok(()) => Finish::Succeeded,
            Err(JobError::Cancelled) => Finish::Cancelled,
            Err(JobError::Retry(msg)) => {
                ctx.error(msg.clone());
                Finish::Failed { error: msg.clone(), retry_in_ms: Some(self.cfg.retry_delay_ms(attempt, id)) }
            }
            Err(JobError::RetryCapped(msg, cap)) => {
                ctx.error(msg.clone());
                let retry_in_ms = Some(self.cfg.retry_delay_capped_ms(attempt, id, *cap));
                Finish::Failed { error: msg.clone(), retry_in_ms }
            }
            Err(JobError::Fatal(msg)) => {
                ctx.error(msg.clone());
                Finish::Failed { error: msg.clone(), retry_in_ms: None }
            }
            Err(JobError::LeaseLost) => {
                tracing::warn!(job = id, "job lost its lease; another worker owns it now");
                self.count(spec.name, "lease_lost", started);
                return;
            }
        };
        let _ = ctx.flush_logs().await;
        let outcome_name = match &finish {
            Finish::Succeeded => "succeeded",
            Finish::Cancelled => "stopped",
            Finish::Failed { .. } => "failed",
        };
        match self.record_end(ctx.fence.clone(), finish).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job = id, "job finished after losing its lease; its result was dropped"),
            Err(e) => tracing::warn!(job = id, error = %e, "recording a job's end failed; its lease will expire"),
        }
        self.count(spec.name, outcome_name, started);
    }

    /// Records an attempt's end, together with the others that ended meanwhile: one
    /// transaction for all (group commit). Each end stays fenced on its own. While one
    /// caller records a batch, the next ones queue; the first of them to get its turn
    /// records all that queued, and the others find their answer waiting.
    async fn record_end(&self, fence: Fence, how: Finish) -> StoreResult<bool> {
        let (tell, mut answer) = oneshot::channel();
        self.ending.lock().unwrap_or_else(|p| p.into_inner()).push((fence, how, tell));
        let turn = self.end_turn.lock().await;
        if let Ok(r) = answer.try_recv() {
            return r;
        }
        let batch = std::mem::take(&mut *self.ending.lock().unwrap_or_else(|p| p.into_inner()));
        let (ends, tells): (Vec<(Fence, Finish)>, Vec<_>) = batch.into_iter().map(|(f, h, t)| ((f, h), t)).unzip();
        match self.store.finish_many(&ends).await {
            Ok(recorded) => {
                for (t, ok) in tells.into_iter().zip(recorded.into_iter().chain(std::iter::repeat(false))) {
                    let _ = t.send(Ok(ok));
                }
            }
            Err(e) => {
                for t in tells {
                    let _ = t.send(Err(dup(&e)));
                }
            }
        }
        drop(turn);
        // Our own end was in the batch (it was queued before the turn was taken); a
        // batch dropped midway by a cancelled recorder leaves it to the lease.
        answer.await.unwrap_or_else(|_| Err(StoreError::Backend("recording the job's end was abandoned".into())))
    }

    fn count(&self, kind: &str, outcome: &'static str, started: Instant) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        *s.finished.entry((kind.to_owned(), outcome)).or_default() += 1;
        let r = s.runtime.entry(kind.to_owned()).or_default();
        r.0 += 1;
        r.1 += started.elapsed().as_secs_f64();
    }

    /// Prometheus text for the job service: queue depth, age of the oldest waiting job,
    /// running jobs (cluster-wide, refreshed every few seconds), and this instance's
    /// finished jobs and run time by kind.
    pub fn metrics_text(&self) -> String {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, help, kind) in [
            ("berth_jobs_queued", "Jobs waiting, by kind (cluster-wide).", "gauge"),
            ("berth_jobs_running", "Jobs running, by kind (cluster-wide).", "gauge"),
            ("berth_jobs_oldest_queued_seconds", "Age of the oldest job that could run now, by kind.", "gauge"),
            ("berth_jobs_finished_total", "Jobs this instance finished, by kind and outcome.", "counter"),
            ("berth_jobs_run_seconds", "Time this instance spent running jobs, by kind.", "summary"),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        for q in &s.queues {
            let k = &q.kind;
            let _ = writeln!(out, "berth_jobs_queued{{kind=\"{k}\"}} {}", q.queued);
            let _ = writeln!(out, "berth_jobs_running{{kind=\"{k}\"}} {}", q.running);
            let _ = writeln!(out, "berth_jobs_oldest_queued_seconds{{kind=\"{k}\"}} {}", q.oldest_ms as f64 / 1000.0);
        }
        for ((kind, outcome), n) in &s.finished {
            let _ = writeln!(out, "berth_jobs_finished_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}");
        }
        for (kind, (n, secs)) in &s.runtime {
            let _ = writeln!(out, "berth_jobs_run_seconds_sum{{kind=\"{kind}\"}} {secs}");
            let _ = writeln!(out, "berth_jobs_run_seconds_count{{kind=\"{kind}\"}} {n}");
        }
        out
    }

    /// The kinds this instance serves, for `/jobservice/queues` (which lists known job
    /// types even when empty) and for validating queue actions.
    pub fn kind_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.kinds.keys().copied().collect();
        names.push(kinds::SCHEDULER);
        names
    }
}

fn dup(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        StoreError::QuotaExceeded(q) => StoreError::Backend(q.to_string()),
    }
}
