//! [`WebhookStore`] on the same database (table from `migrations/0009_webhooks.sql`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::webhooks::{
    NewWebhookPolicy, WebhookError, WebhookPolicy, WebhookResult, WebhookStore, join_event_types, split_event_types,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{Fail, SqliteStore, backend, now};

type Refuse = crate::refuse::Refuse<WebhookError>;

const COLUMNS: &str =
    "id, project_id, name, description, enabled, creator, event_types, targets, creation_time, update_time";

fn policy_row(r: &Row<'_>) -> rusqlite::Result<WebhookPolicy> {
    let types: String = r.get(6)?;
    Ok(WebhookPolicy {
        id: r.get(0)?,
        project_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        enabled: r.get(4)?,
        creator: r.get(5)?,
        event_types: split_event_types(&types),
        targets: r.get(7)?,
        creation_time: r.get(8)?,
        update_time: r.get(9)?,
    })
}

fn by_id(c: &Connection, id: i64) -> Result<Option<WebhookPolicy>, Fail> {
    Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM webhook_policies WHERE id = ?1"))?
        .query_row([id], policy_row)
        .optional()?)
}

fn name_taken(c: &Connection, project_id: i64, name: &str, except: i64) -> Result<bool, Fail> {
    Ok(c.prepare_cached("SELECT 1 FROM webhook_policies WHERE project_id = ?1 AND name = ?2 AND id <> ?3")?
        .query_row(params![project_id, name, except], |_| Ok(()))
        .optional()?
        .is_some())
}

fn vanished() -> Fail {
    backend("webhook policy row vanished inside its own transaction")
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook_policy(&self, p: &NewWebhookPolicy) -> WebhookResult<WebhookPolicy> {
        let p = p.clone();
        self.refusable_write(move |c| {
            if name_taken(c, p.project_id, &p.name, 0)? {
                return Err(Refuse::No(WebhookError::Conflict(p.name)));
            }
            let t = now();
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO webhook_policies
                       (project_id, name, description, enabled, creator, event_types, targets, creation_time, update_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
                )?
                .query_row(
                    params![
                        p.project_id,
                        p.name,
                        p.description,
                        p.enabled,
                        p.creator,
                        join_event_types(&p.event_types),
                        p.targets,
                        t
                    ],
                    |r| r.get(0),
                )?;
            Ok(by_id(c, id)?.ok_or_else(vanished)?)
        })
        .await
    }

    async fn webhook_policy(&self, id: i64) -> StoreResult<Option<WebhookPolicy>> {
        self.readers.run(move |c| by_id(c, id)).await
    }

    async fn webhook_policies(&self, project_id: i64) -> StoreResult<Vec<WebhookPolicy>> {
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webhook_policies WHERE project_id = ?1 ORDER BY id"
                ))?
                .query_map([project_id], policy_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn update_webhook_policy(&self, id: i64, p: &NewWebhookPolicy) -> WebhookResult<WebhookPolicy> {
        let p = p.clone();
        self.refusable_write(move |c| {
            let old = by_id(c, id)?.ok_or(Refuse::No(WebhookError::NotFound))?;
            if name_taken(c, old.project_id, &p.name, id)? {
                return Err(Refuse::No(WebhookError::Conflict(p.name)));
            }
            c.prepare_cached(
                "UPDATE webhook_policies SET name = ?2, description = ?3, enabled = ?4, event_types = ?5,
                        targets = ?6, update_time = ?7 WHERE id = ?1",
            )?
            .execute(params![
                id,
                p.name,
                p.description,
                p.enabled,
                join_event_types(&p.event_types),
                p.targets,
                now().max(old.update_time)
            ])?;
            Ok(by_id(c, id)?.ok_or_else(vanished)?)
        })
        .await
    }

    async fn delete_webhook_policy(&self, id: i64) -> WebhookResult<()> {
        self.refusable_write(move |c| {
            match c.prepare_cached("DELETE FROM webhook_policies WHERE id = ?1")?.execute([id])? {
                0 => Err(Refuse::No(WebhookError::NotFound)),
                _ => Ok(()),
            }
        })
        .await
    }
}
