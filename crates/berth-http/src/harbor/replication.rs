//! Harbor's replication API (goharbor/harbor `src/server/v2.0/handler/{registry,
//! replication}.go`): registry endpoints (`/registries`, ping, info), the adapters,
//! replication policies, executions (start, list, get, stop), their tasks and task logs.
//! System administrators (and system robots given the permission) only. Validation,
//! encryption of credentials and the jobs are `berth-replication`'s.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use berth_core::store::jobs::{Execution, Job, JobState};
use berth_jobs::CronExpr;
use berth_remote::AdapterKind;
use berth_replication::registries::{Registry, RegistryError, RegistryInput, adapter_for};
use berth_replication::{COPY, FLOW, FlowArgs, Policy, StartError, StoredReplicationPolicy, VENDOR_TYPE};

use super::dto::{time, time_or_zero};
use super::errors::{bad_request, conflict, not_found, precondition, store};
use super::json::Body;
use super::query::{ListQuery, Match};
use super::schedules::{self, CronSchedule, Deleted};
use super::system_jobs::{log_text, plain};
use super::{Caller, audit, created, json, ok, page, parse_id, require_system};
use crate::AppState;
use crate::error::ApiError;

/// How a stored secret is shown: never itself.
const MASK: &str = "*****";

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid(field, msg) => bad_request(format!("{field}: {msg}")),
        RegistryError::Conflict(name) => conflict(format!("a registry named {name:?} already exists")),
        RegistryError::NotFound(id) => not_found(format!("registry {id} not found")),
        RegistryError::Secret(..) => ApiError::internal_error(e.to_string()),
        RegistryError::Store(e) => store(e),
    }
}

// --- registries ---

#[derive(Serialize)]
struct CredentialResp {
    #[serde(rename = "type")]
    kind: String,
    access_key: String,
    access_secret: String,
}

/// Harbor's `Registry`.
#[derive(Serialize)]
struct RegistryResp {
    id: i64,
    name: String,
    description: String,
    url: String,
    #[serde(rename = "type")]
    kind: String,
    insecure: bool,
    credential: CredentialResp,
    status: String,
    creation_time: String,
    update_time: String,
}

fn registry_resp(r: &Registry) -> RegistryResp {
    RegistryResp {
        id: r.id,
        name: r.doc.name.clone(),
        description: r.doc.description.clone(),
        url: r.doc.url.clone(),
        kind: r.doc.kind.clone(),
        insecure: r.doc.insecure,
        credential: CredentialResp {
            kind: if r.doc.access_key.is_empty() { String::new() } else { "basic".into() },
            access_key: r.doc.access_key.clone(),
            access_secret: if r.doc.access_secret.is_empty() { String::new() } else { MASK.into() },
        },
        status: r.doc.status.clone(),
        creation_time: time(r.created_at),
        update_time: time(r.updated_at),
    }
}

/// This registry, as policies show it (Harbor's id 0).
fn local_resp(state: &AppState, h: &HeaderMap) -> RegistryResp {
    RegistryResp {
        id: 0,
        name: "Local".into(),
        description: String::new(),
        url: state.origin(h),
        kind: "harbor".into(),
        insecure: true,
        credential: CredentialResp { kind: String::new(), access_key: String::new(), access_secret: String::new() },
        status: "healthy".into(),
        creation_time: time(0),
        update_time: time(0),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CredentialReq {
    #[serde(rename = "type")]
    kind: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
}

/// Harbor's `Registry` in a create request (read-only fields accepted and ignored).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RegistryReq {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    insecure: Option<bool>,
    credential: Option<CredentialReq>,
    status: Option<String>,
    creation_time: Option<String>,
    update_time: Option<String>,
}

/// Harbor's `RegistryUpdate`: every field optional, the rest kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryUpdate {
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    credential_type: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
    insecure: Option<bool>,
}

/// Harbor's `RegistryPing`: a saved registry (`id`) with fields overridden, or one given
/// in full.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryPing {
    id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    credential_type: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
    insecure: Option<bool>,
}

fn input_of(r: &Registry) -> RegistryInput {
    RegistryInput {
        name: r.doc.name.clone(),
        description: r.doc.description.clone(),
        url: r.doc.url.clone(),
        kind: r.doc.kind.clone(),
        insecure: r.doc.insecure,
        credential_type: r.doc.credential_type.clone(),
        access_key: r.doc.access_key.clone(),
        access_secret: None,
    }
}

