//! Harbor's system job endpoints, one implementation for every system job kind:
//! `GET {base}` (history), `GET {base}/{id}`, `PUT {base}/{id}` (stop), `GET
//! {base}/{id}/log`, and `GET|POST|PUT {base}/schedule` (goharbor/harbor
//! `src/server/v2.0/handler/{gc,purge}.go`). A kind supplies its vendor type, its RBAC
//! resource and how its `parameters` are validated; executions, schedules and logs are
//! the job service's.

use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::store::jobs::{Execution, NewExecution, NewJob, Schedule};
use berth_jobs::ScheduleSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::dto::time;
use super::errors::{bad_request, conflict, not_found, store};
use super::query::ListQuery;
use super::schedules::{self, CronSchedule};
use super::{Caller, api, audit, json, page, parse_id, require_system};
use crate::AppState;
use crate::error::ApiError;

/// One kind of system job as the API serves it.
pub struct SystemJob {
    /// Harbor's vendor type, also the job kind.
    pub vendor_type: &'static str,
    /// Harbor's RBAC resource (`garbage-collection`, `purge-audit`).
    pub resource: &'static str,
    /// Where its endpoints live, under `/api/v2.0`.
    pub base: &'static str,
    /// What the audit log calls it.
    pub audit_name: &'static str,
    /// Validates a request's `parameters` and returns them as stored.
    pub params: fn(&Map<String, Value>) -> Result<Value, berth_jobs::builtin::ParamError>,
    /// Attempts a task gets before it is an error.
    pub max_attempts: i32,
}

/// Harbor's `ExecHistory` / `GCHistory`.
#[derive(Serialize)]
struct History {
    id: i64,
    job_name: String,
    job_kind: String,
    job_parameters: String,
    schedule: Option<ScheduleObj>,
    job_status: String,
    deleted: bool,
    creation_time: String,
    update_time: String,
}

#[derive(Serialize, Deserialize)]
struct ScheduleObj {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_scheduled_time: Option<String>,
}

/// Harbor's `Schedule` request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleReq {
    schedule: Option<ScheduleObj>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    // Harbor's portal echoes these back; they carry nothing to apply.
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    creation_time: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    update_time: Option<Value>,
}

impl ScheduleReq {
    /// The schedule's `type`, if one was given.
    pub fn kind(&self) -> Option<&str> {
        self.schedule.as_ref().map(|s| s.kind.as_str())
    }
}

/// Harbor's `Schedule` model of a system job's schedule (what `/system/scanAll/schedule`
/// answers), `{"schedule": {"type": "None"}}` when there is none.
pub fn schedule_model(s: Option<&Schedule>) -> Value {
    match s {
        Some(s) => serde_json::json!({
            "id": s.id,
            "status": "",
            "creation_time": time(s.created_at / 1000),
            "update_time": time(s.updated_at / 1000),
            "schedule": {"type": s.cron_type, "cron": s.cron, "next_scheduled_time": time(s.next_fire_at / 1000)},
            "parameters": serde_json::from_str::<Value>(&s.args).unwrap_or(Value::Null),
        }),
        None => serde_json::json!({"schedule": {"type": "None"}}),
    }
}

fn history(e: &Execution) -> History {
    History {
        id: e.id,
        job_name: e.vendor_type.clone(),
        job_kind: e.trigger.clone(),
        job_parameters: e.extra_attrs.clone(),
        schedule: None,
        job_status: e.counts.harbor_status().to_owned(),
        deleted: false,
        creation_time: time(e.created_at / 1000),
        update_time: time(e.updated_at / 1000),
    }
}

pub async fn list(state: &AppState, caller: &Caller, uri: &Uri, job: &SystemJob) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "list")?;
    let q = ListQuery::parse(uri.query())?;
    let p = q.store_page();
    let offset = (p.page.max(1) - 1).saturating_mul(p.page_size);
    let (execs, total) =
        state.jobs.store().executions(job.vendor_type, None, offset, p.page_size).await.map_err(store)?;
    let body: Vec<History> = execs.iter().map(history).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

async fn execution(state: &AppState, raw_id: &str, job: &SystemJob) -> Result<Execution, ApiError> {
    let id = parse_id(raw_id, "id")?;
    match state.jobs.store().execution(id).await.map_err(store)? {
        Some(e) if e.vendor_type == job.vendor_type => Ok(e),
        _ => Err(not_found(format!("{} execution {id} not found", job.audit_name))),
    }
}

pub async fn get(state: &AppState, caller: &Caller, raw_id: &str, job: &SystemJob) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "read")?;
    let e = execution(state, raw_id, job).await?;
    Ok(json(StatusCode::OK, &history(&e)))
}

pub async fn stop(state: &AppState, caller: &Caller, raw_id: &str, job: &SystemJob) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "stop")?;
    let e = execution(state, raw_id, job).await?;
    state.jobs.store().stop_execution(e.id).await.map_err(store)?;
    audit(state, caller, 0, "update", job.resource, &format!("{} {} stopped", job.audit_name, e.id)).await;
    Ok(StatusCode::OK.into_response())
}

pub async fn log(state: &AppState, caller: &Caller, raw_id: &str, job: &SystemJob) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "read")?;
    let e = execution(state, raw_id, job).await?;
    let mut text = String::new();
    for task in state.jobs.store().execution_tasks(e.id).await.map_err(store)? {
        text.push_str(&log_text(state, task.id).await?);
    }
    Ok(plain(text))
}

