//! The job service monitor (goharbor/harbor `src/server/v2.0/handler/jobservice.go` and
//! `schedule.go`): worker pools (one per instance), their busy workers, single jobs (stop,
//! log), queues per job type (pause, resume, stop all) and schedules.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_core::store::jobs::QueueStat;
use berth_jobs::kinds;
use serde::{Deserialize, Serialize};
use serde_json::json as j;

use super::dto::time;
use super::errors::{bad_request, not_found, store};
use super::json::Body;
use super::query::ListQuery;
use super::system_jobs::{log_text, plain};
use super::{Caller, audit, json, page, parse_id, require_system};
use crate::AppState;
use crate::error::ApiError;

/// A pool that has not reported for this long is gone (its instance stopped).
const POOL_FRESH_MS: i64 = 60_000;

#[derive(Serialize)]
struct Pool {
    pid: i64,
    worker_pool_id: String,
    start_at: String,
    heartbeat_at: String,
    concurrency: i64,
    host: String,
}

pub async fn pools(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    let pools = state.jobs.store().pools(POOL_FRESH_MS).await.map_err(store)?;
    let body: Vec<Pool> = pools
        .into_iter()
        .map(|p| Pool {
            pid: p.pid,
            worker_pool_id: p.id,
            start_at: time(p.started_at / 1000),
            heartbeat_at: time(p.heartbeat_at / 1000),
            concurrency: p.concurrency,
            host: p.host,
        })
        .collect();
    Ok(json(StatusCode::OK, &body))
}

#[derive(Serialize)]
struct Worker {
    id: String,
    pool_id: String,
    job_name: String,
    job_id: String,
    start_at: Option<String>,
    check_in: String,
    checkin_at: Option<String>,
}

/// Busy workers of one pool (or of `all`): a worker is a running job.
pub async fn workers(
    State(state): State<AppState>,
    caller: Caller,
    Path(pool_id): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    let pools = state.jobs.store().pools(POOL_FRESH_MS).await.map_err(store)?;
    let chosen: Vec<String> = if pool_id == "all" {
        pools.into_iter().map(|p| p.id).collect()
    } else if pools.iter().any(|p| p.id == pool_id) {
        vec![pool_id]
    } else {
        return Err(not_found(format!("worker pool {pool_id:?} not found")));
    };
    let mut body = Vec::new();
    for pool in chosen {
        for (i, job) in state.jobs.store().running_jobs(&pool).await.map_err(store)?.into_iter().enumerate() {
            body.push(Worker {
                id: format!("{pool}-{i}"),
                pool_id: pool.clone(),
                job_name: job.kind,
                job_id: job.id.to_string(),
                start_at: job.started_at.map(|t| time(t / 1000)),
                check_in: String::new(),
                checkin_at: Some(time(job.updated_at / 1000)),
            });
        }
    }
    Ok(json(StatusCode::OK, &body))
}

/// Harbor's `ActionRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionReq {
    action: String,
}

pub async fn stop_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
    Body(req): Body<ActionReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "stop")?;
    if req.action != "stop" {
        return Err(bad_request(format!("action: {:?} is not supported for a job; use \"stop\"", req.action)));
    }
    let id = parse_id(&job_id, "job_id")?;
    let job =
        state.jobs.store().job(id).await.map_err(store)?.ok_or_else(|| not_found(format!("job {id} not found")))?;
    if !job.state.is_final() {
        state.jobs.store().stop_job(id).await.map_err(store)?;
        audit(&state, &caller, 0, "update", "job", &format!("{} job {id} stopped", job.kind)).await;
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn job_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    let id = parse_id(&job_id, "job_id")?;
    if state.jobs.store().job(id).await.map_err(store)?.is_none() {
        return Err(not_found(format!("job {id} not found")));
    }
    Ok(plain(log_text(&state, id).await?))
}

#[derive(Serialize)]
struct Queue {
    job_type: String,
    count: u64,
    /// Seconds the oldest runnable job has waited.
    latency: i64,
    paused: bool,
}

async fn queues_of(state: &AppState) -> Result<Vec<QueueStat>, ApiError> {
    let mut stats = state.jobs.store().queue_stats().await.map_err(store)?;
    // Every job type this instance serves is listed, busy or not, as Harbor lists its
    // registered job types.
    for kind in state.jobs.kind_names() {
        if !stats.iter().any(|s| s.kind == kind) {
            stats.push(QueueStat { kind: kind.to_owned(), queued: 0, running: 0, oldest_ms: 0, paused: false });
        }
    }
    stats.sort_by(|a, b| a.kind.cmp(&b.kind));
    Ok(stats)
}

