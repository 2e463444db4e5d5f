//! The GC job on a real SQLite store and filesystem storage, run by the real job
//! engine: what it frees, dry runs, untagged manifests, stops, and GC racing pushes of
//! the very blobs it sweeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use berth_blob::FsBlobStore;
use berth_core::blobstore::{BodyError, ByteStream};
use berth_core::registry::Registry;
use berth_core::store::MetaStore;
use berth_core::store::gc::{DigestRange, GcStore};
use berth_core::store::jobs::{JobStore, NewExecution, NewJob};
use berth_core::{Digest, Reference, RepoName};
use berth_gc::GarbageCollection;
use berth_jobs::{EngineConfig, JobService, KindSpec, kinds};
use berth_store_sqlite::SqliteStore;
use bytes::Bytes;

struct World {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<SqliteStore>,
    reg: Arc<Registry>,
    svc: Arc<JobService>,
}

fn world(window_hours: u64) -> World {
    world_with(window_hours, None)
}

/// With `upload_idle_hours`, runs also remove uploads idle that long.
fn world_with(window_hours: u64, upload_idle_hours: Option<u64>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let blobs = Arc::new(FsBlobStore::open(&root).unwrap());
    let reg = Arc::new(Registry::new(store.clone(), blobs.clone()));
    let engine = EngineConfig {
        lease: Duration::from_secs(5),
        heartbeat: Duration::from_millis(200),
        poll: Duration::from_millis(20),
        ..EngineConfig::new("gc-test", "test-host")
    };
    let uploads = upload_idle_hours.map(|h| (reg.clone(), h));
    let handler =
        GarbageCollection { store: store.clone(), blobs, time_window_hours: window_hours, uploads, pause_percent: 100 };
    let svc = JobService::builder(store.clone(), engine)
        .kind(KindSpec {
            name: kinds::GARBAGE_COLLECTION,
            handler: Arc::new(handler),
            cluster_limit: 1,
            local_workers: 1,
            max_runtime: None,
        })
        .build();
    tokio::spawn(svc.clone().run(Duration::from_secs(1)));
    World { _dir: dir, root, store, reg, svc }
}

fn body(b: Bytes) -> ByteStream {
    struct Once(Option<Bytes>);
    impl futures_core::Stream for Once {
        type Item = Result<Bytes, BodyError>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.take().map(Ok))
        }
    }
    Box::pin(Once(Some(b)))
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

impl World {
    async fn blob(&self, repo: &RepoName, content: &[u8]) -> Digest {
        let d = Digest::sha256(content);
        self.reg.monolithic_upload(repo, &d, body(Bytes::copy_from_slice(content))).await.unwrap();
        d
    }

