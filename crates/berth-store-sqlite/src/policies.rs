//! [`PolicyStore`] on SQLite (table from `migrations/0009_policies.sql`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::policies::{PolicyStore, StoredPolicy};
use rusqlite::{OptionalExtension, Row, params};

use crate::{SqliteStore, now};

/// System-wide documents (project 0: replication registries and policies) have no
/// project: their `project_id` is NULL (migration 0013; PostgreSQL 0009).
const COLS: &str = "id, kind, COALESCE(project_id, 0), body, created_at, updated_at";

fn row(r: &Row) -> rusqlite::Result<StoredPolicy> {
    Ok(StoredPolicy {
        id: r.get(0)?,
        kind: r.get(1)?,
        project_id: r.get(2)?,
        body: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn create_policy(&self, kind: &str, project_id: i64, body: &str) -> StoreResult<i64> {
        let (kind, body) = (kind.to_owned(), body.to_owned());
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO policies (kind, project_id, body, created_at, updated_at) VALUES (?1, NULLIF(?2, 0), ?3, ?4, ?4)
                     RETURNING id",
                )?
                .query_row(params![kind, project_id, body, now()], |r| r.get(0))?)
            })
            .await
    }

    async fn policy(&self, kind: &str, id: i64) -> StoreResult<Option<StoredPolicy>> {
        let kind = kind.to_owned();
        self.readers
            .run(move |c| {
                let sql = format!("SELECT {COLS} FROM policies WHERE kind = ?1 AND id = ?2");
                Ok(c.prepare_cached(&sql)?.query_row(params![kind, id], row).optional()?)
            })
            .await
    }

    async fn policies(&self, kind: &str, project_id: i64) -> StoreResult<Vec<StoredPolicy>> {
        let kind = kind.to_owned();
        self.readers
            .run(move |c| {
                let sql =
                    format!("SELECT {COLS} FROM policies WHERE kind = ?1 AND project_id IS NULLIF(?2, 0) ORDER BY id");
                Ok(c.prepare_cached(&sql)?.query_map(params![kind, project_id], row)?.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn update_policy(&self, kind: &str, id: i64, body: &str) -> StoreResult<bool> {
        let (kind, body) = (kind.to_owned(), body.to_owned());
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached("UPDATE policies SET body = ?3, updated_at = ?4 WHERE kind = ?1 AND id = ?2")?
                    .execute(params![kind, id, body, now()])?
                    == 1)
            })
            .await
    }

    async fn delete_policy(&self, kind: &str, id: i64) -> StoreResult<bool> {
        let kind = kind.to_owned();
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached("DELETE FROM policies WHERE kind = ?1 AND id = ?2")?.execute(params![kind, id])?
                    == 1)
            })
            .await
    }
}
