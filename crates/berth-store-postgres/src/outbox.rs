//! [`OutboxStore`] on PostgreSQL (table from `migrations/0008_event_outbox.sql`). Events
//! are written by `put_manifest`, `delete_manifest` and `delete_tag` inside their own
//! transaction (`insert_event`); claims skip rows another instance is claiming.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::outbox::{ClaimedEvent, OutboxEvent, OutboxStore};

use crate::{Conn, DbErr, PgStore, Tx, col};

/// The database's clock in milliseconds, so instances with skewed clocks agree on leases.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// An event `($1 … $6)`: operation, repository, reference, digest, user, time.
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO event_outbox (operation, repository, reference, digest, username, at)
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) async fn insert_event(c: Conn<'_>, e: &OutboxEvent) -> Result<(), DbErr> {
    c.exec(INSERT_EVENT, &[&e.operation, &e.repo, &e.reference, &e.digest, &e.username, &e.at]).await?;
    Ok(())
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn claim_events(&self, owner: &str, limit: u32, lease_ms: i64) -> StoreResult<Vec<ClaimedEvent>> {
        let args = (owner, i64::from(limit), lease_ms);
        self.db(Tx::Write, &args, |c, (owner, limit, lease_ms)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!(
                            "WITH picked AS (
                                 SELECT id FROM event_outbox
                                  WHERE lease_until IS NULL OR lease_until < {NOW_MS}
                                  ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                             UPDATE event_outbox o SET lease_owner = $1, lease_until = {NOW_MS} + $3
                               FROM picked WHERE o.id = picked.id
                             RETURNING o.id, o.operation, o.repository, o.reference, o.digest, o.username, o.at"
                        ),
                        &[owner, limit, lease_ms],
                    )
                    .await?;
                let mut events = rows
                    .iter()
                    .map(|r| {
                        Ok(ClaimedEvent {
                            id: col(r, 0)?,
                            event: OutboxEvent {
                                operation: col(r, 1)?,
                                repo: col(r, 2)?,
                                reference: col(r, 3)?,
                                digest: col(r, 4)?,
                                username: col(r, 5)?,
                                at: col(r, 6)?,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, DbErr>>()?;
                events.sort_by_key(|e| e.id);
                Ok(events)
            })
        })
        .await
    }

    async fn ack_events(&self, owner: &str, ids: &[i64]) -> StoreResult<u64> {
        let args = (owner, ids.to_vec());
        self.db(Tx::Write, &args, |c, (owner, ids)| {
            Box::pin(async move {
                Ok(c.exec("DELETE FROM event_outbox WHERE id = ANY($2) AND lease_owner = $1", &[owner, ids]).await?)
            })
        })
        .await
    }
}
