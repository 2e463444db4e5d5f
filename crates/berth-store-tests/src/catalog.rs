//! The conformance suite every [`CatalogStore`] backend must pass.
//!
//! Everything is pushed through [`MetaStore`], as the registry API would, and then read
//! back through the catalog. Like the other suites, each run names its repositories under
//! a fresh random project, so runs can share one database; totals are checked through
//! that project filter.
//!
//! Contracts pinned here that the trait's doc comments leave implicit:
//! - a repository's creation time is its first push, its update time is never before it;
//!   a description change or a pull keeps the listing order (by creation);
//! - an artifact's `push_time` is its manifest's first push; tags carry their own;
//! - `size` is the manifest's bytes plus its blobs' sizes, and for an index its bytes
//!   plus its children's sizes;
//! - references keep the order of the index's `manifests` list, with each entry's
//!   `platform` and `annotations` objects;
//! - an untagged image that no index references is listed; a child of an index is listed
//!   only while tagged, and then counts in `artifact_count`;
//! - a manifest with a subject is listed like any other, with `subject_digest`;
//! - `add_tag` on the artifact that already has the tag is a conflict too; a tag added
//!   here resolves through `MetaStore::get_manifest` like a pushed one;
//! - name filters are case-insensitive substring matches in which `%`, `_` and `\` are
//!   literal;
//! - `delete_repository` forgets the description and pull count: a repository pushed
//!   again under the same name starts afresh; blobs linked elsewhere stay usable;
//! - tag ids are non-zero and distinct across repositories, kept when the tag is pushed
//!   again or moved to another manifest, and not reused by a tag deleted and created
//!   again;
//! - pull times are absent until `record_pulls` records one; a pull by tag sets the
//!   tag's and its manifest's, a pull by digest only the manifest's; they never move
//!   backwards, the latest of a batch wins whatever its order, pulls of what does not
//!   exist are skipped without failing the batch, and a tag moved to another manifest
//!   loses its pull time (the manifests keep theirs);
//! - `tag_counts` counts each asked repository's tags, and leaves out those without any;
//! - `parents_of` names, for each child digest asked, the indexes of the same repository
//!   that list it, ordered by child then parent.

use std::fmt::Debug;
use std::sync::Arc;

use berth_core::store::catalog::{
    ArtifactInfo, CatalogError, CatalogResult, CatalogStore, NameCursor, RepoOrder, RepoSortKey, RepositoryInfo,
    TagCursor, TagFilter, TagInfo, TagKind, TagQuery, TagRow, TagSort,
};
use berth_core::store::identity::Page;
use berth_core::store::{BlobInfo, MetaStore, NewManifest, PutManifestOutcome};
use berth_core::{Digest, Reference, RepoName, Tag};
use bytes::Bytes;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const COSIGN: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Large enough to see everything one run creates.
const ALL: Page = Page { page: 1, page_size: 10_000 };

/// Runs the whole catalog suite. `meta` must be the same database as `catalog`: the
/// suite pushes through it. Panics, with the failed assertion, on the first deviation.
pub async fn catalog_conformance(meta: Arc<dyn MetaStore>, catalog: Arc<dyn CatalogStore>) {
    let cx = Arc::new(Cx::new(meta, catalog));
    let t0 = now();
    let w = World::push(&cx).await;
    repositories(&cx, &w, t0).await;
    repository_filters(&cx, &w).await;
    repository_updates(&cx, &w).await;
    artifacts(&cx, &w, t0).await;
    index_artifacts(&cx, &w).await;
    tags(&cx, &w).await;
    tag_race(&cx).await;
    pulls(&cx, &w).await;
    deletion(&cx, &w).await;
    storage(&cx).await;
    keyset_tags(&cx).await;
    artifact_tag_pages(&cx).await;
    sorted_tags(&cx).await;
    natural_tags(&cx).await;
    kind_filter(&cx).await;
    details(&cx).await;
}

/// `storage_usage`: distinct live blobs linked to the project's repositories, each once.
async fn storage(cx: &Cx) {
    let project = format!("{}q", cx.prefix);
    let repo = |n: &str| -> RepoName { format!("{project}/{n}").parse().expect("test repository name") };
    let (one, two) = (repo("one"), repo("two"));
    assert_eq!(cx.cat.storage_usage(Some(&project)).await.unwrap(), 0, "nothing pushed yet");
    let (a, b, c) = (cx.blob("su-a", 100), cx.blob("su-b", 2_000), cx.blob("su-c", 30_000));
    cx.commit(&one, &a).await;
    cx.commit(&one, &b).await;
    assert_eq!(cx.meta.mount_blob(&one, &two, &b.digest).await.unwrap(), Some(b.clone()));
    cx.commit(&two, &c).await;
    assert_eq!(cx.cat.storage_usage(Some(&project)).await.unwrap(), 32_100, "b counts once");
    assert!(cx.cat.storage_usage(None).await.unwrap() >= 32_100);
    assert_eq!(cx.cat.delete_repository(&one).await.unwrap(), Some(0));
    assert_eq!(cx.cat.storage_usage(Some(&project)).await.unwrap(), 32_000, "a is no longer linked");
    assert_eq!(cx.cat.delete_repository(&two).await.unwrap(), Some(0));
    assert_eq!(cx.cat.storage_usage(Some(&project)).await.unwrap(), 0);
}

/// `list_tags_after`: bytewise name order, prefix bounds, keyset continuation.
async fn keyset_tags(cx: &Cx) {
    let repo = cx.repo("keyset");
    assert_eq!(cx.cat.list_tags_after(&repo, "", None, 10).await.unwrap(), None, "unknown repository");
    let names = ["v1.0", "v1.1", "v10", "V2", "latest", "v1.0-rc", "w"];
    for (i, n) in names.iter().enumerate() {
        cx.put(&cx.image(&repo, &format!("k{i}"), &[], Some(n))).await;
    }
    let all = |rows: Vec<berth_core::store::catalog::TagRow>| rows.into_iter().map(|r| r.name).collect::<Vec<_>>();
    let got = all(cx.cat.list_tags_after(&repo, "", None, 100).await.unwrap().unwrap());
    assert_eq!(got, ["V2", "latest", "v1.0", "v1.0-rc", "v1.1", "v10", "w"], "bytewise order");
    let page1 = cx.cat.list_tags_after(&repo, "", None, 3).await.unwrap().unwrap();
    assert_eq!(page1.len(), 3);
    assert_eq!(page1[0].digest, cx.image(&repo, "k3", &[], Some("V2")).digest);
    assert_eq!(page1[0].media_type, OCI_MANIFEST);
    assert!(page1[0].manifest_size > 0 && page1[0].id != 0 && page1[0].pull_time.is_none());
    let page2 = all(cx.cat.list_tags_after(&repo, "", Some(&page1[2].name), 3).await.unwrap().unwrap());
    assert_eq!(page2, ["v1.0-rc", "v1.1", "v10"]);
    let v1 = all(cx.cat.list_tags_after(&repo, "v1", None, 100).await.unwrap().unwrap());
    assert_eq!(v1, ["v1.0", "v1.0-rc", "v1.1", "v10"], "prefix");
    let v1_after = all(cx.cat.list_tags_after(&repo, "v1", Some("v1.0-rc"), 100).await.unwrap().unwrap());
    assert_eq!(v1_after, ["v1.1", "v10"]);
    let before_prefix = all(cx.cat.list_tags_after(&repo, "v1", Some("a"), 2).await.unwrap().unwrap());
    assert_eq!(before_prefix, ["v1.0", "v1.0-rc"], "a cursor before the prefix starts at the prefix");
    assert!(cx.cat.list_tags_after(&repo, "zz", None, 10).await.unwrap().unwrap().is_empty());
    cx.cat.delete_repository(&repo).await.unwrap();
}

