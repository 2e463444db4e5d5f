//! Harbor's CVE export API (goharbor/harbor `src/server/v2.0/handler/scanexport.go`):
//! `POST /export/cve`, `GET /export/cve/executions`, `GET /export/cve/execution/{id}`,
//! `GET /export/cve/download/{id}`. Permissions are the project's `export-cve`
//! (create to start, read to look and download), and only the user who asked sees an
//! export. The job and the CSV's storage are [`berth_scanning::cve_export`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::access::Principal;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::jobs::{Execution, NewExecution, NewJob};
use berth_core::store::labels::LabelScope;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::time;
use super::errors::{bad_request, forbidden, not_found, store};
use super::json::Body;
use super::{Caller, ProjectRef, audit, json, parse_id, require_project};
use crate::AppState;
use crate::error::ApiError;
use berth_scanning::cve_export::{self, DATA_TYPE, ExportRequest, VENDOR_TYPE};

/// Harbor's `ScanDataExportRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportReq {
    #[serde(default)]
    job_name: Option<String>,
    #[serde(default)]
    projects: Vec<i64>,
    #[serde(default)]
    labels: Vec<i64>,
    #[serde(default)]
    repositories: Option<String>,
    #[serde(default, rename = "cveIds")]
    cve_ids: Option<String>,
    #[serde(default)]
    tags: Option<String>,
}

/// The caller as the owner of exports: users only (Harbor looks the name up as a user).
fn owner(caller: &Caller) -> Result<(i64, String), ApiError> {
    caller.require_authenticated()?;
    match &caller.0 {
        Principal::User { id, .. } => Ok((*id, caller.0.name().to_string())),
        _ => Err(forbidden(format!("{} is not a user; CVE exports belong to users", caller.0.name()))),
    }
}

/// `POST /export/cve` with `X-Scan-Data-Type`: starts an export of one project; 200 with
/// `{"id": execution id}`.
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(req): Body<ExportReq>,
) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let data_type = headers.get("x-scan-data-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if data_type != DATA_TYPE {
        return Err(bad_request(format!(
            "X-Scan-Data-Type: unsupported MIME type {data_type:?}; only {DATA_TYPE:?} can be exported"
        )));
    }
    let &[project_id] = req.projects.as_slice() else {
        return Err(bad_request(format!("projects: exactly one project can be exported, got {:?}", req.projects)));
    };
    for (field, v) in [("repositories", &req.repositories), ("tags", &req.tags), ("cveIds", &req.cve_ids)] {
        if v.as_deref().is_some_and(|s| s.contains(' ')) {
            return Err(bad_request(format!("{field}: remove the spaces from {:?}", v.as_deref().unwrap_or(""))));
        }
    }
    let project =
        require_project(&state, &caller, &ProjectRef::Id(project_id), Resource::ExportCve, Action::Create).await?;
    let (user_id, user_name) = owner(&caller)?;
    for (i, l) in req.labels.iter().enumerate() {
        let ok = state.labels.label(*l).await.map_err(store)?.is_some_and(|l| match l.scope {
            LabelScope::Global => true,
            LabelScope::Project(p) => p == project.id,
        });
        if !ok {
            return Err(bad_request(format!("labels[{i}]: label {l} is not a label of project {}", project.name)));
        }
    }
    let request = ExportRequest {
        job_name: req.job_name.unwrap_or_default(),
        user_id,
        user_name,
        project_id: project.id,
        labels: req.labels,
        repositories: req.repositories.unwrap_or_default(),
        cve_ids: req.cve_ids.unwrap_or_default(),
        tags: req.tags.unwrap_or_default(),
    };
    request.scope().map_err(|e| bad_request(e.to_string()))?;
    let args = serde_json::to_string(&request).map_err(|e| ApiError::internal_error(e.to_string()))?;
    let exec = NewExecution {
        vendor_type: VENDOR_TYPE.into(),
        vendor_id: user_id,
        trigger: "MANUAL".into(),
        extra_attrs: args.clone(),
    };
    let id = state.jobs.start(&exec, &[NewJob::new(VENDOR_TYPE, args)]).await.map_err(store)?;
    audit(&state, &caller, project.id, "create", "export-cve", &format!("CVE export {id} of {}", project.name)).await;
    Ok(json(StatusCode::OK, &json!({"id": id})))
}