    fn manifest(config: &Digest, layers: &[(&Digest, usize)]) -> Bytes {
        let layers: Vec<String> = layers
            .iter()
            .map(|(d, n)| {
                format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{n}}}"#)
            })
            .collect();
        Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{}]}}"#,
            layers.join(",")
        ))
    }

    /// Pushes an image with one layer; returns the manifest digest.
    async fn push(&self, r: &RepoName, layer: &[u8], tag: &str) -> Result<Digest, berth_core::CoreError> {
        let config = self.blob(r, b"{}").await;
        let l = self.blob(r, layer).await;
        let m = Self::manifest(&config, &[(&l, layer.len())]);
        let reference = Reference::Tag(tag.parse().unwrap());
        Ok(self.reg.put_manifest(r, &reference, Some("application/vnd.oci.image.manifest.v1+json"), m).await?.digest)
    }

    fn blob_file(&self, d: &Digest) -> std::path::PathBuf {
        self.root.join(format!("docker/registry/v2/blobs/sha256/{}/{}/data", &d.hex()[..2], d.hex()))
    }

    fn exists(&self, d: &Digest) -> bool {
        self.blob_file(d).exists()
    }

    /// A blob file written behind the database's back (a crash between writing a blob and
    /// committing its row, or another registry's file), last modified `age` ago.
    fn unknown_file(&self, content: &[u8], age: Duration) -> Digest {
        let d = Digest::sha256(content);
        let path = self.blob_file(&d);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
        d
    }

    async fn gc(&self, params: serde_json::Value) -> (String, Vec<String>) {
        let id = self.start_gc(params).await;
        self.wait(id).await
    }

    /// Starts a manual GC run; returns its execution's id.
    async fn start_gc(&self, params: serde_json::Value) -> i64 {
        let exec = NewExecution {
            vendor_type: kinds::GARBAGE_COLLECTION.into(),
            vendor_id: 0,
            trigger: "MANUAL".into(),
            extra_attrs: params.to_string(),
        };
        self.svc.start(&exec, &[NewJob::new(kinds::GARBAGE_COLLECTION, params.to_string())]).await.unwrap()
    }

    async fn wait(&self, id: i64) -> (String, Vec<String>) {
        let jobs: &dyn JobStore = &*self.store;
        for _ in 0..1000 {
            let e = jobs.execution(id).await.unwrap().unwrap();
            let status = e.counts.harbor_status();
            if !matches!(status, "Running" | "Pending") {
                let task = jobs.execution_tasks(id).await.unwrap().remove(0);
                let log = jobs.job_log(task.id).await.unwrap().into_iter().map(|l| l.message).collect();
                return (status.to_owned(), log);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("GC execution {id} did not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frees_exactly_the_unreferenced_blobs_and_reports_bytes() {
    let w = world(0);
    let r = repo("lib/app");
    let keep = w.push(&r, b"layer-kept", "v1").await.unwrap();
    let gone = w.push(&r, b"layer-gone-1234", "v2").await.unwrap();
    let stray = w.blob(&r, b"stray-upload-never-referenced").await;
    let kept_layer = Digest::sha256(b"layer-kept");
    let gone_layer = Digest::sha256(b"layer-gone-1234");
    w.reg.delete_manifest(&r, &Reference::Digest(gone.clone())).await.unwrap();

    // A dry run deletes nothing and reports what a run frees.
    let (status, log) = w.gc(serde_json::json!({"dry_run": true})).await;
    assert_eq!(status, "Success", "{log:?}");
    let freed = b"layer-gone-1234".len() + b"stray-upload-never-referenced".len();
    let summary = log.iter().find(|l| l.starts_with("dry run:")).expect("dry-run summary");
    assert!(
        summary.contains("2 blobs eligible for deletion") && summary.contains(&format!("({freed} bytes)")),
        "{summary}"
    );
    assert!(w.exists(&gone_layer) && w.exists(&stray));

    let (status, log) = w.gc(serde_json::json!({"workers": 3})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(log.iter().any(|l| l.contains(&format!("2 blobs deleted, {freed} B freed ({freed} bytes)"))), "{log:?}");
    assert!(log.iter().any(|l| l == &format!("delete blob from storage: {gone_layer} ({} bytes)", 15)), "{log:?}");
    assert!(!w.exists(&gone_layer) && !w.exists(&stray), "unreferenced bytes are gone");
    assert!(w.exists(&kept_layer) && w.exists(&Digest::sha256(b"{}")), "referenced bytes stay");
    assert!(w.reg.blob(&r, &gone_layer).await.is_err());
    w.reg.manifest(&r, &Reference::Digest(keep)).await.unwrap();
    // This world paces claims (`pause_percent` 100): the claim that found the blobs
    // earned a pause before the next one, and the log says how long GC paused.
    let spent = log.iter().find(|l| l.starts_with("time spent waiting for claims")).expect("where the time went");
    assert!(spent.contains(" s (pausing between them "), "{spent}");

    // Nothing left: a second run frees nothing.
    let (_, log) = w.gc(serde_json::json!({})).await;
    assert!(log.iter().any(|l| l.contains("0 manifests and 0 blobs deleted")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_window_spares_young_blobs() {
    let w = world(2);
    let r = repo("lib/young");
    let d = w.blob(&r, b"young").await;
    let (status, log) = w.gc(serde_json::json!({})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(w.exists(&d));
    assert!(w.reg.blob(&r, &d).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_manifests_go_only_when_asked() {
    let w = world(0);
    let r = repo("lib/untagged");
    let first = w.push(&r, b"old-layer", "latest").await.unwrap();
    w.push(&r, b"new-layer", "latest").await.unwrap(); // moves the tag: first is untagged
    let old_layer = Digest::sha256(b"old-layer");

    let (_, log) = w.gc(serde_json::json!({})).await;
    assert!(w.reg.manifest(&r, &Reference::Digest(first.clone())).await.is_ok(), "kept without delete_untagged");
    assert!(w.exists(&old_layer), "{log:?}");

    let (_, log) = w.gc(serde_json::json!({"delete_untagged": true, "dry_run": true})).await;
    assert!(
        log.iter().any(|l| l == &format!("untagged artifact eligible for deletion: lib/untagged@{first}")),
        "{log:?}"
    );
    assert!(w.reg.manifest(&r, &Reference::Digest(first.clone())).await.is_ok(), "a dry run deletes nothing");

    let (status, log) = w.gc(serde_json::json!({"delete_untagged": true})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(log.iter().any(|l| l == &format!("delete the untagged artifact lib/untagged@{first}")), "{log:?}");
    assert!(w.reg.manifest(&r, &Reference::Digest(first)).await.is_err());
    assert!(!w.exists(&old_layer), "its layer went in the same run");
    assert!(w.reg.manifest(&r, &Reference::Tag("latest".parse().unwrap())).await.is_ok());
    assert!(w.exists(&Digest::sha256(b"new-layer")));
}

/// A stop between batches leaves claimed rows `deleting` (absent, unreferenced); the
/// next run re-owns and removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_is_finished_by_the_next() {
    let w = world(0);
    let r = repo("lib/stop");
    let mut digests = Vec::new();
    for i in 0..2500 {
        // Rows only: bytes are not needed to exercise the claim and the sweep.
        let d = Digest::sha256(format!("row-{i}").as_bytes());
        w.store.commit_blob(&r, &berth_core::store::BlobInfo { digest: d.clone(), size: 5 }, None).await.unwrap();
        digests.push(d);
    }
    // Claimed by a run that then died, as a kill between phase A and B leaves them.
    let gc: &dyn GcStore = &*w.store;
    let claimed = gc.claim_blobs("dead-run", 0, &[DigestRange::default()], 700).await.unwrap();
    assert_eq!(claimed.len(), 700);
    assert!(w.reg.blob(&r, &claimed[0].digest).await.is_err(), "claimed rows are absent");

    let id = w.start_gc(serde_json::json!({})).await;
    let jobs: &dyn JobStore = &*w.store;
    jobs.stop_execution(id).await.unwrap();
    let (status, _) = w.wait(id).await;
    assert!(status == "Stopped" || status == "Success", "{status}");
    let left = gc.gc_candidates(0, None, 10_000).await.unwrap().len();
    let (status, log) = w.gc(serde_json::json!({})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(gc.gc_candidates(0, None, 10).await.unwrap().is_empty());
    assert!(gc.adopt_stragglers("probe", 10).await.unwrap().is_empty(), "no deleting rows left");
    for d in &digests {
        assert!(w.reg.blob(&r, d).await.is_err());
    }
    assert!(left <= 2500 - 700, "claimed rows are no candidates: {left}");
}

/// Wherever a stop lands (before the first claim, with sub-batches in flight, after the
/// last one), the checkpoint a resumed attempt starts from counts exactly the rows the
/// run deleted: the sub-batches in flight at the stop end and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_checkpoints_exactly_what_it_deleted() {
    const N: usize = 3000;
    let w = world(0);
    let r = repo("lib/count");
    for i in 0..N {
        let d = Digest::sha256(format!("count-{i}").as_bytes());
        w.store.commit_blob(&r, &berth_core::store::BlobInfo { digest: d, size: 3 }, None).await.unwrap();
    }
    let gc: &dyn GcStore = &*w.store;
    assert_eq!(gc.gc_candidates(0, None, 10 * N).await.unwrap().len(), N);
    let id = w.start_gc(serde_json::json!({})).await;
    let jobs: &dyn JobStore = &*w.store;
    // Stopped once it runs (or once it ended, if it was that quick).
    for _ in 0..1000 {
        if jobs.execution(id).await.unwrap().unwrap().counts.harbor_status() != "Pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    jobs.stop_execution(id).await.unwrap();
    let (status, log) = w.wait(id).await;
    assert!(status == "Stopped" || status == "Success", "{status}: {log:?}");
    let live = gc.gc_candidates(0, None, 10 * N).await.unwrap().len();
    let claimed = gc.adopt_stragglers("probe", 10 * N).await.unwrap().len();
    let deleted = (N - live - claimed) as u64;
    let task = jobs.execution_tasks(id).await.unwrap().remove(0);
    let progress: berth_gc::GcProgress =
        task.progress.as_deref().map_or_else(Default::default, |p| serde_json::from_str(p).unwrap());
    assert_eq!(progress.blobs, deleted, "{status}: {live} live, {claimed} claimed and left; log {log:?}");
    assert_eq!(progress.bytes, 3 * deleted);
}

/// GC in a loop while pushers re-upload and reference the very blobs it sweeps: every
/// manifest that exists at the end has every blob it references, row and bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_racing_pushes_of_the_blobs_it_sweeps_loses_nothing() {
    let w = Arc::new(world(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut pushers = Vec::new();
    for p in 0..3 {
        let (w, stop, pushed, refused) = (w.clone(), stop.clone(), pushed.clone(), refused.clone());
        pushers.push(tokio::spawn(async move {
            let r = repo(&format!("race/p{p}"));
            let mut kept = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // A few contents over and over: each is unreferenced again between rounds.
                let layer = format!("shared-layer-{}", i % 4);
                match w.push(&r, layer.as_bytes(), "t").await {
                    Ok(m) => {
                        pushed.fetch_add(1, Ordering::SeqCst);
                        if i.is_multiple_of(2) {
                            w.reg.delete_manifest(&r, &Reference::Digest(m)).await.unwrap();
                        } else {
                            // Untagged by the next push but never deleted: its blobs
                            // must outlive every GC round.
                            kept.push(m);
                        }
                    }
                    // The blob was collected between its upload and the manifest: a
                    // failed push (the client uploads again), never a broken image.
                    Err(berth_core::CoreError::ManifestBlobUnknown { .. }) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("push failed: {e}"),
                }
                i += 1;
            }
            (r, kept)
        }));
    }
    for _ in 0..25 {
        let (status, log) = w.gc(serde_json::json!({"workers": 2})).await;
        assert_eq!(status, "Success", "{log:?}");
    }
    stop.store(true, Ordering::SeqCst);
    let mut kept = Vec::new();
    for p in pushers {
        let (r, ms) = p.await.unwrap();
        kept.extend(ms.into_iter().map(|m| (r.clone(), m)));
    }
    assert!(pushed.load(Ordering::SeqCst) > 10, "pushes went on during GC");
    let mut checked = 0;
    for (r, m) in kept {
        let m = w.reg.manifest(&r, &Reference::Digest(m)).await.expect("a kept manifest stays");
        let v: serde_json::Value = serde_json::from_slice(&m.content).unwrap();
        let mut refs = vec![v["config"]["digest"].as_str().unwrap().to_owned()];
        refs.extend(v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()));
        for d in refs {
            let d: Digest = d.parse().unwrap();
            assert!(w.reg.blob(&r, &d).await.is_ok(), "{r}: manifest references {d}, whose row is gone");
            assert!(w.exists(&d), "{r}: manifest references {d}, whose bytes are gone");
            checked += 1;
        }
    }
    eprintln!(
        "pushed {} images ({} refused), checked {checked} references",
        pushed.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst)
    );
}

/// §8 case 4: an upload of D finishing while phase B removes D waits for the digest
/// lock, then writes the bytes again and resurrects the row: the file is present and
/// the row live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reupload_during_removal_keeps_its_bytes() {
    let w = world(0);
    let r = repo("lib/reupload");
    let d = w.blob(&r, b"reuploaded").await;
    let gc: Arc<dyn GcStore> = w.store.clone();
    let claimed = gc.claim_blobs("run", 0, &[DigestRange::default()], 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let batch = gc.begin_delete("run", std::slice::from_ref(&d)).await.unwrap();
    assert_eq!(batch.blobs().len(), 1);
    let upload = tokio::spawn({
        let (reg, r) = (w.reg.clone(), r.clone());
        async move {
            reg.monolithic_upload(&r, &Digest::sha256(b"reuploaded"), body(Bytes::from_static(b"reuploaded"))).await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!upload.is_finished(), "the upload waits for phase B");
    w.reg.blobs().delete(&d).await.unwrap();
    batch.finish(std::slice::from_ref(&d)).await.unwrap();
    upload.await.unwrap().unwrap();
    assert!(w.exists(&d), "the upload wrote the bytes again");
    assert_eq!(w.reg.blob(&r, &d).await.unwrap().size, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_files_go_only_from_berths_own_storage() {
    use berth_core::blobstore::BlobStore;
    let w = world(1);
    let r = repo("lib/known");
    w.push(&r, b"known-layer", "v1").await.unwrap();
    let hour = Duration::from_secs(3600);
    let old = w.unknown_file(b"left by a crash two hours ago", 2 * hour);
    let young = w.unknown_file(b"written a minute ago", Duration::from_secs(60));

    // Another registry's storage served in place: its files are not garbage.
    let fs = FsBlobStore::open(&w.root).unwrap();
    assert!(!fs.owned().await.unwrap());
    let (status, log) = w.gc(serde_json::json!({})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(log.iter().any(|l| l.contains("`berth storage adopt` lets GC remove them")), "{log:?}");
    assert!(w.exists(&old) && w.exists(&young));

    fs.mark_owned().await.unwrap();
    assert!(fs.owned().await.unwrap());
    let (_, log) = w.gc(serde_json::json!({"dry_run": true})).await;
    assert!(log.iter().any(|l| l == &format!("unknown blob file eligible for deletion: {old} (29 bytes)")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("dry run: 1 blob files the database does not know")), "{log:?}");
    assert!(w.exists(&old), "a dry run deletes nothing");

    let (status, log) = w.gc(serde_json::json!({})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(
        log.iter().any(|l| l == &format!("delete blob file the database does not know: {old} (29 bytes)")),
        "{log:?}"
    );
    assert!(!w.exists(&old), "the old unknown file is removed");
    assert!(w.exists(&young), "younger than the window: kept");
    for content in [&b"known-layer"[..], b"{}"] {
        assert!(w.exists(&Digest::sha256(content)), "files the database knows stay");
    }
    w.reg.blob(&r, &Digest::sha256(b"known-layer")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_listing_pages_in_digest_order() {
    use berth_core::blobstore::BlobStore;
    let w = world(0);
    let mut all: Vec<Digest> =
        (0..25).map(|i| w.unknown_file(format!("file {i}").as_bytes(), Duration::ZERO)).collect();
    all.sort();
    let fs = FsBlobStore::open(&w.root).unwrap();
    let mut seen = Vec::new();
    let mut after: Option<Digest> = None;
    loop {
        let page = fs.list_blobs(after.as_ref(), 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = Some(last.digest.clone());
        seen.extend(page.into_iter().map(|b| b.digest));
    }
    assert_eq!(seen, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_removed_by_a_run() {
    let w = world_with(0, Some(0));
    let r = repo("lib/uploads");
    let up = w.reg.start_upload(&r).await.unwrap();
    // Idle times are whole seconds: let one pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, log) = w.gc(serde_json::json!({})).await;
    assert_eq!(status, "Success", "{log:?}");
    assert!(log.iter().any(|l| l == "removed 1 uploads idle for more than 0 hours"), "{log:?}");
    assert!(w.reg.upload_status(&r, &up.id).await.is_err(), "the upload is gone");
}
