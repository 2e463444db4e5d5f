//! The conformance suite every [`MetaStore`] backend must pass; [`identity_conformance`]
//! is the one for `IdentityStore` backends.
//!
//! Each run works under repository names with a fresh random prefix, so runs can share
//! one database (several at once, or after one another) without seeing each other's
//! rows. Assertions only look at rows the run created; listings that could include
//! other runs' repositories are checked through the prefix.
//!
//! Contracts pinned here that the trait's doc comments leave implicit:
//! - a failed `put_manifest` (missing blobs or children) writes nothing visible;
//! - missing digests are reported deduplicated, in the order of the request;
//! - re-putting a digest that exists keeps the stored row, only the tag moves;
//! - `create_upload` counts as activity at `started_at`, so an upload that never got a
//!   part is stale from when it began; `append_upload_part` refreshes it to now;
//! - listings are in byte order (`"B" < "_" < "a"`).

mod catalog;
mod cluster;
mod gc;
mod identity;
mod jobs;
mod labels;
mod outbox;
mod policies;
mod quota;
mod vulns;
mod webhooks;

use std::collections::HashSet;
use std::sync::Arc;

use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome, Referrer, StoredManifest, Upload};
use berth_core::{Digest, Reference, RepoName, Tag};
use bytes::Bytes;

pub use catalog::{catalog_conformance, natural_listing, push_numbered_tags};
pub use cluster::cluster_conformance;
pub use gc::gc_conformance;
pub use identity::identity_conformance;
pub use jobs::jobs_conformance;
pub use labels::labels_conformance;
pub use outbox::outbox_conformance;
pub use policies::policies_conformance;
pub use quota::{SetUsage, quota_conformance, usage_conformance};
pub use vulns::vulns_conformance;
pub use webhooks::webhooks_conformance;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Runs the whole suite. Panics, with the failed assertion, on the first deviation.
pub async fn conformance(store: Arc<dyn MetaStore>) {
    let cx = Cx::new(store);
    cx.store.ping().await.expect("ping");
    topology(&cx).await;
    blobs(&cx).await;
    manifests_and_tags(&cx).await;
    missing_references(&cx).await;
    tag_paging(&cx).await;
    repository_listing(&cx).await;
    referrers(&cx).await;
    uploads(&cx).await;
}

/// The database says what it is: SQLite is embedded; a PostgreSQL the store can write
/// to is a primary (its standbys, if any, listed by name).
async fn topology(cx: &Cx) {
    let t = cx.store.topology().await.expect("topology");
    match t.backend.as_str() {
        "sqlite" => assert_eq!((t.role.as_str(), t.standbys.len()), ("embedded", 0), "{t:?}"),
        "postgresql" => assert_eq!(t.role, "primary", "{t:?}"),
        other => panic!("unknown backend {other:?}: {t:?}"),
    }
}

