//! The engine on a real SQLite store: runs, retries, stops, lease takeover with fenced
//! late writes, and schedules firing once per tick with several services.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use berth_core::store::jobs::{JobState, JobStore, NewExecution, NewJob, NewSchedule};
use berth_jobs::{EngineConfig, Handler, JobCtx, JobError, JobService, KindSpec};
use berth_store_sqlite::SqliteStore;

fn store() -> (tempfile::TempDir, Arc<dyn JobStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("meta.db")).unwrap();
    (dir, Arc::new(s))
}

fn fast(owner: &str) -> EngineConfig {
    EngineConfig {
        lease: Duration::from_millis(600),
        heartbeat: Duration::from_millis(150),
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(50),
        retry_cap: Duration::from_millis(200),
        ..EngineConfig::new(owner, "test-host")
    }
}

fn kind(name: &'static str, h: impl Handler) -> KindSpec {
    KindSpec { name, handler: Arc::new(h), cluster_limit: 4, local_workers: 2, max_runtime: None }
}

fn exec() -> NewExecution {
    NewExecution { vendor_type: "TEST".into(), vendor_id: 0, trigger: "MANUAL".into(), extra_attrs: "{}".into() }
}

async fn wait_state(store: &Arc<dyn JobStore>, exec_id: i64, want: &str) -> berth_core::store::jobs::Execution {
    for _ in 0..200 {
        let e = store.execution(exec_id).await.unwrap().unwrap();
        if e.counts.harbor_status() == want {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("execution {exec_id} never became {want}: {:?}", store.execution(exec_id).await.unwrap());
}

/// Fails its first attempt, logs and checkpoints, then succeeds.
struct Flaky;

#[async_trait::async_trait]
impl Handler for Flaky {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        ctx.info(format!("attempt {}", ctx.job().attempt));
        if ctx.job().attempt == 1 {
            ctx.checkpoint(&serde_json::json!({"half": true})).await?;
            return Err(JobError::Retry("network hiccup".into()));
        }
        let resumed: Option<serde_json::Value> = ctx.progress();
        ctx.info(format!("resumed from {resumed:?}"));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_resume_from_the_checkpoint_and_logs_survive() {
    let (_d, store) = store();
    let svc = JobService::builder(store.clone(), fast("a")).kind(kind("FLAKY", Flaky)).build();
    let run = tokio::spawn(svc.clone().run(Duration::from_secs(1)));
    let id = svc.start(&exec(), &[NewJob::new("FLAKY", "{}")]).await.unwrap();
    wait_state(&store, id, "Success").await;
    let task = store.execution_tasks(id).await.unwrap().remove(0);
    assert_eq!((task.state, task.attempt), (JobState::Succeeded, 2));
    let log: Vec<String> = store.job_log(task.id).await.unwrap().into_iter().map(|l| l.message).collect();
    assert_eq!(log[0], "attempt 1");
    assert!(log[1].contains("network hiccup"), "{log:?}");
    assert_eq!(log[2], "attempt 2");
    assert!(log[3].contains("half"), "resumed with the checkpoint: {log:?}");
    assert!(svc.metrics_text().contains("berth_jobs_finished_total{kind=\"FLAKY\",outcome=\"succeeded\"} 1"));
    svc.shutdown();
    run.await.unwrap();
}

/// Works in small steps until stopped.
struct Steps;

#[async_trait::async_trait]
impl Handler for Steps {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        loop {
            ctx.check()?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_reaches_a_running_job_within_a_heartbeat() {
    let (_d, store) = store();
    let svc = JobService::builder(store.clone(), fast("a")).kind(kind("STEPS", Steps)).build();
    let run = tokio::spawn(svc.clone().run(Duration::from_secs(1)));
    let id = svc.start(&exec(), &[NewJob::new("STEPS", "{}"), NewJob::new("STEPS", "{}")]).await.unwrap();
    wait_state(&store, id, "Running").await;
    let asked = std::time::Instant::now();
    assert!(store.stop_execution(id).await.unwrap());
    let e = wait_state(&store, id, "Stopped").await;
    assert_eq!(e.counts.cancelled, 2);
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}", asked.elapsed());
    svc.shutdown();
    run.await.unwrap();
}

/// Never heartbeats in time (a frozen worker), then tries to write.
struct Frozen(Arc<AtomicU32>);

#[async_trait::async_trait]
impl Handler for Frozen {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        if ctx.job().lease_owner.as_deref() == Some("frozen") {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let late = ctx.checkpoint(&"late").await;
            if matches!(late, Err(JobError::LeaseLost)) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
            return late;
        }
        ctx.info("taken over");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_old_worker_writes_nothing() {
    let (_d, store) = store();
    let refused = Arc::new(AtomicU32::new(0));
    // The frozen instance heartbeats far too rarely to keep its 600 ms lease.
    let frozen_cfg = EngineConfig { heartbeat: Duration::from_secs(60), ..fast("frozen") };
    // One worker: busy with the frozen job, it cannot claim the job back.
    let one = KindSpec { local_workers: 1, ..kind("FROZEN", Frozen(refused.clone())) };
    let a = JobService::builder(store.clone(), frozen_cfg).kind(one).build();
    let run_a = tokio::spawn(a.clone().run(Duration::from_secs(3)));
    let id = a.start(&exec(), &[NewJob::new("FROZEN", "{}")]).await.unwrap();
    wait_state(&store, id, "Running").await;
    let b = JobService::builder(store.clone(), fast("heir")).kind(kind("FROZEN", Frozen(refused.clone()))).build();
    let run_b = tokio::spawn(b.clone().run(Duration::from_secs(1)));
    wait_state(&store, id, "Success").await;
    let task = store.execution_tasks(id).await.unwrap().remove(0);
    assert_eq!((task.attempt, task.progress), (2, None));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(refused.load(Ordering::SeqCst), 1, "the frozen worker's checkpoint was refused");
    let task = store.job(task.id).await.unwrap().unwrap();
    assert_eq!((task.state, task.progress), (JobState::Succeeded, None), "nothing of the late write landed");
    a.shutdown();
    b.shutdown();
    run_a.await.unwrap();
    run_b.await.unwrap();
}

struct Count(Arc<AtomicU32>);

#[async_trait::async_trait]
impl Handler for Count {
    async fn run(&self, _: &JobCtx) -> Result<(), JobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_tick_with_three_services() {
    let (_d, store) = store();
    let runs = Arc::new(AtomicU32::new(0));
    let services: Vec<_> = (0..3)
        .map(|i| {
            JobService::builder(store.clone(), fast(&format!("s{i}"))).kind(kind("TICK", Count(runs.clone()))).build()
        })
        .collect();
    let cron = berth_jobs::CronExpr::parse("* * * * * *").unwrap();
    let first = services[0].next_fire(&cron).await.unwrap().unwrap();
    store
        .put_schedule(&NewSchedule {
            vendor_type: "TICK".into(),
            vendor_id: 0,
            cron_type: "Custom".into(),
            cron: cron.as_str().into(),
            args: "{}".into(),
            next_fire_at: first,
        })
        .await
        .unwrap();
    let handles: Vec<_> = services.iter().map(|s| tokio::spawn(s.clone().run(Duration::from_secs(1)))).collect();
    // Run past three ticks, then stop firing.
    let until = first + 3_200;
    while store.job_clock().await.unwrap() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.delete_schedule("TICK", 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (execs, total) = store.executions("TICK", None, 0, 100).await.unwrap();
    assert!((3..=4).contains(&total), "one execution per tick, not one per service: {total}");
    assert!(execs.iter().all(|e| e.trigger == "SCHEDULE"));
    assert_eq!(runs.load(Ordering::SeqCst) as u64, total, "each ran once");
    for s in &services {
        s.shutdown();
    }
    for h in handles {
        h.await.unwrap();
    }
}
