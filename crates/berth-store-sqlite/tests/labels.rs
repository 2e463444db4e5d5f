use std::sync::Arc;

use berth_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    berth_store_tests::labels_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;
    // A second run on the same database must not trip over the first one's rows.
    berth_store_tests::labels_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;

    // Nothing left pointing at deleted labels or manifests.
    let c = rusqlite::Connection::open(&db).unwrap();
    let orphans: i64 = c
        .query_row(
            "SELECT count(*) FROM label_references
              WHERE label_id NOT IN (SELECT id FROM labels) OR manifest_id NOT IN (SELECT id FROM manifests)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    berth_store_tests::webhooks_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::webhooks_conformance(store as _).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vulns_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    berth_store_tests::vulns_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::vulns_conformance(store as _).await;
}
