//! Harbor's replication on Berth's job service.
//!
//! - [`registries`]: remote registry endpoints, their secrets encrypted with the cluster
//!   secret key ([`berth_secret`]).
//! - [`policy`]: Harbor's policy model, validation naming the field, filters, namespace
//!   rewriting.
//! - A run ([`Context::start`]) is an execution (vendor type `REPLICATION`) that starts
//!   with one planning task ([`flow::Flow`], kind `REPLICATION_FLOW`): it lists the
//!   source, applies the filters, creates the destination namespaces and hands its work
//!   on, atomically, as one copy task per repository ([`copy::Copy`], kind
//!   `REPLICATION`), which any instance may run.
//! - A copy walks each artifact's manifest tree depth-first, copies blobs the
//!   destination lacks (mounting when it can), pushes child manifests before their
//!   index and the tagged manifest last, and checkpoints what it finished in the job
//!   row, so that an attempt on another instance resumes without sending finished blobs
//!   again (and continues a chunked upload where the last acknowledged chunk ended).
//! - A copy task that ends for good sends Harbor's `REPLICATION` webhook event
//!   ([`events`]) to the project on this registry's side.
//!
//! This registry itself is reached like any other, over its own `/v2` with tokens the
//! binary mints ([`LocalAccess`]), so both directions share one copy path; what only
//! the database knows (repositories, artifacts, labels) is read from the stores.

pub mod copy;
pub mod events;
pub mod flow;
pub mod health;
pub mod policy;
pub mod registries;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use berth_core::store::StoreError;
use berth_core::store::catalog::CatalogStore;
use berth_core::store::identity::IdentityStore;
use berth_core::store::jobs::{JobState, NewExecution, NewJob};
use berth_core::store::labels::LabelStore;
use berth_core::store::policies::{PolicyStore, StoredPolicy};
use berth_jobs::JobService;
use berth_remote::{Client, Credential, Endpoint};

pub use flow::{EventScope, FlowArgs};
pub use policy::{POLICY_KIND, Policy, PolicyError};
pub use registries::{REGISTRY_KIND, Registries, Registry, RegistryError, RegistryInput};

/// Harbor's execution vendor type.
pub const VENDOR_TYPE: &str = "REPLICATION";
/// The job kind that copies one repository (Harbor's job name).
pub const COPY: &str = "REPLICATION";
/// The job kind that plans a run.
pub const FLOW: &str = "REPLICATION_FLOW";

/// Attempts per task: Harbor's replication jobs fail at most 3 times.
pub const MAX_ATTEMPTS: i32 = 3;

/// How this registry is reached from its own jobs: its URL (loopback) and tokens for
/// any scope, minted with the cluster's token key.
#[derive(Clone)]
pub struct LocalAccess {
    pub url: String,
    pub mint: berth_remote::Mint,
}

/// Everything replication needs; shared by the API and the job handlers.
pub struct Context {
    pub registries: Registries,
    pub policies: Arc<dyn PolicyStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub labels: Arc<dyn LabelStore>,
    pub identity: Arc<dyn IdentityStore>,
    /// Connect and read timeout of remote requests (a stalled transfer fails after it).
    pub timeout: Duration,
    local: OnceLock<LocalAccess>,
    /// The job store, for planning tasks that must know whether another run of their
    /// policy is in progress (`single_active_replication`).
    jobs: OnceLock<Arc<dyn berth_core::store::jobs::JobStore>>,
    /// (destination registry, digest) → a repository there that has the blob: where a
    /// later copy of the same blob to another repository mounts it from.
    mounts: Mutex<HashMap<(i64, String), String>>,
    /// Where `REPLICATION` events go ([`Context::set_webhooks`]).
    webhooks: OnceLock<events::Notifier>,
}

