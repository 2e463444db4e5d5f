//! Conformance for [`GcStore`]. GC looks at every blob of the database, so this suite
//! needs a store of its own (a fresh database), unlike the others.

use std::sync::Arc;
use std::time::Duration;

use berth_core::store::gc::{DigestRange, GcBlob, GcStore};
use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome};
use berth_core::{Digest, Reference};

use crate::{Cx, OCI_INDEX, tag};

/// A window no blob of this run is older than.
const LONG: i64 = 3600;

fn gc_blob(b: &BlobInfo) -> GcBlob {
    GcBlob { digest: b.digest.clone(), size: b.size }
}

fn digests(v: &[GcBlob]) -> Vec<Digest> {
    v.iter().map(|b| b.digest.clone()).collect()
}

pub async fn gc_conformance<S: MetaStore + GcStore>(store: Arc<S>) {
    let cx = Cx::new(Arc::clone(&store) as Arc<dyn MetaStore>);
    let gc: Arc<dyn GcStore> = store;
    let repo = cx.repo("gc");
    let (kept, free1, free2) = (cx.blob("kept"), cx.blob("free1"), cx.blob("free2"));
    for b in [&kept, &free1, &free2] {
        cx.store.commit_blob(&repo, b, None).await.unwrap();
    }
    let img = NewManifest { blobs: vec![kept.digest.clone()], tag: Some(tag("v1")), ..cx.image(&repo, "img") };
    cx.put(&img).await;

    // Candidates: unreferenced and older than the window, in digest order, paged.
    assert!(gc.gc_candidates(LONG, None, 100).await.unwrap().is_empty(), "young blobs are spared");
    let mut want = vec![gc_blob(&free1), gc_blob(&free2)];
    want.sort_by(|a, b| a.digest.cmp(&b.digest));
    assert_eq!(gc.gc_candidates(0, None, 100).await.unwrap(), want);
    assert_eq!(gc.gc_candidates(0, None, 1).await.unwrap(), want[..1]);
    assert_eq!(gc.gc_candidates(0, Some(&want[0].digest), 100).await.unwrap(), want[1..]);
    assert!(
        gc.claim_blobs("r1", LONG, &[DigestRange::default()], 100).await.unwrap().is_empty(),
        "the window holds for claims"
    );

    // Phase A: exactly the unreferenced blobs, in digest order after the cursor; claimed
    // rows are absent to every API path.
    let second = gc.claim_blobs("r1", 0, &[DigestRange::after(Some(&want[0].digest))], 100).await.unwrap();
    assert_eq!(second, want[1..], "a claim starts after its cursor");
    let first = gc.claim_blobs("r1", 0, &[DigestRange::default()], 100).await.unwrap();
    assert_eq!(first, want[..1], "what the cursor passed is claimed by a walk from the start");
    let claimed = [first, second].concat();
    assert_eq!(claimed, want);
    assert!(gc.claim_blobs("r1", 0, &[DigestRange::default()], 100).await.unwrap().is_empty(), "claimed once");
    assert_eq!(cx.store.repo_blob(&repo, &free1.digest).await.unwrap(), None, "deleting is absent");
    let other = cx.repo("gc-other");
    assert_eq!(cx.store.mount_blob(&repo, &other, &free1.digest).await.unwrap(), None, "no mount of a deleting blob");
    let late = NewManifest { blobs: vec![free1.digest.clone()], ..cx.image(&repo, "late") };
    assert_eq!(
        cx.store.put_manifest(&late).await.unwrap(),
        PutManifestOutcome::MissingBlobs(vec![free1.digest.clone()]),
        "a manifest cannot reference a deleting blob"
    );
    assert!(gc.gc_candidates(0, None, 100).await.unwrap().is_empty(), "deleting rows are no candidates");

    // Phase B: only this run's deleting rows; what is not done stays deleting.
    // Rows in either state are known; a digest with no row is not.
    let stranger = Digest::sha256(b"a file no row describes");
    assert_eq!(
        gc.unknown_blobs(&[kept.digest.clone(), free1.digest.clone(), stranger.clone()]).await.unwrap(),
        vec![stranger.clone()],
        "live and deleting rows are known"
    );
    assert!(gc.unknown_blobs(&[]).await.unwrap().is_empty());
    gc.lock_for_sweep(&stranger).await.unwrap().release().await;

    let batch = gc.begin_delete("r1", &digests(&claimed)).await.unwrap();
    assert_eq!(batch.blobs(), &claimed[..]);
    batch.finish(&[want[0].digest.clone()]).await.unwrap();
    assert!(gc.begin_delete("r1", &[want[0].digest.clone()]).await.unwrap().blobs().is_empty(), "row gone");
    assert!(gc.begin_delete("other", &[want[1].digest.clone()]).await.unwrap().blobs().is_empty(), "not its run");
    // Dropping a batch deletes nothing.
    drop(gc.begin_delete("r1", &[want[1].digest.clone()]).await.unwrap());

    // A later run re-owns the straggler. A dropped batch's locks go when the server has
    // rolled back its transaction (on PostgreSQL, after it sees the connection close),
    // and adoption skips locked rows: wait for that, not for a lucky schedule.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let adopted = loop {
        let adopted = gc.adopt_stragglers("r2", 100).await.unwrap();
        if !adopted.is_empty() || std::time::Instant::now() >= deadline {
            break adopted;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(adopted, want[1..]);
    assert!(gc.adopt_stragglers("r2", 100).await.unwrap().is_empty());
    assert!(gc.begin_delete("r1", &[want[1].digest.clone()]).await.unwrap().blobs().is_empty(), "r1 lost it");

    // An upload of a deleting blob resurrects it: phase B then leaves it alone.
    let resurrected = if want[1].digest == free1.digest { &free1 } else { &free2 };
    cx.store.commit_blob(&repo, resurrected, None).await.unwrap();
    assert_eq!(cx.store.repo_blob(&repo, &resurrected.digest).await.unwrap(), Some(resurrected.clone()));
    let batch = gc.begin_delete("r2", std::slice::from_ref(&resurrected.digest)).await.unwrap();
    assert!(batch.blobs().is_empty(), "a live row is never deleted");
    batch.finish(std::slice::from_ref(&resurrected.digest)).await.unwrap();
    assert_eq!(cx.store.repo_blob(&repo, &resurrected.digest).await.unwrap(), Some(resurrected.clone()));

    // The one whose bytes went is gone with its link; a new upload starts afresh.
    let gone = if want[0].digest == free1.digest { &free1 } else { &free2 };
    assert_eq!(cx.store.repo_blob(&repo, &gone.digest).await.unwrap(), None);
    assert_eq!(gc.sweep_links(100).await.unwrap(), 0, "phase B removed the links with the rows");
    cx.store.commit_blob(&repo, gone, None).await.unwrap();
    assert_eq!(cx.store.repo_blob(&repo, &gone.digest).await.unwrap(), Some(gone.clone()));

    // The digest lock: phase B waits for an upload holding it, and the other way round.
    // Several ranges in one claim, each bounded on both ends, each up to the limit.
    let range = |after: Option<&GcBlob>, before: Option<&GcBlob>| DigestRange {
        after: after.map(|b| b.digest.to_string()),
        before: before.map(|b| b.digest.to_string()),
    };
    let ranges = [range(None, Some(&want[0])), range(None, Some(&want[1])), range(Some(&want[0]), None)];
    let claimed = gc.claim_blobs("r3", 0, &ranges, 1).await.unwrap();
    assert_eq!(claimed, want, "both unreferenced again, one from each range that holds one, in digest order");
    let lock = cx.store.lock_digest(&claimed[0].digest).await.unwrap();
    let waiting = tokio::spawn({
        let (gc, d) = (Arc::clone(&gc), digests(&claimed));
        async move { gc.begin_delete("r3", &d).await.map(|b| b.blobs().len()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "phase B must wait for the digest lock");
    lock.release().await;
    assert_eq!(waiting.await.unwrap().unwrap(), 2);
    let batch = gc.begin_delete("r3", &digests(&claimed)).await.unwrap();
    let upload = tokio::spawn({
        let (store, d) = (Arc::clone(&cx.store), claimed[0].digest.clone());
        async move { store.lock_digest(&d).await.map(drop) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!upload.is_finished(), "an upload must wait for phase B");
    batch.finish(&digests(&claimed)).await.unwrap();
    upload.await.unwrap().unwrap();
    assert!(gc.gc_candidates(0, None, 100).await.unwrap().is_empty());

    // Untagged manifests: not tagged, not in an index, not an accessory of a present
    // subject, older than the window.
    let loose = NewManifest { blobs: vec![kept.digest.clone()], ..cx.image(&repo, "loose") };
    let child = cx.image(&repo, "child");
    let index_content = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","x":"{}-index"}}"#, cx.prefix);
    let index = NewManifest {
        digest: Digest::sha256(index_content.as_bytes()),
        media_type: OCI_INDEX.into(),
        content: index_content.into(),
        children: vec![child.digest.clone()],
        tag: Some(tag("multi")),
        ..cx.image(&repo, "index")
    };
    let accessory = NewManifest { subject: Some(img.digest.clone()), ..cx.image(&repo, "sig") };
    for m in [&loose, &child, &index, &accessory] {
        cx.put(m).await;
    }
    assert!(gc.untagged_manifests(LONG, 0, 100).await.unwrap().is_empty(), "young manifests are spared");
    let untagged = gc.untagged_manifests(0, 0, 100).await.unwrap();
    let found: Vec<_> = untagged.iter().filter(|m| m.repo == repo).map(|m| m.digest.clone()).collect();
    assert_eq!(found, vec![loose.digest.clone()]);
    let ids: Vec<i64> = untagged.iter().map(|m| m.id).collect();
    let after = gc.untagged_manifests(0, ids[0], 100).await.unwrap();
    assert!(after.iter().all(|m| m.id > ids[0]), "keyset paging");

    // Deleting re-checks: a manifest tagged since it was listed stays.
    let mut retagged = loose.clone();
    retagged.tag = Some(tag("late"));
    cx.put(&retagged).await;
    assert!(gc.delete_untagged(&ids).await.unwrap().is_empty(), "tagged since");
    assert!(cx.store.delete_tag(&repo, &tag("late"), None).await.unwrap());
    let deleted = gc.delete_untagged(&ids).await.unwrap();
    assert_eq!(deleted, untagged);
    assert_eq!(cx.get(&repo, &Reference::Digest(loose.digest.clone())).await, None);
    assert!(cx.get(&repo, &Reference::Digest(child.digest.clone())).await.is_some(), "children of an index stay");
    assert!(gc.gc_candidates(0, None, 100).await.unwrap().is_empty(), "kept is still referenced by img");

    // Deleting the tagged image frees its blob.
    assert!(cx.store.delete_manifest(&repo, &img.digest, None).await.unwrap());
    assert_eq!(gc.gc_candidates(0, None, 100).await.unwrap(), vec![gc_blob(&kept)]);
    assert!(matches!(gc.begin_delete("r4", std::slice::from_ref(&kept.digest)).await, Ok(b) if b.blobs().is_empty()));

    claims_race_manifest_puts(&cx, &gc).await;
}

/// Claims in a loop against pushes that upload a blob and reference it at once: a
/// manifest the store accepted never references a claimed blob (I2 with I3), however
/// the claim and the PUT interleave.
async fn claims_race_manifest_puts(cx: &Cx, gc: &Arc<dyn GcStore>) {
    let repo = cx.repo("gc-race");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let claimer = tokio::spawn({
        let (gc, stop) = (Arc::clone(gc), Arc::clone(&stop));
        async move {
            let mut claimed = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                claimed += gc.claim_blobs("race", 0, &[DigestRange::default()], 50).await.unwrap().len();
                tokio::task::yield_now().await;
            }
            claimed
        }
    });
    let mut pushers = Vec::new();
    for p in 0..4 {
        let (store, repo) = (Arc::clone(&cx.store), repo.clone());
        let images: Vec<(NewManifest, BlobInfo)> = (0..40)
            .map(|i| {
                let b = cx.blob(&format!("race-{p}-{i}"));
                let m = NewManifest { blobs: vec![b.digest.clone()], ..cx.image(&repo, &format!("race-{p}-{i}")) };
                (m, b)
            })
            .collect();
        pushers.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            for (m, b) in images {
                store.commit_blob(&repo, &b, None).await.unwrap();
                match store.put_manifest(&m).await.unwrap() {
                    PutManifestOutcome::Stored => stored.push(b),
                    PutManifestOutcome::MissingBlobs(_) => {} // claimed first: a failed push
                    other => panic!("{other:?}"),
                }
            }
            stored
        }));
    }
    let mut stored = Vec::new();
    for p in pushers {
        stored.extend(p.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let claimed = claimer.await.unwrap();
    assert!(!stored.is_empty());
    for b in &stored {
        assert_eq!(
            cx.store.repo_blob(&repo, &b.digest).await.unwrap().as_ref(),
            Some(b),
            "a referenced blob was claimed"
        );
    }
    assert!(
        gc.adopt_stragglers("race-check", 1000).await.unwrap().len() == claimed,
        "every claimed blob is unreferenced"
    );
}