/// What an update or a ping changes of a registry's fields (`None`: kept).
struct Changes {
    name: Option<String>,
    description: Option<String>,
    kind: Option<String>,
    url: Option<String>,
    insecure: Option<bool>,
    credential_type: Option<String>,
    access_key: Option<String>,
}

fn apply(input: &mut RegistryInput, c: Changes) {
    fn set<T>(field: &mut T, v: Option<T>) {
        if let Some(v) = v {
            *field = v;
        }
    }
    set(&mut input.name, c.name);
    set(&mut input.description, c.description);
    set(&mut input.kind, c.kind);
    set(&mut input.url, c.url);
    set(&mut input.insecure, c.insecure);
    set(&mut input.credential_type, c.credential_type);
    set(&mut input.access_key, c.access_key);
}

async fn registry(state: &AppState, raw: &str) -> Result<Registry, ApiError> {
    let id = parse_id(raw, "id")?;
    state
        .replication
        .registries
        .get(id)
        .await
        .map_err(registry_error)?
        .ok_or_else(|| not_found(format!("registry {id} not found")))
}

pub async fn list_registries(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "list")?;
    let q = ListQuery::parse(uri.query())?;
    let mut all = state.replication.registries.list().await.map_err(registry_error)?;
    // Harbor's `q=name=~x` (and the deprecated `name=`).
    let name = match q.term("name") {
        Some(Match::Exact(n)) => Some((n.clone(), true)),
        Some(Match::Fuzzy(n)) => Some((n.clone(), false)),
        _ => q.param("name").map(|n| (n.to_owned(), false)),
    };
    if let Some((n, exact)) = name {
        all.retain(|r| if exact { r.doc.name == n } else { r.doc.name.contains(&n) });
    }
    let pg = q.store_page();
    let total = all.len() as u64;
    let body: Vec<RegistryResp> =
        all.iter().skip(pg.offset() as usize).take(pg.page_size as usize).map(registry_resp).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn create_registry(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Body(req): Body<RegistryReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "create")?;
    let cred = req.credential.unwrap_or_default();
    let input = RegistryInput {
        name: req.name.unwrap_or_default(),
        description: req.description.unwrap_or_default(),
        url: req.url.unwrap_or_default(),
        kind: req.kind.unwrap_or_default(),
        insecure: req.insecure.unwrap_or(false),
        credential_type: cred.kind.unwrap_or_default(),
        access_key: cred.access_key.unwrap_or_default(),
        access_secret: cred.access_secret,
    };
    let id = state.replication.registries.create(&input).await.map_err(registry_error)?;
    audit(&state, &caller, 0, "create", "registry", &input.name).await;
    Ok(created(&format!("{}/{id}", uri.path().trim_end_matches('/'))))
}

pub async fn get_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "read")?;
    Ok(json(StatusCode::OK, &registry_resp(&registry(&state, &raw).await?)))
}

pub async fn update_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Body(req): Body<RegistryUpdate>,
) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "update")?;
    let r = registry(&state, &raw).await?;
    let mut input = input_of(&r);
    apply(
        &mut input,
        Changes {
            name: req.name,
            description: req.description,
            kind: None,
            url: req.url,
            insecure: req.insecure,
            credential_type: req.credential_type,
            access_key: req.access_key,
        },
    );
    // The UI sends the mask back when the secret is unchanged.
    input.access_secret = req.access_secret.filter(|s| s != MASK);
    state.replication.registries.update(r.id, &input).await.map_err(registry_error)?;
    audit(&state, &caller, 0, "update", "registry", &input.name).await;
    Ok(ok())
}

pub async fn delete_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "delete")?;
    let r = registry(&state, &raw).await?;
    let users = state.replication.policies_using(r.id).await.map_err(store)?;
    if !users.is_empty() {
        let names: Vec<_> = users.iter().map(|p| p.policy.name.as_str()).collect();
        return Err(precondition(format!(
            "registry {} is used by replication policies ({}); delete or change them first",
            r.id,
            names.join(", ")
        )));
    }
    let (projects, _) =
        state.auth.identity.list_projects(&Default::default(), &super::query::ALL).await.map_err(store)?;
    let proxies: Vec<&str> =
        projects.iter().filter(|p| super::projects::registry_id(p) == Some(r.id)).map(|p| p.name.as_str()).collect();
    if !proxies.is_empty() {
        return Err(precondition(format!(
            "registry {} is used by proxy cache projects ({}); delete them first",
            r.id,
            proxies.join(", ")
        )));
    }
    state.replication.registries.delete(r.id).await.map_err(registry_error)?;
    audit(&state, &caller, 0, "delete", "registry", &r.doc.name).await;
    Ok(ok())
}

