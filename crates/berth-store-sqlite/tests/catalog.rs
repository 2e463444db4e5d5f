use std::path::Path;
use std::sync::Arc;

use berth_store_sqlite::SqliteStore;
use rusqlite::Connection;

/// A second connection, as an operator's `sqlite3` shell would have.
fn side(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    berth_store_tests::catalog_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;
    // A second run on the same database must not trip over the first one's rows.
    berth_store_tests::catalog_conformance(Arc::clone(&store) as _, store as _).await;

    // Deleted repositories left no rows behind that point at nothing, and their blob
    // rows are still there for GC.
    let c = side(&db);
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    for (what, sql) in [
        ("manifests", "SELECT count(*) FROM manifests WHERE repository_id NOT IN (SELECT id FROM repositories)"),
        ("tags", "SELECT count(*) FROM tags WHERE repository_id NOT IN (SELECT id FROM repositories)"),
        ("tags", "SELECT count(*) FROM tags WHERE manifest_id NOT IN (SELECT id FROM manifests)"),
        ("manifest blobs", "SELECT count(*) FROM manifest_blobs WHERE manifest_id NOT IN (SELECT id FROM manifests)"),
        (
            "index references",
            "SELECT count(*) FROM manifest_children WHERE manifest_id NOT IN (SELECT id FROM manifests)",
        ),
        (
            "blob links",
            "SELECT count(*) FROM repository_blobs WHERE repository_id NOT IN (SELECT id FROM repositories)",
        ),
        (
            "repository metadata",
            "SELECT count(*) FROM repository_meta WHERE repository_id NOT IN (SELECT id FROM repositories)",
        ),
    ] {
        assert_eq!(count(sql), 0, "orphaned {what}");
    }
    assert!(
        count("SELECT count(*) FROM blobs WHERE digest NOT IN (SELECT digest FROM repository_blobs)") > 0,
        "blobs of deleted repositories stay, unlinked, for GC"
    );
    assert_eq!(count("SELECT count(*) FROM blobs WHERE state <> 'live'"), 0, "and nothing marked them");
}
