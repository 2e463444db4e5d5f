//! Write throughput under many concurrent callers. Ignored: it measures, it does not
//! check. Run with `cargo test -p berth-store-sqlite --release --test throughput -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use berth_core::Digest;
use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome};
use berth_store_sqlite::SqliteStore;
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn concurrent_put_manifest_throughput() {
    const N: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let repo: berth_core::RepoName = "bench/throughput".parse().unwrap();
    let layer = BlobInfo { digest: Digest::sha256(b"layer"), size: 5 };
    store.commit_blob(&repo, &layer, None).await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let content = format!(r#"{{"schemaVersion":2,"n":{i}}}"#);
            let m = NewManifest {
                event: None,
                repo: repo.clone(),
                digest: Digest::sha256(content.as_bytes()),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                content: Bytes::from(content),
                artifact_type: None,
                annotations: None,
                subject: None,
                blobs: vec![layer.digest.clone()],
                children: Vec::new(),
                tag: Some(format!("t{i}").parse().unwrap()),
            };
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.put_manifest(&m).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), PutManifestOutcome::Stored);
    }
    let took = started.elapsed();
    let stats = store.writer_stats();
    println!(
        "{N} concurrent put_manifest: {took:?} ({:.0}/s); {} jobs in {} commits",
        N as f64 / took.as_secs_f64(),
        stats.jobs,
        stats.commits
    );
}
