//! `berth gc`: starts a garbage collection on the cluster and follows its log.
//!
//! It writes the execution into the shared database, as the API does, and a running
//! instance's job service runs it: the command needs the same configuration as `serve`
//! and no credentials, works behind any proxy or TLS setup, and never runs GC in its own
//! process (on SQLite the digest locks live in the serving process, so GC must run
//! there). If a GC is already running it follows that one instead of queueing another.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::store::jobs::{JobStore, NewExecution, NewJob};
use berth_gc::{GcParams, GcProgress, human};
use berth_jobs::kinds;

const POLL: Duration = Duration::from_millis(500);

pub async fn run(jobs: Arc<dyn JobStore>, params: GcParams, wait_for_worker: Duration) -> anyhow::Result<ExitCode> {
    let (running, _) = jobs.executions(kinds::GARBAGE_COLLECTION, None, 0, 5).await?;
    let id = match running.iter().find(|e| matches!(e.counts.harbor_status(), "Running" | "Pending")) {
        Some(e) => {
            eprintln!("a garbage collection is already under way (id {}); following it", e.id);
            e.id
        }
        None => {
            let args = serde_json::to_string(&params)?;
            let exec = NewExecution {
                vendor_type: kinds::GARBAGE_COLLECTION.into(),
                vendor_id: 0,
                trigger: "MANUAL".into(),
                extra_attrs: args.clone(),
            };
            let id = jobs.create_execution(&exec, &[NewJob::new(kinds::GARBAGE_COLLECTION, args)]).await?;
            eprintln!("garbage collection {id} started ({})", serde_json::to_string(&params)?);
            id
        }
    };
    follow(&*jobs, id, wait_for_worker).await
}

/// Prints the log as it grows and a one-line progress indication, until the execution
/// ends. Ctrl-C stops following, not the collection.
async fn follow(jobs: &dyn JobStore, id: i64, wait_for_worker: Duration) -> anyhow::Result<ExitCode> {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut printed = 0usize;
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let exec = jobs.execution(id).await?.ok_or_else(|| anyhow::anyhow!("garbage collection {id} vanished"))?;
        let tasks = jobs.execution_tasks(id).await?;
        let mut lines = Vec::new();
        for t in &tasks {
            lines.extend(jobs.job_log(t.id).await?);
        }
        if tty {
            eprint!("\r\x1b[2K");
        }
        for l in lines.iter().skip(printed) {
            println!("[{}] {}", l.level.as_str(), l.message);
        }
        printed = printed.max(lines.len());
        let status = exec.counts.harbor_status();
        let progress: GcProgress = tasks
            .iter()
            .find_map(|t| t.progress.as_deref().and_then(|p| serde_json::from_str(p).ok()))
            .unwrap_or_default();
        match status {
            "Pending" | "Running" => {}
            "Success" => {
                eprintln!("garbage collection {id} succeeded in {:.1} s", started.elapsed().as_secs_f64());
                return Ok(ExitCode::SUCCESS);
            }
            other => {
                let why = tasks.iter().find_map(|t| t.last_error.clone()).unwrap_or_default();
                eprintln!("garbage collection {id} ended: {other} {why}");
                return Ok(ExitCode::FAILURE);
            }
        }
        if status == "Pending" && started.elapsed() > wait_for_worker {
            jobs.stop_execution(id).await?;
            eprintln!(
                "no Berth instance picked garbage collection {id} up within {} s (is `berth serve` running with \
                 the job service on?); it was cancelled",
                wait_for_worker.as_secs()
            );
            return Ok(ExitCode::FAILURE);
        }
        if tty {
            let spin = ['|', '/', '-', '\\'][(started.elapsed().as_millis() / 500 % 4) as usize];
            eprint!(
                "{spin} {status} {:>4} s: {} manifests, {} blobs deleted, {} freed",
                started.elapsed().as_secs(),
                progress.manifests,
                progress.blobs,
                human(progress.bytes)
            );
            let _ = std::io::stderr().flush();
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut interrupted => {
                eprintln!(
                    "\nstopped following; garbage collection {id} goes on (stop it with PUT /api/v2.0/system/gc/{id})"
                );
                return Ok(ExitCode::from(130));
            }
        }
    }
}
