//! Artifact events (push, pull, delete) recorded off the request path. Pulls arrive by
//! the thousand per second: writing each as its own audit row and pull-count update
//! would make every manifest GET a database write. The sink queues events and writes
//! whatever has accumulated as one audit batch, one pull-count update per repository and
//! one pull-time batch (the latest pull of each repository and reference: a tag's and its
//! artifact's `pull_time`, or an artifact's when pulled by digest).
//! A crash loses at most the events still queued (the client already has its answer).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use berth_core::access::project_of;
use berth_core::store::catalog::{CatalogStore, Pull};
use berth_core::store::identity::{AuditEntry, IdentityStore};
use berth_core::{Reference, RepoName};

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
    pub username: String,
    pub at: i64,
}

#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<ArtifactEvent>,
}

impl EventSink {
    /// Starts the writer task on the current runtime.
    pub fn start(audit: AuditLog, identity: Arc<dyn IdentityStore>, catalog: Arc<dyn CatalogStore>) -> EventSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, audit, identity, catalog));
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

    pub fn record(&self, operation: &'static str, repo: RepoName, reference: String, username: String) {
        let event = ArtifactEvent { operation, repo, reference, username, at: unix_now() };
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
) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        write(&batch, &audit, identity.as_ref(), catalog.as_ref()).await;
        batch.clear();
    }
}

async fn write(events: &[ArtifactEvent], audit: &AuditLog, identity: &dyn IdentityStore, catalog: &dyn CatalogStore) {
    let mut project_ids: HashMap<&str, i64> = HashMap::new();
    let mut pulls: HashMap<&RepoName, u64> = HashMap::new();
    // The latest pull of each (repository, reference).
    let mut last_pulled: HashMap<(&RepoName, &str), i64> = HashMap::new();
    let mut entries = Vec::with_capacity(events.len());
    for e in events {
        let project_id = match project_of(e.repo.as_str()) {
            Some(p) => match project_ids.get(p) {
                Some(id) => *id,
                None => {
                    let id = identity.project_by_name(p).await.ok().flatten().map(|p| p.id).unwrap_or(0);
                    project_ids.insert(p, id);
                    id
                }
            },
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
}