/// Races on the same rows from many tasks. Needs a multi-threaded runtime to mean much.
pub async fn concurrency(store: Arc<dyn MetaStore>) {
    let cx = Arc::new(Cx::new(store));
    let repo = cx.repo("race");
    let layer = cx.blob("race-layer");

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (cx, repo, layer) = (Arc::clone(&cx), repo.clone(), layer.clone());
        tasks.push(tokio::spawn(async move { cx.store.commit_blob(&repo, &layer, None).await }));
    }
    for t in tasks {
        t.await.expect("task").expect("concurrent commit_blob");
    }
    assert_eq!(cx.store.repo_blob(&repo, &layer.digest).await.unwrap(), Some(layer.clone()));

    // The same manifest from many pushers, under a few tags.
    let m = NewManifest { blobs: vec![layer.digest.clone()], ..cx.image(&repo, "same") };
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (cx, m) = (Arc::clone(&cx), NewManifest { tag: Some(tag(&format!("t{}", i % 4))), ..m.clone() });
        tasks.push(tokio::spawn(async move { cx.store.put_manifest(&m).await }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("concurrent put_manifest"), PutManifestOutcome::Stored);
    }
    assert_eq!(cx.list_tags(&repo).await, vec!["t0", "t1", "t2", "t3"]);
    for i in 0..4 {
        let got = cx.get(&repo, &tag_ref(&format!("t{i}"))).await.expect("tag resolves");
        assert_eq!(got, stored(&m));
    }

    // Different manifests racing for one tag: the tag ends on one of them, all exist.
    let contenders: Vec<NewManifest> =
        (0..8).map(|i| NewManifest { tag: Some(tag("race")), ..cx.image(&repo, &format!("contender{i}")) }).collect();
    let mut tasks = Vec::new();
    for m in &contenders {
        let (cx, m) = (Arc::clone(&cx), m.clone());
        tasks.push(tokio::spawn(async move { cx.store.put_manifest(&m).await }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("racing put_manifest"), PutManifestOutcome::Stored);
    }
    let winner = cx.get(&repo, &tag_ref("race")).await.expect("race tag resolves");
    assert!(contenders.iter().any(|m| stored(m) == winner), "tag points at a manifest nobody pushed");
    for m in &contenders {
        assert_eq!(cx.get(&repo, &Reference::Digest(m.digest.clone())).await, Some(stored(m)));
    }

    // Upload compare-and-set: of many writers at the same offset exactly one wins.
    let id = format!("{}-race-upload", cx.prefix);
    cx.store.create_upload(&cx.upload(&id, &repo, 0)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (cx, id) = (Arc::clone(&cx), id.clone());
        tasks.push(tokio::spawn(async move {
            let part = format!("part-{i}");
            let won = cx.store.append_upload_part(&id, 0, 10 + i, Some(&[i as u8][..]), &part).await;
            (won, part, i)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (won, part, i) = t.await.expect("task");
        if won.expect("append_upload_part") {
            winners.push((part, i));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one CAS must win: {winners:?}");
    let (part, i) = winners.pop().unwrap();
    let u = cx.store.get_upload(&repo, &id).await.unwrap().expect("upload");
    assert_eq!((u.offset, u.hash_state, u.parts), (10 + i, Some(vec![i as u8]), vec![part]));
    cx.store.delete_upload(&id).await.unwrap();
}

struct Cx {
    store: Arc<dyn MetaStore>,
    /// A valid repository-name component unique to this run.
    prefix: String,
}

impl Cx {
    fn new(store: Arc<dyn MetaStore>) -> Cx {
        let mut prefix = uuid::Uuid::new_v4().simple().to_string();
        prefix.truncate(16);
        Cx { store, prefix: format!("ct{prefix}") }
    }

    fn repo(&self, name: &str) -> RepoName {
        format!("{}/{name}", self.prefix).parse().expect("test repository name")
    }

    /// A blob whose digest is unique to this run, so runs sharing a database never
    /// touch each other's blob rows.
    fn blob(&self, label: &str) -> BlobInfo {
        let bytes = format!("{}:{label}", self.prefix);
        BlobInfo { digest: Digest::sha256(bytes.as_bytes()), size: bytes.len() as u64 }
    }

    fn image(&self, repo: &RepoName, label: &str) -> NewManifest {
        let content = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","x":"{}-{label}"}}"#, self.prefix);
        NewManifest {
            event: None,
            repo: repo.clone(),
            digest: Digest::sha256(content.as_bytes()),
            media_type: OCI_MANIFEST.into(),
            content: Bytes::from(content),
            artifact_type: None,
            annotations: None,
            subject: None,
            blobs: Vec::new(),
            children: Vec::new(),
            tag: None,
        }
    }

    fn upload(&self, id: &str, repo: &RepoName, started_at: i64) -> Upload {
        Upload { id: id.into(), repo: repo.clone(), offset: 0, hash_state: None, parts: Vec::new(), started_at }
    }

    async fn put(&self, m: &NewManifest) {
        assert_eq!(self.store.put_manifest(m).await.unwrap(), PutManifestOutcome::Stored, "put {}", m.digest);
    }

    async fn get(&self, repo: &RepoName, r: &Reference) -> Option<StoredManifest> {
        self.store.get_manifest(repo, r).await.unwrap()
    }

    async fn list_tags(&self, repo: &RepoName) -> Vec<String> {
        self.store.list_tags(repo, None, usize::MAX).await.unwrap().expect("repository exists")
    }
}

fn tag(s: &str) -> Tag {
    s.parse().expect("test tag")
}

fn tag_ref(s: &str) -> Reference {
    Reference::Tag(tag(s))
}

fn digest_ref(m: &NewManifest) -> Reference {
    Reference::Digest(m.digest.clone())
}

fn stored(m: &NewManifest) -> StoredManifest {
    StoredManifest { digest: m.digest.clone(), media_type: m.media_type.clone(), content: m.content.clone() }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

async fn blobs(cx: &Cx) {
    let s = &cx.store;
    let (a, b, c) = (cx.repo("blobs/a"), cx.repo("blobs/b"), cx.repo("blobs/c"));
    let nowhere = cx.repo("blobs/nowhere");
    let x = cx.blob("x");
    let never = cx.blob("never-committed");

    assert_eq!(s.repo_blob(&a, &x.digest).await.unwrap(), None, "unknown repository");

    // Committing the blob finishes its upload session in the same transaction.
    let up = format!("{}-blob-upload", cx.prefix);
    s.create_upload(&cx.upload(&up, &a, now())).await.unwrap();
    s.commit_blob(&a, &x, Some(&up)).await.unwrap();
    assert_eq!(s.get_upload(&a, &up).await.unwrap(), None, "finished upload must be gone");
    assert_eq!(s.delete_upload(&up).await.unwrap(), None);
    assert_eq!(s.repo_blob(&a, &x.digest).await.unwrap(), Some(x.clone()));

    s.commit_blob(&a, &x, None).await.unwrap();
    assert_eq!(s.repo_blob(&a, &x.digest).await.unwrap(), Some(x.clone()), "re-commit is idempotent");
    assert_eq!(s.repo_blob(&b, &x.digest).await.unwrap(), None, "a blob is visible only where linked");
    assert_eq!(s.repo_blob(&a, &never.digest).await.unwrap(), None);

    // Mounting needs the blob in the source repository.
    assert_eq!(s.mount_blob(&b, &c, &x.digest).await.unwrap(), None, "source repository lacks the blob");
    assert_eq!(s.repo_blob(&c, &x.digest).await.unwrap(), None, "failed mount must not link");
    assert_eq!(s.mount_blob(&nowhere, &c, &x.digest).await.unwrap(), None, "unknown source repository");
    assert_eq!(s.mount_blob(&a, &c, &never.digest).await.unwrap(), None, "blob never committed");
    assert_eq!(s.mount_blob(&a, &b, &x.digest).await.unwrap(), Some(x.clone()));
    assert_eq!(s.repo_blob(&b, &x.digest).await.unwrap(), Some(x.clone()));
    assert_eq!(s.mount_blob(&a, &b, &x.digest).await.unwrap(), Some(x.clone()), "mount is idempotent");
    assert_eq!(s.mount_blob(&a, &a, &x.digest).await.unwrap(), Some(x.clone()), "mount onto itself");

    // Unlinking is per repository.
    assert!(s.unlink_blob(&a, &x.digest).await.unwrap());
    assert_eq!(s.repo_blob(&a, &x.digest).await.unwrap(), None);
    assert!(!s.unlink_blob(&a, &x.digest).await.unwrap(), "second unlink finds nothing");
    assert!(!s.unlink_blob(&nowhere, &x.digest).await.unwrap());
    assert_eq!(s.repo_blob(&b, &x.digest).await.unwrap(), Some(x.clone()), "other links survive");
    assert_eq!(s.mount_blob(&a, &c, &x.digest).await.unwrap(), None, "unlinked source cannot be mounted from");

    s.commit_blob(&a, &x, None).await.unwrap();
    assert_eq!(s.repo_blob(&a, &x.digest).await.unwrap(), Some(x.clone()), "commit re-links");

    // A second blob of a different size, to catch size mix-ups.
    let big = BlobInfo { digest: cx.blob("big").digest, size: 5_000_000_000 };
    s.commit_blob(&c, &big, None).await.unwrap();
    assert_eq!(s.repo_blob(&c, &big.digest).await.unwrap(), Some(big));
}

async fn manifests_and_tags(cx: &Cx) {
    let s = &cx.store;
    let repo = cx.repo("manifests");
    let other = cx.repo("manifests-other");
    let (config, layer) = (cx.blob("config"), cx.blob("layer"));
    s.commit_blob(&repo, &config, None).await.unwrap();
    s.commit_blob(&repo, &layer, None).await.unwrap();

    let m1 = NewManifest {
        blobs: vec![config.digest.clone(), layer.digest.clone()],
        tag: Some(tag("v1")),
        ..cx.image(&repo, "m1")
    };
    cx.put(&m1).await;
    assert_eq!(cx.get(&repo, &digest_ref(&m1)).await, Some(stored(&m1)));
    assert_eq!(cx.get(&repo, &tag_ref("v1")).await, Some(stored(&m1)));
    assert_eq!(cx.get(&repo, &tag_ref("nope")).await, None);
    assert_eq!(cx.get(&other, &digest_ref(&m1)).await, None, "manifests are per repository");
    assert_eq!(cx.get(&other, &tag_ref("v1")).await, None);

    // Re-put: idempotent, adds the new tag, keeps the first stored row.
    cx.put(&NewManifest { tag: Some(tag("stable")), ..m1.clone() }).await;
    let imposter = NewManifest {
        media_type: "application/x-other".into(),
        content: Bytes::from_static(b"different bytes, same claimed digest"),
        tag: None,
        ..m1.clone()
    };
    cx.put(&imposter).await;
    assert_eq!(cx.get(&repo, &digest_ref(&m1)).await, Some(stored(&m1)), "first stored row wins");
    assert_eq!(cx.get(&repo, &tag_ref("stable")).await, Some(stored(&m1)));
    assert_eq!(cx.list_tags(&repo).await, vec!["stable", "v1"]);

    // Tag move.
    let m2 = NewManifest { blobs: vec![config.digest.clone()], tag: Some(tag("v1")), ..cx.image(&repo, "m2") };
    cx.put(&m2).await;
    assert_eq!(cx.get(&repo, &tag_ref("v1")).await, Some(stored(&m2)), "tag moved");
    assert_eq!(cx.get(&repo, &tag_ref("stable")).await, Some(stored(&m1)));
    assert_eq!(cx.get(&repo, &digest_ref(&m1)).await, Some(stored(&m1)), "untagged manifest stays");
    assert_eq!(cx.list_tags(&repo).await, vec!["stable", "v1"]);

    // Deleting a tag leaves the manifest.
    assert!(s.delete_tag(&repo, &tag("stable"), None).await.unwrap());
    assert!(!s.delete_tag(&repo, &tag("stable"), None).await.unwrap());
    assert!(!s.delete_tag(&other, &tag("v1"), None).await.unwrap(), "unknown repository");
    assert_eq!(cx.get(&repo, &tag_ref("stable")).await, None);
    assert_eq!(cx.get(&repo, &digest_ref(&m1)).await, Some(stored(&m1)));

    // Deleting a manifest takes every tag pointing at it, and only those.
    cx.put(&NewManifest { tag: Some(tag("a1")), ..m1.clone() }).await;
    cx.put(&NewManifest { tag: Some(tag("a2")), ..m1.clone() }).await;
    assert_eq!(cx.list_tags(&repo).await, vec!["a1", "a2", "v1"]);
    assert!(!s.delete_manifest(&other, &m1.digest, None).await.unwrap(), "wrong repository");
    assert!(s.delete_manifest(&repo, &m1.digest, None).await.unwrap());
    assert!(!s.delete_manifest(&repo, &m1.digest, None).await.unwrap(), "already deleted");
    assert_eq!(cx.get(&repo, &digest_ref(&m1)).await, None);
    assert_eq!(cx.get(&repo, &tag_ref("a1")).await, None);
    assert_eq!(cx.get(&repo, &tag_ref("a2")).await, None);
    assert_eq!(cx.list_tags(&repo).await, vec!["v1"]);
    assert_eq!(cx.get(&repo, &tag_ref("v1")).await, Some(stored(&m2)));

    // A deleted manifest can be pushed again.
    cx.put(&m1.clone()).await;
    assert_eq!(cx.get(&repo, &tag_ref("v1")).await, Some(stored(&m1)));

    // Without a tag, a put touches no tag.
    cx.put(&NewManifest { tag: None, ..m2.clone() }).await;
    assert_eq!(cx.get(&repo, &tag_ref("v1")).await, Some(stored(&m1)));

    // The repository outlives its last tag.
    assert!(s.delete_tag(&repo, &tag("v1"), None).await.unwrap());
    assert_eq!(s.list_tags(&repo, None, 10).await.unwrap(), Some(Vec::new()));
    assert_eq!(s.list_tags(&other, None, 10).await.unwrap(), None, "unknown repository");
}

async fn missing_references(cx: &Cx) {
    let s = &cx.store;
    let repo = cx.repo("missing");
    let other = cx.repo("missing-other");
    let fresh = cx.repo("missing-fresh");
    let (present, elsewhere, absent, unlinked) =
        (cx.blob("present"), cx.blob("elsewhere"), cx.blob("absent"), cx.blob("unlinked"));
    s.commit_blob(&repo, &present, None).await.unwrap();
    s.commit_blob(&other, &elsewhere, None).await.unwrap();
    s.commit_blob(&repo, &unlinked, None).await.unwrap();
    assert!(s.unlink_blob(&repo, &unlinked.digest).await.unwrap());

    let m = NewManifest {
        blobs: vec![
            absent.digest.clone(),
            present.digest.clone(),
            elsewhere.digest.clone(),
            absent.digest.clone(),
            unlinked.digest.clone(),
        ],
        tag: Some(tag("broken")),
        ..cx.image(&repo, "broken")
    };
    assert_eq!(
        s.put_manifest(&m).await.unwrap(),
        PutManifestOutcome::MissingBlobs(vec![
            absent.digest.clone(),
            elsewhere.digest.clone(),
            unlinked.digest.clone()
        ]),
        "exactly the missing blobs, deduplicated, in request order"
    );
    assert_eq!(cx.get(&repo, &digest_ref(&m)).await, None, "a failed put stores nothing");
    assert_eq!(cx.get(&repo, &tag_ref("broken")).await, None);

    let m = NewManifest { blobs: vec![present.digest.clone()], ..cx.image(&fresh, "fresh") };
    assert_eq!(
        s.put_manifest(&m).await.unwrap(),
        PutManifestOutcome::MissingBlobs(vec![present.digest.clone()]),
        "blobs of another repository do not count in a new one"
    );
    assert_eq!(cx.get(&fresh, &digest_ref(&m)).await, None);

    // Children of an index must be manifests of the same repository.
    let here = cx.image(&repo, "child-here");
    let there = cx.image(&other, "child-there");
    let nowhere = cx.image(&repo, "child-nowhere");
    cx.put(&here).await;
    cx.put(&there).await;
    let index = NewManifest {
        media_type: OCI_INDEX.into(),
        children: vec![nowhere.digest.clone(), here.digest.clone(), there.digest.clone(), nowhere.digest.clone()],
        tag: Some(tag("index")),
        ..cx.image(&repo, "index")
    };
    assert_eq!(
        s.put_manifest(&index).await.unwrap(),
        PutManifestOutcome::MissingManifests(vec![nowhere.digest.clone(), there.digest.clone()])
    );
    assert_eq!(cx.get(&repo, &digest_ref(&index)).await, None);
    assert_eq!(cx.get(&repo, &tag_ref("index")).await, None);
    // A blob digest does not satisfy a child reference.
    let index2 = NewManifest { children: vec![present.digest.clone()], ..index.clone() };
    assert_eq!(
        s.put_manifest(&index2).await.unwrap(),
        PutManifestOutcome::MissingManifests(vec![present.digest.clone()])
    );

    let index = NewManifest { children: vec![here.digest.clone()], blobs: vec![present.digest.clone()], ..index };
    cx.put(&index).await;
    assert_eq!(cx.get(&repo, &tag_ref("index")).await, Some(stored(&index)));
}

async fn tag_paging(cx: &Cx) {
    let s = &cx.store;
    let repo = cx.repo("paging");
    let m = cx.image(&repo, "paged");
    let mut tags = vec!["latest", "Latest", "v1.0", "v1.0-rc", "v10", "v2", "_x", "a", "B", "0", "a-b", "a.b", "a_b"];
    for t in &tags {
        cx.put(&NewManifest { tag: Some(tag(t)), ..m.clone() }).await;
    }
    tags.sort_unstable(); // byte order
    let repo = &repo;
    let list = |last: Option<&'static str>, limit: usize| async move {
        s.list_tags(repo, last, limit).await.unwrap().expect("repository exists")
    };

    assert_eq!(list(None, usize::MAX).await, tags);
    assert_eq!(list(None, tags.len()).await, tags, "limit equal to the count");
    assert_eq!(list(None, tags.len() + 1).await, tags);
    assert_eq!(list(None, 0).await, Vec::<String>::new(), "limit 0");
    assert_eq!(list(None, 1).await, tags[..1]);
    assert_eq!(list(Some(""), usize::MAX).await, tags, "empty last is before everything");
    assert_eq!(list(Some(tags[tags.len() - 1]), 5).await, Vec::<String>::new(), "nothing after the last");
    assert_eq!(list(Some("~"), 5).await, Vec::<String>::new());
    assert_eq!(list(Some(tags[0]), 2).await, tags[1..3], "last itself is excluded");
    // A `last` that is not a tag starts right after where it would sort.
    let after_v1: Vec<&str> = tags.iter().copied().filter(|t| *t > "v1").collect();
    assert_eq!(list(Some("v1"), usize::MAX).await, after_v1);

    for page in [1, 3, 4, tags.len() - 1] {
        let mut all: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let got = s.list_tags(repo, last.as_deref(), page).await.unwrap().expect("repository exists");
            assert!(got.len() <= page);
            let done = got.len() < page;
            all.extend(got);
            if done {
                break;
            }
            last = all.last().cloned();
        }
        assert_eq!(all, tags, "paging by {page}");
    }
}

async fn repository_listing(cx: &Cx) {
    let s = &cx.store;
    let base = format!("{}/list/", cx.prefix);
    let (a, b, c) = (cx.repo("list/a"), cx.repo("list/b"), cx.repo("list/c"));
    let (upload_only, failed, emptied) = (cx.repo("list/upload-only"), cx.repo("list/failed"), cx.repo("list/emptied"));
    let blob = cx.blob("list");

    s.commit_blob(&a, &blob, None).await.unwrap();
    let m = NewManifest { blobs: vec![blob.digest.clone()], ..cx.image(&b, "listed") };
    s.mount_blob(&a, &b, &blob.digest).await.unwrap().expect("mount");
    cx.put(&m).await;
    assert!(s.unlink_blob(&b, &blob.digest).await.unwrap(), "b now has a manifest but no blob link");
    s.mount_blob(&a, &c, &blob.digest).await.unwrap().expect("mount");
    // Everything it had is gone again.
    s.mount_blob(&a, &emptied, &blob.digest).await.unwrap().expect("mount");
    let gone = cx.image(&emptied, "gone");
    cx.put(&gone).await;
    assert!(s.unlink_blob(&emptied, &blob.digest).await.unwrap());
    assert!(s.delete_manifest(&emptied, &gone.digest, None).await.unwrap());
    let up = format!("{}-list-upload", cx.prefix);
    s.create_upload(&cx.upload(&up, &upload_only, now())).await.unwrap();
    let broken = NewManifest { blobs: vec![cx.blob("list-absent").digest], ..cx.image(&failed, "failed") };
    assert!(matches!(s.put_manifest(&broken).await.unwrap(), PutManifestOutcome::MissingBlobs(_)));

    let ours = |v: Vec<String>| v.into_iter().take_while(|n| n.starts_with(&base)).collect::<Vec<_>>();
    let expect: Vec<String> = [&a, &b, &c].iter().map(|r| r.to_string()).collect();
    assert_eq!(ours(s.list_repositories(Some(&base), 100).await.unwrap()), expect);
    assert_eq!(s.list_repositories(Some(&base), 2).await.unwrap(), expect[..2]);
    assert_eq!(s.list_repositories(Some(&expect[0]), 1).await.unwrap(), expect[1..2]);
    let tail = s.list_repositories(Some(&expect[1]), 2).await.unwrap();
    assert_eq!(tail[0], expect[2]);
    assert!(tail.get(1).is_none_or(|n| !n.starts_with(&base)), "only a, b and c qualify: {tail:?}");
    assert_eq!(s.list_repositories(Some(&base), 0).await.unwrap(), Vec::<String>::new());

    let all = s.list_repositories(None, usize::MAX).await.unwrap();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "strictly ascending byte order");
    let all: HashSet<&str> = all.iter().map(String::as_str).collect();
    for r in &expect {
        assert!(all.contains(r.as_str()), "{r} listed");
    }
    assert!(!all.contains(upload_only.as_str()), "an upload session alone does not make a repository");
    assert!(!all.contains(failed.as_str()), "a failed manifest put does not make a repository");
    assert!(!all.contains(emptied.as_str()), "a repository without manifests or blob links is not listed");
    assert!(all.contains(cx.repo("manifests").as_str()), "a repository with manifests and no tags is listed");

    s.delete_upload(&up).await.unwrap().expect("upload row");
}

async fn referrers(cx: &Cx) {
    let s = &cx.store;
    let repo = cx.repo("referrers");
    let other = cx.repo("referrers-other");
    let subject = cx.image(&repo, "subject");
    cx.put(&subject).await;
    let sbom = "application/vnd.example.sbom";
    let sig = "application/vnd.example.sig";

    let refer = |label: &str, r: &RepoName, artifact_type: Option<&str>, subject: Digest| NewManifest {
        artifact_type: artifact_type.map(str::to_owned),
        annotations: Some(format!(r#"{{"org.example.label":"{label}"}}"#)),
        subject: Some(subject),
        ..cx.image(r, label)
    };
    let r1 = refer("r1", &repo, Some(sbom), subject.digest.clone());
    let r2 = refer("r2", &repo, Some(sig), subject.digest.clone());
    let r3 = NewManifest { annotations: None, ..refer("r3", &repo, None, subject.digest.clone()) };
    let r4 = refer("r4", &repo, Some(sbom), cx.blob("dangling-subject").digest);
    let r5 = refer("r5", &other, Some(sbom), subject.digest.clone());
    for m in [&r1, &r2, &r3, &r4, &r5] {
        cx.put(m).await;
    }
    let as_referrer = |m: &NewManifest| Referrer {
        digest: m.digest.clone(),
        media_type: m.media_type.clone(),
        size: m.content.len() as u64,
        artifact_type: m.artifact_type.clone(),
        annotations: m.annotations.clone(),
    };
    let mut expect: Vec<Referrer> = [&r1, &r2, &r3].into_iter().map(as_referrer).collect();
    expect.sort_by_key(|r| r.digest.to_string());

    assert_eq!(s.referrers(&repo, &subject.digest, None).await.unwrap(), expect, "all, ordered by digest");
    assert_eq!(s.referrers(&repo, &subject.digest, Some(sbom)).await.unwrap(), vec![as_referrer(&r1)]);
    assert_eq!(s.referrers(&repo, &subject.digest, Some(sig)).await.unwrap(), vec![as_referrer(&r2)]);
    assert_eq!(s.referrers(&repo, &subject.digest, Some("application/x-none")).await.unwrap(), Vec::new());
    assert_eq!(
        s.referrers(&repo, r4.subject.as_ref().unwrap(), None).await.unwrap(),
        vec![as_referrer(&r4)],
        "the subject need not exist"
    );
    assert_eq!(s.referrers(&other, &subject.digest, None).await.unwrap(), vec![as_referrer(&r5)]);
    assert_eq!(s.referrers(&repo, &r1.digest, None).await.unwrap(), Vec::new(), "not a subject");
    assert_eq!(s.referrers(&cx.repo("referrers-nowhere"), &subject.digest, None).await.unwrap(), Vec::new());

    assert!(s.delete_manifest(&repo, &r1.digest, None).await.unwrap());
    assert_eq!(s.referrers(&repo, &subject.digest, Some(sbom)).await.unwrap(), Vec::new());
    assert_eq!(s.referrers(&repo, &subject.digest, None).await.unwrap().len(), 2);
}

async fn uploads(cx: &Cx) {
    let s = &cx.store;
    let repo = cx.repo("uploads");
    let other = cx.repo("uploads-other");
    let (id1, id2) = (format!("{}-u1", cx.prefix), format!("{}-u2", cx.prefix));
    let long_ago = 1_000;

    let u1 = cx.upload(&id1, &repo, long_ago);
    s.create_upload(&u1).await.unwrap();
    assert_eq!(s.get_upload(&repo, &id1).await.unwrap(), Some(u1.clone()));
    assert_eq!(s.get_upload(&other, &id1).await.unwrap(), None, "uploads are per repository");
    assert_eq!(s.get_upload(&repo, &format!("{}-nope", cx.prefix)).await.unwrap(), None);

    let u2 = Upload {
        offset: 3,
        hash_state: Some(vec![1, 2, 3]),
        parts: vec!["pre/0".into()],
        ..cx.upload(&id2, &repo, long_ago)
    };
    s.create_upload(&u2).await.unwrap();
    assert_eq!(s.get_upload(&repo, &id2).await.unwrap(), Some(u2.clone()), "all fields round-trip");

    assert!(s.append_upload_part(&id1, 0, 5, Some(&b"state-5"[..]), "parts/1").await.unwrap());
    let after_first =
        Upload { offset: 5, hash_state: Some(b"state-5".to_vec()), parts: vec!["parts/1".into()], ..u1.clone() };
    assert_eq!(s.get_upload(&repo, &id1).await.unwrap(), Some(after_first.clone()));

    // A stale writer loses and changes nothing.
    assert!(!s.append_upload_part(&id1, 0, 9, Some(&b"stale"[..]), "parts/stale").await.unwrap());
    assert!(!s.append_upload_part(&id1, 6, 9, Some(&b"ahead"[..]), "parts/ahead").await.unwrap());
    assert_eq!(s.get_upload(&repo, &id1).await.unwrap(), Some(after_first));
    assert!(!s.append_upload_part(&format!("{}-nope", cx.prefix), 0, 1, None, "x").await.unwrap());

    assert!(s.append_upload_part(&id1, 5, 12, None, "parts/2").await.unwrap());
    let after_second =
        Upload { offset: 12, hash_state: None, parts: vec!["parts/1".into(), "parts/2".into()], ..u1.clone() };
    assert_eq!(s.get_upload(&repo, &id1).await.unwrap(), Some(after_second.clone()));

    // u2 has been idle since it began; u1 was just written to.
    let (id1r, id2r) = (&id1, &id2);
    let stale = |older_than: i64, limit: usize| async move {
        let ids: Vec<String> = s.stale_uploads(older_than, limit).await.unwrap().into_iter().map(|u| u.id).collect();
        (ids.contains(id1r), ids.contains(id2r))
    };
    assert_eq!(stale(long_ago + 1, usize::MAX).await, (false, true));
    assert_eq!(stale(long_ago, usize::MAX).await, (false, false), "strictly older than");
    assert_eq!(stale(now() + 3600, usize::MAX).await, (true, true));
    assert!(s.stale_uploads(now() + 3600, 0).await.unwrap().is_empty(), "limit 0");
    let full = s.stale_uploads(long_ago + 1, usize::MAX).await.unwrap();
    assert_eq!(full.iter().find(|u| u.id == id2), Some(&u2), "stale_uploads returns whole rows");

    assert_eq!(s.delete_upload(&id1).await.unwrap(), Some(after_second), "delete returns the row");
    assert_eq!(s.delete_upload(&id1).await.unwrap(), None);
    assert_eq!(s.get_upload(&repo, &id1).await.unwrap(), None);
    assert!(!s.append_upload_part(&id1, 12, 20, None, "parts/3").await.unwrap(), "deleted upload");
    assert_eq!(s.delete_upload(&id2).await.unwrap(), Some(u2));
}