pub async fn ping_registry(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<RegistryPing>,
) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "create")?;
    let saved = match req.id {
        Some(id) if id > 0 => Some(registry(&state, &id.to_string()).await?),
        _ => None,
    };
    let mut input = saved.as_ref().map(input_of).unwrap_or_default();
    if input.name.is_empty() {
        input.name = "ping".into();
    }
    apply(
        &mut input,
        Changes {
            name: None,
            description: None,
            kind: req.kind,
            url: req.url,
            insecure: req.insecure,
            credential_type: req.credential_type,
            access_key: req.access_key,
        },
    );
    input.access_secret = match (req.access_secret.filter(|s| s != MASK), &saved) {
        (Some(s), _) => Some(s),
        // A saved registry pinged without a new secret uses its stored one.
        (None, Some(r)) => match state.replication.registries.endpoint(r).map_err(registry_error)?.credential {
            berth_remote::Credential::Basic { password, .. } => Some(password),
            _ => None,
        },
        (None, None) => None,
    };
    let adapter = adapter_for(&input, state.replication.timeout).map_err(registry_error)?;
    let result = adapter.health().await;
    if let Some(r) = &saved
        && let Err(e) = state.replication.registries.set_status(r.id, result.is_ok()).await
    {
        tracing::warn!(registry = r.id, error = %e, "could not record a registry's health");
    }
    match result {
        Ok(()) => Ok(ok()),
        Err(e) => Err(bad_request(format!("failed to ping the registry {}: {e}", input.url.trim()))),
    }
}

pub async fn registry_info(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "registry", "read")?;
    let id = parse_id(&raw, "id")?;
    // Harbor answers for its own registry (id 0) too.
    let kind = if id == 0 {
        AdapterKind::Harbor
    } else {
        let r = registry(&state, &raw).await?;
        AdapterKind::parse(&r.doc.kind)
            .ok_or_else(|| ApiError::internal_error(format!("registry {id} has an unknown type")))?
    };
    let mut info = serde_json::to_value(kind.info()).map_err(|e| ApiError::internal_error(e.to_string()))?;
    if id == 0 {
        info["supported_triggers"] = json!(["manual", "scheduled", "event_based"]);
    }
    Ok(json(StatusCode::OK, &info))
}

pub async fn adapters(caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "replication-adapter", "list")?;
    let names: Vec<&str> = AdapterKind::ALL.iter().map(|k| k.name()).collect();
    Ok(json(StatusCode::OK, &names))
}

pub async fn adapter_infos(caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "replication-adapter", "list")?;
    let infos: Map<String, Value> = AdapterKind::ALL.iter().map(|k| (k.name().to_owned(), k.provider_info())).collect();
    Ok(json(StatusCode::OK, &infos))
}

// --- policies ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RegistryRef {
    id: Option<i64>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Harbor's `ReplicationPolicy` in a request (read-only fields accepted and ignored).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PolicyReq {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    src_registry: Option<Value>,
    dest_registry: Option<Value>,
    dest_namespace: Option<String>,
    dest_namespace_replace_count: Option<i32>,
    trigger: Option<Value>,
    filters: Option<Value>,
    replicate_deletion: Option<bool>,
    /// Deprecated alias of `replicate_deletion`.
    deletion: Option<bool>,
    #[serde(rename = "override")]
    override_: Option<bool>,
    enabled: Option<bool>,
    speed: Option<i32>,
    copy_by_chunk: Option<bool>,
    single_active_replication: Option<bool>,
    creation_time: Option<String>,
    update_time: Option<String>,
}

/// `{"id": n}` (or null: this registry).
fn registry_id(v: &Option<Value>, field: &str) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Object(o)) => match o.get("id") {
            None | Some(Value::Null) => Ok(0),
            Some(id) => id.as_i64().ok_or_else(|| bad_request(format!("{field}.id: must be an integer"))),
        },
        Some(_) => Err(bad_request(format!("{field}: must be an object with the registry's id"))),
    }
}

