//! The backend-neutral conformance suites, each run twice on one database (the suites
//! are built to share one), plus checks that deletions left no orphaned rows.

mod common;

use std::sync::Arc;

use berth_core::Reference;
use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome};
use berth_core::Digest;
use bytes::Bytes;
use common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store: Arc<dyn MetaStore> = Arc::new(db.store().await);
    berth_store_tests::conformance(Arc::clone(&store)).await;
    berth_store_tests::conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency() {
    let Some(db) = TestDb::create().await else { return };
    let store: Arc<dyn MetaStore> = Arc::new(db.store().await);
    berth_store_tests::concurrency(Arc::clone(&store)).await;
    berth_store_tests::concurrency(store).await;
    // Many identical pushes left one row per manifest, not one per push.
    let dupes = db
        .count("SELECT count(*) FROM (SELECT 1 FROM manifests GROUP BY repository_id, digest HAVING count(*) > 1) d")
        .await;
    assert_eq!(dupes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_put_stores_one_row() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    let r: berth_core::RepoName = "race/same".parse().unwrap();
    let layer = BlobInfo { digest: Digest::sha256(b"layer"), size: 5 };
    store.commit_blob(&r, &layer, None).await.unwrap();
    let content = r#"{"schemaVersion":2}"#;
    let m = NewManifest {
        repo: r.clone(),
        digest: Digest::sha256(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::from(content),
        artifact_type: None,
        annotations: None,
        subject: None,
        blobs: vec![layer.digest.clone()],
        children: Vec::new(),
        tag: Some("latest".parse().unwrap()),
    };
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, m) = (Arc::clone(&store), m.clone());
            tokio::spawn(async move { store.put_manifest(&m).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), PutManifestOutcome::Stored);
    }
    for (table, n) in [("manifests", 1), ("manifest_blobs", 1), ("tags", 1)] {
        assert_eq!(db.count(&format!("SELECT count(*) FROM {table}")).await, n, "{table}");
    }
    let got = store.get_manifest(&r, &Reference::Tag("latest".parse().unwrap())).await.unwrap().unwrap();
    assert_eq!(got.digest, m.digest);
}
