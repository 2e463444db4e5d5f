//! Versioned, append-only schema migrations, safe when several instances start at once.

use std::time::Duration;

use berth_core::store::StoreError;
use tokio_postgres::{Client, Config};

use crate::now;
use crate::pool::describe_chain;

/// Every migration this binary knows, oldest first: (version, oldest binary schema that
/// still works once it is applied, SQL). Append only: a released migration is never
/// edited, because databases in the field have already run it. Additive migrations keep
/// the previous version working (`version - 1`), so a cluster can be upgraded one
/// instance at a time.
const MIGRATIONS: &[(i64, i64, &str)] = &[
    (1, 1, include_str!("../migrations/0001_initial.sql")),
    // Additive: nullable columns and an identity column earlier binaries never name.
    (2, 1, include_str!("../migrations/0002_pull_times.sql")),
    // Additive: a new table.
    (3, 2, include_str!("../migrations/0003_revoked_sessions.sql")),
    (4, 3, include_str!("../migrations/0004_jobs.sql")),
    (5, 4, include_str!("../migrations/0005_policies.sql")),
    // Additive: nullable columns and an index.
    (6, 5, include_str!("../migrations/0006_gc.sql")),
    // Additive: a new table.
    (7, 6, include_str!("../migrations/0007_webhooks.sql")),
    // Additive: a new table.
    (8, 7, include_str!("../migrations/0008_event_outbox.sql")),
    // Additive: a column becomes nullable; only system-wide documents use NULL.
    (9, 8, include_str!("../migrations/0009_system_policies.sql")),
    // Additive: new tables (vulnerability data and scan reports).
    (10, 9, include_str!("../migrations/0010_vulns.sql")),
    // Additive: a new table kept by triggers, which count the writes of an instance
    // still running the binary before it too; functions of its own.
    (11, 10, include_str!("../migrations/0011_project_usage.sql")),
    // Not additive: the usage becomes `project_usage` plus deltas, which the previous
    // binary's repair (after GC) would count twice; instances stop and start on the
    // new binary together.
    (12, 12, include_str!("../migrations/0012_usage_holdings.sql")),
    // Additive: two indexes.
    (13, 12, include_str!("../migrations/0013_tag_sort_indexes.sql")),
    // Additive: a nullable column and two indexes. The previous binary's tag inserts
    // leave the key NULL; this binary fills such keys before a natural-order read.
    (14, 13, include_str!("../migrations/0014_tag_natural_key.sql")),
    // Additive: a row trigger becomes a statement trigger doing the same bookkeeping; the
    // previous binary's claims fire it too.
    (15, 14, include_str!("../migrations/0015_usage_release_per_statement.sql")),
    // Additive: a function rewritten to do the same work cheaper.
    (16, 15, include_str!("../migrations/0016_usage_release_held_last.sql")),
    // Additive: an index.
    (17, 16, include_str!("../migrations/0017_manifests_digest_index.sql")),
    // Additive: a function gains an argument with a default (same work for its old
    // callers); the trigger of GC's claims passes it.
    (18, 17, include_str!("../migrations/0018_usage_release_died.sql")),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Any fixed number: it names the lock every Berth instance takes while it migrates, so
/// that instances starting together apply each migration once, one after the other.
const LOCK_KEY: i64 = 0x4265_7274_6853_6368; // "BerthSch"

/// Runs the migrations on a connection of its own, so that the advisory lock (held by
/// the session) goes away with it whatever happens.
pub(crate) async fn run(
    config: &Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    target: &str,
    connect_timeout: Duration,
) -> Result<(), StoreError> {
    let connecting = tokio::time::timeout(connect_timeout, config.connect(tls)).await;
    let (client, connection) = match connecting {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(StoreError::Unavailable(format!("connecting to {target}: {}", describe_chain(&e)))),
        Err(_) => {
            return Err(StoreError::Unavailable(format!(
                "connecting to {target}: no answer within {connect_timeout:?}"
            )));
        }
    };
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection ended");
        }
    });
    let out = migrate(&client).await.map_err(|e| match e {
        Step::Pg(what, e) => StoreError::Backend(format!("{target}: {what}: {}", describe_chain(&e))),
        Step::Refused(msg) => StoreError::Backend(format!("{target}: {msg}")),
    });
    drop(client);
    let _ = driver.await;
    out
}

enum Step {
    Pg(&'static str, tokio_postgres::Error),
    Refused(String),
}

fn at(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Step {
    move |e| Step::Pg(what, e)
}

async fn migrate(c: &Client) -> Result<(), Step> {
    // A migration may take longer than any request should, and waiting for another
    // instance's migration is expected.
    c.batch_execute("SET statement_timeout = 0").await.map_err(at("configuring the session"))?;
    c.query("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(at("waiting for the migration lock"))?;
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version         BIGINT PRIMARY KEY,
             applied_at      BIGINT NOT NULL,
             requires_schema BIGINT NOT NULL
         )",
    )
    .await
    .map_err(at("creating schema_migrations"))?;
    let row = c
        .query_one("SELECT max(version), max(requires_schema) FROM schema_migrations", &[])
        .await
        .map_err(at("reading schema_migrations"))?;
    let (newest, floor): (Option<i64>, Option<i64>) = (
        row.try_get(0).map_err(at("reading schema_migrations"))?,
        row.try_get(1).map_err(at("reading schema_migrations"))?,
    );
    if let (Some(newest), Some(floor)) = (newest, floor)
        && floor > SCHEMA_VERSION
    {
        // Running old code on a schema it does not understand could silently corrupt it.
        return Err(Step::Refused(format!(
            "database schema version {newest} needs a Berth that knows schema {floor} or newer; \
             this binary knows {SCHEMA_VERSION}. Run the newer Berth (as the other instances do) \
             or restore a backup taken before the upgrade"
        )));
    }
    for &(version, requires, sql) in MIGRATIONS {
        let applied = c
            .query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[&version])
            .await
            .map_err(at("reading schema_migrations"))?;
        if applied.is_some() {
            continue;
        }
        tracing::info!(version, "applying metadata schema migration");
        c.batch_execute("BEGIN").await.map_err(at("starting a migration"))?;
        let applied = async {
            c.batch_execute(sql).await.map_err(at("applying a migration"))?;
            c.execute(
                "INSERT INTO schema_migrations (version, applied_at, requires_schema) VALUES ($1, $2, $3)",
                &[&version, &now(), &requires],
            )
            .await
            .map_err(at("recording a migration"))?;
            c.batch_execute("COMMIT").await.map_err(at("committing a migration"))
        }
        .await;
        if let Err(e) = applied {
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(match e {
                Step::Pg(what, e) => {
                    Step::Refused(format!("schema migration {version} failed ({what}): {}", describe_chain(&e)))
                }
                refused => refused,
            });
        }
    }
    // Tags written before 0014 (or since, by an older binary) get their natural sort key,
    // which SQL does not compute: one transaction per batch of 1,000, so a large
    // registry's first start commits as it goes and never holds many row locks.
    loop {
        c.batch_execute("BEGIN").await.map_err(at("filling natural sort keys"))?;
        match crate::catalog::fill_sort_keys(c, None).await {
            Ok(n) => {
                c.batch_execute("COMMIT").await.map_err(at("filling natural sort keys"))?;
                if n == 0 {
                    break;
                }
            }
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                return Err(Step::Pg("filling natural sort keys", e));
            }
        }
    }
    c.query("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await.map_err(at("releasing the migration lock"))?;
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
