//! `/projects/{project}/webhook/…` (goharbor/harbor `src/server/v2.0/handler/webhook.go`):
//! policies, the supported event and notify types, each policy's executions (one per
//! event), their tasks (one per target) and task logs, and the deprecated `lasttrigger`.
//! Project admins manage policies; maintainers read them (RBAC `notification-policy`).
//! Validation and delivery are `berth-webhooks`'.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::Project;
use berth_core::store::jobs::{Execution, Job};
use berth_core::store::webhooks::{NewWebhookPolicy, WebhookError, WebhookPolicy};
use berth_webhooks::policy::{EVENT_TYPES, NOTIFY_TYPES, PAYLOAD_FORMATS, validate};
use berth_webhooks::{Event, Target, VENDOR_TYPE};

use super::dto::{time, time_or_zero};
use super::errors::{bad_request, conflict, not_found, store};
use super::json::Body;
use super::query::ListQuery;
use super::system_jobs::{log_text, plain};
use super::{Caller, ProjectRef, audit, created, json, ok, page, parse_id, require_project};
use crate::AppState;
use crate::error::ApiError;

/// Harbor's `WebhookPolicy`.
#[derive(Serialize)]
struct PolicyResp {
    id: i64,
    name: String,
    description: String,
    project_id: i64,
    targets: Vec<Target>,
    event_types: Vec<String>,
    creator: String,
    creation_time: String,
    update_time: String,
    enabled: bool,
}

/// A `WebhookPolicy` in a request; read-only fields are accepted (clients send back what
/// they read) and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PolicyReq {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    project_id: Option<i64>,
    targets: Option<Vec<Target>>,
    event_types: Option<Vec<String>>,
    creator: Option<String>,
    creation_time: Option<String>,
    update_time: Option<String>,
    enabled: Option<bool>,
}

fn policy_resp(p: &WebhookPolicy) -> PolicyResp {
    PolicyResp {
        id: p.id,
        name: p.name.clone(),
        description: p.description.clone(),
        project_id: p.project_id,
        targets: serde_json::from_str(&p.targets).unwrap_or_default(),
        event_types: p.event_types.clone(),
        creator: p.creator.clone(),
        creation_time: time(p.creation_time),
        update_time: time(p.update_time),
        enabled: p.enabled,
    }
}

/// The request as a stored policy, validated (400 naming the field).
fn new_policy(project: &Project, caller: &Caller, req: PolicyReq) -> Result<NewWebhookPolicy, ApiError> {
    let name = req.name.unwrap_or_default();
    let event_types = req.event_types.unwrap_or_default();
    let mut targets = req.targets.unwrap_or_default();
    validate(&name, &event_types, &mut targets).map_err(|e| bad_request(e.to_string()))?;
    Ok(NewWebhookPolicy {
        project_id: project.id,
        name,
        description: req.description.unwrap_or_default(),
        enabled: req.enabled.unwrap_or(true),
        creator: caller.0.name().to_string(),
        event_types,
        targets: serde_json::to_string(&targets).map_err(|e| ApiError::internal_error(e.to_string()))?,
    })
}

fn policy_error(e: WebhookError, id: i64) -> ApiError {
    match e {
        WebhookError::Conflict(name) => {
            conflict(format!("a webhook policy named {name:?} already exists in this project"))
        }
        WebhookError::NotFound => not_found(format!("webhook policy {id} not found")),
        WebhookError::Store(e) => store(e),
    }
}

async fn project(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    h: &HeaderMap,
    action: Action,
) -> Result<Project, ApiError> {
    require_project(state, caller, &ProjectRef::parse(raw, h), Resource::NotificationPolicy, action).await
}

