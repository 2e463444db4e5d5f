//! [`PolicyStore`] on PostgreSQL (table `policies`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::policies::{PolicyStore, StoredPolicy};
use tokio_postgres::Row;

use crate::{DbErr, PgStore, Tx, col, now};

/// System-wide documents (project 0: replication registries and policies) have no
/// project: their `project_id` is NULL (migration 0009).
const COLS: &str = "id, kind, COALESCE(project_id, 0), body, created_at, updated_at";

fn row(r: &Row) -> Result<StoredPolicy, DbErr> {
    Ok(StoredPolicy {
        id: col(r, 0)?,
        kind: col(r, 1)?,
        project_id: col(r, 2)?,
        body: col(r, 3)?,
        created_at: col(r, 4)?,
        updated_at: col(r, 5)?,
    })
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn create_policy(&self, kind: &str, project_id: i64, body: &str) -> StoreResult<i64> {
        self.db(Tx::Write, &(kind, project_id, body), |c, (kind, project_id, body)| {
            Box::pin(async move {
                let r = c
                    .one(
                        "INSERT INTO policies (kind, project_id, body, created_at, updated_at) VALUES ($1, NULLIF($2::BIGINT, 0), $3, $4, $4)
                         RETURNING id",
                        &[kind, project_id, body, &now()],
                    )
                    .await?;
                Ok(col(&r, 0)?)
            })
        })
        .await
    }

    async fn policy(&self, kind: &str, id: i64) -> StoreResult<Option<StoredPolicy>> {
        self.db(Tx::Read, &(kind, id), |c, (kind, id)| {
            Box::pin(async move {
                let r = c.opt(&format!("SELECT {COLS} FROM policies WHERE kind = $1 AND id = $2"), &[kind, id]).await?;
                Ok(r.map(|r| row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn policies(&self, kind: &str, project_id: i64) -> StoreResult<Vec<StoredPolicy>> {
        self.db(Tx::Read, &(kind, project_id), |c, (kind, project_id)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!("SELECT {COLS} FROM policies WHERE kind = $1 AND project_id IS NOT DISTINCT FROM NULLIF($2::BIGINT, 0) ORDER BY id"),
                        &[kind, project_id],
                    )
                    .await?;
                Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn update_policy(&self, kind: &str, id: i64, body: &str) -> StoreResult<bool> {
        self.db(Tx::Idempotent, &(kind, id, body), |c, (kind, id, body)| {
            Box::pin(async move {
                Ok(c.exec(
                    "UPDATE policies SET body = $3, updated_at = $4 WHERE kind = $1 AND id = $2",
                    &[kind, id, body, &now()],
                )
                .await?
                    == 1)
            })
        })
        .await
    }

    async fn delete_policy(&self, kind: &str, id: i64) -> StoreResult<bool> {
        self.db(Tx::Write, &(kind, id), |c, (kind, id)| {
            Box::pin(
                async move { Ok(c.exec("DELETE FROM policies WHERE kind = $1 AND id = $2", &[kind, id]).await? == 1) },
            )
        })
        .await
    }
}
