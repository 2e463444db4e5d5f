//! Artifact events (push, pull, delete) recorded off the request path. Pulls arrive by
//! the thousand per second: writing each as its own audit row and pull-count update
//! would make every manifest GET a database write. The sink queues events and writes
//! whatever has accumulated as one audit batch, one pull-count update per repository and
//! one pull-time batch (the latest pull of each repository and reference: a tag's and its
//! artifact's `pull_time`, or an artifact's when pulled by digest).
//! A crash loses at most the events still queued (the client already has its answer).
//! Each batch also becomes webhook deliveries (`berth-webhooks`): the project's policies
//! are read once per batch, and a delivery is durable once its execution is recorded.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use tokio::sync::mpsc;

use berth_core::access::project_of;
use berth_core::store::catalog::{CatalogStore, Pull};
use berth_core::store::identity::{AuditEntry, IdentityStore, Project};
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
    pub scans: Option<Arc<crate::scan::Scans>>,
}

#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<ArtifactEvent>,
}

impl EventSink {
    /// Starts the writer task on the current runtime.
    pub fn start(
        audit: AuditLog,
        identity: Arc<dyn IdentityStore>,
        catalog: Arc<dyn CatalogStore>,
        webhooks: Option<WebhookSink>,
    ) -> EventSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, audit, identity, catalog, webhooks));
        EventSink { tx }
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

async fn run(
    mut rx: mpsc::Receiver<ArtifactEvent>,
    audit: AuditLog,
    identity: Arc<dyn IdentityStore>,
    catalog: Arc<dyn CatalogStore>,
    webhooks: Option<WebhookSink>,
) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let projects = write(&batch, &audit, identity.as_ref(), catalog.as_ref()).await;
        if let Some(w) = &webhooks {
            if let Some(scans) = &w.scans {
                auto_scan(&batch, &projects, scans, catalog.as_ref()).await;
            }
            notify(&batch, &projects, w).await;
        }
        batch.clear();
    }
}

fn event_type(operation: &str) -> Option<&'static str> {
    match operation {
        "create" => Some(PUSH_ARTIFACT),
        "pull" => Some(PULL_ARTIFACT),
        "delete" => Some(DELETE_ARTIFACT),
        _ => None,
    }
}

/// Records the webhook deliveries of a batch. A failure is logged: the events are in the
/// audit log already, and the registry keeps serving.
async fn notify(events: &[ArtifactEvent], projects: &HashMap<String, Option<Project>>, sink: &WebhookSink) {
    if !sink.settings.get().notification_enable {
        return;
    }
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
        }
    }
}

/// Writes a batch; returns the projects it looked up by name.
/// Starts the scans the projects of pushed images ask for. Indexes are not scanned
/// themselves (their images are pushed, and scanned, one by one).
async fn auto_scan(
    events: &[ArtifactEvent],
    projects: &HashMap<String, Option<Project>>,
    scans: &crate::scan::Scans,
    catalog: &dyn CatalogStore,
) {
    use crate::scan::ScanType;
    for e in events.iter().filter(|e| e.operation == "create") {
        let (Some(digest), Some(Some(project))) =
            (&e.digest, project_of(e.repo.as_str()).map(|p| projects.get(p).cloned().flatten()))
        else {
            continue;
        };
        let on = |k: &str| project.metadata.get(k).is_some_and(|v| v == "true");
        let types: Vec<ScanType> = [("auto_scan", ScanType::Vulnerability), ("auto_sbom_generation", ScanType::Sbom)]
            .into_iter()
            .filter(|(k, _)| on(k))
            .map(|(_, t)| t)
            .collect();
        if types.is_empty() {
            continue;
        }
        let Ok(d) = digest.parse() else { continue };
        match catalog.artifact(&e.repo, &Reference::Digest(d)).await {
            Ok(Some(a)) if a.media_type.ends_with("manifest.v1+json") || a.media_type.ends_with("manifest.v2+json") => {
            }
            _ => continue,
        }
        for t in types {
            if let Err(err) = scans.request(e.repo.as_str(), digest, t, "EVENT").await {
                tracing::warn!(error = %err, repo = %e.repo, digest, "could not start a scan on push");
            }
        }
    }
}

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
