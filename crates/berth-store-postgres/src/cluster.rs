//! [`ClusterStore`] on the same database (table `cluster_settings`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::cluster::ClusterStore;

use crate::{PgStore, Tx, col, now};

/// All retry freely: a claim run twice finds the first run's value and answers it, a
/// replacement run twice records the same value.
#[async_trait]
impl ClusterStore for PgStore {
    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        self.db(Tx::Idempotent, &(name, value), |c, (name, value)| {
            Box::pin(async move {
                // A claimer that loses the race waits for the winner's insert to commit,
                // then its own select (a new snapshot) sees the winner's value.
                c.exec(
                    "INSERT INTO cluster_settings (name, value, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                    &[name, value, &now()],
                )
                .await?;
                let row = c.one("SELECT value FROM cluster_settings WHERE name = $1", &[name]).await?;
                Ok(col(&row, 0)?)
            })
        })
        .await
    }

    async fn replace_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        self.db(Tx::Idempotent, &(name, value), |c, (name, value)| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO cluster_settings (name, value, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
                    &[name, value, &now()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.db(Tx::Read, &name, |c, name| {
            Box::pin(async move {
                let row = c.opt("SELECT value FROM cluster_settings WHERE name = $1", &[name]).await?;
                Ok(row.map(|r| col(&r, 0)).transpose()?)
            })
        })
        .await
    }

    async fn replace_settings(&self, entries: &[(String, String)]) -> StoreResult<()> {
        let (names, values): (Vec<String>, Vec<String>) = entries.iter().cloned().unzip();
        self.db(Tx::Idempotent, &(names, values), |c, (names, values)| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO cluster_settings (name, value, created_at)
                     SELECT n, v, $3 FROM unnest($1::text[], $2::text[]) AS t(n, v)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
                    &[names, values, &now()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn settings_with_prefix(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        self.db(Tx::Read, &prefix, |c, prefix| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        "SELECT name, value FROM cluster_settings WHERE left(name, length($1)) = $1 ORDER BY name",
                        &[prefix],
                    )
                    .await?;
                Ok(rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect::<Result<_, crate::DbErr>>()?)
            })
        })
        .await
    }

    async fn revoke_session(&self, key: &str, until: i64) -> StoreResult<()> {
        self.db(Tx::Idempotent, &(key, until), |c, (key, until)| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO revoked_sessions (session_key, until) VALUES ($1, $2)
                     ON CONFLICT (session_key) DO UPDATE SET until = GREATEST(revoked_sessions.until, excluded.until)",
                    &[key, until],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn session_revoked(&self, key: &str, now: i64) -> StoreResult<bool> {
        self.db(Tx::Read, &(key, now), |c, (key, now)| {
            Box::pin(async move {
                let row = c
                    .one(
                        "SELECT EXISTS (SELECT 1 FROM revoked_sessions WHERE session_key = $1 AND until > $2)",
                        &[key, now],
                    )
                    .await?;
                Ok(col(&row, 0)?)
            })
        })
        .await
    }

    async fn purge_revoked_sessions(&self, now: i64) -> StoreResult<u64> {
        self.db(Tx::Write, &now, |c, now| {
            Box::pin(async move { Ok(c.exec("DELETE FROM revoked_sessions WHERE until <= $1", &[now]).await?) })
        })
        .await
    }

    /// A session advisory lock of class "nl" keyed by the name's hash.
    async fn lock(&self, name: &str) -> StoreResult<berth_core::store::gc::DigestLock> {
        let key = berth_core::store::gc::lock_key(&berth_core::Digest::sha256(name.as_bytes())) as i32;
        crate::gc::advisory_lock(self, NAMED_LOCK_CLASS, key).await
    }
}

/// The first half of every named lock's key ("nl"), apart from the digest locks ("gc").
const NAMED_LOCK_CLASS: i32 = 0x6e6c;