/// The policy, if it belongs to the project.
async fn policy(state: &AppState, p: &Project, raw: &str) -> Result<WebhookPolicy, ApiError> {
    let id = parse_id(raw, "webhook_policy_id")?;
    match state.webhooks.store.webhook_policy(id).await.map_err(store)? {
        Some(w) if w.project_id == p.id => Ok(w),
        _ => Err(not_found(format!("webhook policy {id} not found in project {}", p.name))),
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    uri: Uri,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    let all = state.webhooks.store.webhook_policies(p.id).await.map_err(store)?;
    let pg = q.store_page();
    let body: Vec<PolicyResp> =
        all.iter().skip(pg.offset() as usize).take(pg.page_size as usize).map(policy_resp).collect();
    let total = all.len() as u64;
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    uri: Uri,
    Path(raw): Path<String>,
    Body(req): Body<PolicyReq>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Create).await?;
    let new = new_policy(&p, &caller, req)?;
    let w = state.webhooks.store.create_webhook_policy(&new).await.map_err(|e| policy_error(e, 0))?;
    audit(&state, &caller, p.id, "create", "notification_policy", &w.name).await;
    Ok(created(&format!("{}/{}", uri.path().trim_end_matches('/'), w.id)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Read).await?;
    Ok(json(StatusCode::OK, &policy_resp(&policy(&state, &p, &id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
    Body(req): Body<PolicyReq>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Update).await?;
    let old = policy(&state, &p, &id).await?;
    let new = new_policy(&p, &caller, req)?;
    let w = state.webhooks.store.update_webhook_policy(old.id, &new).await.map_err(|e| policy_error(e, old.id))?;
    audit(&state, &caller, p.id, "update", "notification_policy", &w.name).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Delete).await?;
    let old = policy(&state, &p, &id).await?;
    state.webhooks.store.delete_webhook_policy(old.id).await.map_err(|e| policy_error(e, old.id))?;
    audit(&state, &caller, p.id, "delete", "notification_policy", &old.name).await;
    Ok(ok())
}

/// "Send test" (a Berth extension; Harbor's v2 API has none): a test event delivered to
/// each of the policy's targets now, once, in its payload format, with its auth header;
/// the answer lists what each endpoint said (status code, or the connection error). An
/// unreachable endpoint is a result, not a failure of this call. Needs what changing the
/// policy needs (`notification-policy` update).
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Update).await?;
    let w = policy(&state, &p, &id).await?;
    let event = Event::test(p.id, &p.name, w.id, &w.name, caller.0.name(), crate::auth::unix_now());
    let results = berth_webhooks::send_test(&w, &event).await.map_err(ApiError::internal_error)?;
    Ok(json(StatusCode::OK, &results))
}

/// Harbor's `SupportedWebhookEventTypes`.
#[derive(Serialize)]
struct Supported {
    event_type: &'static [&'static str],
    notify_type: &'static [&'static str],
    payload_formats: Vec<PayloadFormats>,
}

#[derive(Serialize)]
struct PayloadFormats {
    notify_type: &'static str,
    formats: &'static [&'static str],
}

pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    project(&state, &caller, &raw, &h, Action::Read).await?;
    let payload_formats =
        PAYLOAD_FORMATS.iter().map(|(notify_type, formats)| PayloadFormats { notify_type, formats }).collect();
    Ok(json(StatusCode::OK, &Supported { event_type: EVENT_TYPES, notify_type: NOTIFY_TYPES, payload_formats }))
}

/// Harbor's `Execution`.
#[derive(Serialize)]
struct ExecutionResp {
    id: i64,
    vendor_type: String,
    vendor_id: i64,
    status: &'static str,
    status_message: String,
    metrics: Metrics,
    trigger: String,
    extra_attrs: Map<String, Value>,
    start_time: String,
    end_time: String,
}

#[derive(Serialize)]
struct Metrics {
    task_count: u64,
    success_task_count: u64,
    error_task_count: u64,
    pending_task_count: u64,
    running_task_count: u64,
    scheduled_task_count: u64,
    stopped_task_count: u64,
}

