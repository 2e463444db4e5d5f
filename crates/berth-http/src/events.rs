//! Artifact events (push, pull, delete) recorded off the request path, into the audit
//! log, pull counts and times, and webhook deliveries.
//!
//! Pushes and deletes reach here through the event outbox: the store writes each one in
//! the transaction that commits the change (`Registry::put_manifest_by`), and every
//! instance drains the outbox (leased batches, acknowledged once their webhook deliveries
//! are recorded), so an answered push is never lost to a crash and a drainer that dies
//! mid-batch has it redone by another instance (at least once).
//!
//! Pulls arrive by the thousand per second: writing each as its own audit row and
//! pull-count update would make every manifest GET a database write. The sink queues
//! them in memory and writes whatever has accumulated as one audit batch, one pull-count
//! update per repository and one pull-time batch (the latest pull of each repository and
//! reference). A crash loses at most the pulls still queued, as in Harbor.
//! Each batch also becomes webhook deliveries (`berth-webhooks`): the project's policies
//! are read once per batch, and a delivery is durable once its execution is recorded.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use berth_core::access::project_of;
use berth_core::store::catalog::{CatalogStore, Pull};
use berth_core::store::identity::{AuditEntry, IdentityStore, Project};
use berth_core::store::outbox::{ClaimedEvent, OutboxStore};
use berth_core::store::webhooks::WebhookPolicy;
use berth_core::{Reference, RepoName};
use berth_webhooks::policy::{DELETE_ARTIFACT, PULL_ARTIFACT, PUSH_ARTIFACT};
use berth_webhooks::{ArtifactRef, Event, RepoRef, Webhooks};

use crate::audit_log::AuditLog;
use crate::auth::unix_now;

/// Events beyond this many waiting are dropped (and logged): the registry keeps serving.
const QUEUE: usize = 65_536;
/// Most events written in one batch.
const BATCH: usize = 4_096;
/// How long a drainer holds the outbox events it claimed before another instance may
/// take them over.
const OUTBOX_LEASE_MS: i64 = 15_000;
/// How often an idle drainer looks at the outbox for events committed by other instances.
const OUTBOX_POLL: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ArtifactEvent {
    /// Harbor's operation names: `create` (push), `pull`, `delete`.
    pub operation: &'static str,
    pub repo: RepoName,
    pub reference: String,
    /// The artifact's digest when known (the response's `Docker-Content-Digest`).
    pub digest: Option<String>,
    pub username: String,
    pub at: i64,
}

/// Where artifact events go besides the audit log.
pub struct WebhookSink {
    pub webhooks: Arc<Webhooks>,
    /// `host[:port]` of the registry, for payloads' `resource_url`.
    pub registry_host: String,
    /// Runtime settings: nothing is delivered while `notification_enable` is off.
    pub settings: Arc<berth_core::settings::SettingsCache>,
    /// Scan on push: projects with `auto_scan` / `auto_sbom_generation` get a scan of
    /// every image pushed.
    pub scans: Option<Arc<berth_scanning::scan::Scans>>,
}

/// The outbox to drain and this instance's name as its lease owner.
pub struct OutboxDrain {
    pub store: Arc<dyn OutboxStore>,
    pub owner: String,
}

/// Where pushes and deletes go for event-based replication.
pub struct ReplicationSink {
    pub replication: Arc<berth_replication::Context>,
    pub jobs: Arc<berth_jobs::JobService>,
}

#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<ArtifactEvent>,
    /// Wakes this instance's drainer after a local push or delete committed.
    wake: Arc<Notify>,
}

impl EventSink {
    /// Starts the writer task (and, given an outbox, its drainer) on the current runtime.
    pub fn start(
        audit: AuditLog,
        identity: Arc<dyn IdentityStore>,
        catalog: Arc<dyn CatalogStore>,
        webhooks: Option<WebhookSink>,
        replication: Option<ReplicationSink>,
        outbox: Option<OutboxDrain>,
    ) -> EventSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let wake = Arc::new(Notify::new());
        let out = Arc::new(Outlets { audit, identity, catalog, webhooks, replication });
        if let Some(drain) = outbox {
            tokio::spawn(drain_outbox(drain, wake.clone(), out.clone()));
        }
        tokio::spawn(run(rx, out));
        EventSink { tx, wake }
    }

    /// A push or delete whose event went to the outbox has committed: drain it now
    /// rather than at the next poll.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// The background writer is Berth's job service so far: unhealthy once it has stopped
    /// or while its queue is full (events are being dropped).
    pub fn health(&self) -> Result<(), String> {
        if self.tx.is_closed() {
            Err("the audit/pull-count writer has stopped".into())
        } else if self.tx.capacity() == 0 {
            Err(format!("the audit/pull-count queue is full ({QUEUE} events waiting)"))
        } else {
            Ok(())
        }
    }

    pub fn record(
        &self,
        operation: &'static str,
        repo: RepoName,
        reference: String,
        digest: Option<String>,
        username: String,
    ) {
        let event = ArtifactEvent { operation, repo, reference, digest, username, at: unix_now() };
        if let Err(e) = self.tx.try_send(event) {
            tracing::warn!(error = %e, "audit event queue is full; an event was not recorded");
        }
    }
}

