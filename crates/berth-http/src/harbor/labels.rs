//! `/labels[/{id}]` and `…/artifacts/{reference}/labels[/{label_id}]` (goharbor/harbor
//! `src/server/v2.0/handler/label.go`, `artifact.go` AddLabel/RemoveLabel).
//!
//! Global labels (scope `g`): anyone, even anonymous, may list them (Harbor's ListLabels
//! checks nothing for scope `g`); reading one by id, creating, changing and deleting them
//! take the system permission `label` (system administrators). Project labels (scope `p`):
//! the project's RBAC on `label`. Attaching is `artifact-label`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use berth_core::Reference;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::labels::{Label, LabelError, LabelFilter, LabelScope, LabelStore, LabelUpdate, NewLabel};

use super::dto::time;
use super::errors::{bad_request, conflict, not_found, store};
use super::json::Body;
use super::query::ListQuery;
use super::repositories::target;
use super::{Caller, ProjectRef, audit, created, json, ok, page, parse_id, require_project, require_system};
use crate::AppState;
use crate::error::ApiError;

/// Harbor's `Label` model.
#[derive(Debug, Serialize)]
pub struct LabelResp {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: &'static str,
    pub project_id: i64,
    pub creation_time: String,
    pub update_time: String,
    pub deleted: bool,
}

pub fn label_resp(l: &Label) -> LabelResp {
    LabelResp {
        id: l.id,
        name: l.name.clone(),
        description: l.description.clone(),
        color: l.color.clone(),
        scope: l.scope.code(),
        project_id: l.scope.project_id(),
        creation_time: time(l.creation_time),
        update_time: time(l.update_time),
        deleted: false,
    }
}

/// A `Label` in a request. Read-only fields (`id`, times, `deleted`) are accepted and ignored,
/// since clients send back what they read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LabelReq {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
    pub scope: Option<String>,
    pub project_id: Option<i64>,
    pub creation_time: Option<String>,
    pub update_time: Option<String>,
    pub deleted: Option<bool>,
}

/// `{"id": N}` (a whole `Label` is accepted too).
#[derive(Debug, Deserialize)]
pub struct AttachReq {
    pub id: Option<i64>,
}

const MAX_NAME: usize = 128;

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(bad_request("the label name is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(bad_request(format!("the label name is longer than {MAX_NAME} characters")));
    }
    Ok(())
}

fn scope_of(scope: Option<&str>, project_id: Option<i64>) -> Result<LabelScope, ApiError> {
    match scope.unwrap_or("g") {
        "g" => Ok(LabelScope::Global),
        "p" => match project_id {
            Some(id) if id > 0 => Ok(LabelScope::Project(id)),
            Some(id) => Err(bad_request(format!("invalid project_id {id}"))),
            None => Err(bad_request("project_id is required for project labels (scope p)")),
        },
        other => Err(bad_request(format!("invalid scope {other:?}: must be g or p"))),
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::List => "list",
        _ => "read",
    }
}

/// Whether the caller may do `action` on labels of `scope`. As in Harbor, anyone (even
/// anonymous) lists global labels, while reading one by id, like managing them, takes the
/// system `label` permission.
async fn allow(state: &AppState, caller: &Caller, scope: LabelScope, action: Action) -> Result<(), ApiError> {
    match scope {
        LabelScope::Global if action == Action::List => Ok(()),
        LabelScope::Global => require_system(caller, "label", action_name(action)),
        LabelScope::Project(id) => {
            require_project(state, caller, &ProjectRef::Id(id), Resource::Label, action).await.map(|_| ())
        }
    }
}

fn label_error(e: LabelError, what: impl FnOnce() -> String) -> ApiError {
    match e {
        LabelError::Conflict { field: "name", value } => {
            conflict(format!("a label named {value:?} already exists in this scope"))
        }
        LabelError::Conflict { .. } => conflict(what()),
        LabelError::NotFound => not_found(what()),
        LabelError::Store(e) => store(e),
    }
}