/// `artifact_tags_page`: one artifact's tags only (not another artifact's in the same
/// repository), bytewise, forwards from the start or a name and backwards from a name to
/// the same rows as one page; an unknown artifact or repository is `None`.
async fn artifact_tag_pages(cx: &Cx) {
    let repo = cx.repo("tagpages");
    let names = ["b", "V2", "a", "c10", "c2", "d", "e"];
    for n in names {
        cx.put(&cx.image(&repo, "one", &[], Some(n))).await;
    }
    cx.put(&cx.image(&repo, "other", &[], Some("b0"))).await;
    let one = cx.image(&repo, "one", &[], None).digest;
    let page = |c: NameCursor, n: u64| {
        let (repo, one) = (repo.clone(), one.clone());
        async move {
            let rows = cx.cat.artifact_tags_page(&repo, &one, &c, n).await.unwrap().expect("artifact exists");
            rows.into_iter().map(|t| t.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(NameCursor::First, 100).await, ["V2", "a", "b", "c10", "c2", "d", "e"], "bytewise, its own tags");
    assert_eq!(page(NameCursor::First, 3).await, ["V2", "a", "b"]);
    assert_eq!(page(NameCursor::After("b".into()), 3).await, ["c10", "c2", "d"]);
    assert_eq!(page(NameCursor::After("d".into()), 3).await, ["e"]);
    assert_eq!(page(NameCursor::After("e".into()), 3).await, Vec::<String>::new());
    assert_eq!(page(NameCursor::Before("c10".into()), 3).await, ["V2", "a", "b"], "backwards, in name order");
    assert_eq!(page(NameCursor::Before("e".into()), 3).await, ["c10", "c2", "d"]);
    assert_eq!(page(NameCursor::Before("a".into()), 3).await, ["V2"]);
    let tags = cx.cat.artifact_tags_page(&repo, &one, &NameCursor::First, 1).await.unwrap().unwrap();
    assert!(tags[0].id != 0 && tags[0].push_time > 0 && tags[0].pull_time.is_none());
    let missing: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
    assert_eq!(cx.cat.artifact_tags_page(&repo, &missing, &NameCursor::First, 3).await.unwrap(), None);
    assert_eq!(cx.cat.artifact_tags_page(&cx.repo("nowhere"), &one, &NameCursor::First, 3).await.unwrap(), None);
    cx.cat.delete_repository(&repo).await.unwrap();
}

/// `list_tags_sorted`: name, push and pull orders, each paged by its keyset cursor (sort
/// key and id) to the same rows as one page; prefix and glob filters (`*`, `?`, and `_`
/// literal).
async fn sorted_tags(cx: &Cx) {
    let repo = cx.repo("sorted");
    let q = |filter: TagFilter, sort: TagSort, after: Option<TagCursor>, limit: u64| TagQuery {
        filter,
        sort,
        after,
        kind: None,
        limit,
    };
    let all_of = TagFilter::Prefix(String::new());
    assert_eq!(cx.cat.list_tags_sorted(&repo, &q(all_of.clone(), TagSort::Name, None, 10)).await.unwrap(), None);
    let names = ["v1.0", "v1.1", "v10", "V2", "latest", "v1.0-rc", "w_x"];
    for (i, n) in names.iter().enumerate() {
        cx.put(&cx.image(&repo, &format!("s{i}"), &[], Some(n))).await;
    }
    let pull = |t: &str, at: i64| (repo.clone(), Reference::Tag(tag_of(t)), at);
    cx.cat.record_pulls(&[pull("v1.1", 100), pull("v10", 300), pull("latest", 300)]).await.unwrap();
    let cursor = |sort: TagSort, r: &TagRow| match sort {
        TagSort::Name => TagCursor::Name(r.name.clone()),
        TagSort::Pushed => TagCursor::Pushed(r.push_time, r.id),
        TagSort::Pulled => TagCursor::Pulled(r.pull_time, r.id),
        TagSort::Natural => TagCursor::Natural(r.name.clone()),
    };
    let (q, cursor, repo_ref) = (&q, &cursor, &repo);
    let list = |filter: TagFilter, sort: TagSort| {
        let repo = repo_ref;
        async move {
            let one = cx.cat.list_tags_sorted(repo, &q(filter.clone(), sort, None, 100)).await.unwrap().unwrap();
            // The same rows, two at a time.
            let (mut paged, mut after) = (Vec::new(), None);
            loop {
                let page = cx.cat.list_tags_sorted(repo, &q(filter.clone(), sort, after, 2)).await.unwrap().unwrap();
                let Some(last) = page.last() else { break };
                after = Some(cursor(sort, last));
                paged.extend(page);
            }
            assert_eq!(one, paged, "{filter:?} {sort:?}: pages of two, each after the last");
            one.into_iter().map(|r| r.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(all_of.clone(), TagSort::Name).await, ["V2", "latest", "v1.0", "v1.0-rc", "v1.1", "v10", "w_x"]);
    // Pushed in order (within a second, the later id first): newest first.
    let mut pushed: Vec<&str> = names.to_vec();
    pushed.reverse();
    assert_eq!(list(all_of.clone(), TagSort::Pushed).await, pushed);
    assert_eq!(
        list(all_of.clone(), TagSort::Pulled).await,
        ["latest", "v10", "v1.1", "w_x", "v1.0-rc", "V2", "v1.0"],
        "latest pull first, ties by id descending, never pulled last"
    );
    let glob = |g: &str| TagFilter::Glob(g.into());
    assert_eq!(list(glob("v1.?"), TagSort::Name).await, ["v1.0", "v1.1"]);
    assert_eq!(list(glob("*_x"), TagSort::Name).await, ["w_x"]);
    assert!(list(glob("*x_"), TagSort::Name).await.is_empty(), "`_` is literal");
    assert_eq!(list(glob("?2"), TagSort::Pushed).await, ["V2"]);
    assert_eq!(list(glob("v1*"), TagSort::Pushed).await, ["v1.0-rc", "v10", "v1.1", "v1.0"]);
    assert_eq!(list(glob("*.*"), TagSort::Pulled).await, ["v1.1", "v1.0-rc", "v1.0"]);
    assert_eq!(list(glob("*"), TagSort::Name).await.len(), names.len());
    assert_eq!(list(TagFilter::Prefix("v1".into()), TagSort::Pulled).await, ["v10", "v1.1", "v1.0-rc", "v1.0"]);
    cx.cat.delete_repository(&repo).await.unwrap();
}

/// Every page of `q` (its cursor ignored) in pages of `size`, each after the last row of
/// the one before, checked to be the rows one large page has; the names.
async fn paged(cx: &Cx, repo: &RepoName, q: &TagQuery, size: u64) -> Vec<String> {
    let one =
        cx.cat.list_tags_sorted(repo, &TagQuery { after: None, limit: 1000, ..q.clone() }).await.unwrap().unwrap();
    let (mut rows, mut after) = (Vec::new(), None);
    loop {
        let page = TagQuery { after: after.clone(), limit: size, ..q.clone() };
        let page = cx.cat.list_tags_sorted(repo, &page).await.unwrap().unwrap();
        assert!(page.len() as u64 <= size);
        let Some(last) = page.last() else { break };
        after = Some(match q.sort {
            TagSort::Name => TagCursor::Name(last.name.clone()),
            TagSort::Natural => TagCursor::Natural(last.name.clone()),
            TagSort::Pushed => TagCursor::Pushed(last.push_time, last.id),
            TagSort::Pulled => TagCursor::Pulled(last.pull_time, last.id),
        });
        rows.extend(page);
    }
    assert_eq!(one, rows, "{q:?}: pages of {size}, each after the last, are the one page");
    rows.into_iter().map(|r| r.name).collect()
}

/// `list_tags_sorted` in natural order: numbers by value (`v1.2` < `v1.10`, `1.9.0` <
/// `1.10.0`), equal numbers (`v01.2`, `v1.2`) then bytewise, digit runs of 126 and 127
/// digits, a number where a digit sorts among other bytes; keyset pages of 1, 2 and 4;
/// prefix and glob filters; a tag added with `add_tag` and one pushed again keep their key.
async fn natural_tags(cx: &Cx) {
    let repo = cx.repo("natural");
    let q = |filter: TagFilter| TagQuery { filter, sort: TagSort::Natural, after: None, kind: None, limit: 1000 };
    let all_of = TagFilter::Prefix(String::new());
    assert_eq!(cx.cat.list_tags_sorted(&repo, &q(all_of.clone())).await.unwrap(), None, "unknown repository");
    let (nines, big) = (format!("v{}", "9".repeat(126)), format!("v1{}", "0".repeat(126)));
    let mut names = vec![
        "v1.10",
        "v2",
        "1.10.0",
        "v1.2-rc10",
        "latest",
        "v1.9",
        "v1.2",
        "1.9.0",
        "V3",
        "v01.2",
        "v1.2-rc2",
        "_x",
        "v1.2-rc1",
        nines.as_str(),
        big.as_str(),
    ];
    for (i, n) in names.iter().enumerate() {
        // The last one by `add_tag`, onto the first image: the other insert path.
        if i + 1 == names.len() {
            cx.cat.add_tag(&repo, &tag_ref("v2"), &tag_of(n)).await.unwrap();
        } else {
            cx.put(&cx.image(&repo, &format!("n{i}"), &[], Some(n))).await;
        }
    }
    // Pushed again onto another manifest (the upsert path): same key, same place.
    cx.put(&cx.image(&repo, "n-again", &[], Some("v1.9"))).await;
    let want = [
        "1.9.0",
        "1.10.0",
        "V3",
        "_x",
        "latest",
        "v01.2",
        "v1.2",
        "v1.2-rc1",
        "v1.2-rc2",
        "v1.2-rc10",
        "v1.9",
        "v1.10",
        "v2",
        nines.as_str(),
        big.as_str(),
    ];
    for size in [1, 2, 4] {
        assert_eq!(paged(cx, &repo, &q(all_of.clone()), size).await, want, "natural order, pages of {size}");
    }
    let prefix = |p: &str| TagFilter::Prefix(p.into());
    let glob = |g: &str| TagFilter::Glob(g.into());
    assert_eq!(
        paged(cx, &repo, &q(prefix("v1.")), 2).await,
        ["v1.2", "v1.2-rc1", "v1.2-rc2", "v1.2-rc10", "v1.9", "v1.10"],
        "a prefix ending in a separator"
    );
    assert_eq!(
        paged(cx, &repo, &q(prefix("v1")), 3).await,
        ["v1.2", "v1.2-rc1", "v1.2-rc2", "v1.2-rc10", "v1.9", "v1.10", big.as_str()],
        "a prefix ending in a digit: v10… continues its number"
    );
    assert_eq!(paged(cx, &repo, &q(prefix("1")), 1).await, ["1.9.0", "1.10.0"], "a prefix of digits only");
    assert_eq!(paged(cx, &repo, &q(glob("v1.2-rc*")), 2).await, ["v1.2-rc1", "v1.2-rc2", "v1.2-rc10"]);
    assert_eq!(paged(cx, &repo, &q(glob("*.0")), 1).await, ["1.9.0", "1.10.0"]);
    assert_eq!(
        paged(cx, &repo, &q(glob("v?.*")), 4).await,
        ["v1.2", "v1.2-rc1", "v1.2-rc2", "v1.2-rc10", "v1.9", "v1.10"]
    );
    assert!(paged(cx, &repo, &q(prefix("zz")), 2).await.is_empty());
    // A cursor that is no tag of the repository still continues after its place.
    let after = TagQuery { after: Some(TagCursor::Natural("v1.3".into())), ..q(all_of.clone()) };
    let rows = cx.cat.list_tags_sorted(&repo, &after).await.unwrap().unwrap();
    assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), want[10..]);
    // The bytewise order of the same tags is another one.
    names.sort_unstable();
    let byte_q = TagQuery { sort: TagSort::Name, ..q(all_of) };
    assert_eq!(paged(cx, &repo, &byte_q, 5).await, names);
    cx.cat.delete_repository(&repo).await.unwrap();
}

/// `list_tags_sorted`'s kind filter (the tags view's type filter): images, indexes, Helm
/// charts and other artifacts, as [`TagKind::of`] defines them, in every order, with a
/// glob and keyset pages.
async fn kind_filter(cx: &Cx) {
    let repo = cx.repo("kinds");
    let with = |label: &str, media_type: &str, artifact_type: Option<&str>, tag: &str| NewManifest {
        media_type: media_type.into(),
        artifact_type: artifact_type.map(str::to_owned),
        ..cx.image(&repo, label, &[], Some(tag))
    };
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let made = [
        with("k-img", OCI_MANIFEST, Some("application/vnd.oci.image.config.v1+json"), "img-10"),
        with("k-docker", docker, Some("application/vnd.docker.container.image.v1+json"), "img-9"),
        with("k-bare", OCI_MANIFEST, None, "img-1"),
        with("k-idx", OCI_INDEX, None, "idx-1"),
        with("k-chart", OCI_MANIFEST, Some(TagKind::HELM_CONFIG), "chart-0.10.0"),
        with("k-chart2", OCI_MANIFEST, Some(TagKind::HELM_CONFIG), "chart-0.9.0"),
        with("k-wasm", OCI_MANIFEST, Some("application/vnd.wasm.config.v1+json"), "wasm-2"),
        with("k-sig", OCI_MANIFEST, Some(COSIGN), "sig-1"),
        with("k-art", OCI_MANIFEST, Some("application/vnd.example.thing.v1"), "thing-1"),
    ];
    for m in &made {
        cx.put(m).await;
    }
    let kind_of = |tag: &str| {
        let m = made.iter().find(|m| m.tag.as_ref().is_some_and(|t| t.as_str() == tag)).unwrap();
        TagKind::of(&m.media_type, m.artifact_type.as_deref())
    };
    let q = |kind: TagKind, sort: TagSort, filter: TagFilter| TagQuery {
        filter,
        sort,
        after: None,
        kind: Some(kind),
        limit: 1000,
    };
    let all_of = || TagFilter::Prefix(String::new());
    let natural = |k: TagKind| q(k, TagSort::Natural, all_of());
    assert_eq!(paged(cx, &repo, &natural(TagKind::Image), 2).await, ["img-1", "img-9", "img-10"]);
    assert_eq!(paged(cx, &repo, &natural(TagKind::Index), 2).await, ["idx-1"]);
    assert_eq!(paged(cx, &repo, &natural(TagKind::Chart), 1).await, ["chart-0.9.0", "chart-0.10.0"]);
    assert_eq!(paged(cx, &repo, &natural(TagKind::Other), 2).await, ["sig-1", "thing-1", "wasm-2"]);
    // Every order keeps the same tags, and each is of the kind `TagKind::of` says.
    for kind in TagKind::ALL {
        let mut natural_names = paged(cx, &repo, &natural(kind), 2).await;
        assert!(natural_names.iter().all(|t| kind_of(t) == kind), "{kind:?}: {natural_names:?}");
        natural_names.sort_unstable();
        for sort in [TagSort::Name, TagSort::Pushed, TagSort::Pulled] {
            let mut got = paged(cx, &repo, &q(kind, sort, all_of()), 2).await;
            got.sort_unstable();
            assert_eq!(got, natural_names, "{kind:?} {sort:?}");
        }
    }
    // With a glob and a prefix.
    assert_eq!(
        paged(cx, &repo, &q(TagKind::Image, TagSort::Natural, TagFilter::Glob("*-1?".into())), 1).await,
        ["img-10"]
    );
    assert_eq!(
        paged(cx, &repo, &q(TagKind::Chart, TagSort::Name, TagFilter::Prefix("chart-0.1".into())), 1).await,
        ["chart-0.10.0"]
    );
    assert!(
        paged(cx, &repo, &q(TagKind::Index, TagSort::Natural, TagFilter::Prefix("img".into())), 1).await.is_empty()
    );
    cx.cat.delete_repository(&repo).await.unwrap();
}

/// Pushes tags `t1` … `t{n}` to `repo` (one manifest each), for the backends' own tests
/// of keys filled after the fact (rows of an older binary): their natural order is by
/// number, their bytewise order is not.
pub async fn push_numbered_tags(meta: &dyn MetaStore, repo: &RepoName, n: usize) -> Vec<String> {
    let names: Vec<String> = (1..=n).map(|i| format!("t{i}")).collect();
    for name in &names {
        let content = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","x":"{repo}-{name}"}}"#);
        let m = NewManifest {
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
            tag: Some(tag_of(name)),
        };
        assert_eq!(meta.put_manifest(&m).await.unwrap(), PutManifestOutcome::Stored);
    }
    names
}

/// `repo`'s tags in natural order, read in keyset pages of 100.
pub async fn natural_listing(catalog: &dyn CatalogStore, repo: &RepoName) -> Vec<String> {
    let (mut names, mut after) = (Vec::new(), None);
    loop {
        let q = TagQuery {
            filter: TagFilter::Prefix(String::new()),
            sort: TagSort::Natural,
            after: after.take(),
            kind: None,
            limit: 100,
        };
        let page = catalog.list_tags_sorted(repo, &q).await.unwrap().expect("repository exists");
        let Some(last) = page.last() else { return names };
        after = Some(TagCursor::Natural(last.name.clone()));
        names.extend(page.into_iter().map(|r| r.name));
    }
}

/// `page_details`: the artifacts asked for (Harbor's size, an index's platforms, no
/// tags), their referrers, the manifests of the tags asked for; what is not there is
/// left out.
async fn details(cx: &Cx) {
    let repo = cx.repo("details");
    assert_eq!(cx.cat.page_details(&repo, &[], &[]).await.unwrap(), None, "unknown repository");
    let layer = cx.blob("d-layer", 1_000);
    cx.commit(&repo, &layer).await;
    let img = cx.image(&repo, "d-img", &[&layer], Some("one"));
    cx.put(&img).await;
    let sig = NewManifest {
        artifact_type: Some(COSIGN.into()),
        subject: Some(img.digest.clone()),
        ..cx.image(&repo, "d-sig", &[], None)
    };
    cx.put(&sig).await;
    let tagsig = cx.image(&repo, "d-tagsig", &[], Some("sha256-abc.sig"));
    cx.put(&tagsig).await;
    let child = cx.image(&repo, "d-child", &[], None);
    cx.put(&child).await;
    let content = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"arm64","os":"linux"}}}}],"x":"{}"}}"#,
        child.digest,
        child.content.len(),
        cx.prefix
    );
    let index = NewManifest {
        event: None,
        repo: repo.clone(),
        digest: Digest::sha256(content.as_bytes()),
        media_type: OCI_INDEX.into(),
        content: Bytes::from(content),
        artifact_type: None,
        annotations: None,
        subject: None,
        blobs: Vec::new(),
        children: vec![child.digest.clone()],
        tag: Some(tag_of("multi")),
    };
    cx.put(&index).await;
    let missing = Digest::sha256(b"not pushed");
    let asked = [img.digest.clone(), index.digest.clone(), missing, img.digest.clone()];
    let d = cx
        .cat
        .page_details(&repo, &asked, &["sha256-abc.sig".into(), "nope".into()])
        .await
        .unwrap()
        .expect("repository exists");
    assert_eq!(d.artifacts.len(), 2, "each present digest once");
    let a = d.artifacts.iter().find(|a| a.digest == img.digest).expect("the image");
    assert_eq!(a.size, img.content.len() as u64 + 1_000, "Harbor's size");
    assert!(a.tags.is_empty() && a.references.is_empty());
    let x = d.artifacts.iter().find(|a| a.digest == index.digest).expect("the index");
    assert_eq!(x.references.len(), 1);
    assert_eq!(x.references[0].platform.as_ref().unwrap()["architecture"], "arm64");
    assert_eq!(d.referrers.len(), 1);
    assert_eq!((&d.referrers[0].0, &d.referrers[0].1.digest), (&img.digest, &sig.digest));
    assert_eq!(d.referrers[0].1.artifact_type.as_deref(), Some(COSIGN));
    assert_eq!(d.tagged.len(), 1);
    assert_eq!((d.tagged[0].0.as_str(), &d.tagged[0].1.digest), ("sha256-abc.sig", &tagsig.digest));
    cx.cat.delete_repository(&repo).await.unwrap();
}

