//! Job throughput: how many no-op jobs per second two job services (two "instances",
//! each with its own connection pool) claim, run and finish on one database.
//!
//!   cargo run --release -p berth-jobs --example claim_throughput -- [postgres-url|sqlite] [jobs]
//!
//! The URL defaults to the local test server (a throwaway database is created and
//! dropped); `sqlite` runs both services on one SQLite file instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::store::jobs::{JobStore, NewExecution, NewJob};
use berth_jobs::{EngineConfig, Handler, JobCtx, JobError, JobService, KindSpec};

struct Noop;

#[async_trait::async_trait]
impl Handler for Noop {
    async fn run(&self, _: &JobCtx) -> Result<(), JobError> {
        Ok(())
    }
}

const WORKERS: u32 = 32;

fn service(store: Arc<dyn JobStore>, owner: &str) -> Arc<JobService> {
    let cfg = EngineConfig { poll: Duration::from_millis(20), ..EngineConfig::new(owner, "bench") };
    let kind = KindSpec {
        name: "NOOP",
        handler: Arc::new(Noop),
        cluster_limit: 2 * WORKERS,
        local_workers: WORKERS,
        max_runtime: None,
    };
    JobService::builder(store, cfg).kind(kind).build()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let jobs: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20_000);
    let tmp = tempfile::tempdir()?;
    let db = format!("berth_jobs_bench_{}", std::process::id());
    let mut sqlite = None;
    let (a, b): (Arc<dyn JobStore>, Arc<dyn JobStore>) = if target == "sqlite" {
        let s = Arc::new(berth_store_sqlite::SqliteStore::open(&tmp.path().join("meta.db"))?);
        sqlite = Some(s.clone());
        (s.clone(), s)
    } else {
        let (client, conn) = tokio_postgres::connect(&target, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {db}")).await?;
        let url = format!("{}/{db}", target.rsplit_once('/').map_or(target.as_str(), |(base, _)| base));
        let open = || berth_store_postgres::PgStore::connect(berth_store_postgres::PgOptions::new(url.clone()));
        (Arc::new(open().await?), Arc::new(open().await?))
    };
    let exec =
        NewExecution { vendor_type: "BENCH".into(), vendor_id: 0, trigger: "MANUAL".into(), extra_attrs: "{}".into() };
    let enqueue = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1000) {
        let tasks: Vec<NewJob> = chunk.iter().map(|i| NewJob::new("NOOP", format!("{{\"i\":{i}}}"))).collect();
        a.create_execution(&exec, &tasks).await?;
    }
    let enqueue = enqueue.elapsed();
    let (sa, sb) = (service(a.clone(), "a"), service(b, "b"));
    let start = Instant::now();
    let runs =
        [tokio::spawn(sa.clone().run(Duration::from_secs(1))), tokio::spawn(sb.clone().run(Duration::from_secs(1)))];
    loop {
        let stats = a.queue_stats().await?;
        if stats.iter().all(|q| q.kind != "NOOP" || q.queued + q.running == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    sa.shutdown();
    sb.shutdown();
    for r in runs {
        r.await?;
    }
    println!(
        "{target_kind}: {jobs} jobs enqueued in {:.2} s ({:.0}/s); claimed, run and finished by 2 services × {WORKERS} workers in {:.2} s: {:.0} jobs/s",
        enqueue.as_secs_f64(),
        jobs as f64 / enqueue.as_secs_f64(),
        took.as_secs_f64(),
        jobs as f64 / took.as_secs_f64(),
        target_kind = if target == "sqlite" { "SQLite" } else { "PostgreSQL" },
    );
    if target != "sqlite" {
        drop((a, sa, sb));
        let (client, conn) = tokio_postgres::connect(&target, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        // The work counted rather than timed: commits (each a WAL flush) per job. A
        // closed connection reports its statistics within a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let row = client
            .query_one("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1", &[&db])
            .await?;
        let (commits, rollbacks): (i64, i64) = (row.get(0), row.get(1));
        println!(
            "PostgreSQL: {commits} commits ({:.2} per job, enqueue and polling included), {rollbacks} rollbacks",
            commits as f64 / jobs as f64
        );
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await?;
    } else if let Some(s) = sqlite.as_ref() {
        let w = s.writer_stats();
        println!(
            "SQLite: {} write jobs, {} commits ({:.3} commits per job)",
            w.jobs,
            w.commits,
            w.commits as f64 / jobs as f64
        );
    }
    Ok(())
}
