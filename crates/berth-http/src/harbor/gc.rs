//! `/system/gc`: Harbor's garbage collection, served by [`system_jobs`] with GC's
//! parameters (`delete_untagged`, `dry_run`, `workers` 1-5).

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use berth_gc::GcParams;
use berth_jobs::kinds;

use super::Caller;
use super::json::Body;
use super::system_jobs::{self, ScheduleReq, SystemJob};
use crate::AppState;
use crate::error::ApiError;

const GC: SystemJob = SystemJob {
    vendor_type: kinds::GARBAGE_COLLECTION,
    resource: "garbage-collection",
    base: "/system/gc",
    audit_name: "garbage collection",
    params: |m| GcParams::from_json(m).map(|p| serde_json::to_value(p).unwrap_or_default()),
    max_attempts: 3,
};

pub async fn list(State(s): State<AppState>, c: Caller, uri: Uri) -> Result<Response, ApiError> {
    system_jobs::list(&s, &c, &uri, &GC).await
}

pub async fn get(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    system_jobs::get(&s, &c, &id, &GC).await
}

pub async fn stop(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    system_jobs::stop(&s, &c, &id, &GC).await
}

pub async fn log(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    system_jobs::log(&s, &c, &id, &GC).await
}

pub async fn get_schedule(State(s): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    system_jobs::get_schedule(&s, &c, &GC).await
}

pub async fn create_schedule(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<ScheduleReq>,
) -> Result<Response, ApiError> {
    system_jobs::create_schedule(&s, &c, req, &GC).await
}

pub async fn update_schedule(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<ScheduleReq>,
) -> Result<Response, ApiError> {
    system_jobs::update_schedule(&s, &c, req, &GC).await
}