struct Cx {
    meta: Arc<dyn MetaStore>,
    cat: Arc<dyn CatalogStore>,
    /// Unique to this run; the project every repository of the run is under.
    prefix: String,
}

impl Cx {
    fn new(meta: Arc<dyn MetaStore>, cat: Arc<dyn CatalogStore>) -> Cx {
        let mut prefix = uuid::Uuid::new_v4().simple().to_string();
        prefix.truncate(16);
        Cx { meta, cat, prefix: format!("ct{prefix}") }
    }

    fn repo(&self, name: &str) -> RepoName {
        format!("{}/{name}", self.prefix).parse().expect("test repository name")
    }

    /// A blob unique to this run, of a chosen size (the store takes the size it is told).
    fn blob(&self, label: &str, size: u64) -> BlobInfo {
        BlobInfo { digest: Digest::sha256(format!("{}:{label}", self.prefix).as_bytes()), size }
    }

    async fn commit(&self, repo: &RepoName, blob: &BlobInfo) {
        self.meta.commit_blob(repo, blob, None).await.expect("commit_blob");
    }

    fn image(&self, repo: &RepoName, label: &str, blobs: &[&BlobInfo], tag: Option<&str>) -> NewManifest {
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
            blobs: blobs.iter().map(|b| b.digest.clone()).collect(),
            children: Vec::new(),
            tag: tag.map(tag_of),
        }
    }

    async fn put(&self, m: &NewManifest) {
        assert_eq!(self.meta.put_manifest(m).await.unwrap(), PutManifestOutcome::Stored, "put {}", m.digest);
    }

    async fn repository(&self, repo: &RepoName) -> RepositoryInfo {
        self.cat.repository(repo).await.unwrap().unwrap_or_else(|| panic!("repository {repo} is listed"))
    }

    async fn artifacts(&self, repo: &RepoName, page: &Page, with_tag: bool) -> (Vec<ArtifactInfo>, u64) {
        self.cat.list_artifacts(repo, page, with_tag).await.unwrap().unwrap_or_else(|| panic!("repository {repo}"))
    }

    async fn artifact(&self, repo: &RepoName, r: &Reference) -> ArtifactInfo {
        self.cat.artifact(repo, r).await.unwrap().unwrap_or_else(|| panic!("artifact {r} in {repo}"))
    }

    async fn tag_names(&self, repo: &RepoName, r: &Reference, page: &Page) -> (Vec<String>, u64) {
        let (tags, total) = self.cat.list_artifact_tags(repo, r, page).await.unwrap().expect("artifact exists");
        (tags.into_iter().map(|t| t.name).collect(), total)
    }

    /// This run's repositories, by name, as `list_repositories` shows them.
    async fn listed(&self) -> (Vec<String>, u64) {
        let (repos, total) = self.cat.list_repositories(Some(&self.prefix), None, &ALL).await.unwrap();
        (repos.into_iter().map(|r| r.name).collect(), total)
    }
}

