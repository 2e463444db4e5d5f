//! The event outbox. A push or delete writes its event in the transaction that commits
//! the change, so an answered push always reaches the audit log, webhooks and event
//! triggers, even when the instance dies right after answering. Every instance drains
//! the outbox: a claim leases a batch (a dead drainer's lease runs out and another
//! instance takes the batch over), an ack removes it. Delivery is at least once: a
//! drainer that dies after processing but before its ack has the batch redone.

use async_trait::async_trait;

use super::StoreResult;

/// One artifact event as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Harbor's operation names: `create` (push) or `delete`.
    pub operation: String,
    pub repo: String,
    /// The tag or digest the client named.
    pub reference: String,
    /// The artifact's digest, when it differs from `reference`.
    pub digest: Option<String>,
    pub username: String,
    /// Unix seconds.
    pub at: i64,
}

/// An event taken from the outbox, with its id for the ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEvent {
    pub id: i64,
    pub event: OutboxEvent,
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Leases up to `limit` events, oldest first, that no live lease holds, for
    /// `lease_ms` (database clock).
    async fn claim_events(&self, owner: &str, limit: u32, lease_ms: i64) -> StoreResult<Vec<ClaimedEvent>>;
    /// Removes processed events still leased by `owner`; returns how many.
    async fn ack_events(&self, owner: &str, ids: &[i64]) -> StoreResult<u64>;
}
