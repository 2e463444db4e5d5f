//! Harbor's webhook policies (`notification_policy`): per project, a name unique in the
//! project, the event types it listens to and where it delivers them. What a target
//! holds (address, auth header, format) is the webhook subsystem's business: the store
//! keeps targets as the JSON it is given.

use async_trait::async_trait;

use super::{StoreError, StoreResult};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The project already has a policy with this name.
    #[error("name {0:?} already exists")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type WebhookResult<T> = Result<T, WebhookError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPolicy {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub creator: String,
    /// Harbor's event type names (`PUSH_ARTIFACT`, …), in the order given.
    pub event_types: Vec<String>,
    /// The targets as a JSON array.
    pub targets: String,
    /// Seconds since the epoch.
    pub creation_time: i64,
    pub update_time: i64,
}

/// A policy to create, or (ignoring `project_id` and `creator`) the new content of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookPolicy {
    pub project_id: i64,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub creator: String,
    pub event_types: Vec<String>,
    pub targets: String,
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_webhook_policy(&self, p: &NewWebhookPolicy) -> WebhookResult<WebhookPolicy>;
    async fn webhook_policy(&self, id: i64) -> StoreResult<Option<WebhookPolicy>>;
    /// A project's policies, by id.
    async fn webhook_policies(&self, project_id: i64) -> StoreResult<Vec<WebhookPolicy>>;
    /// Replaces name, description, enabled, event types and targets.
    async fn update_webhook_policy(&self, id: i64, p: &NewWebhookPolicy) -> WebhookResult<WebhookPolicy>;
    async fn delete_webhook_policy(&self, id: i64) -> WebhookResult<()>;
}

/// How event types are kept in one column: Harbor's names never contain a comma.
pub fn join_event_types(types: &[String]) -> String {
    types.join(",")
}

pub fn split_event_types(s: &str) -> Vec<String> {
    s.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect()
}