pub async fn queues(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    let body: Vec<Queue> = queues_of(&state)
        .await?
        .into_iter()
        .map(|q| Queue { job_type: q.kind, count: q.queued, latency: q.oldest_ms / 1000, paused: q.paused })
        .collect();
    Ok(json(StatusCode::OK, &body))
}

/// A job waiting in a queue (Berth's; Harbor's monitor shows only how many wait).
#[derive(Serialize)]
struct Waiting {
    /// As `/jobservice/jobs/{job_id}` takes it (stop, log).
    job_id: String,
    job_name: String,
    execution_id: i64,
    /// When the job was enqueued.
    enqueue_at: String,
    /// Attempts made so far (0 until a worker first claims it).
    attempts: i32,
    max_attempts: i32,
    /// When it may run next (a retry waits for its backoff).
    run_at: String,
    last_error: Option<String>,
}

/// `GET /jobservice/queues/{job_type}/jobs` (Berth's extension): the jobs of a type
/// waiting in its queue, in the order workers take them, paged (`page`, `page_size`) with
/// `X-Total-Count`. Stop one with `PUT /jobservice/jobs/{job_id}`.
pub async fn queue_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_type): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    let q = ListQuery::parse(uri.query())?;
    if !queues_of(&state).await?.iter().any(|s| s.kind == job_type) {
        return Err(not_found(format!("job type {job_type:?} not found")));
    }
    let offset = (q.page - 1).saturating_mul(q.page_size);
    let (jobs, total) = state.jobs.store().queued_jobs(&job_type, offset, q.page_size).await.map_err(store)?;
    let body: Vec<Waiting> = jobs
        .into_iter()
        .map(|j| Waiting {
            job_id: j.id.to_string(),
            job_name: j.kind,
            execution_id: j.execution_id,
            enqueue_at: time(j.created_at / 1000),
            attempts: j.attempt,
            max_attempts: j.max_attempts,
            run_at: time(j.run_at / 1000),
            last_error: j.last_error,
        })
        .collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// `PUT /jobservice/queues/{job_type}` with `stop` (every job of the type), `pause` or
/// `resume`; `all` applies to every type.
pub async fn queue_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_type): Path<String>,
    Body(req): Body<ActionReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "stop")?;
    let known: Vec<String> = queues_of(&state).await?.into_iter().map(|q| q.kind).collect();
    let types: Vec<String> = if job_type == "all" {
        known
    } else if known.contains(&job_type) {
        vec![job_type.clone()]
    } else {
        return Err(not_found(format!("job type {job_type:?} not found")));
    };
    let store_ = state.jobs.store();
    for t in &types {
        match req.action.as_str() {
            "stop" => {
                store_.stop_kind(t).await.map_err(store)?;
            }
            "pause" => store_.set_kind_paused(t, true).await.map_err(store)?,
            "resume" => store_.set_kind_paused(t, false).await.map_err(store)?,
            other => {
                return Err(bad_request(format!("action: {other:?} is not one of \"stop\", \"pause\", \"resume\"")));
            }
        }
    }
    audit(&state, &caller, 0, "update", "jobservice-queue", &format!("{} {job_type}", req.action)).await;
    Ok(StatusCode::OK.into_response())
}

#[derive(Serialize)]
struct ScheduleTask {
    id: i64,
    vendor_type: String,
    vendor_id: i64,
    extra_attrs: String,
    cron: String,
    update_time: String,
}

pub async fn schedules(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    let body: Vec<ScheduleTask> = state
        .jobs
        .store()
        .schedules()
        .await
        .map_err(store)?
        .into_iter()
        .map(|s| ScheduleTask {
            id: s.id,
            vendor_type: s.vendor_type,
            vendor_id: s.vendor_id,
            extra_attrs: s.args,
            cron: s.cron,
            update_time: time(s.updated_at / 1000),
        })
        .collect();
    Ok(json(StatusCode::OK, &body))
}

/// `GET /schedules/{job_type}/paused`: whether schedules fire (Harbor knows `all` only:
/// schedules are paused by pausing the `SCHEDULER` queue).
pub async fn schedules_paused(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_type): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "jobservice-monitor", "list")?;
    if job_type != "all" {
        return Err(bad_request(format!("job_type: only \"all\" is supported, got {job_type:?}")));
    }
    let paused = queues_of(&state).await?.iter().any(|q| q.kind == kinds::SCHEDULER && q.paused);
    Ok(json(StatusCode::OK, &j!({ "paused": paused })))
}
