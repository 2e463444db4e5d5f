//! [`ClusterStore`] on the same database (table from `migrations/0005_cluster.sql`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::cluster::ClusterStore;
use rusqlite::{OptionalExtension, params};

use crate::{SqliteStore, now};

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO cluster_settings (name, value, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![name, value, now()])?;
                Ok(c.prepare_cached("SELECT value FROM cluster_settings WHERE name = ?1")?
                    .query_row([&name], |r| r.get(0))?)
            })
            .await
    }

    async fn replace_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO cluster_settings (name, value, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
                )?
                .execute(params![name, value, now()])?;
                Ok(())
            })
            .await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached("SELECT value FROM cluster_settings WHERE name = ?1")?
                    .query_row([&name], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn replace_settings(&self, entries: &[(String, String)]) -> StoreResult<()> {
        let entries = entries.to_vec();
        self.writer
            .write(move |c| {
                let mut stmt = c.prepare_cached(
                    "INSERT INTO cluster_settings (name, value, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
                )?;
                let t = now();
                for (name, value) in &entries {
                    stmt.execute(params![name, value, t])?;
                }
                Ok(())
            })
            .await
    }

    async fn settings_with_prefix(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        let prefix = prefix.to_owned();
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached(
                    "SELECT name, value FROM cluster_settings WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
                )?
                .query_map([&prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn revoke_session(&self, key: &str, until: i64) -> StoreResult<()> {
        let key = key.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO revoked_sessions (session_key, until) VALUES (?1, ?2)
                     ON CONFLICT (session_key) DO UPDATE SET until = max(until, excluded.until)",
                )?
                .execute(params![key, until])?;
                Ok(())
            })
            .await
    }

    async fn session_revoked(&self, key: &str, now: i64) -> StoreResult<bool> {
        let key = key.to_owned();
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM revoked_sessions WHERE session_key = ?1 AND until > ?2)",
                )?
                .query_row(params![key, now], |r| r.get(0))?)
            })
            .await
    }

    async fn purge_revoked_sessions(&self, now: i64) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached("DELETE FROM revoked_sessions WHERE until <= ?1")?.execute([now])? as u64)
            })
            .await
    }

    /// In process: one process owns a SQLite database.
    async fn lock(&self, name: &str) -> StoreResult<berth_core::store::gc::DigestLock> {
        let key = berth_core::Digest::sha256(name.as_bytes());
        let guards = self.named.lock(std::slice::from_ref(&key)).await;
        Ok(berth_core::store::gc::DigestLock::new(Box::new(crate::gc::Held(guards))))
    }
}