async fn policy_of(state: &AppState, caller: &Caller, req: PolicyReq, id: i64) -> Result<Policy, ApiError> {
    let trigger = match req.trigger {
        None | Some(Value::Null) => Default::default(),
        Some(v) => serde_json::from_value(v).map_err(|e| bad_request(format!("trigger: {e}")))?,
    };
    let filters = match req.filters {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v).map_err(|e| bad_request(format!("filters: {e}")))?,
    };
    let p = Policy {
        name: req.name.unwrap_or_default(),
        description: req.description.unwrap_or_default(),
        creator: caller.0.name().to_string(),
        src_registry_id: registry_id(&req.src_registry, "src_registry")?,
        dest_registry_id: registry_id(&req.dest_registry, "dest_registry")?,
        dest_namespace: req.dest_namespace.unwrap_or_default(),
        dest_namespace_replace_count: req.dest_namespace_replace_count.unwrap_or(-1),
        trigger,
        filters,
        replicate_deletion: req.replicate_deletion.or(req.deletion).unwrap_or(false),
        r#override: req.override_.unwrap_or(false),
        enabled: req.enabled.unwrap_or(true),
        speed: req.speed.unwrap_or(-1),
        copy_by_chunk: req.copy_by_chunk.unwrap_or(false),
        single_active_replication: req.single_active_replication.unwrap_or(false),
    };
    p.validate().map_err(|e| bad_request(e.to_string()))?;
    for (field, rid) in [("src_registry", p.src_registry_id), ("dest_registry", p.dest_registry_id)] {
        if rid != 0 && state.replication.registries.get(rid).await.map_err(registry_error)?.is_none() {
            return Err(bad_request(format!("{field}: registry {rid} does not exist")));
        }
    }
    if let Some(other) = state.replication.policy_named(&p.name, id).await.map_err(store)? {
        return Err(conflict(format!("name: a replication policy named {:?} already exists (id {other})", p.name)));
    }
    Ok(p)
}

/// Keeps the policy's schedule in step with its trigger: a scheduled, enabled policy has
/// one (carrying the policy, so that firing needs no lookup), any other none.
async fn sync_schedule(state: &AppState, id: i64, p: &Policy) -> Result<(), ApiError> {
    if p.enabled && p.trigger.kind == "scheduled" {
        let cron = CronExpr::parse(&p.trigger.trigger_settings.cron)
            .map_err(|e| bad_request(format!("trigger.trigger_settings.cron: {e}")))?;
        let args = FlowArgs { policy_id: id, policy: p.clone(), event: None };
        let s = CronSchedule {
            vendor_type: VENDOR_TYPE,
            vendor_id: id,
            cron_type: "Custom",
            cron: &cron,
            args: serde_json::to_string(&args).map_err(|e| ApiError::internal_error(e.to_string()))?,
            field: "trigger.trigger_settings.cron",
        };
        schedules::put(state, s).await?;
    } else {
        state.jobs.store().delete_schedule(VENDOR_TYPE, id).await.map_err(store)?;
    }
    Ok(())
}

async fn registry_view(state: &AppState, h: &HeaderMap, id: i64) -> Value {
    let r = if id == 0 {
        Some(local_resp(state, h))
    } else {
        state.replication.registries.get(id).await.ok().flatten().map(|r| registry_resp(&r))
    };
    serde_json::to_value(r).unwrap_or(Value::Null)
}

async fn policy_resp(state: &AppState, h: &HeaderMap, p: &StoredReplicationPolicy) -> Value {
    let pol = &p.policy;
    json!({
        "id": p.id,
        "name": pol.name,
        "description": pol.description,
        "src_registry": registry_view(state, h, pol.src_registry_id).await,
        "dest_registry": registry_view(state, h, pol.dest_registry_id).await,
        "dest_namespace": pol.dest_namespace,
        "dest_namespace_replace_count": pol.dest_namespace_replace_count,
        "trigger": pol.trigger,
        "filters": pol.filters,
        "replicate_deletion": pol.replicate_deletion,
        "deletion": pol.replicate_deletion,
        "override": pol.r#override,
        "enabled": pol.enabled,
        "speed": pol.speed,
        "copy_by_chunk": pol.copy_by_chunk,
        "single_active_replication": pol.single_active_replication,
        "creation_time": time(p.created_at),
        "update_time": time(p.updated_at),
    })
}

async fn policy(state: &AppState, raw: &str) -> Result<StoredReplicationPolicy, ApiError> {
    let id = parse_id(raw, "id")?;
    state
        .replication
        .policy(id)
        .await
        .map_err(store)?
        .ok_or_else(|| not_found(format!("replication policy {id} not found")))
}

