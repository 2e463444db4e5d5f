//! [`OutboxStore`] on SQLite (table from `migrations/0012_event_outbox.sql`). Events are
//! written by `put_manifest`, `delete_manifest` and `delete_tag` inside their own
//! transaction (`insert_event`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::outbox::{ClaimedEvent, OutboxEvent, OutboxStore};
use rusqlite::{Connection, params};

use crate::{Fail, SqliteStore};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn insert_event(c: &Connection, e: &OutboxEvent) -> Result<(), Fail> {
    c.prepare_cached(
        "INSERT INTO event_outbox (operation, repository, reference, digest, username, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![e.operation, e.repo, e.reference, e.digest, e.username, e.at])?;
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn claim_events(&self, owner: &str, limit: u32, lease_ms: i64) -> StoreResult<Vec<ClaimedEvent>> {
        let owner = owner.to_owned();
        self.writer
            .write(move |c| {
                let now = now_ms();
                let mut rows = c
                    .prepare_cached(
                        "UPDATE event_outbox SET lease_owner = ?1, lease_until = ?2
                          WHERE id IN (SELECT id FROM event_outbox
                                        WHERE lease_until IS NULL OR lease_until < ?3
                                        ORDER BY id LIMIT ?4)
                         RETURNING id, operation, repository, reference, digest, username, at",
                    )?
                    .query_map(params![owner, now + lease_ms, now, limit], |r| {
                        Ok(ClaimedEvent {
                            id: r.get(0)?,
                            event: OutboxEvent {
                                operation: r.get(1)?,
                                repo: r.get(2)?,
                                reference: r.get(3)?,
                                digest: r.get(4)?,
                                username: r.get(5)?,
                                at: r.get(6)?,
                            },
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                // RETURNING's order is unspecified; events are handled oldest first.
                rows.sort_by_key(|e| e.id);
                Ok(rows)
            })
            .await
    }

    async fn ack_events(&self, owner: &str, ids: &[i64]) -> StoreResult<u64> {
        let (owner, ids) = (owner.to_owned(), ids.to_vec());
        self.writer
            .write(move |c| {
                let mut n = 0;
                let mut stmt = c.prepare_cached("DELETE FROM event_outbox WHERE id = ?1 AND lease_owner = ?2")?;
                for id in ids {
                    n += stmt.execute(params![id, owner])? as u64;
                }
                Ok(n)
            })
            .await
    }
}
