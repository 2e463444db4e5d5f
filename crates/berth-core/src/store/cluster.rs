//! State that instances of one cluster must agree on, kept in the shared database so the
//! first instance to start decides and every later one is checked against it.

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// Records `value` under `name` unless something is recorded already, atomically
    /// across instances, and returns what is recorded afterwards. The caller compares it
    /// with its own value to detect a mismatch (for example a different signing key).
    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String>;

    /// Records `value` under `name` whatever was there: for deliberate changes only, such
    /// as a single instance whose key was replaced by its operator.
    async fn replace_setting(&self, name: &str, value: &str) -> StoreResult<()>;

    /// What is recorded under `name`, if anything.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;

    /// Records every `(name, value)` in one transaction, replacing what was there.
    async fn replace_settings(&self, entries: &[(String, String)]) -> StoreResult<()>;

    /// Every setting whose name starts with `prefix`, ordered by name.
    async fn settings_with_prefix(&self, prefix: &str) -> StoreResult<Vec<(String, String)>>;

    /// Records that the login session `key` ended (logged out) and must be refused by
    /// every instance until `until` (unix seconds), when it could not be used anyway.
    async fn revoke_session(&self, key: &str, until: i64) -> StoreResult<()>;

    /// Whether `key` was revoked and the revocation still runs at `now`.
    async fn session_revoked(&self, key: &str, now: i64) -> StoreResult<bool>;

    /// Forgets revocations that ended before `now`; returns how many.
    async fn purge_revoked_sessions(&self, now: i64) -> StoreResult<u64>;

    /// Waits for and takes the cluster-wide lock named `name` (every instance on this
    /// database waits for it), held until released or dropped; a holder that dies loses
    /// it. For work that must happen once per cluster, such as a proxy cache's upstream
    /// fetch of a blob. Two names may share a lock slot (they then only wait for each
    /// other), so a holder must not take a second named lock.
    async fn lock(&self, name: &str) -> StoreResult<super::gc::DigestLock>;
}