/// The label, if the caller may do `action` on it; 404 (401 for anonymous) if it does not exist.
async fn load(
    state: &AppState,
    caller: &Caller,
    s: &Arc<dyn LabelStore>,
    raw: &str,
    action: Action,
) -> Result<Label, ApiError> {
    let id = parse_id(raw, "id")?;
    match s.label(id).await.map_err(store)? {
        Some(l) => {
            allow(state, caller, l.scope, action).await?;
            Ok(l)
        }
        None => {
            caller.require_authenticated()?;
            Err(not_found(format!("label {id} not found")))
        }
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    let q = ListQuery::parse(uri.query())?;
    let project_id = match q.param("project_id") {
        Some(v) => {
            Some(v.parse::<i64>().map_err(|_| bad_request(format!("project_id must be an integer, got {v:?}")))?)
        }
        None => None,
    };
    let scope = scope_of(q.param("scope"), project_id)?;
    allow(&state, &caller, scope, Action::List).await?;
    let name = q.param("name").filter(|n| !n.is_empty()).map(str::to_owned);
    let (items, total) =
        s.list_labels(&LabelFilter { scope: Some(scope), name }, &q.store_page()).await.map_err(store)?;
    let body: Vec<LabelResp> = items.iter().map(label_resp).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Body(req): Body<LabelReq>,
) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    caller.require_authenticated()?;
    let name = req.name.unwrap_or_default();
    check_name(&name)?;
    let scope = scope_of(req.scope.as_deref(), req.project_id)?;
    allow(&state, &caller, scope, Action::Create).await?;
    let new = NewLabel {
        name,
        description: req.description.unwrap_or_default(),
        color: req.color.unwrap_or_default(),
        scope,
    };
    let l = s.create_label(&new).await.map_err(|e| label_error(e, || "label".into()))?;
    audit(&state, &caller, scope.project_id(), "create", "label", &l.name).await;
    Ok(created(&format!("{}/{}", uri.path().trim_end_matches('/'), l.id)))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    let l = load(&state, &caller, &s, &id, Action::Read).await?;
    Ok(json(StatusCode::OK, &label_resp(&l)))
}

/// Changes name, description and color; scope and project are fixed (a different one in
/// the body is a 400).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<LabelReq>,
) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    let l = load(&state, &caller, &s, &id, Action::Update).await?;
    if req.scope.as_deref().is_some_and(|sc| sc != l.scope.code())
        || req.project_id.is_some_and(|p| p != l.scope.project_id() && !(p == 0 && l.scope == LabelScope::Global))
    {
        return Err(bad_request("the scope and project of a label cannot be changed"));
    }
    if let Some(n) = &req.name {
        check_name(n)?;
    }
    let u = LabelUpdate { name: req.name, description: req.description, color: req.color };
    let l = s.update_label(l.id, &u).await.map_err(|e| label_error(e, || format!("label {} not found", l.id)))?;
    audit(&state, &caller, l.scope.project_id(), "update", "label", &l.name).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    let l = load(&state, &caller, &s, &id, Action::Delete).await?;
    s.delete_label(l.id).await.map_err(|e| label_error(e, || format!("label {} not found", l.id)))?;
    audit(&state, &caller, l.scope.project_id(), "delete", "label", &l.name).await;
    Ok(ok())
}

async fn artifact_digest(
    state: &AppState,
    t: &super::repositories::Target,
    raw: &str,
) -> Result<berth_core::digest::Digest, ApiError> {
    let r: Reference = raw.parse().map_err(|e| bad_request(format!("invalid reference {raw:?}: {e}")))?;
    let a = state.catalog.artifact(&t.repo, &r).await.map_err(store)?.ok_or_else(|| {
        not_found(format!("artifact {}{}{raw} not found", t.repo, if raw.contains(':') { '@' } else { ':' }))
    })?;
    Ok(a.digest)
}

/// `POST …/artifacts/{reference}/labels` with `{"id": N}`: 200; 404 for an unknown label,
/// 400 for another project's label, 409 if the artifact already has it.
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): Path<(String, String, String)>,
    Body(req): Body<AttachReq>,
) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    let t = target(&state, &caller, p, &r, Resource::ArtifactLabel, Action::Create).await?;
    let id = req.id.ok_or_else(|| bad_request("the label id is required"))?;
    let digest = artifact_digest(&state, &t, &reference).await?;
    let l = s.label(id).await.map_err(store)?.ok_or_else(|| not_found(format!("label {id} not found")))?;
    if let LabelScope::Project(pid) = l.scope
        && pid != t.project.id
    {
        return Err(bad_request(format!("label {id} belongs to another project")));
    }
    s.attach_label(&t.repo, &digest, id).await.map_err(|e| match e {
        LabelError::Conflict { .. } => conflict(format!("label {id} is already added to the artifact")),
        e => label_error(e, || format!("artifact {}@{digest} or label {id} not found", t.repo)),
    })?;
    audit(&state, &caller, t.project.id, "create", "artifact-label", &format!("{}@{digest}:{}", t.repo, l.name)).await;
    Ok(ok())
}

pub async fn detach(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference, label_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let s = state.labels.clone();
    let t = target(&state, &caller, p, &r, Resource::ArtifactLabel, Action::Delete).await?;
    let id = parse_id(&label_id, "label_id")?;
    let digest = artifact_digest(&state, &t, &reference).await?;
    s.detach_label(&t.repo, &digest, id)
        .await
        .map_err(|e| label_error(e, || format!("label {id} is not added to artifact {}@{digest}", t.repo)))?;
    audit(&state, &caller, t.project.id, "delete", "artifact-label", &format!("{}@{digest}:{id}", t.repo)).await;
    Ok(ok())
}
