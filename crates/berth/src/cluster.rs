//! Start-up checks that every instance sharing a database uses the same keys: a token or
//! session cookie signed by one instance must verify on every other, or clients behind a
//! load balancer would be logged out at random.

use berth_core::store::cluster::ClusterStore;

/// The name under which the token signing key's fingerprint is recorded.
pub const TOKEN_KEY: &str = "token_signing_key.kid";

/// Records this instance's key fingerprint if it is the first, else compares. `shared`
/// says whether other instances can use this database (PostgreSQL): there a mismatch is
/// fatal; on an embedded database a replaced key only logs, because no other instance
/// can be affected.
pub async fn check_token_key(
    store: &dyn ClusterStore,
    kid: &str,
    key_path: &std::path::Path,
    shared: bool,
) -> anyhow::Result<()> {
    let recorded = store.claim_setting(TOKEN_KEY, kid).await?;
    if recorded == kid {
        return Ok(());
    }
    if !shared {
        tracing::warn!(recorded = %recorded, now = %kid, "the token signing key changed; tokens issued before are no longer accepted");
        store_replace(store, kid).await;
        return Ok(());
    }
    anyhow::bail!(
        "auth.private_key: this instance's token signing key ({}, key id {kid}) differs from the key the other \
         instances on this database use (key id {recorded}). Tokens and login sessions issued by one instance must \
         verify on all of them: copy the private_key.pem of a running instance to this machine and point \
         auth.private_key (BERTH_AUTH_PRIVATE_KEY) at it, then start again.",
        key_path.display()
    )
}

/// Embedded databases follow the key on disk; a failure only means the warning repeats.
async fn store_replace(store: &dyn ClusterStore, kid: &str) {
    if let Err(e) = store.replace_setting(TOKEN_KEY, kid).await {
        tracing::warn!(error = %e, "could not record the new token key fingerprint");
    }
}

/// The name under which the cluster secret key's fingerprint is recorded.
pub const SECRET_KEY: &str = "secret_key.fingerprint";

/// Like [`check_token_key`], for the key that encrypts stored credentials: an instance
/// with another key could not read the registries' passwords the others stored.
pub async fn check_secret_key(
    store: &dyn ClusterStore,
    fingerprint: &str,
    key_path: &std::path::Path,
    shared: bool,
) -> anyhow::Result<()> {
    let recorded = store.claim_setting(SECRET_KEY, fingerprint).await?;
    if recorded == fingerprint {
        return Ok(());
    }
    if !shared {
        tracing::warn!(recorded = %recorded, now = %fingerprint, "the cluster secret key changed; stored registry credentials encrypted with the old key can no longer be read (enter them again)");
        if let Err(e) = store.replace_setting(SECRET_KEY, fingerprint).await {
            tracing::warn!(error = %e, "could not record the new secret key fingerprint");
        }
        return Ok(());
    }
    anyhow::bail!(
        "auth.secret_key: this instance's secret key ({}, fingerprint {fingerprint}) differs from the key the other \
         instances on this database use (fingerprint {recorded}). Stored credentials encrypted by one instance must \
         decrypt on all of them: copy the secretkey file of a running instance to this machine and point \
         auth.secret_key (BERTH_AUTH_SECRET_KEY) at it, then start again.",
        key_path.display()
    )
}
