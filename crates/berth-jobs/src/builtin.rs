//! The system jobs that come with the job service: Harbor's audit log purge, and the
//! sweep that keeps execution history bounded.

use std::sync::Arc;

use berth_core::audit::EventTypeSet;
use berth_core::store::identity::IdentityStore;
use berth_core::store::jobs::JobStore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Handler, JobCtx, JobError, kinds, now_ms};

/// A parameter that was refused, naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    fn new(field: &str, message: impl Into<String>) -> ParamError {
        ParamError { field: format!("parameters.{field}"), message: message.into() }
    }
}

/// Harbor's audit log operations, the values `include_operations` may list.
pub use berth_core::audit::OPERATIONS as AUDIT_OPERATIONS;

/// The parameters the purge takes.
const PURGE_PARAMETERS: &[&str] = &["audit_retention_hour", "include_operations", "include_event_types", "dry_run"];

/// Harbor's purge parameters (`/system/purgeaudit/schedule`): its older
/// `include_operations` and 2.13's `include_event_types`; an entry goes when either
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeAuditParams {
    /// Entries older than this many hours go.
    pub audit_retention_hour: i64,
    /// Comma-separated operations (`create,delete,pull`).
    pub include_operations: String,
    /// Comma-separated event types (`create_artifact,delete_user`), [`berth_core::audit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_event_types: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// A comma-separated list parameter, checked and put in its stored form by `parse` (its
/// message names what is allowed).
fn list_param(
    params: &Map<String, Value>,
    field: &str,
    parse: impl Fn(&str) -> Result<String, String>,
) -> Result<Option<String>, ParamError> {
    match params.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => parse(s).map(Some).map_err(|m| ParamError::new(field, m)),
        _ => Err(ParamError::new(field, "must be a comma-separated string")),
    }
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|o| !o.is_empty())
}

impl PurgeAuditParams {
    /// Validates the `parameters` object of a request: known keys only, Harbor's types
    /// (numbers may come as strings, as Harbor's portal sends them). With neither list,
    /// every operation is purged, as before Harbor had event types.
    pub fn from_json(params: &Map<String, Value>) -> Result<PurgeAuditParams, ParamError> {
        if let Some(k) = params.keys().find(|k| !PURGE_PARAMETERS.contains(&k.as_str())) {
            return Err(ParamError::new(k, "is not a parameter of the audit log purge"));
        }
        let hours = match params.get("audit_retention_hour") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            None => return Err(ParamError::new("audit_retention_hour", "is required")),
            _ => None,
        }
        .ok_or_else(|| ParamError::new("audit_retention_hour", "must be a whole number of hours"))?;
        if !(1..=24 * 365 * 100).contains(&hours) {
            return Err(ParamError::new(
                "audit_retention_hour",
                format!("{hours} is out of range (1 to 876000 hours)"),
            ));
        }
        let ops = list_param(params, "include_operations", |list| {
            match split(list).find(|op| !AUDIT_OPERATIONS.contains(op)) {
                None => Ok(list.to_owned()),
                Some(op) => Err(format!("{op:?} is not one of {}", AUDIT_OPERATIONS.join(", "))),
            }
        })?;
        // Kept in the canonical form (Harbor's `update_configure` as Berth's type), the
        // names the store matches entries by.
        let types = list_param(params, "include_event_types", |list| {
            EventTypeSet::parse(list).map(|t| t.to_string()).map_err(|e| e.to_string())
        })?;
        let ops = match (ops, &types) {
            (Some(ops), _) => ops,
            (None, Some(_)) => String::new(),
            (None, None) => AUDIT_OPERATIONS.join(","),
        };
        let dry_run = match params.get("dry_run") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            _ => return Err(ParamError::new("dry_run", "must be true or false")),
        };
        Ok(PurgeAuditParams {
            audit_retention_hour: hours,
            include_operations: ops,
            include_event_types: types,
            dry_run,
        })
    }

    pub fn operations(&self) -> Vec<String> {
        split(&self.include_operations).map(str::to_owned).collect()
    }

    pub fn event_types(&self) -> Vec<String> {
        self.include_event_types.as_deref().map(split).into_iter().flatten().map(str::to_owned).collect()
    }
}

/// Entries deleted per statement: small enough that a purge never holds the database
/// (or SQLite's writer) for long, and a stop is honoured between batches.
const PURGE_BATCH: u64 = 5_000;

/// `PURGE_AUDIT_LOG`: deletes old audit entries of the chosen operations.
pub struct PurgeAuditLog {
    pub identity: Arc<dyn IdentityStore>,
}

#[async_trait::async_trait]
impl Handler for PurgeAuditLog {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let p: PurgeAuditParams = ctx.args()?;
        let (ops, types) = (p.operations(), p.event_types());
        let before = now_ms() / 1000 - p.audit_retention_hour * 3600;
        ctx.info(format!(
            "purging audit log entries older than {} hours with operations [{}] or event types [{}]{}",
            p.audit_retention_hour,
            ops.join(", "),
            types.join(", "),
            if p.dry_run { " (dry run)" } else { "" }
        ));
        if p.dry_run {
            let n = self.identity.purge_audit(before, &ops, &types, PURGE_BATCH, true).await?;
            ctx.info(format!("dry run: {n} entries would be purged"));
            return Ok(());
        }
        let mut total = 0u64;
        loop {
            ctx.check()?;
            let n = self.identity.purge_audit(before, &ops, &types, PURGE_BATCH, false).await?;
            total += n;
            if n < PURGE_BATCH {
                break;
            }
            ctx.checkpoint(&serde_json::json!({ "purged": total })).await?;
        }
        ctx.info(format!("purged {total} audit log entries"));
        Ok(())
    }
}

