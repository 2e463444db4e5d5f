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
}
