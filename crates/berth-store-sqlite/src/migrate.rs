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
    // Additive for the binaries before it: the rebuilt `tags` keeps its columns and a
    // unique (repository_id, name) for their upserts; the new columns are nullable.
    (6, 5, include_str!("../migrations/0006_pull_times.sql")),
    (7, 6, include_str!("../migrations/0007_revoked_sessions.sql")),
    (8, 7, include_str!("../migrations/0008_jobs.sql")),
    (9, 8, include_str!("../migrations/0009_policies.sql")),
    (10, 9, include_str!("../migrations/0010_gc.sql")),
    // Additive: a new table.
    (11, 10, include_str!("../migrations/0011_webhooks.sql")),
    // Additive: a new table.
    (12, 11, include_str!("../migrations/0012_event_outbox.sql")),
    // Additive for the binary before it: the rebuilt `policies` keeps its columns; only
    // system-wide documents (kinds it never asks for) have a NULL project.
    (13, 12, include_str!("../migrations/0013_system_policies.sql")),
    // Additive: new tables (vulnerability data and scan reports).
    (14, 13, include_str!("../migrations/0014_vulns.sql")),
    // Additive: a new table kept by triggers, which count the writes of the binary
    // before it too.
    (15, 14, include_str!("../migrations/0015_project_usage.sql")),
    // Additive: two indexes.
    (16, 15, include_str!("../migrations/0016_tag_sort_indexes.sql")),
    // Additive: a nullable column and two indexes. The previous binary's tag inserts
    // leave the key NULL; this binary fills such keys before a natural-order read.
    (17, 16, include_str!("../migrations/0017_tag_natural_key.sql")),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(crate) fn run(c: &mut Connection) -> Result<(), Fail> {
    // One transaction for everything pending: with synchronous=FULL each commit is an
    // fsync, and a fresh database would otherwise pay one per migration at first start.
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let has_floor: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'requires_schema')",
        [],
        |r| r.get(0),
    )?;
    if !has_floor {
        tx.execute_batch("ALTER TABLE schema_migrations ADD COLUMN requires_schema INTEGER NOT NULL DEFAULT 0")?;
    }
    let (newest, floor): (Option<i64>, Option<i64>) =
        tx.query_row("SELECT max(version), max(requires_schema) FROM schema_migrations", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if let (Some(newest), Some(floor)) = (newest, floor)
        && floor > SCHEMA_VERSION
    {
        return Err(backend(format!(
            "database schema version {newest} needs a Berth that knows schema {floor} or newer; \
             this binary knows {SCHEMA_VERSION}. Run the newer Berth (as the other instances do) \
             or restore a backup taken before the upgrade"
        )));
    }
    for &(version, requires, sql) in MIGRATIONS {
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
    }
    // Tags written before 0017 (or since, by an older binary) get their natural sort key:
    // SQL cannot compute it. Nothing to do but an empty index probe once they have.
    crate::catalog::fill_sort_keys(&tx, None)?;
    tx.commit()?;
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

    /// 0006 rebuilds `tags`: existing tags keep their rows and get their rowid as id, new
    /// ones get ids never used before, and the upserts of earlier binaries still work.
    #[test]
    fn pull_times_migration_keeps_tags() {
        let c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        for &(version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 < 6) {
            c.execute_batch(sql).unwrap_or_else(|e| panic!("migration {version}: {e}"));
        }
        c.execute_batch(
            "INSERT INTO repositories (id, name, created_at) VALUES (1, 'p/r', 10);
             INSERT INTO manifests (id, repository_id, digest, media_type, size, content, created_at)
                 VALUES (7, 1, 'sha256:aa', 'm', 1, x'00', 10), (8, 1, 'sha256:bb', 'm', 1, x'00', 11);
             INSERT INTO tags (repository_id, name, manifest_id, updated_at)
                 VALUES (1, 'v1', 7, 20), (1, 'v2', 8, 21), (1, 'v3', 8, 22);
             DELETE FROM tags WHERE name = 'v3';",
        )
        .unwrap();
        let before: Vec<(i64, String, i64, i64)> = c
            .prepare("SELECT rowid, name, manifest_id, updated_at FROM tags ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        c.execute_batch(MIGRATIONS[5].2).unwrap();
        let after: Vec<(i64, String, i64, i64)> = c
            .prepare("SELECT id, name, manifest_id, updated_at FROM tags WHERE pulled_at IS NULL ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(after, before);
        let unpulled: i64 =
            c.query_row("SELECT count(*) FROM manifests WHERE pulled_at IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(unpulled, 2);
        // An earlier binary's upsert: moves the tag in place, keeping its id.
        let upsert = "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (1, ?1, ?2, 30)
                      ON CONFLICT (repository_id, name) DO UPDATE SET
                          manifest_id = excluded.manifest_id, updated_at = excluded.updated_at";
        c.execute(upsert, params!["v1", 8]).unwrap();
        let (id, manifest): (i64, i64) = c
            .query_row("SELECT id, manifest_id FROM tags WHERE name = 'v1'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((id, manifest), (before[0].0, 8));
        // A new tag gets an id above every id handed out.
        c.execute(upsert, params!["v4", 7]).unwrap();
        let id: i64 = c.query_row("SELECT id FROM tags WHERE name = 'v4'", [], |r| r.get(0)).unwrap();
        assert!(id > before.last().unwrap().0, "{id}");
        let indexed: bool = c
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'tags_manifest')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(indexed);
    }
}