/// Where events go.
struct Outlets {
    audit: AuditLog,
    identity: Arc<dyn IdentityStore>,
    catalog: Arc<dyn CatalogStore>,
    webhooks: Option<WebhookSink>,
    replication: Option<ReplicationSink>,
}

impl Outlets {
    /// Records a batch; `false` if its webhook deliveries could not all be recorded.
    async fn handle(&self, batch: &[ArtifactEvent]) -> bool {
        let projects = write(batch, &self.audit, self.identity.as_ref(), self.catalog.as_ref()).await;
        let recorded = match &self.webhooks {
            Some(w) => {
                if let Some(scans) = &w.scans {
                    auto_scan(batch, &projects, scans, self.catalog.as_ref()).await;
                }
                notify(batch, &projects, w).await
            }
            None => true,
        };
        if let Some(r) = &self.replication {
            replicate(batch, r).await;
        }
        recorded
    }
}

async fn run(mut rx: mpsc::Receiver<ArtifactEvent>, out: Arc<Outlets>) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        out.handle(&batch).await;
        batch.clear();
    }
}

/// Takes leased batches from the outbox until it is empty, then waits for a local
/// commit or the next poll. A batch whose deliveries could not be recorded is left to
/// its lease's end and redone (here or on another instance).
async fn drain_outbox(drain: OutboxDrain, wake: Arc<Notify>, out: Arc<Outlets>) {
    // While the database is unavailable, look less often (and log less).
    let mut pause = OUTBOX_POLL;
    loop {
        match drain.store.claim_events(&drain.owner, BATCH as u32, OUTBOX_LEASE_MS).await {
            Ok(claimed) if !claimed.is_empty() => {
                let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
                let batch: Vec<ArtifactEvent> = claimed.iter().filter_map(from_outbox).collect();
                if out.handle(&batch).await
                    && let Err(e) = drain.store.ack_events(&drain.owner, &ids).await
                {
                    tracing::warn!(error = %e, events = ids.len(), "could not acknowledge outbox events; they will be redone");
                }
                pause = OUTBOX_POLL;
                continue;
            }
            Ok(_) => pause = OUTBOX_POLL,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "could not read the event outbox");
                pause = (pause * 2).min(std::time::Duration::from_secs(10));
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn from_outbox(c: &ClaimedEvent) -> Option<ArtifactEvent> {
    let e = &c.event;
    let operation = match e.operation.as_str() {
        "create" => "create",
        "delete" => "delete",
        other => {
            tracing::warn!(id = c.id, operation = other, "outbox event of an unknown kind skipped");
            return None;
        }
    };
    let Ok(repo) = e.repo.parse::<RepoName>() else {
        tracing::warn!(id = c.id, repo = %e.repo, "outbox event with an invalid repository skipped");
        return None;
    };
    Some(ArtifactEvent {
        operation,
        repo,
        reference: e.reference.clone(),
        digest: e.digest.clone(),
        username: e.username.clone(),
        at: e.at,
    })
}

fn event_type(operation: &str) -> Option<&'static str> {
    match operation {
        "create" => Some(PUSH_ARTIFACT),
        "pull" => Some(PULL_ARTIFACT),
        "delete" => Some(DELETE_ARTIFACT),
        _ => None,
    }
}

/// Records the webhook deliveries of a batch; `false` if some could not be recorded
/// (logged: the events are in the audit log already, and the registry keeps serving).
async fn notify(events: &[ArtifactEvent], projects: &HashMap<String, Option<Project>>, sink: &WebhookSink) -> bool {
    if !sink.settings.get().notification_enable {
        return true;
    }
    let mut all_recorded = true;
    let mut policies: HashMap<i64, Vec<WebhookPolicy>> = HashMap::new();
    for e in events {
        let Some(kind) = event_type(e.operation) else { continue };
        let Some(Some(project)) = project_of(e.repo.as_str()).and_then(|p| projects.get(p)) else { continue };
        let listening = match policies.entry(project.id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(match sink.webhooks.store.webhook_policies(project.id).await {
                Ok(p) => p,
                Err(err) => {
                    tracing::warn!(error = %err, project = project.id, "could not read webhook policies; events not delivered");
                    all_recorded = false;
                    Vec::new()
                }
            }),
        };
        if !listening.iter().any(|p| berth_webhooks::listens(p, kind)) {
            continue;
        }
        let is_digest = e.reference.contains(':');
        let digest = e.digest.as_deref().unwrap_or(if is_digest { e.reference.as_str() } else { "" });
        let tag = if is_digest { "" } else { e.reference.as_str() };
        let event = Event::artifact(
            kind,
            &RepoRef { project_id: project.id, public: project.is_public(), name: e.repo.as_str() },
            &[ArtifactRef { digest, tag }],
            &sink.registry_host,
            &e.username,
            e.at,
        );
        if let Err(err) = sink.webhooks.notify_policies(listening, &event).await {
            tracing::warn!(error = %err, project = project.id, event = kind, "could not record webhook deliveries");
            all_recorded = false;
        }
    }
    all_recorded
}

/// Starts event-based replications of pushes and deletes. A failure is logged: the
/// artifact is in place, and the next scheduled or manual run copies it.
async fn replicate(events: &[ArtifactEvent], sink: &ReplicationSink) {
    for e in events {
        let deletion = match e.operation {
            "create" => false,
            "delete" => true,
            _ => continue,
        };
        // A push by digest is an untagged artifact (replicated by digest) or the child of
        // an index being pushed: planning copies only artifacts the catalog lists, which
        // an index's child is not once its index is in (it travels with the index).
        let is_digest = e.reference.contains(':');
        let Some(digest) = e.digest.clone().or_else(|| is_digest.then(|| e.reference.clone())) else { continue };
        let scope = berth_replication::EventScope {
            repository: e.repo.to_string(),
            digest,
            tag: (!is_digest).then(|| e.reference.clone()),
            deletion,
        };
        match sink.replication.on_event(&sink.jobs, &scope).await {
            Ok(started) if !started.is_empty() => {
                tracing::info!(repository = %e.repo, reference = %e.reference, executions = ?started, "event-based replication started")
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, repository = %e.repo, "could not start event-based replication"),
        }
    }
}

/// Starts the scans the projects of pushed images ask for.
async fn auto_scan(
    events: &[ArtifactEvent],
    projects: &HashMap<String, Option<Project>>,
    scans: &berth_scanning::scan::Scans,
    catalog: &dyn CatalogStore,
) {
    for e in events.iter().filter(|e| e.operation == "create") {
        let (Some(digest), Some(Some(project))) =
            (&e.digest, project_of(e.repo.as_str()).map(|p| projects.get(p).cloned().flatten()))
        else {
            continue;
        };
        scans.on_push(&e.repo, digest, &project, catalog).await;
    }
}

/// Writes a batch; returns the projects it looked up by name.
async fn write(
    events: &[ArtifactEvent],
    audit: &AuditLog,
    identity: &dyn IdentityStore,
    catalog: &dyn CatalogStore,
) -> HashMap<String, Option<Project>> {
    let mut projects: HashMap<String, Option<Project>> = HashMap::new();
    let mut pulls: HashMap<&RepoName, u64> = HashMap::new();
    // The latest pull of each (repository, reference).
    let mut last_pulled: HashMap<(&RepoName, &str), i64> = HashMap::new();
    let mut entries = Vec::with_capacity(events.len());
    for e in events {
        let project_id = match project_of(e.repo.as_str()) {
            Some(p) => {
                if !projects.contains_key(p) {
                    projects.insert(p.to_owned(), identity.project_by_name(p).await.ok().flatten());
                }
                projects[p].as_ref().map_or(0, |p| p.id)
            }
            None => 0,
        };
        let sep = if e.reference.contains(':') { '@' } else { ':' };
        entries.push(AuditEntry {
            id: 0,
            project_id,
            operation: e.operation.to_string(),
            resource_type: "artifact".into(),
            resource: format!("{}{sep}{}", e.repo, e.reference),
            username: e.username.clone(),
            op_time: e.at,
        });
        if e.operation == "pull" {
            *pulls.entry(&e.repo).or_default() += 1;
            let at = last_pulled.entry((&e.repo, e.reference.as_str())).or_insert(e.at);
            *at = (*at).max(e.at);
        }
    }
    if let Err(e) = audit.append(&entries).await {
        tracing::warn!(error = %e, events = entries.len(), "could not record audit entries");
    }
    for (repo, n) in pulls {
        if let Err(e) = catalog.add_pull_count(repo, n).await {
            tracing::warn!(error = %e, %repo, "could not count pulls");
        }
    }
    let times: Vec<Pull> = last_pulled
        .into_iter()
        .filter_map(|((repo, reference), at)| Some((repo.clone(), reference.parse::<Reference>().ok()?, at)))
        .collect();
    if !times.is_empty()
        && let Err(e) = catalog.record_pulls(&times).await
    {
        tracing::warn!(error = %e, pulls = times.len(), "could not record pull times");
    }
    projects
}
