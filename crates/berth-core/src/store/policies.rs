//! Project policies kept as Harbor's JSON documents (immutable-tag rules now; retention,
//! replication and webhook policies share the shape): one table, the rules in
//! `berth_core::policy`, so a new kind of policy needs no new SQL.

use async_trait::async_trait;

use super::StoreResult;

/// The immutable-tag rules of a project.
pub const IMMUTABLE_TAG: &str = "immutable-tag";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub id: i64,
    pub kind: String,
    pub project_id: i64,
    /// The policy as JSON.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    async fn create_policy(&self, kind: &str, project_id: i64, body: &str) -> StoreResult<i64>;
    async fn policy(&self, kind: &str, id: i64) -> StoreResult<Option<StoredPolicy>>;
    /// A project's policies of `kind`, oldest first.
    async fn policies(&self, kind: &str, project_id: i64) -> StoreResult<Vec<StoredPolicy>>;
    /// `false` if there is no such policy.
    async fn update_policy(&self, kind: &str, id: i64, body: &str) -> StoreResult<bool>;
    async fn delete_policy(&self, kind: &str, id: i64) -> StoreResult<bool>;
}
