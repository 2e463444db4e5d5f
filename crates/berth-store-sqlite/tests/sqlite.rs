use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome, StoreError, Upload};
use berth_core::{Digest, Reference, RepoName};
use berth_store_sqlite::{LAST_REF_REFRESH_SECS, SCHEMA_VERSION, SqliteStore};
use bytes::Bytes;
use rusqlite::Connection;

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("meta.db")
}

/// A second connection, as an operator's `sqlite3` shell or the future GC would have.
fn side(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn blob(label: &str) -> BlobInfo {
    BlobInfo { digest: Digest::sha256(label.as_bytes()), size: label.len() as u64 }
}

fn image(r: &RepoName, label: &str, blobs: Vec<Digest>) -> NewManifest {
    let content = format!(r#"{{"schemaVersion":2,"x":"{label}"}}"#);
    NewManifest {
        event: None,
        repo: r.clone(),
        digest: Digest::sha256(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::from(content),
        artifact_type: None,
        annotations: None,
        subject: None,
        blobs,
        children: Vec::new(),
        tag: Some("latest".parse().unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::conformance(Arc::clone(&store)).await;
    // A second run on the same database must not trip over the first one's rows.
    berth_store_tests::conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::identity_conformance(Arc::clone(&store) as _, Arc::clone(&store) as _).await;
    // A second run on the same database must not trip over the first one's rows.
    berth_store_tests::identity_conformance(Arc::clone(&store) as _, store as _).await;
    // Deletions left no rows behind that point at nothing.
    let c = side(&db(&dir));
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    for (what, sql) in [
        ("metadata", "SELECT count(*) FROM project_metadata WHERE project_id NOT IN (SELECT id FROM projects)"),
        ("members", "SELECT count(*) FROM project_members WHERE project_id NOT IN (SELECT id FROM projects)"),
        ("memberships", "SELECT count(*) FROM project_members WHERE user_id NOT IN (SELECT id FROM users)"),
        ("robots", "SELECT count(*) FROM robots WHERE project_id <> 0 AND project_id NOT IN (SELECT id FROM projects)"),
        ("permissions", "SELECT count(*) FROM robot_permissions WHERE robot_id NOT IN (SELECT id FROM robots)"),
    ] {
        assert_eq!(count(sql), 0, "orphaned {what}");
    }
    assert!(count("SELECT count(*) FROM audit_log") >= 2 * 5, "the audit log keeps everything");
    assert!(c.prepare("PRAGMA foreign_key_check").unwrap().query([]).unwrap().next().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::concurrency(store).await;
    // Many identical pushes left one row per manifest, not one per push.
    let dupes: i64 = side(&db(&dir))
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM manifests GROUP BY repository_id, digest HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dupes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_put_stores_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    let r = repo("race/same");
    let layer = blob("layer");
    store.commit_blob(&r, &layer, None).await.unwrap();
    let m = image(&r, "same", vec![layer.digest.clone()]);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, m) = (Arc::clone(&store), m.clone());
            tokio::spawn(async move { store.put_manifest(&m).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), PutManifestOutcome::Stored);
    }
    let c = side(&db(&dir));
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM manifests"), 1);
    assert_eq!(count("SELECT count(*) FROM manifest_blobs"), 1);
    assert_eq!(count("SELECT count(*) FROM tags"), 1);
    let got = store.get_manifest(&r, &Reference::Tag("latest".parse().unwrap())).await.unwrap().unwrap();
    assert_eq!(got.digest, m.digest);
}

#[tokio::test]
async fn migrations_run_twice_are_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("kept");
    let b = blob("kept");
    {
        let store = SqliteStore::open(&db(&dir)).unwrap();
        store.commit_blob(&r, &b, None).await.unwrap();
    }
    let applied = || {
        let c = side(&db(&dir));
        let mut st = c.prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version").unwrap();
        st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    let first = applied();
    assert_eq!(first.iter().map(|v| v.0).collect::<Vec<_>>(), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let store = SqliteStore::open(&db(&dir)).unwrap();
    assert_eq!(applied(), first, "reopening applied nothing again");
    assert_eq!(store.repo_blob(&r, &b.digest).await.unwrap(), Some(b), "data survived reopening");
    let mode: String = side(&db(&dir)).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn schema_that_needs_a_newer_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(&db(&dir)).unwrap());
    side(&db(&dir))
        .execute(
            "INSERT INTO schema_migrations (version, applied_at, requires_schema) VALUES (?1, 0, ?1)",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
    match SqliteStore::open(&db(&dir)) {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1)), "{msg}");
            assert!(msg.contains(&format!("this binary knows {SCHEMA_VERSION}")), "{msg}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Rolling upgrades: a newer instance applied an additive migration; this (one version
/// older) binary keeps working against it.
#[tokio::test]
async fn additive_newer_migration_keeps_this_binary_working() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(&db(&dir)).unwrap());
    side(&db(&dir))
        .execute(
            "INSERT INTO schema_migrations (version, applied_at, requires_schema) VALUES (?1, 0, ?2)",
            [SCHEMA_VERSION + 1, SCHEMA_VERSION],
        )
        .unwrap();
    let store = SqliteStore::open(&db(&dir)).expect("one version back still opens");
    store.commit_blob(&repo("rolling"), &blob("rolling"), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::cluster_conformance(store).await;
}

#[test]
fn open_reports_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/meta.db");
    match SqliteStore::open(&path) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("no/such/dir"), "{msg}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn deleting_blobs_are_absent() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    let (a, b) = (repo("gc/a"), repo("gc/b"));
    let doomed = blob("doomed");
    store.commit_blob(&a, &doomed, None).await.unwrap();
    let set_state = |state: &str| {
        side(&db(&dir)).execute("UPDATE blobs SET state = ?1 WHERE digest = ?2", [state, &doomed.digest.to_string()])
    };
    set_state("deleting").unwrap();

    assert_eq!(store.repo_blob(&a, &doomed.digest).await.unwrap(), None);
    assert_eq!(store.mount_blob(&a, &b, &doomed.digest).await.unwrap(), None);
    let m = image(&a, "uses-doomed", vec![doomed.digest.clone()]);
    assert_eq!(store.put_manifest(&m).await.unwrap(), PutManifestOutcome::MissingBlobs(vec![doomed.digest.clone()]));

    // A fresh commit of the same bytes takes the row back from GC.
    store.commit_blob(&a, &doomed, None).await.unwrap();
    assert_eq!(store.repo_blob(&a, &doomed.digest).await.unwrap(), Some(doomed.clone()));
    assert_eq!(store.put_manifest(&m).await.unwrap(), PutManifestOutcome::Stored);

    set_state("deleting").unwrap();
    assert!(!store.unlink_blob(&a, &doomed.digest).await.unwrap(), "reported absent");
    set_state("live").unwrap();
    assert_eq!(store.repo_blob(&a, &doomed.digest).await.unwrap(), None, "but the link is gone");

    assert!(set_state("gone").is_err(), "the CHECK constraint guards the state column");
}

#[tokio::test]
async fn last_ref_refresh_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    let r = repo("touch");
    let b = blob("touched");
    store.commit_blob(&r, &b, None).await.unwrap();
    let c = side(&db(&dir));
    let d = b.digest.to_string();
    let set =
        |t: i64| c.execute("UPDATE blobs SET last_ref_at = ?1 WHERE digest = ?2", rusqlite::params![t, d]).unwrap();
    let get = || c.query_row("SELECT last_ref_at FROM blobs WHERE digest = ?1", [&d], |r| r.get::<_, i64>(0)).unwrap();
    assert!(get() >= now() - 5, "commit sets last_ref_at");

    let recent = now() - LAST_REF_REFRESH_SECS / 2;
    set(recent);
    assert!(store.repo_blob(&r, &b.digest).await.unwrap().is_some());
    assert_eq!(get(), recent, "a recent reference is not rewritten");

    set(now() - LAST_REF_REFRESH_SECS - 60);
    assert!(store.repo_blob(&r, &b.digest).await.unwrap().is_some());
    assert!(get() >= now() - 5, "an old reference is refreshed");

    c.execute("UPDATE blobs SET last_ref_at = NULL WHERE digest = ?1", [&d]).unwrap();
    assert!(store.repo_blob(&r, &b.digest).await.unwrap().is_some());
    assert!(get() >= now() - 5, "an unknown reference time is refreshed");

    // put_manifest and mount count as references too.
    set(1);
    store.put_manifest(&image(&r, "ref", vec![b.digest.clone()])).await.unwrap();
    assert!(get() >= now() - 5);
    set(1);
    store.mount_blob(&r, &repo("touch/b"), &b.digest).await.unwrap().unwrap();
    assert!(get() >= now() - 5);
}

#[tokio::test]
async fn delete_manifest_removes_its_reference_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    let r = repo("cascade");
    let b = blob("cascade");
    store.commit_blob(&r, &b, None).await.unwrap();
    let child = image(&r, "child", vec![b.digest.clone()]);
    store.put_manifest(&child).await.unwrap();
    let index = NewManifest { children: vec![child.digest.clone()], ..image(&r, "index", vec![]) };
    store.put_manifest(&index).await.unwrap();
    let c = side(&db(&dir));
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!((count("SELECT count(*) FROM manifest_blobs"), count("SELECT count(*) FROM manifest_children")), (1, 1));
    assert!(store.delete_manifest(&r, &index.digest, None).await.unwrap());
    assert!(store.delete_manifest(&r, &child.digest, None).await.unwrap());
    for t in ["manifests", "manifest_blobs", "manifest_children", "tags"] {
        assert_eq!(count(&format!("SELECT count(*) FROM {t}")), 0, "{t}");
    }
    assert_eq!(count("SELECT count(*) FROM repository_blobs"), 1, "the blob link is not the manifest's");
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    let r = repo("corrupt");
    let m = image(&r, "m", vec![]);
    store.put_manifest(&m).await.unwrap();
    let up = Upload { id: "u".into(), repo: r.clone(), offset: 0, hash_state: None, parts: vec![], started_at: 0 };
    store.create_upload(&up).await.unwrap();
    let c = side(&db(&dir));
    c.execute_batch(
        "UPDATE manifests SET digest = 'sha256:nothex';
         UPDATE uploads SET parts = 'not json';
         INSERT INTO uploads (id, repository, \"offset\", parts, started_at, updated_at)
              VALUES ('neg', 'corrupt', -1, '[]', 0, 0);",
    )
    .unwrap();
    let tag = Reference::Tag("latest".parse().unwrap());
    assert!(matches!(store.get_manifest(&r, &tag).await, Err(StoreError::Backend(_))));
    assert!(matches!(store.get_upload(&r, "u").await, Err(StoreError::Backend(_))));
    assert!(matches!(store.get_upload(&r, "neg").await, Err(StoreError::Backend(_))));
    assert!(matches!(store.append_upload_part("u", 0, 1, None, "p").await, Err(StoreError::Backend(_))));
    assert!(matches!(store.stale_uploads(10, 10).await, Err(StoreError::Backend(_))));
}

#[tokio::test]
async fn busy_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    let c = side(&db(&dir));
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let err = store.commit_blob(&repo("busy"), &blob("busy"), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed().as_secs() >= 4, "waited for the busy timeout first");
    // Readers are not blocked by a writer in WAL mode.
    store.ping().await.unwrap();
    assert_eq!(store.list_repositories(None, 10).await.unwrap(), Vec::<String>::new());
    c.execute_batch("ROLLBACK").unwrap();
    store.commit_blob(&repo("busy"), &blob("busy"), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::jobs_conformance(Arc::clone(&store) as _).await;
    berth_store_tests::jobs_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::policies_conformance(store.clone(), store.clone()).await;
    berth_store_tests::policies_conformance(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::gc_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::outbox_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    berth_store_tests::quota_conformance(store.clone(), store.clone(), store.clone(), store.clone()).await;
    berth_store_tests::quota_conformance(store.clone(), store.clone(), store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let set_usage: berth_store_tests::SetUsage = Arc::new(move |project, used| {
        let path = path.clone();
        Box::pin(async move {
            side(&path)
                .execute("UPDATE project_usage SET used = ?2 WHERE project = ?1", rusqlite::params![project, used])
                .unwrap();
        })
    });
    berth_store_tests::usage_conformance(store.clone(), store.clone(), store.clone(), store.clone(), store, set_usage)
        .await;
}
