//! Versioned, append-only schema migrations.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::{Fail, backend, now};

/// Every migration this binary knows, oldest first: (version, oldest binary schema that
/// still works once it is applied, SQL). Append only: a released migration is never
/// edited, because databases in the field have already run it. Additive migrations keep
/// the previous version working (`version - 1`), so a cluster can be upgraded one
/// instance at a time.
const MIGRATIONS: &[(i64, i64, &str)] = &[
    (1, 1, include_str!("../migrations/0001_initial.sql")),
    (2, 1, include_str!("../migrations/0002_identity.sql")),
    (3, 2, include_str!("../migrations/0003_catalog.sql")),
    (4, 3, include_str!("../migrations/0004_labels.sql")),
    (5, 4, include_str!("../migrations/0005_cluster.sql")),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(crate) fn run(c: &mut Connection) -> Result<(), Fail> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    // Added after the first releases: which binaries a migration leaves working.
    let has_floor: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'requires_schema')",
        [],
        |r| r.get(0),
    )?;
    if !has_floor {
        c.execute_batch("ALTER TABLE schema_migrations ADD COLUMN requires_schema INTEGER NOT NULL DEFAULT 0")?;
    }
    for &(version, requires, sql) in MIGRATIONS {
        // IMMEDIATE so that two processes starting at once cannot both apply a version.
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (newest, floor): (Option<i64>, Option<i64>) =
            tx.query_row("SELECT max(version), max(requires_schema) FROM schema_migrations", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if let (Some(newest), Some(floor)) = (newest, floor)
            && floor > SCHEMA_VERSION
        {
            // Running old code on a schema it does not understand could silently corrupt it.
            return Err(backend(format!(
                "database schema version {newest} needs a Berth that knows schema {floor} or newer; \
                 this binary knows {SCHEMA_VERSION}. Run the newer Berth (as the other instances do) \
                 or restore a backup taken before the upgrade"
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
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, requires_schema) VALUES (?1, ?2, ?3)",
            params![version, now(), requires],
        )?;
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
        for &(version, requires, _) in MIGRATIONS {
            assert!(requires <= version, "migration {version} cannot require a newer binary than itself");
        }
    }
}
