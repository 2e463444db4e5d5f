//! Versioned, append-only schema migrations.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::{Fail, backend, now};

/// Every migration this binary knows, oldest first. Append only: a released migration
/// is never edited, because databases in the field have already run it.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_identity.sql")),
    (3, include_str!("../migrations/0003_catalog.sql")),
    (4, include_str!("../migrations/0004_labels.sql")),
];

/// The newest schema version this binary can run against.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(crate) fn run(c: &mut Connection) -> Result<(), Fail> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    for &(version, sql) in MIGRATIONS {
        // IMMEDIATE so that two processes starting at once cannot both apply a version.
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let newest: Option<i64> = tx.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))?;
        if let Some(newest) = newest
            && newest > SCHEMA_VERSION
        {
            // Running old code on a newer schema could silently corrupt it.
            return Err(backend(format!(
                "database schema version {newest} is newer than this binary supports ({SCHEMA_VERSION}); \
                 run a newer Berth or restore a backup taken before the upgrade"
            )));
        }
        let applied: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)", [version], |r| {
                r.get(0)
            })?;
        if applied {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| backend(format!("schema migration {version} failed: {e}")))?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", params![version, now()])?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        assert_eq!(MIGRATIONS[0].0, 1);
        for w in MIGRATIONS.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "migration versions must be consecutive");
        }
    }
}
