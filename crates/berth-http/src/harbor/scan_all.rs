//! Harbor's scan all (goharbor/harbor `src/server/v2.0/handler/scan_all.go`):
//! `GET|POST|PUT /system/scanAll/schedule`, `POST /system/scanAll/stop`,
//! `GET /scans/all/metrics` and `GET /scans/schedule/metrics`, for holders of the system
//! permission `scan-all`. Schedules and manual runs go through [`system_jobs`] like GC's;
//! the run itself is [`berth_scanning::scan_all`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::errors::{bad_request, conflict, precondition, store};
use super::json::Body;
use super::system_jobs::{self, ScheduleReq, SystemJob};
use super::{Caller, audit, json, require_system};
use crate::AppState;
use crate::error::ApiError;
use berth_scanning::scan_all::{VENDOR_TYPE, latest, stats, stop_children};

const SCAN_ALL: SystemJob = SystemJob {
    vendor_type: VENDOR_TYPE,
    resource: "scan-all",
    base: "/system/scanAll",
    audit_name: "scan all",
    // Harbor's scan all takes no parameters; what a client sends is ignored.
    params: |_| Ok(json!({})),
    max_attempts: 3,
};

pub async fn get_schedule(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "scan-all", "read")?;
    let s = state.jobs.store().schedule(VENDOR_TYPE, 0).await.map_err(store)?;
    Ok(json(StatusCode::OK, &system_jobs::schedule_model(s.as_ref())))
}

/// `POST`: `Manual` scans everything now (409 while a scan all is still going on); a
/// periodic type creates the schedule (412 if there is one: change it with PUT); `None`
/// does nothing, as in Harbor.
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<ScheduleReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scan-all", "create")?;
    match req.kind() {
        None => return Err(bad_request("schedule is required")),
        Some("None") => return Ok(StatusCode::CREATED.into_response()),
        Some("Manual") => {
            let st = stats(state.jobs.store().as_ref(), None).await.map_err(store)?;
            if st.ongoing {
                return Err(conflict("a previous scan all job already exists, its status is Running"));
            }
        }
        Some(_) => {
            if state.jobs.store().schedule(VENDOR_TYPE, 0).await.map_err(store)?.is_some() {
                return Err(precondition(
                    "fail to set schedule for scan all as always had one, please delete it firstly then to re-schedule",
                ));
            }
        }
    }
    let mut res = system_jobs::apply_schedule(&state, &caller, req, &SCAN_ALL).await?;
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// `PUT`: a periodic type replaces the schedule, `None` removes it; `Manual` is refused.
pub async fn update_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<ScheduleReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scan-all", "update")?;
    if req.kind() == Some("Manual") {
        return Err(bad_request(
            "schedule.type: fail to update scan all schedule as wrong schedule type: Manual (use POST to scan now)",
        ));
    }
    system_jobs::apply_schedule(&state, &caller, req, &SCAN_ALL).await
}

/// `POST /system/scanAll/stop`: stops the latest scan all and every scan it started.
pub async fn stop(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "scan-all", "stop")?;
    let jobs = state.jobs.store();
    let exec = latest(jobs.as_ref(), None)
        .await
        .map_err(store)?
        .ok_or_else(|| bad_request("no scan all job is found currently"))?;
    jobs.stop_execution(exec.id).await.map_err(store)?;
    let n = stop_children(jobs.as_ref(), exec.id).await.map_err(store)?;
    audit(&state, &caller, 0, "update", "scan-all", &format!("scan all {} stopped ({n} scans)", exec.id)).await;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /scans/all/metrics`: the latest scan all's progress.
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "scan-all", "read")?;
    Ok(json(StatusCode::OK, &stats(state.jobs.store().as_ref(), None).await.map_err(store)?))
}

/// `GET /scans/schedule/metrics` (deprecated in Harbor): the latest scheduled one's.
pub async fn schedule_metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "scan-all", "read")?;
    Ok(json(StatusCode::OK, &stats(state.jobs.store().as_ref(), Some("SCHEDULE")).await.map_err(store)?))
}
