//! `/projects/{project}/signature-trust` (Berth's, beside Harbor's project API): the keys
//! and certificates a project's signatures are verified against. GET is for those who may
//! read the project's metadata (maintainers, project admins), PUT (replace the whole
//! document) for those who may change it (project admins), like the content-trust
//! switches it gives meaning to. Kept in the policy store, kind `signature-trust`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_core::identity::rbac::{Action, Resource};
use berth_signature::trust::TrustDoc;

use super::errors::{bad_request, store};
use super::json::Body;
use super::{Caller, ProjectRef, audit, json, ok, require_project};
use crate::AppState;
use crate::error::ApiError;
use crate::pull_policy::{TRUST_KIND, load_trust};

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let p = require_project(&state, &caller, &ProjectRef::parse(&raw, &h), Resource::Metadata, Action::Read).await?;
    let (doc, _) = load_trust(&state, p.id).await.map_err(store)?;
    Ok(json(StatusCode::OK, &doc))
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    h: HeaderMap,
    Body(doc): Body<TrustDoc>,
) -> Result<Response, ApiError> {
    let p = require_project(&state, &caller, &ProjectRef::parse(&raw, &h), Resource::Metadata, Action::Update).await?;
    doc.compile().map_err(|e| bad_request(e.to_string()))?;
    let body = serde_json::to_string(&doc).map_err(|e| ApiError::internal_error(format!("encoding: {e}")))?;
    let stored = state.policies.policies(TRUST_KIND, p.id).await.map_err(store)?;
    match stored.last() {
        Some(existing) => {
            state.policies.update_policy(TRUST_KIND, existing.id, &body).await.map_err(store)?;
        }
        None => {
            state.policies.create_policy(TRUST_KIND, p.id, &body).await.map_err(store)?;
        }
    }
    state.pull_policy.forget(&p.name);
    audit(&state, &caller, p.id, "update", "signature-trust", &p.name).await;
    Ok(ok())
}