/// Harbor's `ScanDataExportExecution`.
async fn execution_json(state: &AppState, e: &Execution, r: &ExportRequest) -> Result<Value, ApiError> {
    let status = e.counts.harbor_status();
    let mut status_text = String::new();
    if status == "Error" {
        for t in state.jobs.store().execution_tasks(e.id).await.map_err(store)? {
            if let Some(err) = t.last_error {
                status_text = err;
            }
        }
        if status_text.is_empty() {
            status_text = "Please contact the system administrator to check the logs of jobservice.".into();
        }
    }
    let present = cve_export::present(state.policies.as_ref(), r.project_id, e.id).await.map_err(store)?;
    Ok(json!({
        "id": e.id,
        "user_id": r.user_id,
        "user_name": r.user_name,
        "status": status,
        "status_text": status_text,
        "trigger": e.trigger,
        "start_time": time(e.created_at / 1000),
        "end_time": time(e.ended_at.unwrap_or(0) / 1000),
        "file_present": present,
    }))
}

/// An export of the caller's, which the caller may still read in its project.
async fn own_execution(state: &AppState, caller: &Caller, raw: &str) -> Result<(Execution, ExportRequest), ApiError> {
    caller.require_authenticated()?;
    let id = parse_id(raw, "execution_id")?;
    let found = state.jobs.store().execution(id).await.map_err(store)?.filter(|e| e.vendor_type == VENDOR_TYPE);
    let Some((e, r)) = found.and_then(|e| cve_export::request_of(&e.extra_attrs).map(|r| (e, r))) else {
        return Err(not_found(format!("CVE export execution {id} not found")));
    };
    require_project(state, caller, &ProjectRef::Id(r.project_id), Resource::ExportCve, Action::Read).await?;
    if caller.user_id() != Some(r.user_id) {
        return Err(forbidden(format!("CVE export execution {id} belongs to another user")));
    }
    Ok((e, r))
}

/// `GET /export/cve/executions`: the caller's exports, newest first.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let mut items = Vec::new();
    if let Some(uid) = caller.user_id() {
        let (execs, _) = state.jobs.store().executions(VENDOR_TYPE, Some(uid), 0, 1000).await.map_err(store)?;
        let mut checked = std::collections::HashSet::new();
        for e in &execs {
            let Some(r) = cve_export::request_of(&e.extra_attrs) else { continue };
            // Harbor refuses the whole list when one of its projects is no longer readable.
            if checked.insert(r.project_id) {
                require_project(&state, &caller, &ProjectRef::Id(r.project_id), Resource::ExportCve, Action::Read)
                    .await?;
            }
            items.push(execution_json(&state, e, &r).await?);
        }
    }
    Ok(json(StatusCode::OK, &json!({"items": items})))
}

/// `GET /export/cve/execution/{execution_id}`.
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (e, r) = own_execution(&state, &caller, &id).await?;
    Ok(json(StatusCode::OK, &execution_json(&state, &e, &r).await?))
}

/// `GET /export/cve/download/{execution_id}`: the CSV, once; Harbor removes the file after
/// a download, and so does Berth (`file_present` turns false).
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (e, r) = own_execution(&state, &caller, &id).await?;
    let csv = cve_export::csv(state.policies.as_ref(), r.project_id, e.id).await.map_err(store)?.ok_or_else(|| {
        not_found(format!("CVE export {} has no file (not finished, failed, or downloaded already)", e.id))
    })?;
    cve_export::remove(state.policies.as_ref(), r.project_id, e.id).await.map_err(store)?;
    let disposition = format!("attachment; filename=\"scandata_export_{}.csv\"", e.id);
    Ok(([(header::CONTENT_TYPE, "text/csv".to_string()), (header::CONTENT_DISPOSITION, disposition)], csv)
        .into_response())
}
