//! `QUOTA_WARNING` and `QUOTA_EXCEED` webhook events (Harbor's quota notifications).
//! The registry reports on the push's path; the event is recorded in a task of its own,
//! so a push never waits for webhook bookkeeping.

use std::sync::Arc;

use berth_core::quota::{QuotaExceeded, QuotaUse, WARNING_PERCENT, human};
use berth_core::registry::QuotaEvents;
use berth_core::settings::SettingsCache;
use berth_core::store::identity::IdentityStore;
use berth_core::{Digest, RepoName};
use berth_webhooks::{ArtifactRef, Event, RepoRef, Webhooks};
use serde_json::json;

use crate::auth::unix_now;

pub const QUOTA_WARNING: &str = "QUOTA_WARNING";
pub const QUOTA_EXCEED: &str = "QUOTA_EXCEED";

pub struct QuotaNotifier {
    pub webhooks: Arc<Webhooks>,
    pub identity: Arc<dyn IdentityStore>,
    pub settings: Arc<SettingsCache>,
    /// `host[:port]` of the registry, for payloads' `resource_url`.
    pub registry_host: String,
}

impl QuotaNotifier {
    fn send(&self, kind: &'static str, repo: &RepoName, digest: &Digest, project: String, details: String) {
        if !self.settings.get().notification_enable {
            return;
        }
        let (webhooks, identity, host) = (self.webhooks.clone(), self.identity.clone(), self.registry_host.clone());
        let (repo, digest) = (repo.clone(), digest.to_string());
        tokio::spawn(async move {
            let p = match identity.project_by_name(&project).await {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, project, event = kind, "could not read the project; quota event not sent");
                    return;
                }
            };
            let mut event = Event::artifact(
                kind,
                &RepoRef { project_id: p.id, public: p.is_public(), name: repo.as_str() },
                &[ArtifactRef { digest: &digest, tag: "" }],
                &host,
                "",
                unix_now(),
            );
            event.data.insert("custom_attributes".into(), json!({ "Details": details }));
            if let Err(e) = webhooks.notify(&event).await {
                tracing::warn!(error = %e, project, event = kind, "could not record quota event deliveries");
            }
        });
    }
}

impl QuotaEvents for QuotaNotifier {
    fn warning(&self, repo: &RepoName, digest: &Digest, u: &QuotaUse) {
        let details = format!(
            "quota usage of project {} reached {WARNING_PERCENT}% of its limit: {} of {}",
            u.project,
            human(u.after),
            human(u.limit)
        );
        self.send(QUOTA_WARNING, repo, digest, u.project.clone(), details);
    }

    fn exceeded(&self, repo: &RepoName, digest: &Digest, q: &QuotaExceeded) {
        self.send(QUOTA_EXCEED, repo, digest, q.project.clone(), q.to_string());
    }
}
