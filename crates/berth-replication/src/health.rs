//! The periodic health check of registry endpoints (Harbor checks them regularly and
//! shows the outcome as each registry's `status`): a system job the binary schedules,
//! so one instance of the cluster checks and every instance reads the stored result.

use std::sync::Arc;

use berth_jobs::{Handler, JobCtx, JobError};

use crate::Context;

/// The job kind (and schedule vendor type).
pub const HEALTH: &str = "REGISTRY_HEALTH";

/// Checks every registry endpoint and records `healthy` or `unhealthy`.
pub struct HealthCheck(pub Arc<Context>);

#[async_trait::async_trait]
impl Handler for HealthCheck {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let registries = &self.0.registries;
        let all = registries.list().await.map_err(|e| JobError::Retry(e.to_string()))?;
        for r in all {
            ctx.check()?;
            let result = match registries.adapter(&r, self.0.timeout) {
                Ok(a) => a.health().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match &result {
                Ok(()) => ctx.info(format!("registry {} ({}): healthy", r.id, r.doc.name)),
                Err(e) => ctx.warn(format!("registry {} ({}): unhealthy: {e}", r.id, r.doc.name)),
            }
            registries.set_status(r.id, result.is_ok()).await.map_err(|e| JobError::Retry(e.to_string()))?;
        }
        Ok(())
    }
}