pub async fn list_policies(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication-policy", "list")?;
    let q = ListQuery::parse(uri.query())?;
    let mut all = state.replication.list_policies().await.map_err(store)?;
    let name = match q.term("name") {
        Some(Match::Exact(n)) => Some((n.clone(), true)),
        Some(Match::Fuzzy(n)) => Some((n.clone(), false)),
        _ => q.param("name").map(|n| (n.to_owned(), false)),
    };
    if let Some((n, exact)) = name {
        all.retain(|p| if exact { p.policy.name == n } else { p.policy.name.contains(&n) });
    }
    let pg = q.store_page();
    let total = all.len() as u64;
    let mut body = Vec::new();
    for p in all.iter().skip(pg.offset() as usize).take(pg.page_size as usize) {
        body.push(policy_resp(&state, &h, p).await);
    }
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn create_policy(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Body(req): Body<PolicyReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication-policy", "create")?;
    let p = policy_of(&state, &caller, req, 0).await?;
    let id = state.replication.create_policy(&p).await.map_err(store)?;
    if let Err(e) = sync_schedule(&state, id, &p).await {
        // No half-made policy: without its schedule it would never run.
        let _ = state.replication.delete_policy(id).await;
        return Err(e);
    }
    audit(&state, &caller, 0, "create", "replication_policy", &p.name).await;
    Ok(created(&format!("{}/{id}", uri.path().trim_end_matches('/'))))
}

pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    h: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication-policy", "read")?;
    let p = policy(&state, &raw).await?;
    Ok(json(StatusCode::OK, &policy_resp(&state, &h, &p).await))
}

pub async fn update_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Body(req): Body<PolicyReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication-policy", "update")?;
    let old = policy(&state, &raw).await?;
    let p = policy_of(&state, &caller, req, old.id).await?;
    let p = Policy { creator: old.policy.creator.clone(), ..p };
    sync_schedule(&state, old.id, &p).await?;
    if !state.replication.update_policy(old.id, &p).await.map_err(store)? {
        return Err(not_found(format!("replication policy {} not found", old.id)));
    }
    audit(&state, &caller, 0, "update", "replication_policy", &p.name).await;
    Ok(ok())
}

pub async fn delete_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication-policy", "delete")?;
    let p = policy(&state, &raw).await?;
    if state.replication.running(&state.jobs, p.id).await.map_err(store)? {
        return Err(precondition(format!("replication policy {} has an execution in progress; stop it first", p.id)));
    }
    let entry = Deleted { project_id: 0, resource_type: "replication_policy", resource: &p.policy.name };
    schedules::delete_policy(&state, &caller, VENDOR_TYPE, p.id, state.replication.delete_policy(p.id), entry).await?;
    Ok(ok())
}

// --- executions ---

/// Harbor's `StartReplicationExecution`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartReq {
    policy_id: Option<i64>,
}

fn replication_status(harbor: &str) -> &'static str {
    match harbor {
        "Pending" | "Running" => "InProgress",
        "Success" => "Succeed",
        "Error" => "Failed",
        "Stopped" => "Stopped",
        _ => "InProgress",
    }
}

/// Harbor's `ReplicationExecution`. The planning task is not one of Harbor's tasks: the
/// counts are over copy tasks, and a planning failure is the execution's `status_text`.
async fn execution_resp(state: &AppState, e: &Execution) -> Result<Value, ApiError> {
    let tasks = state.jobs.store().execution_tasks(e.id).await.map_err(store)?;
    let copies: Vec<&Job> = tasks.iter().filter(|t| t.kind != FLOW).collect();
    let count = |s: JobState| copies.iter().filter(|t| t.state == s).count();
    let status_text = tasks
        .iter()
        .filter(|t| t.state == JobState::Dead || (t.kind == FLOW && t.state == JobState::Queued && t.attempt > 0))
        .find_map(|t| t.last_error.clone())
        .unwrap_or_default();
    Ok(json!({
        "id": e.id,
        "policy_id": e.vendor_id,
        "status": replication_status(e.counts.harbor_status()),
        "trigger": match e.trigger.as_str() {
            "SCHEDULE" => "scheduled",
            "EVENT" => "event_based",
            _ => "manual",
        },
        "start_time": time(e.created_at / 1000),
        "end_time": time_or_zero(e.ended_at.map(|t| t / 1000)),
        "status_text": status_text,
        "total": copies.len(),
        "failed": count(JobState::Dead),
        "succeed": count(JobState::Succeeded),
        "in_progress": count(JobState::Running) + count(JobState::Queued),
        "stopped": count(JobState::Cancelled),
    }))
}

