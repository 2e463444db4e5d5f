//! Schema migrations: applied once however many instances start together, never again,
//! and a schema this binary cannot use is refused while an additive newer one is not.

mod common;

use std::sync::Arc;

use berth_core::Digest;
use berth_core::store::{BlobInfo, MetaStore, StoreError};
use berth_store_postgres::{PgStore, SCHEMA_VERSION};
use common::TestDb;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn applied(db: &TestDb) -> Vec<(i64, i64, i64)> {
    db.side()
        .await
        .query("SELECT version, applied_at, requires_schema FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn blob(label: &str) -> BlobInfo {
    BlobInfo { digest: Digest::sha256(label.as_bytes()), size: label.len() as u64 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_apply_each_migration_once() {
    let Some(db) = TestDb::create().await else { return };
    let t0 = now();
    let opts = Arc::new(db.options());
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let opts = Arc::clone(&opts);
            tokio::spawn(async move { PgStore::connect((*opts).clone()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("every racing instance starts"));
    }
    let rows = applied(&db).await;
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    for &(version, at, requires) in &rows {
        assert!(at >= t0 && at <= now() + 1, "migration {version} applied during the test, at {at}");
        assert!(requires >= 1 && requires <= version, "migration {version} requires {requires}");
    }
    // All of them work on the one schema.
    for (i, s) in stores.iter().enumerate() {
        s.commit_blob(&format!("race/r{i}").parse().unwrap(), &blob(&format!("b{i}")), None).await.unwrap();
    }
    assert_eq!(stores[0].list_repositories(None, 100).await.unwrap().len(), 6);
}

#[tokio::test]
async fn reopening_applies_nothing() {
    let Some(db) = TestDb::create().await else { return };
    let r = "kept/repo".parse().unwrap();
    let b = blob("kept");
    {
        let store = db.store().await;
        store.commit_blob(&r, &b, None).await.unwrap();
    }
    let first = applied(&db).await;
    assert_eq!(first.len() as i64, SCHEMA_VERSION);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let store = db.store().await;
    assert_eq!(applied(&db).await, first, "reopening applied nothing again");
    assert_eq!(store.repo_blob(&r, &b.digest).await.unwrap(), Some(b), "data survived reopening");
}

#[tokio::test]
async fn schema_that_needs_a_newer_binary_is_refused() {
    let Some(db) = TestDb::create().await else { return };
    drop(db.store().await);
    let newer = SCHEMA_VERSION + 1;
    db.side()
        .await
        .execute("INSERT INTO schema_migrations (version, applied_at, requires_schema) VALUES ($1, 0, $1)", &[&newer])
        .await
        .unwrap();
    match PgStore::connect(db.options()).await {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains(&format!("database schema version {newer} needs a Berth")), "{msg}");
            assert!(msg.contains(&format!("this binary knows {SCHEMA_VERSION}")), "{msg}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Rolling upgrades: a newer instance applied an additive migration; this (one version
/// older) binary keeps working against it.
#[tokio::test]
async fn additive_newer_migration_keeps_this_binary_working() {
    let Some(db) = TestDb::create().await else { return };
    drop(db.store().await);
    db.side()
        .await
        .execute(
            "INSERT INTO schema_migrations (version, applied_at, requires_schema) VALUES ($1, 0, $2)",
            &[&(SCHEMA_VERSION + 1), &SCHEMA_VERSION],
        )
        .await
        .unwrap();
    let store = PgStore::connect(db.options()).await.expect("one version back still starts");
    store.commit_blob(&"rolling/repo".parse().unwrap(), &blob("rolling"), None).await.unwrap();
}

/// Tags without a natural sort key (written before migration 0014, or since by an older
/// binary during a rolling upgrade) are never left out of a natural-order page: the read
/// fills them first; and starting an instance fills every one left, in batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_without_a_natural_key_are_filled() {
    let Some(db) = TestDb::create().await else { return };
    let repo: berth_core::RepoName = "old/keys".parse().unwrap();
    let store = db.store().await;
    // More than one batch of 1,000.
    let names = berth_store_tests::push_numbered_tags(&store, &repo, 1_205).await;
    let side = db.side().await;
    let all_keyed = || async {
        let rows = side.query("SELECT name, sort_key FROM tags", &[]).await.unwrap();
        rows.len() == names.len()
            && rows.iter().all(|r| {
                r.get::<_, Option<Vec<u8>>>(1).as_deref()
                    == Some(&berth_core::natural::natural_key(r.get::<_, &str>(0))[..])
            })
    };
    assert!(all_keyed().await, "every insert stores the key");
    side.execute("UPDATE tags SET sort_key = NULL WHERE name <> 't7'", &[]).await.unwrap();
    assert_eq!(berth_store_tests::natural_listing(&store, &repo).await, names, "the read filled them");
    assert!(all_keyed().await);
    side.execute("UPDATE tags SET sort_key = NULL", &[]).await.unwrap();
    drop(store);
    let store = db.store().await;
    assert!(all_keyed().await, "starting filled them");
    assert_eq!(berth_store_tests::natural_listing(&store, &repo).await, names);
}