/// A job's log as Harbor shows it: `<time> [LEVEL] message`, one line each.
pub async fn log_text(state: &AppState, job_id: i64) -> Result<String, ApiError> {
    let mut text = String::new();
    for l in state.jobs.store().job_log(job_id).await.map_err(store)? {
        text.push_str(&format!("{} [{}] {}\n", time(l.at / 1000).replace(".000Z", "Z"), l.level.as_str(), l.message));
    }
    Ok(text)
}

pub fn plain(text: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

pub async fn get_schedule(state: &AppState, caller: &Caller, job: &SystemJob) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "read")?;
    let s = state.jobs.store().schedule(job.vendor_type, 0).await.map_err(store)?;
    Ok(json(StatusCode::OK, &schedule_history(job, s.as_ref())))
}

fn schedule_history(job: &SystemJob, s: Option<&Schedule>) -> History {
    match s {
        Some(s) => History {
            id: s.id,
            job_name: job.vendor_type.to_owned(),
            job_kind: s.cron_type.clone(),
            job_parameters: s.args.clone(),
            schedule: Some(ScheduleObj {
                kind: s.cron_type.clone(),
                cron: Some(s.cron.clone()),
                next_scheduled_time: Some(time(s.next_fire_at / 1000)),
            }),
            job_status: String::new(),
            deleted: false,
            creation_time: time(s.created_at / 1000),
            update_time: time(s.updated_at / 1000),
        },
        None => History {
            id: 0,
            job_name: job.vendor_type.to_owned(),
            job_kind: String::new(),
            job_parameters: String::new(),
            schedule: Some(ScheduleObj { kind: "None".into(), cron: None, next_scheduled_time: None }),
            job_status: String::new(),
            deleted: false,
            creation_time: time(0),
            update_time: time(0),
        },
    }
}

/// `POST {base}/schedule`: `Manual` runs now (201 with the execution's `Location`); a
/// periodic type sets the schedule; `None` removes it.
pub async fn create_schedule(
    state: &AppState,
    caller: &Caller,
    req: ScheduleReq,
    job: &SystemJob,
) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "create")?;
    apply_schedule(state, caller, req, job).await
}

/// `PUT {base}/schedule`: as POST.
pub async fn update_schedule(
    state: &AppState,
    caller: &Caller,
    req: ScheduleReq,
    job: &SystemJob,
) -> Result<Response, ApiError> {
    require_system(caller, job.resource, "update")?;
    apply_schedule(state, caller, req, job).await
}

/// What POST and PUT do once the caller's permission is checked.
pub async fn apply_schedule(
    state: &AppState,
    caller: &Caller,
    req: ScheduleReq,
    job: &SystemJob,
) -> Result<Response, ApiError> {
    let sched = req.schedule.ok_or_else(|| bad_request("schedule is required"))?;
    let spec = ScheduleSpec::parse(&sched.kind, sched.cron.as_deref()).map_err(|e| bad_request(e.to_string()))?;
    if spec.kind == berth_jobs::ScheduleType::None {
        state.jobs.store().delete_schedule(job.vendor_type, 0).await.map_err(store)?;
        audit(state, caller, 0, "delete", job.resource, &format!("{} schedule", job.audit_name)).await;
        return Ok(StatusCode::OK.into_response());
    }
    let params = (job.params)(&req.parameters.unwrap_or_default())
        .map_err(|e| bad_request(format!("{}: {}", e.field, e.message)))?;
    let args = params.to_string();
    match (spec.kind, spec.cron) {
        (berth_jobs::ScheduleType::Manual, _) => start(state, caller, job, &args).await,
        (_, None) => Err(bad_request("schedule.cron is required")),
        (kind, Some(cron)) => {
            let s = CronSchedule {
                vendor_type: job.vendor_type,
                vendor_id: 0,
                cron_type: kind.as_str(),
                cron: &cron,
                args,
                field: "schedule.cron",
            };
            schedules::put(state, s).await?;
            audit(state, caller, 0, "update", job.resource, &format!("{} schedule {}", job.audit_name, cron.as_str()))
                .await;
            Ok(StatusCode::OK.into_response())
        }
    }
}

/// Runs the job now, unless one is already pending or running (Harbor answers 409 too).
async fn start(state: &AppState, caller: &Caller, job: &SystemJob, args: &str) -> Result<Response, ApiError> {
    let (latest, _) = state.jobs.store().executions(job.vendor_type, None, 0, 1).await.map_err(store)?;
    if let Some(e) = latest.first().filter(|e| e.counts.queued + e.counts.running > 0) {
        return Err(conflict(format!(
            "{} {} is still {}",
            job.audit_name,
            e.id,
            e.counts.harbor_status().to_lowercase()
        )));
    }
    let exec = NewExecution {
        vendor_type: job.vendor_type.to_owned(),
        vendor_id: 0,
        trigger: "MANUAL".into(),
        extra_attrs: args.to_owned(),
    };
    let task = NewJob { max_attempts: job.max_attempts, ..NewJob::new(job.vendor_type, args) };
    let id = state.jobs.start(&exec, &[task]).await.map_err(store)?;
    audit(state, caller, 0, "create", job.resource, &format!("{} {id}", job.audit_name)).await;
    let location = api(&format!("{}/{id}", job.base));
    let mut res = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(HeaderName::from_static("location"), v);
    }
    Ok(res)
}
