//! `/projects/{project}/immutabletagrules` (goharbor/harbor
//! `src/server/v2.0/handler/immutable.go`): a project's immutable-tag rules, Harbor's
//! `ImmutableRule` JSON validated by `berth_core::policy` and kept in the policy store.
//! Enforcement is in `crate::immutable`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_core::identity::rbac::{Action, Resource};
use berth_core::policy::ImmutableRule;
use berth_core::store::identity::Project;
use berth_core::store::policies::IMMUTABLE_TAG;

use super::errors::{bad_request, conflict, location, not_found, store};
use super::json::Body;
use super::{Caller, ProjectRef, audit, json, ok, parse_id, require_project};
use crate::AppState;
use crate::error::ApiError;

/// Harbor's limit of rules per project.
const MAX_RULES: usize = 15;

async fn project(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    h: &HeaderMap,
    action: Action,
) -> Result<Project, ApiError> {
    require_project(state, caller, &ProjectRef::parse(raw, h), Resource::ImmutableTag, action).await
}

/// The project's rules as stored (ids filled in), oldest first.
async fn rules(state: &AppState, project_id: i64) -> Result<Vec<ImmutableRule>, ApiError> {
    let stored = state.policies.policies(IMMUTABLE_TAG, project_id).await.map_err(store)?;
    Ok(stored
        .into_iter()
        .filter_map(|p| {
            let mut r: ImmutableRule = serde_json::from_str(&p.body).ok()?;
            r.id = p.id;
            Some(r)
        })
        .collect())
}

/// Validates a rule from a request; `id` is the store's to give.
fn validated(mut r: ImmutableRule) -> Result<ImmutableRule, ApiError> {
    r.id = 0;
    r.compile().map_err(|e| bad_request(e.to_string()))?;
    Ok(r)
}

/// Two rules that select the same tags the same way are one rule (Harbor: 409).
fn same_selection(a: &ImmutableRule, b: &ImmutableRule) -> bool {
    a.tag_selectors == b.tag_selectors && a.scope_selectors == b.scope_selectors
}

fn body(r: &ImmutableRule) -> Result<String, ApiError> {
    serde_json::to_string(r).map_err(|e| ApiError::internal_error(format!("encoding a rule: {e}")))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::List).await?;
    let all = rules(&state, p.id).await?;
    let mut res = json(StatusCode::OK, &all);
    res.headers_mut().insert("x-total-count", all.len().into());
    Ok(res)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    h: HeaderMap,
    uri: Uri,
    Body(req): Body<ImmutableRule>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Create).await?;
    let rule = validated(req)?;
    let existing = rules(&state, p.id).await?;
    if existing.len() >= MAX_RULES {
        return Err(bad_request(format!("a project has at most {MAX_RULES} immutable rules")));
    }
    if existing.iter().any(|e| same_selection(e, &rule)) {
        return Err(conflict("an immutable rule with the same selectors already exists"));
    }
    let id = state.policies.create_policy(IMMUTABLE_TAG, p.id, &body(&rule)?).await.map_err(store)?;
    audit(&state, &caller, p.id, "create", "immutable_rule", &format!("{} rule {id}", p.name)).await;
    let path = format!("{}/{id}", uri.path().trim_end_matches('/'));
    Ok((StatusCode::CREATED, [location(&path)]).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, rule_id)): Path<(String, String)>,
    h: HeaderMap,
    Body(req): Body<ImmutableRule>,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Update).await?;
    let id = parse_id(&rule_id, "immutable_rule_id")?;
    let rule = validated(req)?;
    let existing = rules(&state, p.id).await?;
    if !existing.iter().any(|e| e.id == id) {
        return Err(not_found(format!("immutable rule {id} not found in project {}", p.name)));
    }
    if existing.iter().any(|e| e.id != id && same_selection(e, &rule)) {
        return Err(conflict("an immutable rule with the same selectors already exists"));
    }
    state.policies.update_policy(IMMUTABLE_TAG, id, &body(&rule)?).await.map_err(store)?;
    audit(&state, &caller, p.id, "update", "immutable_rule", &format!("{} rule {id}", p.name)).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, rule_id)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let p = project(&state, &caller, &raw, &h, Action::Delete).await?;
    let id = parse_id(&rule_id, "immutable_rule_id")?;
    if !rules(&state, p.id).await?.iter().any(|e| e.id == id) {
        return Err(not_found(format!("immutable rule {id} not found in project {}", p.name)));
    }
    state.policies.delete_policy(IMMUTABLE_TAG, id).await.map_err(store)?;
    audit(&state, &caller, p.id, "delete", "immutable_rule", &format!("{} rule {id}", p.name)).await;
    Ok(ok())
}
