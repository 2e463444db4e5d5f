//! What every API that owns a job schedule shares (retention policies, replication
//! policies, the system jobs): putting a cron schedule with its next fire time, and
//! deleting a scheduled policy together with its schedule and audit entry.

use std::future::Future;

use berth_core::store::StoreResult;
use berth_core::store::jobs::NewSchedule;
use berth_jobs::CronExpr;

use super::errors::{bad_request, store};
use super::{Caller, audit};
use crate::AppState;
use crate::error::ApiError;

/// A schedule to put: `field` names the request's cron field in a refusal.
pub struct CronSchedule<'a> {
    pub vendor_type: &'a str,
    pub vendor_id: i64,
    /// Harbor's `type` of the schedule (`Custom`, `Hourly`, …).
    pub cron_type: &'a str,
    pub cron: &'a CronExpr,
    /// The arguments its tasks get when it fires.
    pub args: String,
    pub field: &'a str,
}

/// Creates or replaces the schedule; a cron that never fires is a 400 naming the field.
pub async fn put(state: &AppState, s: CronSchedule<'_>) -> Result<(), ApiError> {
    let next = state
        .jobs
        .next_fire(s.cron)
        .await
        .map_err(store)?
        .ok_or_else(|| bad_request(format!("{}: never fires", s.field)))?;
    let row = NewSchedule {
        vendor_type: s.vendor_type.to_owned(),
        vendor_id: s.vendor_id,
        cron_type: s.cron_type.to_owned(),
        cron: s.cron.as_str().to_owned(),
        args: s.args,
        next_fire_at: next,
    };
    state.jobs.store().put_schedule(&row).await.map_err(store)?;
    Ok(())
}

/// What a scheduled policy's deletion records in the audit log.
pub struct Deleted<'a> {
    pub project_id: i64,
    pub resource_type: &'a str,
    pub resource: &'a str,
}

/// Deletes a policy's schedule (first: a schedule must never fire for a policy that is
/// gone), then the policy through `delete`, then records the audit entry.
pub async fn delete_policy(
    state: &AppState,
    caller: &Caller,
    vendor_type: &str,
    id: i64,
    delete: impl Future<Output = StoreResult<bool>>,
    entry: Deleted<'_>,
) -> Result<(), ApiError> {
    state.jobs.store().delete_schedule(vendor_type, id).await.map_err(store)?;
    delete.await.map_err(store)?;
    audit(state, caller, entry.project_id, "delete", entry.resource_type, entry.resource).await;
    Ok(())
}