fn attrs(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

fn execution_resp(e: &Execution) -> ExecutionResp {
    let c = &e.counts;
    ExecutionResp {
        id: e.id,
        vendor_type: e.vendor_type.clone(),
        vendor_id: e.vendor_id,
        status: c.harbor_status(),
        status_message: String::new(),
        metrics: Metrics {
            task_count: c.total(),
            success_task_count: c.succeeded,
            error_task_count: c.dead,
            pending_task_count: c.queued,
            running_task_count: c.running,
            scheduled_task_count: 0,
            stopped_task_count: c.cancelled,
        },
        trigger: e.trigger.clone(),
        extra_attrs: attrs(&e.extra_attrs),
        start_time: time(e.created_at / 1000),
        end_time: time_or_zero(e.ended_at.map(|t| t / 1000)),
    }
}

/// Harbor's `Task`.
#[derive(Serialize)]
struct TaskResp {
    id: i64,
    execution_id: i64,
    status: &'static str,
    status_message: String,
    run_count: i32,
    extra_attrs: Map<String, Value>,
    creation_time: String,
    update_time: String,
    start_time: String,
    end_time: String,
}

fn task_resp(j: &Job) -> TaskResp {
    // What the task delivers, without its body or credentials.
    let args = attrs(&j.args);
    let mut extra = Map::new();
    for k in ["id", "event_type", "address"] {
        if let Some(v) = args.get(k) {
            extra.insert(k.to_owned(), v.clone());
        }
    }
    extra.insert("kind".into(), Value::String(j.kind.clone()));
    TaskResp {
        id: j.id,
        execution_id: j.execution_id,
        status: j.state.harbor(),
        status_message: j.last_error.clone().unwrap_or_default(),
        run_count: j.attempt,
        extra_attrs: extra,
        creation_time: time(j.created_at / 1000),
        update_time: time(j.updated_at / 1000),
        start_time: time_or_zero(j.started_at.map(|t| t / 1000)),
        end_time: time_or_zero(j.finished_at.map(|t| t / 1000)),
    }
}

pub async fn executions(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    uri: Uri,
    Path((raw, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::List).await?;
    let w = policy(&state, &p, &id).await?;
    let q = ListQuery::parse(uri.query())?;
    let pg = q.store_page();
    let (execs, total) =
        state.jobs.store().executions(VENDOR_TYPE, Some(w.id), pg.offset(), pg.page_size).await.map_err(store)?;
    let body: Vec<ExecutionResp> = execs.iter().map(execution_resp).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

async fn execution(state: &AppState, w: &WebhookPolicy, raw: &str) -> Result<Execution, ApiError> {
    let id = parse_id(raw, "execution_id")?;
    match state.jobs.store().execution(id).await.map_err(store)? {
        Some(e) if e.vendor_type == VENDOR_TYPE && e.vendor_id == w.id => Ok(e),
        _ => Err(not_found(format!("execution {id} of webhook policy {} not found", w.id))),
    }
}

pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    uri: Uri,
    Path((raw, id, exec)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::List).await?;
    let w = policy(&state, &p, &id).await?;
    let e = execution(&state, &w, &exec).await?;
    let q = ListQuery::parse(uri.query())?;
    let pg = q.store_page();
    let all = state.jobs.store().execution_tasks(e.id).await.map_err(store)?;
    let body: Vec<TaskResp> =
        all.iter().skip(pg.offset() as usize).take(pg.page_size as usize).map(task_resp).collect();
    let total = all.len() as u64;
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path((raw, id, exec, task)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Read).await?;
    let w = policy(&state, &p, &id).await?;
    let e = execution(&state, &w, &exec).await?;
    let task_id = parse_id(&task, "task_id")?;
    match state.jobs.store().job(task_id).await.map_err(store)? {
        Some(j) if j.execution_id == e.id => Ok(plain(log_text(&state, j.id).await?)),
        _ => Err(not_found(format!("task {task_id} of execution {} not found", e.id))),
    }
}

/// Harbor's `WebhookLastTrigger`.
#[derive(Serialize)]
struct LastTrigger {
    policy_name: String,
    event_type: String,
    enabled: bool,
    creation_time: String,
    last_trigger_time: String,
}

/// How many of a policy's newest executions `lasttrigger` looks through.
const LAST_TRIGGER_SCAN: u64 = 100;

pub async fn last_trigger(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Read).await?;
    let mut out = Vec::new();
    for w in state.webhooks.store.webhook_policies(p.id).await.map_err(store)? {
        let (execs, _) =
            state.jobs.store().executions(VENDOR_TYPE, Some(w.id), 0, LAST_TRIGGER_SCAN).await.map_err(store)?;
        for t in &w.event_types {
            // Executions are newest first.
            let last =
                execs.iter().find(|e| attrs(&e.extra_attrs).get("event_type").and_then(Value::as_str) == Some(t));
            out.push(LastTrigger {
                policy_name: w.name.clone(),
                event_type: t.clone(),
                enabled: w.enabled,
                creation_time: time(w.creation_time),
                last_trigger_time: time_or_zero(last.map(|e| e.created_at / 1000)),
            });
        }
    }
    Ok(json(StatusCode::OK, &out))
}