/// `SAMPLE` (Harbor's demo job): counts `seconds` seconds, checkpointing each one, so a
/// resumed attempt carries on where the last checkpoint was. It exercises everything a
/// real job relies on — leases, heartbeats, stops, checkpoints, logs — with nothing else.
pub struct Sample;

#[derive(Deserialize)]
struct SampleArgs {
    seconds: u64,
}

#[async_trait::async_trait]
impl Handler for Sample {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let args: SampleArgs = ctx.args()?;
        let mut done = ctx.progress::<Value>().and_then(|p| p["done"].as_u64()).unwrap_or(0);
        if done > 0 {
            ctx.info(format!("resuming at second {done}"));
        }
        while done < args.seconds {
            ctx.check()?;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            done += 1;
            ctx.info(format!("second {done} of {}", args.seconds));
            ctx.checkpoint(&serde_json::json!({ "done": done })).await?;
        }
        ctx.info("done");
        Ok(())
    }
}

/// Executions kept per vendor type, whatever their age (Harbor keeps the latest 50 of
/// its system jobs).
pub const KEEP_EXECUTIONS: u64 = 50;
/// Finished executions younger than this are kept even past [`KEEP_EXECUTIONS`].
pub const EXECUTION_MIN_AGE_MS: i64 = 24 * 3600 * 1000;

/// `EXECUTION_SWEEP`: forgets old finished executions (and their tasks and logs).
pub struct ExecutionSweep {
    pub jobs: Arc<dyn JobStore>,
    /// The vendor types whose history is bounded.
    pub vendor_types: Vec<String>,
}

#[async_trait::async_trait]
impl Handler for ExecutionSweep {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let before = self.jobs.job_clock().await? - EXECUTION_MIN_AGE_MS;
        for vt in &self.vendor_types {
            ctx.check()?;
            let n = self.jobs.prune_executions(vt, before, KEEP_EXECUTIONS).await?;
            if n > 0 {
                ctx.info(format!("{vt}: removed {n} old executions"));
            }
        }
        Ok(())
    }
}

/// The vendor types whose history the sweep bounds by default.
pub fn swept_vendor_types() -> Vec<String> {
    [kinds::GARBAGE_COLLECTION, kinds::PURGE_AUDIT_LOG, kinds::EXECUTION_SWEEP].map(str::to_owned).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Result<PurgeAuditParams, ParamError> {
        PurgeAuditParams::from_json(v.as_object().unwrap())
    }

    #[test]
    fn purge_params_as_harbor_sends_them() {
        let p = params(
            serde_json::json!({"audit_retention_hour": 168, "include_operations": "create,delete", "dry_run": true}),
        )
        .unwrap();
        assert_eq!(p.operations(), ["create", "delete"]);
        assert!(p.dry_run);
        let p = params(serde_json::json!({"audit_retention_hour": "24", "dry_run": "false"})).unwrap();
        assert_eq!((p.audit_retention_hour, p.dry_run, p.operations().len()), (24, false, 5));
    }

    #[test]
    fn purge_params_with_event_types() {
        let p = params(
            serde_json::json!({"audit_retention_hour": 1, "include_event_types": "create_artifact, delete_user"}),
        )
        .unwrap();
        assert_eq!((p.event_types(), p.operations()), (vec!["create_artifact".into(), "delete_user".into()], vec![]));
        let p = params(serde_json::json!({"audit_retention_hour": 1, "include_event_types": "pull_artifact",
            "include_operations": "delete"}))
        .unwrap();
        assert_eq!((p.event_types(), p.operations()), (vec!["pull_artifact".into()], vec!["delete".into()]));
        let stored = serde_json::to_value(&p).unwrap();
        assert_eq!(PurgeAuditParams::from_json(stored.as_object().unwrap()).unwrap(), p, "stored as sent");
        let old = params(serde_json::json!({"audit_retention_hour": 1})).unwrap();
        assert!(serde_json::to_value(&old).unwrap().get("include_event_types").is_none(), "absent as before");
        // Harbor's name of configuration changes, kept as Berth's, each type once.
        let p = params(serde_json::json!({"audit_retention_hour": 1,
            "include_event_types": "update_configure, create_artifact,update_configuration"}))
        .unwrap();
        assert_eq!(p.include_event_types.as_deref(), Some("create_artifact,update_configuration"));
    }

    #[test]
    fn purge_params_refusals_name_the_field() {
        let field = |v| params(v).unwrap_err().field;
        assert_eq!(field(serde_json::json!({"include_operations": "pull"})), "parameters.audit_retention_hour");
        assert_eq!(field(serde_json::json!({"audit_retention_hour": 0})), "parameters.audit_retention_hour");
        assert_eq!(field(serde_json::json!({"audit_retention_hour": "soon"})), "parameters.audit_retention_hour");
        assert_eq!(
            field(serde_json::json!({"audit_retention_hour": 1, "include_operations": "pull,explode"})),
            "parameters.include_operations"
        );
        assert_eq!(field(serde_json::json!({"audit_retention_hour": 1, "dry_run": 3})), "parameters.dry_run");
        assert_eq!(
            field(
                serde_json::json!({"audit_retention_hour": 1, "include_event_types": "create_artifact,explode_user"})
            ),
            "parameters.include_event_types"
        );
        assert_eq!(
            field(serde_json::json!({"audit_retention_hour": 1, "include_event_types": ["create_artifact"]})),
            "parameters.include_event_types"
        );
        assert_eq!(field(serde_json::json!({"audit_retention_hour": 1, "color": "red"})), "parameters.color");
    }
}
