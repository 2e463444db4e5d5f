//! CVE allowlists (goharbor/harbor `src/server/v2.0/handler/sys_cve_allowlist.go`,
//! `project.go`): the system's (`GET|PUT /system/CVEAllowlist`) and a project's (the
//! `cve_allowlist` of project create/update/get). The rules (validation, expiry, which
//! list a project uses) are `berth_core::cve_allowlist`.

use axum::extract::State;
use axum::response::Response;
use berth_core::cve_allowlist::{self, CveAllowlist, StoredAllowlist};
use serde_json::{Value, json};

use super::dto::{CveAllowlist as CveAllowlistReq, time};
use super::errors::{bad_request, store};
use super::json::Body;
use super::{Caller, audit, json, ok, require_system};
use crate::AppState;
use crate::error::ApiError;

/// Harbor's `CVEAllowlist` model.
pub fn to_json(a: &StoredAllowlist) -> Value {
    let mut v = json!({
        "id": a.id,
        "project_id": a.project_id,
        "items": a.list.items.iter().map(|id| json!({"cve_id": id})).collect::<Vec<_>>(),
        "creation_time": time(a.created_at),
        "update_time": time(a.updated_at),
    });
    if let Some(e) = a.list.expires_at {
        v["expires_at"] = json!(e);
    }
    v
}

/// A request's allowlist, validated; errors name the field under `prefix`
/// (`cve_allowlist.` in a project body, empty for the system's).
pub fn parse(req: &CveAllowlistReq, prefix: &str, project_id: i64) -> Result<CveAllowlist, ApiError> {
    if let Some(id) = req.project_id
        && id != 0
        && id != project_id
    {
        return Err(bad_request(format!("{prefix}project_id must be {project_id} but it's {id}")));
    }
    let ids: Vec<String> = req.items.iter().map(|i| i.cve_id.clone()).collect();
    CveAllowlist::new(req.expires_at, &ids).map_err(|e| bad_request(format!("{prefix}{e}")))
}

/// `GET /system/CVEAllowlist`: any signed-in caller.
pub async fn get_system(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let a = cve_allowlist::load(state.policies.as_ref(), 0).await.map_err(store)?;
    Ok(json(axum::http::StatusCode::OK, &to_json(&a)))
}

/// `PUT /system/CVEAllowlist`: replaces the system's list (Harbor checks the
/// `configuration` update permission: system administrators).
pub async fn put_system(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<CveAllowlistReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "configuration", "update")?;
    let list = parse(&req, "", 0)?;
    cve_allowlist::save(state.policies.as_ref(), 0, &list).await.map_err(store)?;
    // Projects reusing it see it within the pull-policy cache's 2 s everywhere; here at once.
    state.pull_policy.forget_all();
    audit(&state, &caller, 0, "update", "cve_allowlist", "system").await;
    Ok(ok())
}