/// What the run pushed, in the order it pushed it.
struct World {
    /// Two tagged images: m1 (`v1`), m2 (`v2`, then `latest`).
    app: RepoName,
    config: BlobInfo,
    layer1: BlobInfo,
    layer2: BlobInfo,
    m1: NewManifest,
    m2: NewManifest,
    /// An index (`1.0`) of amd (untagged), arm (tagged `arm-only`) and att (an
    /// attestation, untagged).
    multi: RepoName,
    amd_blobs: [BlobInfo; 2],
    amd: NewManifest,
    arm: NewManifest,
    att: NewManifest,
    index: NewManifest,
    /// Index entries, in the order of its `manifests` list: (child, architecture).
    entries: Vec<(Digest, &'static str)>,
    /// A blob link only.
    blobonly: RepoName,
    /// Had a blob link, which is gone: not listed.
    emptied: RepoName,
    /// Blob links only, for the name filter.
    a_b: RepoName,
    axb: RepoName,
    /// An image `s0` (`v1`) and an untagged signature of it.
    signed: RepoName,
    s0: NewManifest,
    sig: NewManifest,
    /// In project `<prefix>x`, which is not this run's.
    lookalike: RepoName,
}

impl World {
    async fn push(cx: &Cx) -> World {
        let app = cx.repo("app");
        let (config, layer1, layer2) = (cx.blob("config", 1_234), cx.blob("layer1", 50_000), cx.blob("layer2", 70_001));
        for b in [&config, &layer1, &layer2] {
            cx.commit(&app, b).await;
        }
        let m1 = cx.image(&app, "m1", &[&config, &layer1], Some("v1"));
        let m2 = cx.image(&app, "m2", &[&config, &layer2], Some("v2"));
        cx.put(&m1).await;
        cx.put(&m2).await;
        cx.put(&NewManifest { tag: Some(tag_of("latest")), ..m2.clone() }).await;

        let multi = cx.repo("multi");
        let amd_blobs = [cx.blob("amd-config", 900), cx.blob("amd-layer", 3_000_000)];
        let arm_blobs = [cx.blob("arm-config", 901), cx.blob("arm-layer", 2_900_000)];
        let att_blob = cx.blob("att-layer", 17);
        for b in amd_blobs.iter().chain(&arm_blobs).chain([&att_blob]) {
            cx.commit(&multi, b).await;
        }
        let amd = cx.image(&multi, "amd", &[&amd_blobs[0], &amd_blobs[1]], None);
        let arm = cx.image(&multi, "arm", &[&arm_blobs[0], &arm_blobs[1]], Some("arm-only"));
        let att = cx.image(&multi, "att", &[&att_blob], None);
        for m in [&amd, &arm, &att] {
            cx.put(m).await;
        }
        // Entries in descending digest order, so that their order is not what sorting
        // the children would give. Keys in byte order, so that the objects print the same
        // whatever the JSON library keeps.
        let mut entries =
            vec![(amd.digest.clone(), "amd64"), (arm.digest.clone(), "arm64"), (att.digest.clone(), "unknown")];
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.to_string()));
        let manifests: Vec<String> = entries
            .iter()
            .map(|(d, arch)| {
                let size = [&amd, &arm, &att].iter().find(|m| &m.digest == d).unwrap().content.len();
                let platform = match *arch {
                    "arm64" => r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#.to_owned(),
                    a => format!(r#"{{"architecture":"{a}","os":"{}"}}"#, if a == "unknown" { "unknown" } else { "linux" }),
                };
                let annotations = if *arch == "unknown" {
                    format!(
                        r#","annotations":{{"vnd.docker.reference.digest":"{}","vnd.docker.reference.type":"attestation-manifest"}}"#,
                        amd.digest
                    )
                } else {
                    String::new()
                };
                format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{size},"platform":{platform}{annotations}}}"#)
            })
            .collect();
        let content = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}],"x":"{}"}}"#,
            manifests.join(","),
            cx.prefix
        );
        let index = NewManifest {
            event: None,
            repo: multi.clone(),
            digest: Digest::sha256(content.as_bytes()),
            media_type: OCI_INDEX.into(),
            content: Bytes::from(content),
            artifact_type: None,
            annotations: None,
            subject: None,
            blobs: Vec::new(),
            children: entries.iter().map(|(d, _)| d.clone()).collect(),
            tag: Some(tag_of("1.0")),
        };
        cx.put(&index).await;

        let blobonly = cx.repo("blobonly");
        cx.commit(&blobonly, &cx.blob("lonely", 5)).await;
        let emptied = cx.repo("emptied");
        let gone = cx.blob("gone", 6);
        cx.commit(&emptied, &gone).await;
        assert!(cx.meta.unlink_blob(&emptied, &gone.digest).await.unwrap());
        let (a_b, axb) = (cx.repo("a_b"), cx.repo("axb"));
        cx.commit(&a_b, &cx.blob("a_b", 7)).await;
        cx.commit(&axb, &cx.blob("axb", 8)).await;

        let signed = cx.repo("signed");
        let s_layer = cx.blob("s-layer", 4_096);
        cx.commit(&signed, &s_layer).await;
        let s0 = cx.image(&signed, "s0", &[&s_layer], Some("v1"));
        cx.put(&s0).await;
        let sig = NewManifest {
            artifact_type: Some(COSIGN.into()),
            annotations: Some(r#"{"dev.cosignproject.cosign/signature":"MEUC"}"#.into()),
            subject: Some(s0.digest.clone()),
            ..cx.image(&signed, "sig", &[], None)
        };
        cx.put(&sig).await;

        let lookalike: RepoName = format!("{}x/app", cx.prefix).parse().unwrap();
        cx.commit(&lookalike, &cx.blob("lookalike", 9)).await;

        World {
            app,
            config,
            layer1,
            layer2,
            m1,
            m2,
            multi,
            amd_blobs,
            amd,
            arm,
            att,
            index,
            entries,
            blobonly,
            emptied,
            a_b,
            axb,
            signed,
            s0,
            sig,
            lookalike,
        }
    }

    /// What `size` must be for an image pushed with these blobs.
    fn image_size(m: &NewManifest, blobs: &[&BlobInfo]) -> u64 {
        m.content.len() as u64 + blobs.iter().map(|b| b.size).sum::<u64>()
    }
}

