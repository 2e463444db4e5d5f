//! The backend-neutral conformance suites, each run twice on one database (the suites
//! are built to share one), plus checks that deletions left no orphaned rows.

mod common;

use std::sync::Arc;

use berth_core::Digest;
use berth_core::Reference;
use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome};
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
        event: None,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::identity_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;
    berth_store_tests::identity_conformance(Arc::clone(&store) as _, store as _).await;
    // Deletions left no rows behind that point at nothing.
    for (what, sql) in [
        ("robots", "SELECT count(*) FROM robots WHERE project_id <> 0 AND project_id NOT IN (SELECT id FROM projects)"),
        ("permissions", "SELECT count(*) FROM robot_permissions WHERE robot_id NOT IN (SELECT id FROM robots)"),
        ("members", "SELECT count(*) FROM project_members WHERE user_id NOT IN (SELECT id FROM users)"),
    ] {
        assert_eq!(db.count(sql).await, 0, "orphaned {what}");
    }
    assert!(db.count("SELECT count(*) FROM audit_log").await >= 2 * 5, "the audit log keeps everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::catalog_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;
    berth_store_tests::catalog_conformance(Arc::clone(&store) as _, store as _).await;
    assert!(
        db.count("SELECT count(*) FROM blobs WHERE digest NOT IN (SELECT digest FROM repository_blobs)").await > 0,
        "blobs of deleted repositories stay, unlinked, for GC"
    );
    assert_eq!(db.count("SELECT count(*) FROM blobs WHERE state <> 'live'").await, 0, "and nothing marked them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::labels_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;
    berth_store_tests::labels_conformance(Arc::clone(&store) as _, store as _).await;
    let orphans = db
        .count(
            "SELECT count(*) FROM label_references
              WHERE label_id NOT IN (SELECT id FROM labels) OR manifest_id NOT IN (SELECT id FROM manifests)",
        )
        .await;
    assert_eq!(orphans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::policies_conformance(store.clone(), store.clone()).await;
    berth_store_tests::policies_conformance(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::jobs_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::jobs_conformance(store as _).await;
    let orphans = db.count("SELECT count(*) FROM jobs WHERE execution_id NOT IN (SELECT id FROM job_executions)").await;
    assert_eq!(orphans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::cluster_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::cluster_conformance(store as _).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_conformance() {
    let Some(db) = TestDb::create().await else { return };
    berth_store_tests::gc_conformance(Arc::new(db.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::webhooks_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::webhooks_conformance(store as _).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_conformance() {
    let Some(db) = TestDb::create().await else { return };
    berth_store_tests::outbox_conformance(Arc::new(db.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vulns_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    berth_store_tests::vulns_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::vulns_conformance(store as _).await;
}

/// Two stores on one database stand for two instances: the quota check of one sees what
/// the other committed, and together they never exceed a limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let (one, two) = (Arc::new(db.store().await), Arc::new(db.store().await));
    berth_store_tests::quota_conformance(one.clone(), two.clone(), one.clone(), two.clone()).await;
    berth_store_tests::quota_conformance(two.clone(), one.clone(), two, one).await;
}

/// The stored usage through two instances, and its repair after a drift made with psql.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_conformance() {
    let Some(db) = TestDb::create().await else { return };
    let (one, two) = (Arc::new(db.store().await), Arc::new(db.store().await));
    let side = Arc::new(db.side().await);
    let set_usage: berth_store_tests::SetUsage = Arc::new(move |project, used| {
        let side = Arc::clone(&side);
        Box::pin(async move {
            side.execute("DELETE FROM project_usage_delta WHERE project = $1", &[&project]).await.unwrap();
            side.execute(
                "INSERT INTO project_usage (project, used) VALUES ($1, $2)
                 ON CONFLICT (project) DO UPDATE SET used = excluded.used",
                &[&project, &used],
            )
            .await
            .unwrap();
        })
    });
    berth_store_tests::usage_conformance(one.clone(), two.clone(), one.clone(), two, one, set_usage).await;
}
