//! [`WebhookStore`] on the same database (table `webhook_policies`). A name is unique
//! per project by constraint, so a create or rename racing another ends in the conflict.
//!
//! Retried after a lost connection (see `pool.rs`): reads and updates. Creating and
//! deleting answer differently the second time and are not.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::webhooks::{
    NewWebhookPolicy, WebhookError, WebhookPolicy, WebhookResult, WebhookStore, join_event_types, split_event_types,
};
use tokio_postgres::Row;

use crate::pool::unique_constraint;
use crate::{Conn, DbErr, Fail, PgStore, Tx, backend, col, now};

type Refuse = Fail<WebhookError>;

const COLUMNS: &str =
    "id, project_id, name, description, enabled, creator, event_types, targets, creation_time, update_time";

fn policy_row(r: &Row) -> Result<WebhookPolicy, DbErr> {
    let types: String = col(r, 6)?;
    Ok(WebhookPolicy {
        id: col(r, 0)?,
        project_id: col(r, 1)?,
        name: col(r, 2)?,
        description: col(r, 3)?,
        enabled: col(r, 4)?,
        creator: col(r, 5)?,
        event_types: split_event_types(&types),
        targets: col(r, 7)?,
        creation_time: col(r, 8)?,
        update_time: col(r, 9)?,
    })
}

async fn by_id(c: Conn<'_>, id: i64) -> Result<Option<WebhookPolicy>, DbErr> {
    let row = c.opt(&format!("SELECT {COLUMNS} FROM webhook_policies WHERE id = $1"), &[&id]).await?;
    row.map(|r| policy_row(&r)).transpose()
}

fn on_unique(e: tokio_postgres::Error, name: &str) -> Refuse {
    if unique_constraint(&e) == Some("webhook_policies_name") {
        return Fail::No(WebhookError::Conflict(name.to_owned()));
    }
    Fail::from(e)
}

fn vanished() -> Refuse {
    Fail::Db(backend("webhook policy row vanished inside its own transaction"))
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook_policy(&self, p: &NewWebhookPolicy) -> WebhookResult<WebhookPolicy> {
        self.run(Tx::Write, p, |c, p| {
            Box::pin(async move {
                let row = c
                    .one_raw(
                        "INSERT INTO webhook_policies
                           (project_id, name, description, enabled, creator, event_types, targets, creation_time, update_time)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                        &[
                            &p.project_id,
                            &p.name,
                            &p.description,
                            &p.enabled,
                            &p.creator,
                            &join_event_types(&p.event_types),
                            &p.targets,
                            &now(),
                        ],
                    )
                    .await
                    .map_err(|e| on_unique(e, &p.name))?;
                by_id(c, col(&row, 0)?).await?.ok_or_else(vanished)
            })
        })
        .await
    }

    async fn webhook_policy(&self, id: i64) -> StoreResult<Option<WebhookPolicy>> {
        self.db(Tx::Read, &id, |c, id| Box::pin(async move { Ok(by_id(c, *id).await?) })).await
    }

    async fn webhook_policies(&self, project_id: i64) -> StoreResult<Vec<WebhookPolicy>> {
        self.db(Tx::Read, &project_id, |c, project_id| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!("SELECT {COLUMNS} FROM webhook_policies WHERE project_id = $1 ORDER BY id"),
                        &[project_id],
                    )
                    .await?;
                Ok(rows.iter().map(policy_row).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn update_webhook_policy(&self, id: i64, p: &NewWebhookPolicy) -> WebhookResult<WebhookPolicy> {
        self.run(Tx::Idempotent, &(id, p), |c, (id, p)| {
            Box::pin(async move {
                let old = by_id(c, *id).await?.ok_or(Fail::No(WebhookError::NotFound))?;
                c.exec_raw(
                    "UPDATE webhook_policies SET name = $2, description = $3, enabled = $4, event_types = $5,
                            targets = $6, update_time = $7 WHERE id = $1",
                    &[
                        id,
                        &p.name,
                        &p.description,
                        &p.enabled,
                        &join_event_types(&p.event_types),
                        &p.targets,
                        &now().max(old.update_time),
                    ],
                )
                .await
                .map_err(|e| on_unique(e, &p.name))?;
                by_id(c, *id).await?.ok_or_else(vanished)
            })
        })
        .await
    }

    async fn delete_webhook_policy(&self, id: i64) -> WebhookResult<()> {
        self.run(Tx::Write, &id, |c, id| {
            Box::pin(async move {
                match c.exec("DELETE FROM webhook_policies WHERE id = $1", &[id]).await? {
                    0 => Err(Fail::No(WebhookError::NotFound)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }
}
