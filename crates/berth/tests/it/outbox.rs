//! The event outbox through the real binary: a push that committed but whose event was
//! never drained (its instance died right after answering, or died holding the event's
//! lease) still reaches the audit log once the lease lapses; and on PostgreSQL, an
//! instance killed with -9 right after answering pushes leaves every one of them to the
//! other instance.

use std::time::{Duration, Instant};

use berth_core::store::outbox::{OutboxEvent, OutboxStore};
use berth_core::store::{MetaStore, NewManifest, PutManifestOutcome};
use berth_core::{Digest, Reference, RepoName};

use crate::ha_postgres::{PgDb, pg_available, start_instance};
use crate::support::*;

async fn audit_resources(s: &Server, operation: &str) -> Vec<String> {
    let v =
        body_json(get(s, &format!("/api/v2.0/audit-logs?page_size=100&q=operation={operation}"), &admin()).await).await;
    v.as_array().unwrap().iter().map(|e| e["resource"].as_str().unwrap().to_owned()).collect()
}

async fn wait_until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_undrained_push_event_survives_its_instance() {
    let mut s = Server::start_harbor();
    create_project(&s, &admin(), "ob", true).await;
    let digest = push_small_image_as(&s, &admin(), "ob/app", "v1", "outbox").await;
    wait_until("the drained push", Duration::from_secs(10), async || {
        audit_resources(&s, "create").await.contains(&"ob/app:v1".to_owned())
    })
    .await;
    s.terminate();

    // What a crash leaves: a tag moved in a committed transaction whose event was never
    // drained, and one whose drainer died holding its lease.
    let store = berth_store_sqlite::SqliteStore::open(&s.data_dir.join("berth.db")).unwrap();
    let repo: RepoName = "ob/app".parse().unwrap();
    let content =
        store.get_manifest(&repo, &Reference::Digest(digest.parse::<Digest>().unwrap())).await.unwrap().unwrap();
    let event = |tag: &str| OutboxEvent {
        operation: "create".into(),
        repo: repo.to_string(),
        reference: tag.into(),
        digest: Some(digest.clone()),
        username: "admin".into(),
        at: 1_700_000_000,
    };
    const LEASE_MS: i64 = 10_000;
    let mut claimed_at = None;
    for tag in ["leased", "crashed"] {
        let m = NewManifest {
            repo: repo.clone(),
            digest: content.digest.clone(),
            media_type: content.media_type.clone(),
            content: content.content.clone(),
            artifact_type: None,
            annotations: None,
            subject: None,
            blobs: Vec::new(),
            children: Vec::new(),
            tag: Some(tag.parse().unwrap()),
            event: Some(event(tag)),
        };
        assert_eq!(store.put_manifest(&m).await.unwrap(), PutManifestOutcome::Stored);
        if tag == "leased" {
            assert_eq!(store.claim_events("a-dead-instance", 10, LEASE_MS).await.unwrap().len(), 1);
            claimed_at = Some(Instant::now());
        }
    }
    drop(store);

    let s2 = Server::spawn(&s.data_dir, &[("BERTH_AUTH_MODE", "harbor")]);
    wait_until("the undrained event", Duration::from_secs(10), async || {
        audit_resources(&s2, "create").await.contains(&"ob/app:crashed".to_owned())
    })
    .await;
    // Checked only while the lease surely holds (a slow start may have outlived it).
    let seen = audit_resources(&s2, "create").await;
    if claimed_at.unwrap().elapsed() < Duration::from_millis(LEASE_MS as u64 - 1_000) {
        assert!(!seen.contains(&"ob/app:leased".to_owned()), "leased: not before the lease lapses");
    }
    wait_until("the event whose drainer died", Duration::from_secs(30), async || {
        audit_resources(&s2, "create").await.contains(&"ob/app:leased".to_owned())
    })
    .await;
    let all = audit_resources(&s2, "create").await;
    for tag in ["v1", "crashed", "leased"] {
        assert_eq!(all.iter().filter(|r| **r == format!("ob/app:{tag}")).count(), 1, "{tag} once: {all:?}");
    }
}

#[tokio::test]
async fn pushes_answered_by_a_killed_instance_are_recorded_by_the_other() {
    if !pg_available() {
        return;
    }
    let db = PgDb::create();
    let (tmp, storage) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start_instance(&tmp.path().join("a"), &db.url(), storage.path());
    let b = start_instance(&tmp.path().join("b"), &db.url(), storage.path());
    create_project(&a, &admin(), "kill", true).await;
    let tags: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let (who, a_ref) = (admin(), &a);
    let pushes = tags.iter().map(|t| {
        let who = &who;
        async move { push_small_image_as(a_ref, who, "kill/app", t, &format!("kill-{t}")).await }
    });
    futures_util::future::join_all(pushes).await;
    a.kill();
    wait_until("every answered push in the audit log", Duration::from_secs(90), async || {
        let seen = audit_resources(&b, "create").await;
        tags.iter().all(|t| seen.contains(&format!("kill/app:{t}")))
    })
    .await;
}
