//! `/retentions` (goharbor/harbor `src/server/v2.0/handler/retention.go`): a project's
//! tag retention policy (Harbor's `RetentionPolicy`, validated by `berth_retention`, kept
//! in the policy store and named by the project's `retention_id` metadata), its schedule
//! (the job service's, vendor type `RETENTION`), and its executions: manual or dry runs,
//! stop, tasks per repository with retained/total counts, and their logs.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::Project;
use berth_core::store::jobs::{Execution, JobState};
use berth_retention::{POLICY_KIND, Policy, REPO, VENDOR_TYPE};
use serde::{Deserialize, Serialize};

use super::dto::time;
use super::errors::{bad_request, conflict, identity, not_found, store};
use super::json::Body;
use super::query::ListQuery;
use super::schedules::{self, CronSchedule, Deleted};
use super::system_jobs::{log_text, plain};
use super::{Caller, ProjectRef, api, audit, created, find_project, json, ok, page, parse_id, require_project};
use crate::AppState;
use crate::error::ApiError;

const RETENTION_ID: &str = "retention_id";

/// `GET /retentions/metadatas`: the templates and selectors a policy may use.
pub async fn metadatas() -> Response {
    json(StatusCode::OK, &berth_retention::metadata())
}

/// The policy `raw` and its project, if the caller may do `action` there.
async fn policy_for(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    action: Action,
) -> Result<(Policy, Project), ApiError> {
    let id = parse_id(raw, "id")?;
    let policy = state.retention.policy(id).await.map_err(store)?;
    let policy = policy.ok_or_else(|| not_found(format!("retention policy {id} not found")))?;
    let project_id = policy.scope.as_ref().map_or(0, |s| s.reference);
    let project = require_project(state, caller, &ProjectRef::Id(project_id), Resource::TagRetention, action).await?;
    Ok((policy, project))
}

fn validated(p: &Policy) -> Result<berth_retention::Validated, ApiError> {
    p.validate().map_err(|e| bad_request(e.to_string()))
}

fn body(p: &Policy) -> Result<String, ApiError> {
    let mut p = p.clone();
    p.id = 0;
    serde_json::to_string(&p).map_err(|e| ApiError::internal_error(format!("encoding a policy: {e}")))
}

/// Makes the schedule match the policy's cron (or removes it).
async fn apply_schedule(state: &AppState, id: i64, v: &berth_retention::Validated) -> Result<(), ApiError> {
    let Some(cron) = &v.cron else {
        state.jobs.store().delete_schedule(VENDOR_TYPE, id).await.map_err(store)?;
        return Ok(());
    };
    let launch = berth_retention::LaunchArgs { policy_id: id, dry_run: false, trigger: "SCHEDULE".into() };
    let args = serde_json::to_string(&launch).map_err(|e| ApiError::internal_error(e.to_string()))?;
    let s = CronSchedule {
        vendor_type: VENDOR_TYPE,
        vendor_id: id,
        cron_type: "Custom",
        cron,
        args,
        field: "trigger.settings.cron",
    };
    schedules::put(state, s).await
}

/// `POST /retentions`: one policy per project (409 if it has one).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(mut p): Body<Policy>,
) -> Result<Response, ApiError> {
    let v = validated(&p)?;
    let project = match find_project(&state, &ProjectRef::Id(v.project_id)).await? {
        Some(_) => {
            require_project(&state, &caller, &ProjectRef::Id(v.project_id), Resource::TagRetention, Action::Create)
                .await?
        }
        None if caller.0.is_authenticated() => {
            return Err(bad_request(format!("scope.ref: project {} not found", v.project_id)));
        }
        None => return Err(caller.deny()),
    };
    if let Some(existing) = project.metadata.get(RETENTION_ID)
        && let Ok(eid) = existing.parse::<i64>()
        && state.retention.policy(eid).await.map_err(store)?.is_some()
    {
        return Err(conflict(format!("project {} already has retention policy {eid}", project.name)));
    }
    p.id = 0;
    let id = state.policies.create_policy(POLICY_KIND, project.id, &body(&p)?).await.map_err(store)?;
    let md = BTreeMap::from([(RETENTION_ID.to_string(), id.to_string())]);
    state.auth.identity.update_project_metadata(project.id, &md).await.map_err(identity)?;
    apply_schedule(&state, id, &v).await?;
    audit(&state, &caller, project.id, "create", "retention", &format!("retention policy {id}")).await;
    Ok(created(&api(&format!("/retentions/{id}"))))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let (p, _) = policy_for(&state, &caller, &raw, Action::Read).await?;
    Ok(json(StatusCode::OK, &p))
}

/// `PUT /retentions/{id}`: replaces the rules and trigger; the scope cannot change.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Body(mut p): Body<Policy>,
) -> Result<Response, ApiError> {
    let (old, project) = policy_for(&state, &caller, &raw, Action::Update).await?;
    let v = validated(&p)?;
    if v.project_id != project.id {
        return Err(bad_request(format!("scope.ref: the policy belongs to project {}", project.id)));
    }
    p.id = 0;
    if !state.policies.update_policy(POLICY_KIND, old.id, &body(&p)?).await.map_err(store)? {
        return Err(not_found(format!("retention policy {} not found", old.id)));
    }
    apply_schedule(&state, old.id, &v).await?;
    audit(&state, &caller, project.id, "update", "retention", &format!("retention policy {}", old.id)).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let (p, project) = policy_for(&state, &caller, &raw, Action::Delete).await?;
    let resource = format!("retention policy {}", p.id);
    let entry = Deleted { project_id: project.id, resource_type: "retention", resource: &resource };
    let gone = state.policies.delete_policy(POLICY_KIND, p.id);
    schedules::delete_policy(&state, &caller, VENDOR_TYPE, p.id, gone, entry).await?;
    if project.metadata.get(RETENTION_ID) == Some(&p.id.to_string()) {
        let _ = state.auth.identity.delete_project_metadata(project.id, RETENTION_ID).await;
    }
    Ok(ok())
}

