//! What HA depends on: finding the primary among several hosts, surviving connections
//! killed under the pool (the core of failover recovery), and failing fast, as
//! `Unavailable`, when there is no connection, no time left, or only a read-only server.

mod common;

use std::time::{Duration, Instant};

use berth_core::store::{BlobInfo, MetaStore, StoreError, Upload};
use berth_core::{Digest, RepoName};
use berth_store_postgres::{PgOptions, PgStore};
use common::{TestDb, admin_url, connect};

fn blob(label: &str) -> BlobInfo {
    BlobInfo { digest: Digest::sha256(label.as_bytes()), size: label.len() as u64 }
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

/// `url` with `host` listed before its own host(s).
fn with_first_host(url: &str, host: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let hosts_start = url[start..authority_end].rfind('@').map_or(start, |i| start + i + 1);
    format!("{}{host},{}", &url[..hosts_start], &url[hosts_start..])
}

/// Kills every session on the test database except the caller's, as a failover or a
/// server restart would.
async fn terminate_all(db: &TestDb) -> i64 {
    let admin = connect(&admin_url()).await.unwrap();
    let rows = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .await
        .unwrap();
    rows.len() as i64
}

#[tokio::test]
async fn multi_host_url_skips_a_dead_first_host() {
    let Some(db) = TestDb::create().await else { return };
    let url = with_first_host(&db.url, "127.0.0.1:1");
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}target_session_attrs=read-write&connect_timeout=2");
    let store = PgStore::connect(PgOptions::new(url)).await.expect("the second host answers");
    store.ping().await.unwrap();
    store.commit_blob(&repo("multi/host"), &blob("multi"), None).await.unwrap();
    assert!(store.repo_blob(&repo("multi/host"), &blob("multi").digest).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_heals_after_its_connections_are_killed() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    // Open a few connections, then kill them all while they sit idle in the pool.
    let r = repo("heal/me");
    let warm = futures_join(&store, 4).await;
    assert!(warm >= 1);
    assert!(terminate_all(&db).await >= 1, "killed the pool's connections");
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Reads, retryable writes and one-shot writes all go through on fresh connections.
    store.ping().await.expect("ping after the kill");
    store.commit_blob(&r, &blob("heal"), None).await.expect("commit_blob after the kill");
    assert_eq!(terminate_all(&db).await, store.pool_status().size as i64);
    let up =
        Upload { id: "heal-upload".into(), repo: r.clone(), offset: 0, hash_state: None, parts: vec![], started_at: 0 };
    store.create_upload(&up).await.expect("a write that is never retried once it ran");
    assert_eq!(store.get_upload(&r, "heal-upload").await.unwrap(), Some(up));
    assert_eq!(store.list_repositories(None, 10).await.unwrap(), vec!["heal/me".to_owned()]);
    let status = store.pool_status();
    assert!(status.size <= status.max && status.idle <= status.size, "{status:?}");
}

/// Runs `n` pings at once so that the pool opens up to `n` connections; returns how many
/// it holds afterwards.
async fn futures_join(store: &PgStore, n: usize) -> usize {
    let mut pings = Vec::new();
    for _ in 0..n {
        pings.push(store.ping());
    }
    for p in pings {
        p.await.unwrap();
    }
    store.pool_status().size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_fails_fast_as_unavailable() {
    let Some(db) = TestDb::create().await else { return };
    let opts = PgOptions { max_connections: 1, acquire_timeout: Duration::from_secs(1), ..db.options() };
    let store = std::sync::Arc::new(PgStore::connect(opts).await.unwrap());
    let holder = {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move { store.sleep_for_tests(4.0).await })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while store.pool_status().idle > 0 || store.pool_status().size == 0 {
        assert!(Instant::now() < deadline, "the sleeper never took the connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    match store.ping().await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("pool exhausted"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500), "waited {waited:?}");
    let status = store.pool_status();
    assert_eq!((status.size, status.max), (1, 1));
    holder.await.unwrap().unwrap();
    store.ping().await.expect("the connection is free again");
}

#[tokio::test]
async fn statement_timeout_is_unavailable() {
    let Some(db) = TestDb::create().await else { return };
    let opts = PgOptions { statement_timeout: Duration::from_millis(300), ..db.options() };
    let store = PgStore::connect(opts).await.unwrap();
    let started = Instant::now();
    match store.sleep_for_tests(5.0).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("statement timeout"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    store.ping().await.expect("the connection survives its timed-out statement");
}

#[tokio::test]
async fn unreachable_server_is_named_and_fails_in_time() {
    // Refused at once.
    let started = Instant::now();
    let opts = PgOptions {
        connect_timeout: Duration::from_secs(1),
        ..PgOptions::new("postgres://postgres@127.0.0.1:1/berth")
    };
    match PgStore::connect(opts).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("127.0.0.1:1"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    // A server that accepts connections and never answers: only our own timeout ends it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            sockets.push(s);
        }
    });
    let started = Instant::now();
    let opts = PgOptions {
        connect_timeout: Duration::from_secs(1),
        ..PgOptions::new(format!("postgres://postgres@127.0.0.1:{port}/berth"))
    };
    match PgStore::connect(opts).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    held.abort();
}

/// A demoted primary turns read-only: writes fail as Unavailable (not as backend
/// errors), and once a writable server is back, new connections find it.
#[tokio::test]
async fn read_only_server_is_unavailable_until_writable_again() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let r = repo("ro/repo");
    store.commit_blob(&r, &blob("before"), None).await.unwrap();
    let admin = connect(&admin_url()).await.unwrap();
    admin.batch_execute(&format!("ALTER DATABASE {} SET default_transaction_read_only = on", db.name)).await.unwrap();
    terminate_all(&db).await;
    match store.commit_blob(&r, &blob("during"), None).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("read-only"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(store.repo_blob(&r, &blob("before").digest).await.unwrap().is_some(), "reads still work");
    admin.batch_execute(&format!("ALTER DATABASE {} RESET default_transaction_read_only", db.name)).await.unwrap();
    store.commit_blob(&r, &blob("after"), None).await.expect("writable again without a restart");
}

#[test]
fn first_host_is_inserted() {
    assert_eq!(with_first_host("postgres://u@h:5/db", "x:1"), "postgres://u@x:1,h:5/db");
    assert_eq!(with_first_host("postgres://h:5/db?a=b", "x:1"), "postgres://x:1,h:5/db?a=b");
}