async fn execution(state: &AppState, raw: &str) -> Result<Execution, ApiError> {
    let id = parse_id(raw, "id")?;
    match state.jobs.store().execution(id).await.map_err(store)? {
        Some(e) if e.vendor_type == VENDOR_TYPE => Ok(e),
        _ => Err(not_found(format!("replication execution {id} not found"))),
    }
}

pub async fn start_execution(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Body(req): Body<StartReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication", "create")?;
    let id = req.policy_id.ok_or_else(|| bad_request("policy_id: is required"))?;
    let exec = state.replication.start(&state.jobs, id, "MANUAL").await.map_err(|e| match e {
        StartError::NotFound(_) => not_found(e.to_string()),
        StartError::Disabled(_) => precondition(e.to_string()),
        StartError::Busy(_) => precondition(e.to_string()),
        StartError::Store(e) => store(e),
    })?;
    Ok(created(&format!("{}/{exec}", uri.path().trim_end_matches('/'))))
}

pub async fn list_executions(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "replication", "list")?;
    let q = ListQuery::parse(uri.query())?;
    let policy = match q.param("policy_id") {
        Some(v) => Some(parse_id(v, "policy_id")?),
        None => None,
    };
    let pg = q.store_page();
    let (execs, total) =
        state.jobs.store().executions(VENDOR_TYPE, policy, pg.offset(), pg.page_size).await.map_err(store)?;
    let mut body = Vec::new();
    for e in &execs {
        body.push(execution_resp(&state, e).await?);
    }
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn get_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication", "read")?;
    let e = execution(&state, &raw).await?;
    Ok(json(StatusCode::OK, &execution_resp(&state, &e).await?))
}

pub async fn stop_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication", "create")?;
    let e = execution(&state, &raw).await?;
    // Queued tasks end at once; running ones learn it at their next heartbeat and stop
    // mid-transfer. Stopping a finished execution changes nothing.
    state.jobs.store().stop_execution(e.id).await.map_err(store)?;
    audit(&state, &caller, 0, "stop", "replication_execution", &e.id.to_string()).await;
    Ok(ok())
}

/// Harbor's `ReplicationTask`. A run's first task is its planning (operation `plan`,
/// which lists the source and says which repositories it chose); one copy (or deletion)
/// task per repository follows.
fn task_resp(t: &Job) -> Value {
    let (src, dst, operation) = if t.kind == FLOW {
        let name = serde_json::from_str::<FlowArgs>(&t.args).map(|a| a.policy.name).unwrap_or_default();
        (name, String::new(), "plan".to_owned())
    } else {
        match serde_json::from_str::<berth_replication::copy::CopyArgs>(&t.args) {
            Ok(a) => {
                let (s, d) = a.resources();
                (s, d, a.operation)
            }
            Err(_) => (String::new(), String::new(), "copy".into()),
        }
    };
    json!({
        "id": t.id,
        "execution_id": t.execution_id,
        "resource_type": if t.kind == FLOW { "" } else { "artifact" },
        "src_resource": src,
        "dst_resource": dst,
        "operation": operation,
        "status": berth_replication::task_status(t.state),
        "job_id": t.id.to_string(),
        "start_time": time_or_zero(t.started_at.map(|v| v / 1000)),
        "end_time": time_or_zero(t.finished_at.map(|v| v / 1000)),
        "status_message": t.last_error.clone().unwrap_or_default(),
    })
}

pub async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication", "list")?;
    let e = execution(&state, &raw).await?;
    let q = ListQuery::parse(uri.query())?;
    let status = q.param("status").map(str::to_owned);
    let tasks: Vec<Job> = state
        .jobs
        .store()
        .execution_tasks(e.id)
        .await
        .map_err(store)?
        .into_iter()
        .filter(|t| t.kind == COPY || t.kind == FLOW)
        .filter(|t| status.as_deref().is_none_or(|s| berth_replication::task_status(t.state) == s))
        .collect();
    let pg = q.store_page();
    let total = tasks.len() as u64;
    let body: Vec<Value> = tasks.iter().skip(pg.offset() as usize).take(pg.page_size as usize).map(task_resp).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    require_system(&caller, "replication", "read")?;
    let e = execution(&state, &raw).await?;
    let task_id = parse_id(&task, "task_id")?;
    match state.jobs.store().job(task_id).await.map_err(store)? {
        Some(j) if j.execution_id == e.id => Ok(plain(log_text(&state, j.id).await?)),
        _ => Err(not_found(format!("task {task_id} of replication execution {} not found", e.id))),
    }
}