/// A stored policy with its id and times.
#[derive(Debug, Clone)]
pub struct StoredReplicationPolicy {
    pub id: i64,
    pub policy: Policy,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("replication policy {0} not found")]
    NotFound(i64),
    #[error("replication policy {0} is disabled")]
    Disabled(i64),
    /// `single_active_replication` and a run is still going.
    #[error("replication policy {0} already has an execution in progress (single_active_replication)")]
    Busy(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most mount hints kept; beyond it the map starts over (hints only save bytes).
const MOUNT_HINTS: usize = 100_000;

fn parse_policy(p: &StoredPolicy) -> Option<StoredReplicationPolicy> {
    match serde_json::from_str(&p.body) {
        Ok(policy) => {
            Some(StoredReplicationPolicy { id: p.id, policy, created_at: p.created_at, updated_at: p.updated_at })
        }
        Err(e) => {
            tracing::error!(policy = p.id, error = %e, "a stored replication policy does not parse; skipped");
            None
        }
    }
}

impl Context {
    pub fn new(
        registries: Registries,
        policies: Arc<dyn PolicyStore>,
        catalog: Arc<dyn CatalogStore>,
        labels: Arc<dyn LabelStore>,
        identity: Arc<dyn IdentityStore>,
        timeout: Duration,
    ) -> Context {
        Context {
            registries,
            policies,
            catalog,
            labels,
            identity,
            timeout,
            local: OnceLock::new(),
            jobs: OnceLock::new(),
            mounts: Mutex::new(HashMap::new()),
            webhooks: OnceLock::new(),
        }
    }

    /// Sets how jobs reach this registry (once the listener's address is known).
    pub fn set_local(&self, access: LocalAccess) {
        let _ = self.local.set(access);
    }

    /// Sets the job store (once the job service is built).
    pub fn set_jobs(&self, jobs: Arc<dyn berth_core::store::jobs::JobStore>) {
        let _ = self.jobs.set(jobs);
    }

    /// Whether policy `id` has a run other than `except` that has not ended.
    pub async fn running_besides(&self, id: i64, except: i64) -> Result<bool, StoreError> {
        let Some(jobs) = self.jobs.get() else { return Ok(false) };
        let (execs, _) = jobs.executions(VENDOR_TYPE, Some(id), 0, 10).await?;
        Ok(execs.iter().any(|e| e.id != except && e.counts.queued + e.counts.running > 0))
    }

    /// A client of this registry itself.
    pub fn local_client(&self) -> Result<Client, String> {
        let l = self.local.get().ok_or("this instance is still starting (no local address yet)")?;
        let ep = Endpoint { url: l.url.clone(), credential: Credential::Minted(l.mint.clone()), insecure: true };
        Client::new(&ep, self.timeout).map_err(|e| e.to_string())
    }

    pub(crate) fn mount_hint(&self, registry: i64, digest: &str) -> Option<String> {
        self.mounts.lock().unwrap_or_else(|p| p.into_inner()).get(&(registry, digest.to_owned())).cloned()
    }

    pub(crate) fn remember_blob(&self, registry: i64, digest: &str, repo: &str) {
        let mut m = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MOUNT_HINTS {
            m.clear();
        }
        m.insert((registry, digest.to_owned()), repo.to_owned());
    }

    // --- policies ---

    pub async fn list_policies(&self) -> Result<Vec<StoredReplicationPolicy>, StoreError> {
        Ok(self.policies.policies(POLICY_KIND, 0).await?.iter().filter_map(parse_policy).collect())
    }

    pub async fn policy(&self, id: i64) -> Result<Option<StoredReplicationPolicy>, StoreError> {
        Ok(self.policies.policy(POLICY_KIND, id).await?.as_ref().and_then(parse_policy))
    }

    /// The id of another policy named `name`, if any (names are unique, as in Harbor).
    pub async fn policy_named(&self, name: &str, except: i64) -> Result<Option<i64>, StoreError> {
        Ok(self.list_policies().await?.into_iter().find(|p| p.id != except && p.policy.name == name).map(|p| p.id))
    }

    pub async fn create_policy(&self, p: &Policy) -> Result<i64, StoreError> {
        let body = serde_json::to_string(p).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.policies.create_policy(POLICY_KIND, 0, &body).await
    }

    pub async fn update_policy(&self, id: i64, p: &Policy) -> Result<bool, StoreError> {
        let body = serde_json::to_string(p).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.policies.update_policy(POLICY_KIND, id, &body).await
    }

    pub async fn delete_policy(&self, id: i64) -> Result<bool, StoreError> {
        self.policies.delete_policy(POLICY_KIND, id).await
    }

    /// Policies that use registry `id`, as source or destination.
    pub async fn policies_using(&self, registry: i64) -> Result<Vec<StoredReplicationPolicy>, StoreError> {
        Ok(self
            .list_policies()
            .await?
            .into_iter()
            .filter(|p| p.policy.src_registry_id == registry || p.policy.dest_registry_id == registry)
            .collect())
    }

    /// Whether policy `id` has a run that has not ended.
    pub async fn running(&self, jobs: &JobService, id: i64) -> Result<bool, StoreError> {
        let (execs, _) = jobs.store().executions(VENDOR_TYPE, Some(id), 0, 5).await?;
        Ok(execs.iter().any(|e| e.counts.queued + e.counts.running > 0))
    }

    /// Starts a run of policy `id`: an execution with its planning task. `trigger` is
    /// Harbor's `MANUAL`, `SCHEDULE` or `EVENT`.
    pub async fn start(&self, jobs: &JobService, id: i64, trigger: &str) -> Result<i64, StartError> {
        let p = self.policy(id).await?.ok_or(StartError::NotFound(id))?;
        if !p.policy.enabled {
            return Err(StartError::Disabled(id));
        }
        if p.policy.single_active_replication && self.running(jobs, id).await? {
            return Err(StartError::Busy(id));
        }
        let (exec, tasks) = plan_start(&p, trigger);
        Ok(jobs.start(&exec, &tasks).await?)
    }
}

impl Context {
    /// A push (or, with `deletion`, a delete) on this registry: starts a run of every
    /// enabled event-based policy whose source is this registry and whose name filter
    /// selects the repository (a deletion only for policies with `replicate_deletion`).
    /// Each run plans just this artifact. Returns the executions started.
    pub async fn on_event(&self, jobs: &JobService, event: &flow::EventScope) -> Result<Vec<i64>, StoreError> {
        let mut started = Vec::new();
        for p in self.list_policies().await? {
            let pol = &p.policy;
            if !pol.enabled || pol.trigger.kind != "event_based" || pol.src_registry_id != 0 {
                continue;
            }
            if event.deletion && !pol.replicate_deletion {
                continue;
            }
            let Ok(filters) = pol.validate() else { continue };
            if !filters.repository(&event.repository) {
                continue;
            }
            if pol.single_active_replication && self.running(jobs, p.id).await? {
                tracing::info!(policy = p.id, repository = %event.repository, "event-based replication skipped: a run of the policy is in progress (single_active_replication)");
                continue;
            }
            let (mut exec, mut tasks) = plan_start(&p, "EVENT");
            let args = flow::FlowArgs { policy_id: p.id, policy: pol.clone(), event: Some(event.clone()) };
            tasks[0].args = serde_json::to_string(&args).unwrap_or_default();
            exec.extra_attrs = serde_json::json!({
                "policy_id": p.id,
                "repository": event.repository,
                "digest": event.digest,
                "operation": if event.deletion { "deletion" } else { "copy" },
            })
            .to_string();
            started.push(jobs.start(&exec, &tasks).await?);
        }
        Ok(started)
    }
}

/// The execution and planning task of a run of `p`.
pub fn plan_start(p: &StoredReplicationPolicy, trigger: &str) -> (NewExecution, Vec<NewJob>) {
    let args = flow::FlowArgs { policy_id: p.id, policy: p.policy.clone(), event: None };
    let task =
        NewJob { max_attempts: MAX_ATTEMPTS, ..NewJob::new(FLOW, serde_json::to_string(&args).unwrap_or_default()) };
    let exec = NewExecution {
        vendor_type: VENDOR_TYPE.into(),
        vendor_id: p.id,
        trigger: trigger.into(),
        extra_attrs: serde_json::json!({ "policy_id": p.id }).to_string(),
    };
    (exec, vec![task])
}

/// Harbor's task status names for a copy task.
pub fn task_status(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "Pending",
        JobState::Running => "InProgress",
        JobState::Succeeded => "Succeed",
        JobState::Cancelled => "Stopped",
        JobState::Dead => "Failed",
    }
}