fn tag_of(s: &str) -> Tag {
    s.parse().expect("test tag")
}

fn tag_ref(s: &str) -> Reference {
    Reference::Tag(tag_of(s))
}

fn digest_ref(m: &NewManifest) -> Reference {
    Reference::Digest(m.digest.clone())
}

fn page(page: u64, page_size: u64) -> Page {
    Page { page, page_size }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

#[track_caller]
fn assert_between(t: i64, from: i64, what: &str) {
    assert!(t >= from && t <= now() + 1, "{what} {t} is not within the run (from {from})");
}

#[track_caller]
fn assert_conflict<T: Debug>(r: CatalogResult<T>, want_value: &str) {
    match r {
        Err(CatalogError::Conflict { field, value }) => assert_eq!((field, value.as_str()), ("tag", want_value)),
        other => panic!("expected a tag conflict on {want_value:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(r: CatalogResult<T>) {
    assert!(matches!(r, Err(CatalogError::NotFound)), "expected NotFound, got {r:?}");
}

fn digests(list: &[ArtifactInfo]) -> Vec<Digest> {
    list.iter().map(|a| a.digest.clone()).collect()
}

fn names_of(repos: &[RepositoryInfo]) -> Vec<&str> {
    repos.iter().map(|r| r.name.as_str()).collect()
}

fn tag_names(tags: &[TagInfo]) -> Vec<&str> {
    tags.iter().map(|t| t.name.as_str()).collect()
}

async fn repositories(cx: &Cx, w: &World, t0: i64) {
    // Newest first; the emptied repository and the look-alike project's are not listed.
    let (repos, total) = cx.cat.list_repositories(Some(&cx.prefix), None, &ALL).await.unwrap();
    let order = [&w.signed, &w.axb, &w.a_b, &w.blobonly, &w.multi, &w.app];
    assert_eq!(repos.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), order.map(|r| r.as_str()));
    assert_eq!(total, 6);
    for r in &repos {
        assert_eq!(r.project_name, cx.prefix, "{}", r.name);
        assert_eq!((r.description.as_str(), r.pull_count), ("", 0), "{}", r.name);
        assert_between(r.creation_time, t0, "creation time");
        assert!(r.update_time >= r.creation_time && r.update_time <= now() + 1, "{r:?}");
        assert_eq!(cx.repository(&r.name.parse().unwrap()).await, *r, "repository() agrees with the listing");
    }
    let count = |name: &RepoName| repos.iter().find(|r| r.name == name.as_str()).unwrap().artifact_count;
    assert_eq!(count(&w.app), 2);
    assert_eq!(count(&w.multi), 2, "the index and its tagged child; untagged children are only references");
    assert_eq!(count(&w.signed), 2, "an image and its signature");
    assert_eq!(count(&w.blobonly), 0);
    let ids: Vec<i64> = repos.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids follow creation: {ids:?}");

    // Tag counts of a page's repositories, in one call: each its own tags (a tag moved
    // onto another manifest counts once); none, or no such repository, is absent.
    let mut asked = ids.clone();
    asked.push(i64::MAX);
    let counts = cx.cat.tag_counts(&asked).await.unwrap();
    let id_of = |name: &RepoName| repos.iter().find(|r| r.name == name.as_str()).unwrap().id;
    let want = std::collections::HashMap::from([(id_of(&w.app), 3), (id_of(&w.multi), 2), (id_of(&w.signed), 1)]);
    assert_eq!(counts, want, "v1, v2 and latest; 1.0 and arm-only; v1; blob links only have none");
    let one = cx.cat.tag_counts(&[id_of(&w.multi)]).await.unwrap();
    assert_eq!(one, std::collections::HashMap::from([(id_of(&w.multi), 2)]), "only the repositories asked");
    assert!(cx.cat.tag_counts(&[]).await.unwrap().is_empty());

    // Paging keeps the order and the total.
    let mut paged = Vec::new();
    for (p, want) in [(1, 4), (2, 2), (3, 0)] {
        let (items, total) = cx.cat.list_repositories(Some(&cx.prefix), None, &page(p, 4)).await.unwrap();
        assert_eq!((items.len(), total), (want, 6), "page {p}");
        paged.extend(items);
    }
    assert_eq!(paged, repos);
    let (items, total) = cx.cat.list_repositories(Some(&cx.prefix), None, &page(u64::MAX, u64::MAX)).await.unwrap();
    assert_eq!((items.len(), total), (0, 6), "a page far past the end");

    // Every order Harbor's `sort` offers, both ways, ties by id in the same direction:
    // as Rust sorts the full listing, and pages that put it back together.
    for key in RepoSortKey::ALL {
        for desc in [false, true] {
            let order = RepoOrder { key, desc };
            let field = |r: &RepositoryInfo| match key {
                RepoSortKey::Id => (String::new(), r.id),
                RepoSortKey::Name => (r.name.clone(), 0),
                RepoSortKey::CreationTime => (String::new(), r.creation_time),
                RepoSortKey::UpdateTime => (String::new(), r.update_time),
                RepoSortKey::ArtifactCount => (String::new(), r.artifact_count as i64),
                RepoSortKey::PullCount => (String::new(), r.pull_count as i64),
            };
            let mut want = repos.clone();
            want.sort_by(|a, b| {
                let o = field(a).cmp(&field(b)).then(a.id.cmp(&b.id));
                if desc { o.reverse() } else { o }
            });
            let (all, total) = cx.cat.list_repositories_sorted(Some(&cx.prefix), None, order, &ALL).await.unwrap();
            assert_eq!((names_of(&all), total), (names_of(&want), 6), "{order:?}");
            // Pages past the middle may be read from the other end: partial last pages,
            // a page straddling the middle and one past the end put it back together too.
            for size in [1, 3, 4, 5] {
                let mut paged = Vec::new();
                for p in 1..=6u64.div_ceil(size) + 1 {
                    let (items, total) =
                        cx.cat.list_repositories_sorted(Some(&cx.prefix), None, order, &page(p, size)).await.unwrap();
                    assert_eq!(total, 6, "{order:?} page {p} of {size}");
                    paged.extend(items);
                }
                assert_eq!(names_of(&paged), names_of(&want), "{order:?} paged by {size}");
            }
        }
    }

    // Not listed: emptied, unknown.
    assert_eq!(cx.cat.repository(&w.emptied).await.unwrap(), None, "a repository with nothing left is not listed");
    assert_eq!(cx.cat.repository(&cx.repo("never")).await.unwrap(), None);
    assert_eq!(cx.cat.list_artifacts(&w.emptied, &ALL, true).await.unwrap(), None);
    assert_eq!(cx.cat.list_artifacts(&cx.repo("never"), &ALL, true).await.unwrap(), None);
    assert_eq!(cx.repository(&w.lookalike).await.project_name, format!("{}x", cx.prefix));
}

async fn repository_filters(cx: &Cx, w: &World) {
    let names = |(repos, total): (Vec<RepositoryInfo>, u64)| (repos.into_iter().map(|r| r.name).collect(), total);
    let list = |project: Option<String>, name: Option<&'static str>| async move {
        names(cx.cat.list_repositories(project.as_deref(), name, &ALL).await.unwrap())
    };
    let p = || Some(cx.prefix.clone());
    let one = |r: &RepoName| (vec![r.as_str().to_owned()], 1);

    assert_eq!(list(p(), Some("a_b")).await, one(&w.a_b), "'_' is literal");
    assert_eq!(list(p(), Some("A_B")).await, one(&w.a_b), "case-insensitive");
    assert_eq!(list(p(), Some("%")).await, (vec![], 0), "'%' is literal");
    assert_eq!(list(p(), Some("\\")).await, (vec![], 0), "'\\' is literal");
    assert_eq!(list(p(), Some("ult")).await, one(&w.multi), "substring");
    assert_eq!(list(Some(format!("{}x", cx.prefix)), None).await, one(&w.lookalike), "another project");
    assert_eq!(list(Some(format!("{}-none", cx.prefix)), None).await, (vec![], 0), "a project without repositories");

    // Without a project the filter spans projects.
    let (repos, total) = cx.cat.list_repositories(None, Some(&cx.prefix), &ALL).await.unwrap();
    assert_eq!(total, 7, "this run's six and the look-alike project's");
    assert_eq!(repos[0].name, w.lookalike.as_str(), "newest first across projects");
    let (repos, total) = cx.cat.list_repositories(None, Some(&format!("{}/mul", cx.prefix)), &ALL).await.unwrap();
    assert_eq!((repos.len(), total, repos[0].name.as_str()), (1, 1, w.multi.as_str()));
    // An unfiltered listing contains them (others' repositories may be there too).
    let (repos, total) = cx.cat.list_repositories(None, None, &ALL).await.unwrap();
    assert!(total >= 7 && repos.iter().any(|r| r.name == w.app.as_str()));
}

async fn repository_updates(cx: &Cx, w: &World) {
    let before = cx.repository(&w.app).await;
    let t = now();
    assert!(cx.cat.update_repository_description(&w.app, "hello, world").await.unwrap());
    let after = cx.repository(&w.app).await;
    assert_eq!(after.description, "hello, world");
    assert!(after.update_time >= t, "a description change updates the repository");
    assert_eq!((after.id, after.creation_time, after.artifact_count), (before.id, before.creation_time, 2));

    for _ in 0..3 {
        assert!(cx.cat.increment_pull_count(&w.app).await.unwrap());
    }
    let pulled = cx.repository(&w.app).await;
    assert_eq!((pulled.pull_count, pulled.description.as_str()), (3, "hello, world"), "pulls keep the description");
    assert!(cx.cat.update_repository_description(&w.app, "").await.unwrap());
    assert_eq!(cx.repository(&w.app).await.pull_count, 3, "a description change keeps the pull count");
    assert!(cx.cat.update_repository_description(&w.app, "second").await.unwrap());
    assert!(cx.cat.increment_pull_count(&w.blobonly).await.unwrap());
    assert_eq!(cx.repository(&w.blobonly).await.pull_count, 1);
    assert_eq!(cx.repository(&w.signed).await.pull_count, 0, "counts are per repository");

    assert!(!cx.cat.update_repository_description(&cx.repo("never"), "x").await.unwrap());
    assert!(!cx.cat.update_repository_description(&w.emptied, "x").await.unwrap(), "not listed");
    assert!(!cx.cat.increment_pull_count(&cx.repo("never")).await.unwrap());
    assert_eq!(cx.cat.repository(&cx.repo("never")).await.unwrap(), None, "a refused update creates nothing");

    // Updates do not reorder the listing, which goes by creation.
    let (names, _) = cx.listed().await;
    assert_eq!(names.last().map(String::as_str), Some(w.app.as_str()));
}

async fn artifacts(cx: &Cx, w: &World, t0: i64) {
    let (list, total) = cx.artifacts(&w.app, &ALL, true).await;
    assert_eq!(total, 2);
    assert_eq!(digests(&list), [w.m2.digest.clone(), w.m1.digest.clone()], "newest first");
    let (a2, a1) = (&list[0], &list[1]);
    assert!(a2.id > a1.id);
    let expect1 = ArtifactInfo {
        id: a1.id,
        repository_name: w.app.as_str().to_owned(),
        digest: w.m1.digest.clone(),
        media_type: OCI_MANIFEST.into(),
        artifact_type: None,
        size: World::image_size(&w.m1, &[&w.config, &w.layer1]),
        push_time: a1.push_time,
        pull_time: None,
        tags: vec![TagInfo { id: a1.tags[0].id, name: "v1".into(), push_time: a1.tags[0].push_time, pull_time: None }],
        references: vec![],
        subject_digest: None,
        annotations: None,
    };
    assert_eq!(*a1, expect1);
    assert_between(a1.push_time, t0, "push time");
    assert_between(a1.tags[0].push_time, a1.push_time, "tag push time");
    assert_eq!(a2.size, World::image_size(&w.m2, &[&w.config, &w.layer2]));
    assert_eq!(tag_names(&a2.tags), ["latest", "v2"], "newest tag first");
    assert!(a2.tags[0].push_time >= a2.tags[1].push_time);

    // Without tags, the same otherwise.
    let (bare, total) = cx.artifacts(&w.app, &ALL, false).await;
    assert_eq!(total, 2);
    let stripped: Vec<ArtifactInfo> = list.iter().map(|a| ArtifactInfo { tags: vec![], ..a.clone() }).collect();
    assert_eq!(bare, stripped);

    // Paging.
    for (p, want) in [(1, vec![w.m2.digest.clone()]), (2, vec![w.m1.digest.clone()]), (3, vec![])] {
        let (items, total) = cx.artifacts(&w.app, &page(p, 1), true).await;
        assert_eq!((digests(&items), total), (want, 2), "page {p}");
    }

    // One artifact, by tag or digest, with its tags.
    assert_eq!(cx.artifact(&w.app, &tag_ref("v1")).await, expect1);
    assert_eq!(cx.artifact(&w.app, &digest_ref(&w.m1)).await, expect1);
    assert_eq!(cx.artifact(&w.app, &tag_ref("latest")).await, *a2);
    assert_eq!(cx.cat.artifact(&w.app, &tag_ref("nope")).await.unwrap(), None);
    assert_eq!(cx.cat.artifact(&w.app, &digest_ref(&w.amd)).await.unwrap(), None, "pushed to another repository");
    assert_eq!(cx.cat.artifact(&cx.repo("never"), &tag_ref("v1")).await.unwrap(), None);

    // A signature: listed, untagged, with its subject.
    let (list, total) = cx.artifacts(&w.signed, &ALL, true).await;
    assert_eq!((digests(&list), total), (vec![w.sig.digest.clone(), w.s0.digest.clone()], 2));
    let sig = &list[0];
    assert_eq!(sig.subject_digest, Some(w.s0.digest.clone()));
    assert_eq!(sig.artifact_type.as_deref(), Some(COSIGN));
    assert_eq!(sig.annotations, w.sig.annotations);
    assert_eq!((sig.tags.len(), sig.size), (0, w.sig.content.len() as u64));
    assert_eq!(list[1].subject_digest, None);

    // A repository with blobs only has no artifacts.
    assert_eq!(cx.artifacts(&w.blobonly, &ALL, true).await, (vec![], 0));
}

async fn index_artifacts(cx: &Cx, w: &World) {
    let (list, total) = cx.artifacts(&w.multi, &ALL, true).await;
    assert_eq!(total, 2);
    assert_eq!(digests(&list), [w.index.digest.clone(), w.arm.digest.clone()], "the index and its tagged child");
    let index = &list[0];
    assert_eq!((index.media_type.as_str(), tag_names(&index.tags)), (OCI_INDEX, vec!["1.0"]));
    let amd_size = World::image_size(&w.amd, &[&w.amd_blobs[0], &w.amd_blobs[1]]);
    let amd = cx.artifact(&w.multi, &digest_ref(&w.amd)).await;
    let arm = cx.artifact(&w.multi, &digest_ref(&w.arm)).await;
    let att = cx.artifact(&w.multi, &digest_ref(&w.att)).await;
    assert_eq!(amd.size, amd_size);
    assert_eq!(index.size, w.index.content.len() as u64 + amd.size + arm.size + att.size);
    assert_eq!(list[1], arm, "a tagged child is listed as itself");
    assert_eq!(tag_names(&arm.tags), ["arm-only"]);
    assert!(amd.tags.is_empty() && amd.references.is_empty());

    // References in the order of the index, with their platforms.
    let got: Vec<(Digest, Option<i64>)> =
        index.references.iter().map(|r| (r.child_digest.clone(), r.child_id)).collect();
    let id_of = |d: &Digest| [&amd, &arm, &att].iter().find(|a| &a.digest == d).map(|a| a.id);
    let want: Vec<(Digest, Option<i64>)> = w.entries.iter().map(|(d, _)| (d.clone(), id_of(d))).collect();
    assert_eq!(got, want);
    for (r, (_, arch)) in index.references.iter().zip(&w.entries) {
        let platform = r.platform.as_ref().expect("platform");
        let field = |k: &str| platform.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        assert_eq!(field("architecture").as_deref(), Some(*arch));
        match *arch {
            "arm64" => assert_eq!((field("os"), field("variant")), (Some("linux".into()), Some("v8".into()))),
            "amd64" => assert_eq!((field("os"), field("variant")), (Some("linux".into()), None)),
            _ => {
                assert_eq!(field("os").as_deref(), Some("unknown"));
                let ann = r.annotations.as_ref().expect("the attestation entry's annotations");
                let get = |k: &str| ann.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                assert_eq!(get("vnd.docker.reference.type").as_deref(), Some("attestation-manifest"));
                assert_eq!(get("vnd.docker.reference.digest"), Some(w.amd.digest.to_string()));
            }
        }
        if *arch != "unknown" {
            assert_eq!(r.annotations, None, "entries without annotations have none");
        }
    }
    assert_eq!(cx.artifact(&w.multi, &tag_ref("1.0")).await, *index);

    // Parents by child, in one batch: every child names the index; the index itself, an
    // image of another repository and an unknown repository have none.
    let mut want: Vec<(Digest, Digest)> =
        [&w.amd, &w.arm, &w.att].iter().map(|c| (c.digest.clone(), w.index.digest.clone())).collect();
    want.sort();
    let asked =
        [w.amd.digest.clone(), w.arm.digest.clone(), w.att.digest.clone(), w.index.digest.clone(), w.m1.digest.clone()];
    assert_eq!(cx.cat.parents_of(&w.multi, &asked).await.unwrap(), want, "parents of the children");
    assert_eq!(cx.cat.parents_of(&w.multi, &[]).await.unwrap(), vec![], "nothing asked");
    assert_eq!(cx.cat.parents_of(&w.app, &asked).await.unwrap(), vec![], "no index of another repository counts");
    assert_eq!(cx.cat.parents_of(&cx.repo("nowhere"), &asked).await.unwrap(), vec![], "unknown repository");
}

async fn tags(cx: &Cx, w: &World) {
    let c = &cx.cat;
    let m1 = digest_ref(&w.m1);
    c.add_tag(&w.app, &m1, &tag_of("extra")).await.unwrap();
    assert_eq!(cx.artifact(&w.app, &tag_ref("extra")).await.digest, w.m1.digest);
    let pulled = cx.meta.get_manifest(&w.app, &tag_ref("extra")).await.unwrap().expect("the registry sees the tag");
    assert_eq!(pulled.digest, w.m1.digest);
    assert_eq!(cx.tag_names(&w.app, &m1, &ALL).await, (vec!["extra".into(), "v1".into()], 2), "newest first");
    assert_eq!(cx.tag_names(&w.app, &m1, &page(2, 1)).await, (vec!["v1".into()], 2));
    assert_eq!(cx.tag_names(&w.app, &tag_ref("extra"), &page(3, 1)).await, (vec![], 2), "by tag, past the end");
    let extra = &cx.artifact(&w.app, &m1).await.tags[0];
    assert_eq!(extra.name, "extra");
    assert!(extra.push_time >= cx.artifact(&w.app, &m1).await.push_time);

    // A tag is never moved or duplicated here.
    assert_conflict(c.add_tag(&w.app, &digest_ref(&w.m2), &tag_of("v1")).await, "v1");
    assert_conflict(c.add_tag(&w.app, &m1, &tag_of("extra")).await, "extra");
    assert_eq!(cx.artifact(&w.app, &tag_ref("v1")).await.digest, w.m1.digest, "a refused add moves nothing");
    assert_eq!(cx.tag_names(&w.app, &digest_ref(&w.m2), &ALL).await.1, 2);

    // By tag; and what is not there.
    c.add_tag(&w.app, &tag_ref("v2"), &tag_of("v2-alias")).await.unwrap();
    assert_eq!(cx.artifact(&w.app, &tag_ref("v2-alias")).await.digest, w.m2.digest);
    assert_not_found(c.add_tag(&w.app, &digest_ref(&w.amd), &tag_of("x")).await);
    assert_not_found(c.add_tag(&w.app, &tag_ref("nope"), &tag_of("x")).await);
    assert_not_found(c.add_tag(&cx.repo("never"), &m1, &tag_of("x")).await);
    assert_eq!(cx.cat.repository(&cx.repo("never")).await.unwrap(), None, "a refused add creates nothing");
    assert_eq!(c.list_artifact_tags(&w.app, &digest_ref(&w.amd), &ALL).await.unwrap(), None);
    assert_eq!(c.list_artifact_tags(&w.app, &tag_ref("nope"), &ALL).await.unwrap(), None);
    assert_eq!(c.list_artifact_tags(&cx.repo("never"), &m1, &ALL).await.unwrap(), None);
    assert_eq!(cx.tag_names(&w.multi, &digest_ref(&w.amd), &ALL).await, (vec![], 0));

    // Deleting is the registry's.
    assert!(cx.meta.delete_tag(&w.app, &tag_of("extra"), None).await.unwrap());
    assert_eq!(cx.tag_names(&w.app, &m1, &ALL).await, (vec!["v1".into()], 1));

    // Tagging a child lists it; untagging hides it again.
    c.add_tag(&w.multi, &digest_ref(&w.amd), &tag_of("amd-only")).await.unwrap();
    let (list, total) = cx.artifacts(&w.multi, &ALL, true).await;
    assert_eq!(total, 3);
    assert!(digests(&list).contains(&w.amd.digest));
    assert_eq!(cx.repository(&w.multi).await.artifact_count, 3);
    assert!(cx.meta.delete_tag(&w.multi, &tag_of("amd-only"), None).await.unwrap());
    assert_eq!(cx.artifacts(&w.multi, &ALL, false).await.1, 2);
    assert_eq!(cx.repository(&w.multi).await.artifact_count, 2);
}

/// Many tasks adding one tag to different artifacts: exactly one wins.
async fn tag_race(cx: &Arc<Cx>) {
    let repo = cx.repo("race");
    let layer = cx.blob("race-layer", 10);
    cx.commit(&repo, &layer).await;
    let images: Vec<NewManifest> = (0..8).map(|i| cx.image(&repo, &format!("race{i}"), &[&layer], None)).collect();
    for m in &images {
        cx.put(m).await;
    }
    let mut tasks = Vec::new();
    for m in &images {
        let (cx, repo, r) = (Arc::clone(cx), repo.clone(), digest_ref(m));
        tasks.push(tokio::spawn(async move { (cx.cat.add_tag(&repo, &r, &tag_of("contested")).await, r) }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            (Ok(()), r) => winners.push(r),
            (other, _) => assert_conflict(other, "contested"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one add wins");
    let Reference::Digest(winner) = &winners[0] else { unreachable!() };
    assert_eq!(&cx.artifact(&repo, &tag_ref("contested")).await.digest, winner);
    assert_eq!(cx.cat.delete_repository(&repo).await.unwrap(), Some(8));
}

/// Tag ids and pull times, on a repository of their own (removed at the end).
async fn pulls(cx: &Cx, w: &World) {
    let c = &cx.cat;
    let repo = cx.repo("pulled");
    let layer = cx.blob("pulled-layer", 10);
    cx.commit(&repo, &layer).await;
    let p1 = cx.image(&repo, "p1", &[&layer], Some("a"));
    let p2 = cx.image(&repo, "p2", &[&layer], Some("c"));
    cx.put(&p1).await;
    cx.put(&NewManifest { tag: Some(tag_of("b")), ..p1.clone() }).await;
    cx.put(&p2).await;
    let tag = |a: &ArtifactInfo, name: &str| {
        a.tags.iter().find(|t| t.name == name).cloned().unwrap_or_else(|| panic!("tag {name} on {}", a.digest))
    };
    let (r1, r2) = (digest_ref(&p1), digest_ref(&p2));

    // Ids: non-zero, distinct (here and from other repositories' tags), the same in
    // every view; nothing pulled yet.
    let a1 = cx.artifact(&repo, &r1).await;
    let a2 = cx.artifact(&repo, &r2).await;
    let (ta, tb, tc) = (tag(&a1, "a"), tag(&a1, "b"), tag(&a2, "c"));
    let mut ids = vec![ta.id, tb.id, tc.id];
    for a in cx.artifacts(&w.app, &ALL, true).await.0 {
        ids.extend(a.tags.iter().map(|t| t.id));
    }
    assert!(ids.iter().all(|id| *id != 0), "tag ids are never 0: {ids:?}");
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "tag ids are distinct: {ids:?}");
    let (listed, _) = c.list_artifact_tags(&repo, &r1, &ALL).await.unwrap().expect("artifact");
    assert_eq!(listed, a1.tags, "list_artifact_tags agrees with artifact()");
    assert_eq!(cx.artifacts(&repo, &ALL, true).await.0.iter().find(|a| a.digest == p1.digest), Some(&a1));
    assert_eq!((a1.pull_time, a2.pull_time), (None, None), "never pulled");
    assert!(a1.tags.iter().chain(&a2.tags).all(|t| t.pull_time.is_none()), "never pulled: {a1:?} {a2:?}");

    // A pull by tag: the tag and its manifest; the manifest's other tag is untouched.
    c.record_pulls(&[]).await.unwrap();
    let t = now();
    c.record_pulls(&[(repo.clone(), tag_ref("a"), t)]).await.unwrap();
    let a1 = cx.artifact(&repo, &r1).await;
    assert_eq!(a1.pull_time, Some(t));
    assert_eq!((tag(&a1, "a").pull_time, tag(&a1, "b").pull_time), (Some(t), None));
    assert_eq!(cx.artifact(&repo, &r2).await.pull_time, None, "other artifacts are untouched");
    assert_eq!((tag(&a1, "a").id, tag(&a1, "b").id), (ta.id, tb.id), "a pull keeps the ids");
    let (listed, _) = c.list_artifact_tags(&repo, &tag_ref("b"), &ALL).await.unwrap().expect("artifact");
    assert_eq!(listed, a1.tags, "list_artifact_tags shows the pull times too");

    // A pull by digest: the manifest only.
    c.record_pulls(&[(repo.clone(), r2.clone(), t + 1)]).await.unwrap();
    let a2 = cx.artifact(&repo, &r2).await;
    assert_eq!((a2.pull_time, tag(&a2, "c").pull_time), (Some(t + 1), None));

    // Never backwards; the latest of a batch wins in any order; what does not exist is
    // skipped without failing the rest.
    c.record_pulls(&[(repo.clone(), tag_ref("a"), t - 100), (repo.clone(), r1.clone(), t - 50)]).await.unwrap();
    let a1 = cx.artifact(&repo, &r1).await;
    assert_eq!((a1.pull_time, tag(&a1, "a").pull_time), (Some(t), Some(t)), "older pulls change nothing");
    c.record_pulls(&[
        (repo.clone(), tag_ref("b"), t + 20),
        (repo.clone(), tag_ref("nope"), t + 30),
        (repo.clone(), digest_ref(&w.m1), t + 30),
        (cx.repo("never"), tag_ref("b"), t + 30),
        (repo.clone(), tag_ref("b"), t + 10),
        (repo.clone(), r2.clone(), t + 5),
    ])
    .await
    .unwrap();
    let a1 = cx.artifact(&repo, &r1).await;
    assert_eq!(a1.pull_time, Some(t + 20), "through tag b");
    assert_eq!((tag(&a1, "a").pull_time, tag(&a1, "b").pull_time), (Some(t), Some(t + 20)));
    assert_eq!(cx.artifact(&repo, &r2).await.pull_time, Some(t + 5));
    assert_eq!(cx.artifact(&w.app, &digest_ref(&w.m1)).await.pull_time, None, "a digest of another repository");
    assert_eq!(cx.cat.repository(&cx.repo("never")).await.unwrap(), None, "a pull creates nothing");
    // Recording the same batch again changes nothing.
    c.record_pulls(&[(repo.clone(), tag_ref("b"), t + 20)]).await.unwrap();
    assert_eq!(cx.artifact(&repo, &r1).await, a1);

    // Pushing a tag again onto its manifest keeps its id and pull time; moving it keeps
    // its id but not its pull time, and the manifests keep theirs.
    cx.put(&NewManifest { tag: Some(tag_of("a")), ..p1.clone() }).await;
    let again = tag(&cx.artifact(&repo, &r1).await, "a");
    assert_eq!((again.id, again.pull_time), (ta.id, Some(t)));
    cx.put(&NewManifest { tag: Some(tag_of("a")), ..p2.clone() }).await;
    let (a1, a2) = (cx.artifact(&repo, &r1).await, cx.artifact(&repo, &r2).await);
    assert_eq!(tag_names(&a1.tags), ["b"]);
    let moved = tag(&a2, "a");
    assert_eq!((moved.id, moved.pull_time), (ta.id, None), "a moved tag keeps its id, not its pull time");
    assert_eq!((a1.pull_time, a2.pull_time), (Some(t + 20), Some(t + 5)));
    c.record_pulls(&[(repo.clone(), tag_ref("a"), t + 40)]).await.unwrap();
    let a2 = cx.artifact(&repo, &r2).await;
    assert_eq!((a2.pull_time, tag(&a2, "a").pull_time), (Some(t + 40), Some(t + 40)), "credited to its new manifest");
    assert_eq!(cx.artifact(&repo, &r1).await.pull_time, Some(t + 20));

    // A tag deleted and created again is a new tag: a new id, never pulled.
    assert!(cx.meta.delete_tag(&repo, &tag_of("b"), None).await.unwrap());
    c.add_tag(&repo, &r1, &tag_of("b")).await.unwrap();
    let b = tag(&cx.artifact(&repo, &r1).await, "b");
    assert!(!ids.contains(&b.id), "a new tag gets an id never used before: {} in {ids:?}", b.id);
    assert_eq!(b.pull_time, None);
    // A new artifact pushed under a tag starts unpulled too.
    let p3 = cx.image(&repo, "p3", &[&layer], Some("d"));
    cx.put(&p3).await;
    let a3 = cx.artifact(&repo, &tag_ref("d")).await;
    assert_eq!((a3.pull_time, a3.tags[0].pull_time), (None, None));
    assert!(![ta.id, tb.id, tc.id, b.id].contains(&a3.tags[0].id));

    assert_eq!(cx.cat.delete_repository(&repo).await.unwrap(), Some(3));
}

async fn deletion(cx: &Cx, w: &World) {
    // A blob of the doomed repository that another repository links too.
    let keeper = cx.repo("keeper");
    assert_eq!(
        cx.meta.mount_blob(&w.multi, &keeper, &w.amd_blobs[1].digest).await.unwrap(),
        Some(w.amd_blobs[1].clone())
    );
    assert!(cx.cat.update_repository_description(&w.multi, "doomed").await.unwrap());
    assert!(cx.cat.increment_pull_count(&w.multi).await.unwrap());
    let (before, total) = cx.listed().await;
    assert_eq!(total, 7, "six and the keeper");

    assert_eq!(cx.cat.delete_repository(&w.multi).await.unwrap(), Some(4), "index, amd, arm, att");
    assert_eq!(cx.cat.repository(&w.multi).await.unwrap(), None);
    assert_eq!(cx.cat.list_artifacts(&w.multi, &ALL, true).await.unwrap(), None);
    assert_eq!(cx.cat.artifact(&w.multi, &tag_ref("1.0")).await.unwrap(), None);
    assert_eq!(cx.cat.list_artifact_tags(&w.multi, &digest_ref(&w.arm), &ALL).await.unwrap(), None);
    // The registry sees it gone too.
    assert_eq!(cx.meta.get_manifest(&w.multi, &digest_ref(&w.index)).await.unwrap(), None);
    assert_eq!(cx.meta.get_manifest(&w.multi, &tag_ref("arm-only")).await.unwrap(), None);
    assert_eq!(cx.meta.list_tags(&w.multi, None, usize::MAX).await.unwrap(), None, "the repository is unknown");
    assert_eq!(cx.meta.repo_blob(&w.multi, &w.amd_blobs[0].digest).await.unwrap(), None, "links are gone");
    let registry = cx.meta.list_repositories(Some(&cx.prefix), usize::MAX).await.unwrap();
    assert!(!registry.iter().any(|n| n == w.multi.as_str()), "the catalog API no longer lists it");
    assert!(registry.iter().any(|n| n == w.app.as_str()));
    // The blob row stays, for GC: a link elsewhere still finds it live.
    assert_eq!(cx.meta.repo_blob(&keeper, &w.amd_blobs[1].digest).await.unwrap(), Some(w.amd_blobs[1].clone()));
    let (after, total) = cx.listed().await;
    assert_eq!(total, 6);
    assert_eq!(after, before.into_iter().filter(|n| n != w.multi.as_str()).collect::<Vec<_>>());
    // Other repositories are untouched.
    assert_eq!(cx.artifacts(&w.app, &ALL, false).await.1, 2);
    assert_eq!(cx.repository(&w.app).await.description, "second");

    // Gone is gone; an emptied repository was never listed.
    assert_eq!(cx.cat.delete_repository(&w.multi).await.unwrap(), None);
    assert_eq!(cx.cat.delete_repository(&cx.repo("never")).await.unwrap(), None);
    assert_eq!(cx.cat.delete_repository(&w.emptied).await.unwrap(), None);
    assert!(!cx.cat.increment_pull_count(&w.multi).await.unwrap(), "the row is gone");

    // Pushed again, the name starts afresh.
    cx.commit(&w.multi, &w.amd_blobs[0]).await;
    assert_eq!(
        cx.meta.mount_blob(&keeper, &w.multi, &w.amd_blobs[1].digest).await.unwrap(),
        Some(w.amd_blobs[1].clone()),
        "the blob survived the deletion"
    );
    cx.put(&w.amd).await;
    let again = cx.repository(&w.multi).await;
    assert_eq!((again.description.as_str(), again.pull_count, again.artifact_count), ("", 0, 1));
    let (list, total) = cx.artifacts(&w.multi, &ALL, true).await;
    assert_eq!((digests(&list), total), (vec![w.amd.digest.clone()], 1), "no index references it any more");
    assert!(list[0].tags.is_empty() && list[0].references.is_empty());

    // Blob links alone count as a repository, and go with it.
    assert_eq!(cx.cat.delete_repository(&w.blobonly).await.unwrap(), Some(0));
    assert_eq!(cx.cat.repository(&w.blobonly).await.unwrap(), None);
    assert_eq!(cx.cat.delete_repository(&w.app).await.unwrap(), Some(2));
    assert_eq!(cx.meta.repo_blob(&w.app, &w.layer1.digest).await.unwrap(), None);
    assert_eq!(cx.cat.delete_repository(&w.signed).await.unwrap(), Some(2));
    let (names, total) = cx.listed().await;
    let want = [&w.multi, &keeper, &w.axb, &w.a_b];
    assert_eq!((names, total), (want.map(|r| r.as_str().to_owned()).to_vec(), 4), "the one pushed again is newest");
}
