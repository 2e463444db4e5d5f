//! Health checks the binary adds for the dependencies only it knows about (Redis), next
//! to the ones every instance has (database, storage, job service).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long one component may take to answer before it counts as unhealthy.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

#[derive(Clone)]
pub struct Component {
    /// As Harbor names its components: `redis`, `registry`, ...
    pub name: &'static str,
    /// Whether the instance cannot serve pushes and pulls without it. Only critical
    /// failures make the whole instance unhealthy (503), so that a load balancer routes
    /// away from it; losing an optional dependency such as Redis on every instance must
    /// not take the whole cluster out of rotation.
    pub critical: bool,
    pub check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}