/// Harbor's `RetentionExecution`.
#[derive(Serialize)]
struct ExecutionResp {
    id: i64,
    policy_id: i64,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    status: String,
    trigger: String,
    dry_run: bool,
}

fn execution_resp(e: &Execution) -> ExecutionResp {
    ExecutionResp {
        id: e.id,
        policy_id: e.vendor_id,
        start_time: time(e.created_at / 1000),
        end_time: e.ended_at.map(|t| time(t / 1000)),
        status: e.counts.harbor_status().to_owned(),
        trigger: e.trigger.clone(),
        dry_run: berth_retention::is_dry_run(&e.extra_attrs),
    }
}

pub async fn executions(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (p, _) = policy_for(&state, &caller, &raw, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    let pg = q.store_page();
    let offset = (pg.page.max(1) - 1).saturating_mul(pg.page_size);
    let (execs, total) =
        state.jobs.store().executions(VENDOR_TYPE, Some(p.id), offset, pg.page_size).await.map_err(store)?;
    let body: Vec<ExecutionResp> = execs.iter().map(execution_resp).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunReq {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /retentions/{id}/executions`: a run now (`dry_run` deletes nothing).
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Body(req): Body<RunReq>,
) -> Result<Response, ApiError> {
    let (p, project) = policy_for(&state, &caller, &raw, Action::Operate).await?;
    let (latest, _) = state.jobs.store().executions(VENDOR_TYPE, Some(p.id), 0, 1).await.map_err(store)?;
    if let Some(e) = latest.first().filter(|e| e.counts.queued + e.counts.running > 0) {
        return Err(conflict(format!("retention execution {} of policy {} is still running", e.id, p.id)));
    }
    let id = state.retention.start(&state.jobs, p.id, req.dry_run, "MANUAL").await.map_err(store)?;
    audit(&state, &caller, project.id, "create", "retention", &format!("retention execution {id}")).await;
    Ok(created(&api(&format!("/retentions/{}/executions/{id}", p.id))))
}

async fn execution_of(state: &AppState, p: &Policy, raw: &str) -> Result<Execution, ApiError> {
    let id = parse_id(raw, "eid")?;
    match state.jobs.store().execution(id).await.map_err(store)? {
        Some(e) if e.vendor_type == VENDOR_TYPE && e.vendor_id == p.id => Ok(e),
        _ => Err(not_found(format!("retention execution {id} not found"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionReq {
    action: String,
}

/// `PATCH /retentions/{id}/executions/{eid}` with `{"action": "stop"}`.
pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, eid)): Path<(String, String)>,
    Body(req): Body<ActionReq>,
) -> Result<Response, ApiError> {
    let (p, project) = policy_for(&state, &caller, &raw, Action::Operate).await?;
    if req.action != "stop" {
        return Err(bad_request(format!("action: {:?} is not supported; use \"stop\"", req.action)));
    }
    let e = execution_of(&state, &p, &eid).await?;
    state.jobs.store().stop_execution(e.id).await.map_err(store)?;
    audit(&state, &caller, project.id, "update", "retention", &format!("retention execution {} stopped", e.id)).await;
    Ok(ok())
}

/// Harbor's `RetentionExecutionTask`.
#[derive(Serialize)]
struct TaskResp {
    id: i64,
    execution_id: i64,
    repository: String,
    job_id: String,
    status: String,
    status_code: i64,
    status_revision: i64,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    total: u64,
    retained: u64,
}

fn status_code(s: JobState) -> i64 {
    match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        JobState::Cancelled => 2,
        JobState::Dead => 3,
        JobState::Succeeded => 3,
    }
}

pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, eid)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (p, _) = policy_for(&state, &caller, &raw, Action::List).await?;
    let e = execution_of(&state, &p, &eid).await?;
    let q = ListQuery::parse(uri.query())?;
    let all: Vec<TaskResp> = state
        .jobs
        .store()
        .execution_tasks(e.id)
        .await
        .map_err(store)?
        .into_iter()
        .filter(|t| t.kind == REPO)
        .map(|t| {
            let out = berth_retention::task_outcome(t.progress.as_deref());
            TaskResp {
                id: t.id,
                execution_id: t.execution_id,
                repository: berth_retention::task_repository(&t.args),
                job_id: t.id.to_string(),
                status: t.state.harbor().to_owned(),
                status_code: status_code(t.state),
                status_revision: i64::from(t.attempt),
                start_time: time(t.started_at.unwrap_or(t.created_at) / 1000),
                end_time: t.finished_at.map(|f| time(f / 1000)),
                total: out.total,
                retained: out.retained,
            }
        })
        .collect();
    let total = all.len() as u64;
    let pg = q.store_page();
    let start = usize::try_from((pg.page.max(1) - 1).saturating_mul(pg.page_size)).unwrap_or(usize::MAX);
    let body: Vec<&TaskResp> =
        all.iter().skip(start).take(usize::try_from(pg.page_size).unwrap_or(usize::MAX)).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// `GET /retentions/{id}/executions/{eid}/tasks/{tid}`: the task's log (text).
pub async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, eid, tid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (p, _) = policy_for(&state, &caller, &raw, Action::Read).await?;
    let e = execution_of(&state, &p, &eid).await?;
    let tid = parse_id(&tid, "tid")?;
    match state.jobs.store().job(tid).await.map_err(store)? {
        Some(t) if t.execution_id == e.id => Ok(plain(log_text(&state, t.id).await?)),
        _ => Err(not_found(format!("retention task {tid} not found"))),
    }
}
