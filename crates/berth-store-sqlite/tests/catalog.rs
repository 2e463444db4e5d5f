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

/// Tags without a natural sort key (written before migration 0017, or since by an older
/// binary during a rolling upgrade) are never left out of a natural-order page: the read
/// fills them first; and opening the database fills every one left, in batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_without_a_natural_key_are_filled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    let repo: berth_core::RepoName = "old/keys".parse().unwrap();
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    // More than one batch of 1,000.
    let names = berth_store_tests::push_numbered_tags(store.as_ref(), &repo, 1_205).await;
    let keys = |c: &Connection| -> Vec<(String, Option<Vec<u8>>)> {
        c.prepare("SELECT name, sort_key FROM tags")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let c = side(&db);
    assert!(
        keys(&c).iter().all(|(n, k)| k.as_deref() == Some(&berth_core::natural::natural_key(n)[..])),
        "every insert stores the key"
    );
    c.execute("UPDATE tags SET sort_key = NULL WHERE name <> 't7'", []).unwrap();
    assert_eq!(berth_store_tests::natural_listing(store.as_ref(), &repo).await, names, "the read filled them");
    assert!(keys(&c).iter().all(|(n, k)| k.as_deref() == Some(&berth_core::natural::natural_key(n)[..])));
    c.execute("UPDATE tags SET sort_key = NULL", []).unwrap();
    drop(store);
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    assert!(
        keys(&c).iter().all(|(n, k)| k.as_deref() == Some(&berth_core::natural::natural_key(n)[..])),
        "opening filled them"
    );
    assert_eq!(berth_store_tests::natural_listing(store.as_ref(), &repo).await, names);
}
