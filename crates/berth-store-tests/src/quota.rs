//! Conformance of the storage quota check in `commit_blob` and `mount_blob`:
//!
//! - a blob new to a project with a limit is refused (`StoreError::QuotaExceeded`, with
//!   the project, its usage and limit) if it would take usage over the limit, and then
//!   nothing is written (no blob row, no link, the upload row stays);
//! - usage is the distinct live blobs of all the project's repositories: a blob already
//!   in the project costs nothing more, in any of its repositories;
//! - the outcome reports usage before and after for limited projects, nothing otherwise;
//! - manifests count too (Harbor stores them as blobs): a manifest new to the project
//!   adds its size, once per project whatever its repositories, and one that would exceed
//!   the limit is refused with nothing written; a digest held as a manifest and as a blob
//!   counts once; `CatalogStore::storage_usage` reports the same usage;
//! - mounts report usage before and after as commits do (for `QUOTA_WARNING`);
//! - concurrent commits through two stores on one database never exceed the limit.

use std::sync::Arc;

use berth_core::quota::{QuotaUse, STORAGE_LIMIT};
use berth_core::store::catalog::CatalogStore;
use berth_core::store::gc::{DigestRange, GcStore};
use berth_core::store::identity::{IdentityStore, NewProject, NewUser};
use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome, StoreError, Upload};
use berth_core::{Digest, Reference, RepoName};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A manifest of exactly `size` bytes in `repo` referencing `blobs`.
fn manifest(repo: &RepoName, seed: &str, size: usize, blobs: &[&BlobInfo]) -> NewManifest {
    let mut content = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","x":"{seed}"}}"#).into_bytes();
    content.resize(size.max(content.len()), b' ');
    NewManifest {
        event: None,
        repo: repo.clone(),
        digest: Digest::sha256(&content),
        media_type: OCI_MANIFEST.into(),
        content: bytes::Bytes::from(content),
        artifact_type: None,
        annotations: None,
        subject: None,
        blobs: blobs.iter().map(|b| b.digest.clone()).collect(),
        children: Vec::new(),
        tag: None,
    }
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn blob(seed: &str, size: u64) -> BlobInfo {
    BlobInfo { digest: Digest::sha256(seed.as_bytes()), size }
}

/// A unique name prefix starting with `letter`, and an owner for the projects the test
/// creates with [`project`].
async fn owner(identity: &dyn IdentityStore, letter: char) -> (String, i64) {
    let mut prefix = uuid::Uuid::new_v4().simple().to_string();
    prefix.truncate(12);
    let p = format!("{letter}{prefix}");
    let owner = identity
        .create_user(&NewUser {
            username: format!("{p}owner"),
            email: format!("{p}@quota.test"),
            realname: "Quota Owner".into(),
            comment: String::new(),
            password: "hash".into(),
            salt: "salt".into(),
            password_version: "sha256".into(),
            sysadmin: false,
        })
        .await
        .expect("create_user");
    (p, owner.id)
}

/// Creates project `name` owned by `owner`, with a storage limit if `limit` is set.
async fn project(identity: &dyn IdentityStore, owner: i64, name: String, limit: Option<i64>) {
    let metadata = limit.map(|l| (STORAGE_LIMIT.to_string(), l.to_string())).into_iter().collect();
    identity.create_project(&NewProject { name, owner_id: owner, metadata }).await.expect("create_project");
}

/// `meta` and `other` may be one store or two stores on one database (two instances).
pub async fn quota_conformance(
    meta: Arc<dyn MetaStore>,
    other: Arc<dyn MetaStore>,
    identity: Arc<dyn IdentityStore>,
    catalog: Arc<dyn CatalogStore>,
) {
    let (p, owner) = owner(identity.as_ref(), 'q').await;
    let project = |name: String, limit: Option<i64>| {
        let identity = identity.clone();
        async move { project(identity.as_ref(), owner, name, limit).await }
    };
    let limited = format!("{p}lim");
    let free = format!("{p}free");
    project(limited.clone(), Some(100)).await;
    project(free.clone(), None).await;
    let (a, b) = (repo(&format!("{limited}/a")), repo(&format!("{limited}/b")));
    let salt = &p;

    // Within the limit: usage reported.
    let first = blob(&format!("{salt}1"), 60);
    let u = meta.commit_blob(&a, &first, None).await.expect("commit within the limit");
    assert_eq!(u, Some(QuotaUse { project: limited.clone(), before: 0, after: 60, limit: 100 }));
    // The same blob in another repository of the project costs nothing.
    assert_eq!(meta.commit_blob(&b, &first, None).await.expect("same blob"), None);
    assert_eq!(meta.commit_blob(&a, &first, None).await.expect("same blob, same repo"), None);

    // Over the limit: refused, nothing written, the upload row kept.
    let big = blob(&format!("{salt}2"), 50);
    let upload = Upload {
        id: format!("{p}-upload"),
        repo: a.clone(),
        offset: 50,
        hash_state: None,
        parts: vec!["part".into()],
        started_at: 1,
    };
    meta.create_upload(&upload).await.expect("create_upload");
    match meta.commit_blob(&a, &big, Some(&upload.id)).await {
        Err(StoreError::QuotaExceeded(q)) => {
            assert_eq!((q.project.as_str(), q.used, q.limit, q.adding), (limited.as_str(), 60, 100, 50));
        }
        other => panic!("expected a quota refusal, got {other:?}"),
    }
    assert_eq!(meta.repo_blob(&a, &big.digest).await.unwrap(), None, "a refused blob is not linked");
    assert!(meta.get_upload(&a, &upload.id).await.unwrap().is_some(), "a refused commit keeps its upload");
    // Exactly up to the limit is allowed.
    let fits = blob(&format!("{salt}3"), 40);
    let u = meta.commit_blob(&b, &fits, None).await.expect("commit up to the limit");
    assert_eq!(u.map(|u| (u.before, u.after)), Some((60, 100)));
    assert!(matches!(
        meta.commit_blob(&a, &blob(&format!("{salt}4"), 1), None).await,
        Err(StoreError::QuotaExceeded(_))
    ));

    // Mounts are checked like commits; into an unlimited project they are not.
    let elsewhere = repo(&format!("{free}/src"));
    let foreign = blob(&format!("{salt}5"), 10);
    assert_eq!(meta.commit_blob(&elsewhere, &foreign, None).await.expect("unlimited project"), None);
    match meta.mount_blob(&elsewhere, &a, &foreign.digest).await {
        Err(StoreError::QuotaExceeded(q)) => assert_eq!((q.used, q.adding), (100, 10)),
        other => panic!("expected a quota refusal of the mount, got {other:?}"),
    }
    assert_eq!(meta.repo_blob(&a, &foreign.digest).await.unwrap(), None);
    // A blob the project holds mounts into its other repositories for free.
    let c = repo(&format!("{limited}/c"));
    assert_eq!(meta.mount_blob(&a, &c, &first.digest).await.unwrap(), Some(first.clone()));
    // Unlinking frees space at once: usage is computed, not counted.
    assert!(meta.unlink_blob(&b, &fits.digest).await.unwrap());
    meta.mount_blob(&elsewhere, &a, &foreign.digest).await.expect("fits after an unlink");

    // Mounts report usage as commits do.
    let roomy = format!("{p}mnt");
    project(roomy.clone(), Some(1000)).await;
    let into = repo(&format!("{roomy}/a"));
    let (mounted, u) = meta.mount_blob_with_quota(&elsewhere, &into, &foreign.digest).await.unwrap().expect("mounted");
    assert_eq!(mounted, foreign);
    assert_eq!(u, Some(QuotaUse { project: roomy.clone(), before: 0, after: 10, limit: 1000 }));
    let again = meta.mount_blob_with_quota(&elsewhere, &into, &foreign.digest).await.unwrap().expect("mounted");
    assert_eq!(again.1, None, "a blob the project holds costs nothing");

    // Manifests count, once per project; a refused one writes nothing.
    let man = format!("{p}man");
    project(man.clone(), Some(1000)).await;
    let (ma, mb) = (repo(&format!("{man}/a")), repo(&format!("{man}/b")));
    let layer = blob(&format!("{salt}m1"), 100);
    meta.commit_blob(&ma, &layer, None).await.expect("layer");
    let m1 = manifest(&ma, &format!("{salt}m1"), 200, &[&layer]);
    assert_eq!(
        meta.put_manifest(&m1).await.expect("manifest within the limit"),
        PutManifestOutcome::StoredInQuota(QuotaUse { project: man.clone(), before: 100, after: 300, limit: 1000 })
    );
    assert_eq!(catalog.storage_usage(Some(&man)).await.unwrap(), 300, "blobs + manifests");
    assert_eq!(meta.put_manifest(&m1).await.unwrap(), PutManifestOutcome::Stored, "a re-push is free");
    meta.mount_blob(&ma, &mb, &layer.digest).await.unwrap().expect("mount");
    let m1b = NewManifest { repo: mb.clone(), ..m1.clone() };
    assert_eq!(meta.put_manifest(&m1b).await.unwrap(), PutManifestOutcome::Stored, "held by the project");
    assert_eq!(catalog.storage_usage(Some(&man)).await.unwrap(), 300, "one digest counts once");
    let huge = manifest(&ma, &format!("{salt}m2"), 800, &[&layer]);
    match meta.put_manifest(&huge).await {
        Err(StoreError::QuotaExceeded(q)) => {
            assert_eq!((q.project.as_str(), q.used, q.limit, q.adding), (man.as_str(), 300, 1000, 800));
        }
        other => panic!("expected a quota refusal of the manifest, got {other:?}"),
    }
    assert!(meta.get_manifest(&ma, &Reference::Digest(huge.digest.clone())).await.unwrap().is_none());
    // A blob whose digest the project holds as a manifest is the same bytes: free.
    let as_blob = BlobInfo { digest: m1.digest.clone(), size: 200 };
    assert_eq!(meta.commit_blob(&repo(&format!("{man}/c")), &as_blob, None).await.unwrap(), None);
    assert_eq!(catalog.storage_usage(Some(&man)).await.unwrap(), 300);
    assert!(catalog.storage_usage(None).await.unwrap() >= 300);
    // Deleting the manifest from every repository (and the blob's link) frees its bytes.
    for r in [&ma, &mb] {
        assert!(meta.delete_manifest(r, &m1.digest, None).await.unwrap());
    }
    assert!(meta.unlink_blob(&repo(&format!("{man}/c")), &m1.digest).await.unwrap());
    assert_eq!(catalog.storage_usage(Some(&man)).await.unwrap(), 100);
    meta.put_manifest(&manifest(&ma, &format!("{salt}m3"), 900, &[&layer])).await.expect("fits once freed");

    // Repositories of other projects whose names share the prefix are not counted.
    let lookalike = format!("{limited}x");
    project(lookalike.clone(), Some(1000)).await;
    let u = meta.commit_blob(&repo(&format!("{lookalike}/a")), &blob(&format!("{salt}6"), 5), None).await.unwrap();
    assert_eq!(u.map(|u| u.before), Some(0));

    // Concurrent commits of distinct blobs through both stores: exactly as many as fit.
    let race = format!("{p}race");
    project(race.clone(), Some(1000)).await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = if i % 2 == 0 { meta.clone() } else { other.clone() };
            let r = repo(&format!("{race}/r{}", i % 3));
            let b = blob(&format!("{salt}race{i}"), 100);
            tokio::spawn(async move { store.commit_blob(&r, &b, None).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::QuotaExceeded(q)) => assert!(q.used + q.adding > 1000, "refused although it fit: {q:?}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 10, "exactly ten blobs of 100 bytes fit a 1000-byte quota");
}

/// Sets a project's stored usage behind the store's back (a drift for the repair to
/// find): each backend's test writes the row directly.
pub type SetUsage =
    Arc<dyn Fn(String, i64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// Conformance of the stored usage (`project_usage`, kept by triggers) on paths the
/// quota check does not cover:
///
/// - it is exact under concurrent writes through two stores: one blob committed into
///   many repositories of a project at once counts once, with or without a limit, and
///   unlinked from all of them at once frees it once;
/// - deleting a repository, a GC claim (the blob stops being live) and its undoing by a
///   re-upload move it, as do mounts into the project;
/// - a refusal leaves it as it was;
/// - `GcStore::repair_storage_usage` finds a drifted row, reports it and corrects it to
///   the recomputed sum, and a second run finds nothing.
pub async fn usage_conformance(
    meta: Arc<dyn MetaStore>,
    other: Arc<dyn MetaStore>,
    gc: Arc<dyn GcStore>,
    identity: Arc<dyn IdentityStore>,
    catalog: Arc<dyn CatalogStore>,
    set_usage: SetUsage,
) {
    let (p, owner) = owner(identity.as_ref(), 'u').await;
    let project = |name: String, limit: Option<i64>| {
        let identity = identity.clone();
        async move { project(identity.as_ref(), owner, name, limit).await }
    };
    let usage = |name: &str| {
        let (catalog, name) = (catalog.clone(), name.to_owned());
        async move { catalog.storage_usage(Some(&name)).await.expect("storage_usage") }
    };

    for limit in [None, Some(1000)] {
        let proj = format!("{p}{}", if limit.is_some() { "lim" } else { "free" });
        project(proj.clone(), limit).await;
        assert_eq!(usage(&proj).await, 0, "nothing pushed yet");
        // One blob into eight repositories at once, through both stores: counted once.
        let shared = blob(&format!("{proj}shared"), 60);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = if i % 2 == 0 { meta.clone() } else { other.clone() };
                let (r, b) = (repo(&format!("{proj}/r{}", i % 8)), shared.clone());
                tokio::spawn(async move { store.commit_blob(&r, &b, None).await })
            })
            .collect();
        let mut reported = 0;
        for t in tasks {
            if let Some(u) = t.await.unwrap().expect("commit") {
                assert_eq!((u.before, u.after), (0, 60));
                reported += 1;
            }
        }
        assert_eq!(reported, if limit.is_some() { 1 } else { 0 }, "one commit made the project hold it");
        assert_eq!(usage(&proj).await, 60, "{proj}: one digest in eight repositories counts once");
        // Distinct blobs at once: each counts.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 { meta.clone() } else { other.clone() };
                let (r, b) = (repo(&format!("{proj}/r{i}")), blob(&format!("{proj}own{i}"), 10));
                tokio::spawn(async move { store.commit_blob(&r, &b, None).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().expect("commit");
        }
        assert_eq!(usage(&proj).await, 140);
        // A refusal changes nothing.
        if limit.is_some() {
            let r = meta.commit_blob(&repo(&format!("{proj}/r0")), &blob(&format!("{proj}huge"), 900), None).await;
            assert!(matches!(r, Err(StoreError::QuotaExceeded(_))), "{r:?}");
            assert_eq!(usage(&proj).await, 140, "a refused blob adds nothing");
        }
        // Unlinked from every repository at once: freed once.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 { meta.clone() } else { other.clone() };
                let (r, d) = (repo(&format!("{proj}/r{i}")), shared.digest.clone());
                tokio::spawn(async move { store.unlink_blob(&r, &d).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().expect("unlink"));
        }
        assert_eq!(usage(&proj).await, 80, "{proj}: the shared blob freed once");
        // A mount in counts; deleting a repository frees what only it held.
        let (r0, r1) = (repo(&format!("{proj}/r0")), repo(&format!("{proj}/r1")));
        meta.mount_blob(&r1, &r0, &blob(&format!("{proj}own1"), 10).digest).await.unwrap().expect("mount");
        assert_eq!(usage(&proj).await, 80, "a blob the project holds mounts for free");
        let outside = repo(&format!("{p}elsewhere{}/src", limit.is_some()));
        let foreign = blob(&format!("{proj}foreign"), 5);
        meta.commit_blob(&outside, &foreign, None).await.unwrap();
        meta.mount_blob(&outside, &r0, &foreign.digest).await.unwrap().expect("mount");
        assert_eq!(usage(&proj).await, 85, "a mount from another project counts");
        let m = manifest(&r0, &format!("{proj}m"), 300, &[&foreign]);
        meta.put_manifest(&m).await.expect("manifest");
        assert_eq!(usage(&proj).await, 385);
        assert!(catalog.delete_repository(&r0).await.unwrap().is_some());
        assert_eq!(usage(&proj).await, 70, "{proj}: r0's own blob, the mounted one and the manifest are gone");
    }

    // Many distinct blobs at once through both stores (on PostgreSQL, usage changes are
    // appended and now and then folded by the writers themselves): exact either way.
    let proj = format!("{p}many");
    project(proj.clone(), None).await;
    let tasks: Vec<_> = (0..150)
        .map(|i| {
            let store = if i % 2 == 0 { meta.clone() } else { other.clone() };
            let (r, b) = (repo(&format!("{proj}/r{}", i % 3)), blob(&format!("{proj}b{i}"), 3));
            tokio::spawn(async move { store.commit_blob(&r, &b, None).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("commit");
    }
    assert_eq!(usage(&proj).await, 450, "150 blobs of 3 bytes");
    let tasks: Vec<_> = (0..150)
        .filter(|i| i % 2 == 0)
        .map(|i| {
            let store = if i % 4 == 0 { meta.clone() } else { other.clone() };
            let (r, d) = (repo(&format!("{proj}/r{}", i % 3)), blob(&format!("{proj}b{i}"), 3).digest);
            tokio::spawn(async move { store.unlink_blob(&r, &d).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().expect("unlink"));
    }
    assert_eq!(usage(&proj).await, 225, "half of them unlinked");

    // GC: a claimed blob stops counting, an upload that resurrects it counts it again.
    let proj = format!("{p}gc");
    project(proj.clone(), None).await;
    let (ga, gb) = (repo(&format!("{proj}/a")), repo(&format!("{proj}/b")));
    let loose = blob(&format!("{proj}loose"), 70);
    meta.commit_blob(&ga, &loose, None).await.unwrap();
    meta.commit_blob(&gb, &loose, None).await.unwrap();
    assert_eq!(usage(&proj).await, 70);
    // One claim statement takes blobs of several projects at once, one of them held by
    // both (on PostgreSQL the bookkeeping runs once per statement, not per row).
    let proj2 = format!("{p}gc2");
    project(proj2.clone(), None).await;
    let gc2 = repo(&format!("{proj2}/c"));
    meta.commit_blob(&gc2, &loose, None).await.unwrap();
    for i in 0..5 {
        meta.commit_blob(&gc2, &blob(&format!("{proj2}own{i}"), 11), None).await.unwrap();
    }
    assert_eq!(usage(&proj2).await, 70 + 55);
    // A digest held as a manifest and as a blob (a client that uploads a manifest's bytes
    // as a blob too): the claim takes the blob, the manifest still holds the digest.
    let proj3 = format!("{p}gc3");
    project(proj3.clone(), None).await;
    let gm = repo(&format!("{proj3}/m"));
    let both = manifest(&gm, &format!("{proj3}both"), 120, &[]);
    meta.put_manifest(&both).await.expect("manifest");
    meta.commit_blob(&gm, &BlobInfo { digest: both.digest.clone(), size: 120 }, None).await.unwrap();
    assert_eq!(usage(&proj3).await, 120, "held twice, counted once");
    let run = format!("{p}run");
    let mut claimed = Vec::new();
    loop {
        let batch = gc.claim_blobs(&run, 0, &[DigestRange::default()], 1000).await.expect("claim");
        if batch.is_empty() {
            break;
        }
        claimed.extend(batch.into_iter().map(|b| b.digest));
    }
    assert!(claimed.contains(&loose.digest), "an unreferenced blob is claimed");
    assert_eq!(usage(&proj).await, 0, "a claimed blob no longer counts, in any repository");
    assert_eq!(usage(&proj2).await, 0, "nor in another project claimed in the same statement");
    assert!(claimed.contains(&both.digest), "the blob no manifest references is claimed");
    assert_eq!(usage(&proj3).await, 120, "the manifest with that digest still counts");
    assert_eq!(usage(&format!("{p}many")).await, 0, "every blob left linked there was unreferenced");
    meta.commit_blob(&ga, &loose, None).await.unwrap();
    assert_eq!(usage(&proj).await, 70, "resurrected by an upload: counted again, once");

    // Drift is found, reported and corrected; a second run finds nothing.
    set_usage(proj.clone(), 12_345).await;
    assert_eq!(usage(&proj).await, 12_345, "the drifted row is what a check reads");
    let repairs = gc.repair_storage_usage().await.expect("repair");
    let mine: Vec<_> = repairs.iter().filter(|r| r.project.starts_with(&p)).collect();
    assert_eq!(mine.len(), 1, "only the drifted project is corrected: {repairs:?}");
    assert_eq!((mine[0].project.as_str(), mine[0].stored, mine[0].actual), (proj.as_str(), 12_345, 70));
    assert_eq!(usage(&proj).await, 70);
    let again = gc.repair_storage_usage().await.expect("repair");
    assert!(again.iter().all(|r| !r.project.starts_with(&p)), "nothing left to correct: {again:?}");
}
