//! The catalog half of the metadata store: the views of repositories and artifacts that
//! Harbor's API gives (`/projects/{p}/repositories`, `…/repositories/{r}`,
//! `…/artifacts`, `…/artifacts/{ref}`, `…/artifacts/{ref}/tags`), computed from the
//! rows the registry API writes through [`MetaStore`](super::MetaStore), plus the few
//! things only Harbor has: a repository's description and pull count, adding a tag to an
//! existing artifact, deleting a whole repository. Each method is atomic: a listing and
//! its total come from one snapshot, a write is one transaction.
//!
//! Harbor's model on Berth's rows:
//! - a repository is listed while it has a manifest or a blob link, as
//!   `MetaStore::list_repositories` shows it; its project is the part of its name before
//!   the first `/`;
//! - an artifact is a manifest; like Harbor, listings show only the artifacts that are
//!   tagged or not referenced by an index of the same repository (the children of an
//!   index appear as its `references`), and a repository's `artifact_count` counts those;
//! - a manifest with a `subject` (a signature, an SBOM) is listed like any other, with its
//!   `subject_digest` set.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::identity::Page;
use super::{StoreError, StoreResult};
use crate::digest::Digest;
use crate::name::{Reference, RepoName, Tag};

/// What a catalog write can fail on, besides the database itself.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The name is already taken (`tag`); Harbor answers 409.
    #[error("{field} {value:?} already exists")]
    Conflict { field: &'static str, value: String },
    /// The repository or artifact to change does not exist.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type CatalogResult<T> = Result<T, CatalogError>;

/// A field of [`RepositoryInfo`] a listing can be ordered by (Harbor's `sort` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoSortKey {
    Id,
    Name,
    CreationTime,
    UpdateTime,
    ArtifactCount,
    PullCount,
}

impl RepoSortKey {
    /// Every key, in the order Harbor's documentation lists them: the one list the API's
    /// refusal message, [`RepoSortKey::parse`] and the stores' tests go by.
    pub const ALL: [RepoSortKey; 6] = [
        RepoSortKey::Id,
        RepoSortKey::Name,
        RepoSortKey::CreationTime,
        RepoSortKey::UpdateTime,
        RepoSortKey::ArtifactCount,
        RepoSortKey::PullCount,
    ];

    /// Harbor's names of [`RepoSortKey::ALL`], for `check_sort`.
    pub const NAMES: [&'static str; 6] = {
        let mut names = [""; 6];
        let mut i = 0;
        while i < names.len() {
            names[i] = RepoSortKey::ALL[i].name();
            i += 1;
        }
        names
    };

    /// Harbor's name for the key (`creation_time`, …).
    pub const fn name(self) -> &'static str {
        match self {
            RepoSortKey::Id => "id",
            RepoSortKey::Name => "name",
            RepoSortKey::CreationTime => "creation_time",
            RepoSortKey::UpdateTime => "update_time",
            RepoSortKey::ArtifactCount => "artifact_count",
            RepoSortKey::PullCount => "pull_count",
        }
    }

    /// The key by Harbor's name for it.
    pub fn parse(s: &str) -> Option<RepoSortKey> {
        RepoSortKey::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The order of a repository listing; ties go by id in the same direction, so that
/// offset pages neither repeat nor skip a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoOrder {
    pub key: RepoSortKey,
    pub desc: bool,
}

impl Default for RepoOrder {
    /// Newest first: Harbor's default.
    fn default() -> Self {
        RepoOrder { key: RepoSortKey::CreationTime, desc: true }
    }
}

/// Where to read an offset page of an ordered listing of `total` rows from. Past the
/// middle the end is nearer: the same rows, read in the opposite order after skipping
/// `total - offset - limit` rows and then turned round, so no page skips more than half
/// the listing (the last page of 10,000 repositories skips no more than the first).
/// The order must be total (ties broken by a unique key) for both ends to agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageWindow {
    /// Rows in the page.
    pub limit: u64,
    /// Rows skipped before it, in the order it is read in.
    pub skip: u64,
    /// Read in the opposite order (the rows come back last first).
    pub reversed: bool,
}

impl PageWindow {
    /// `None` for an empty page (past the end, or of size 0): nothing to read.
    pub fn of(page: &Page, total: u64) -> Option<PageWindow> {
        let offset = page.offset();
        let end = offset.saturating_add(page.page_size).min(total);
        if offset >= end {
            return None;
        }
        let from_end = total - end;
        let (skip, reversed) = if from_end < offset { (from_end, true) } else { (offset, false) };
        Some(PageWindow { limit: end - offset, skip, reversed })
    }
}

/// A repository as Harbor's `Repository` model shows it. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub id: i64,
    /// The full name, `project/rest…`.
    pub name: String,
    /// The part of the name before the first `/`; empty for a name without one (such a
    /// repository belongs to no project).
    pub project_name: String,
    /// `""` until set.
    pub description: String,
    /// Listed artifacts: tagged, or not a child of an index in the repository.
    pub artifact_count: u64,
    pub pull_count: u64,
    pub creation_time: i64,
    /// The latest of: creation, a manifest push, a tag push, a description change, a pull
    /// (Harbor updates it on pulls too).
    pub update_time: i64,
}

/// A tag of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// Stable while the tag exists, never 0, distinct from every other tag's (in any
    /// repository). Pushing the tag again, even onto another manifest, keeps it; deleting
    /// the tag and creating it again gives a new one.
    pub id: i64,
    pub name: String,
    /// When the tag was last pushed or moved to its artifact (unix seconds).
    pub push_time: i64,
    /// When the artifact was last pulled through this tag (unix seconds); `None` if it
    /// never was since the tag was pushed onto its current artifact (a tag moved to
    /// another manifest starts afresh).
    pub pull_time: Option<i64>,
}

/// One row of a repository's tag list in name order (the web UI's tags view): the tag,
/// and its manifest's digest, media type and size (the manifest's own bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub id: i64,
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub manifest_size: u64,
    pub push_time: i64,
    pub pull_time: Option<i64>,
}

/// The exclusive upper bound of the names starting with `prefix`, for keyset scans:
/// tag names are ASCII, so appending the highest code point bounds them in bytewise
/// (`C`) order.
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The order of a tags listing ([`CatalogStore::list_tags_sorted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSort {
    /// By name, bytewise (`C`) order, ascending.
    Name,
    /// Newest push first (push time, then id, descending).
    Pushed,
    /// Latest pull first (pull time, then id, descending); never pulled last (by id,
    /// descending).
    Pulled,
    /// Natural (version-aware) order, ascending: `v1.2` before `v1.10`; by the stored
    /// [`natural_key`](crate::natural::natural_key) of each name.
    Natural,
}

/// Where a keyset page of [`CatalogStore::list_tags_sorted`] starts: after the row with
/// this sort key (and id). Its kind must be the query's sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagCursor {
    /// After this name (names are unique in a repository).
    Name(String),
    /// After (push time, id).
    Pushed(i64, i64),
    /// After (pull time or never, id).
    Pulled(Option<i64>, i64),
    /// After this name in natural order (its key is the name's, and unique).
    Natural(String),
}

/// Where a keyset page of one artifact's tags ([`CatalogStore::artifact_tags_page`])
/// starts, in bytewise name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameCursor {
    /// The first names.
    First,
    /// The names after this one (the next page).
    After(String),
    /// The names just before this one (the previous page).
    Before(String),
}

/// Which tags a listing keeps: names starting with a prefix, or matching a glob whose
/// `*` is any run of characters and `?` any one (checked with [`check_tag_glob`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    Prefix(String),
    Glob(String),
}

impl TagFilter {
    /// The literal start every kept name has: the prefix, or the glob up to its first
    /// wildcard (the range a keyset scan of the name index is bounded by).
    pub fn literal_prefix(&self) -> &str {
        match self {
            TagFilter::Prefix(p) => p,
            TagFilter::Glob(g) => &g[..g.find(['*', '?']).unwrap_or(g.len())],
        }
    }
}

/// A keyset page of a repository's tags ([`CatalogStore::list_tags_sorted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagQuery {
    pub filter: TagFilter,
    pub sort: TagSort,
    pub after: Option<TagCursor>,
    /// Only tags of this kind of artifact (the tags view's type filter).
    pub kind: Option<TagKind>,
    pub limit: u64,
}

/// What kind of artifact a tag points at, from what the catalog records of its manifest
/// (its media type, and its artifact type: `artifactType`, else the config's media
/// type). [`TagKind::of`] is the definition; each store's SQL filter is built from the
/// same lists and checked against it by the conformance suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// An image manifest (OCI, Docker v2 or v1) whose config is an image config.
    Image,
    /// An OCI index or a Docker manifest list.
    Index,
    /// A Helm chart (an OCI manifest with Helm's config).
    Chart,
    /// Anything else: other OCI artifacts (signatures, SBOMs, WebAssembly, …).
    Other,
}

impl TagKind {
    pub const ALL: [TagKind; 4] = [TagKind::Image, TagKind::Index, TagKind::Chart, TagKind::Other];
    /// Manifest media types of an index.
    pub const INDEX_MEDIA_TYPES: [&str; 2] =
        ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
    /// Manifest media types of an image (or of any artifact packed as one).
    pub const IMAGE_MEDIA_TYPES: [&str; 4] = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ];
    /// Artifact types of an image: its config's media type (none for Docker v1).
    pub const IMAGE_CONFIG_TYPES: [&str; 2] =
        ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];
    /// Helm's config media type.
    pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";

    /// The kind of a manifest with this media type and artifact type.
    pub fn of(media_type: &str, artifact_type: Option<&str>) -> TagKind {
        let at = artifact_type.unwrap_or("");
        if Self::INDEX_MEDIA_TYPES.contains(&media_type) {
            TagKind::Index
        } else if at == Self::HELM_CONFIG {
            TagKind::Chart
        } else if Self::IMAGE_MEDIA_TYPES.contains(&media_type)
            && (at.is_empty() || Self::IMAGE_CONFIG_TYPES.contains(&at))
        {
            TagKind::Image
        } else {
            TagKind::Other
        }
    }

    /// The name in a query string (`?type=`).
    pub fn as_str(self) -> &'static str {
        match self {
            TagKind::Image => "image",
            TagKind::Index => "index",
            TagKind::Chart => "chart",
            TagKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<TagKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether `glob` is a glob over tag names: at most 128 characters, each a character a
/// tag can hold (`A-Z a-z 0-9 _ . -`) or a wildcard (`*`, `?`). `Err` says what is wrong.
pub fn check_tag_glob(glob: &str) -> Result<(), String> {
    if glob.len() > 128 {
        return Err("is longer than 128 characters".into());
    }
    match glob.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*' | '?'))) {
        Some(c) => {
            Err(format!("has {c:?}, which no tag name holds (use letters, digits, _ . - and the wildcards * ?)"))
        }
        None => Ok(()),
    }
}

/// Whether `name` matches a glob checked by [`check_tag_glob`] (`*` any run, `?` any one
/// character, the rest literal): the reference the backends' SQL must agree with.
pub fn tag_glob_matches(glob: &str, name: &str) -> bool {
    let (g, n) = (glob.as_bytes(), name.as_bytes());
    let (mut gi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if gi < g.len() && (g[gi] == b'?' || (g[gi] != b'*' && g[gi] == n[ni])) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == b'*' {
            star = Some(gi);
            mark = ni;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == b'*')
}

/// What the tags view shows of a page's artifacts beyond the tag rows, read together by
/// [`CatalogStore::page_details`]. Artifacts are in digest order, referrers by (subject,
/// digest), tagged manifests by tag name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageDetails {
    /// The artifacts asked for that are in the repository (tags left empty), each with
    /// Harbor's size and an index's references (with their platforms).
    pub artifacts: Vec<ArtifactInfo>,
    /// (subject, referrer): the manifests whose `subject` is one of the artifacts asked
    /// for, in digest order per subject.
    pub referrers: Vec<(Digest, super::Referrer)>,
    /// (tag, manifest): the manifests the tags asked for name (cosign's `sha256-….sig`
    /// signature tags), for those that exist.
    pub tagged: Vec<(String, super::Referrer)>,
}

/// A pull to record with [`CatalogStore::record_pulls`]: the repository, the reference
/// the client pulled (a tag, or a digest) and when (unix seconds).
pub type Pull = (RepoName, Reference, i64);

/// A child manifest of an index, as Harbor's `references` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactReference {
    /// The child's artifact id; `None` if the child is no longer in the repository.
    pub child_id: Option<i64>,
    pub child_digest: Digest,
    /// The index entry's `platform` object, if it has one.
    pub platform: Option<Value>,
    /// The index entry's `annotations` object, if it has one (buildx marks attestation
    /// manifests here).
    pub annotations: Option<Value>,
}

/// An index's children as Harbor lists them: in the order of the index's `manifests`
/// list, with each entry's `platform` and `annotations`; `children` maps every child
/// digest the store recorded to its artifact id in the repository (if it is still there).
/// Children the content does not list (it should never happen) come last, bare.
pub fn index_references(
    content: &[u8],
    mut children: std::collections::BTreeMap<String, Option<i64>>,
) -> StoreResult<Vec<ArtifactReference>> {
    let digest = |d: &str| {
        d.parse::<Digest>().map_err(|e| StoreError::Backend(format!("stored child digest {d:?} is invalid: {e}")))
    };
    let object = |v: Option<&Value>| v.filter(|v| v.is_object()).cloned();
    let parsed: Option<Value> = serde_json::from_slice(content).ok();
    let entries = parsed.as_ref().and_then(|v| v.get("manifests")).and_then(Value::as_array);
    let mut out = Vec::with_capacity(children.len());
    for entry in entries.into_iter().flatten() {
        let Some(d) = entry.get("digest").and_then(Value::as_str) else {
            continue;
        };
        if let Some(child_id) = children.remove(d) {
            out.push(ArtifactReference {
                child_id,
                child_digest: digest(d)?,
                platform: object(entry.get("platform")),
                annotations: object(entry.get("annotations")),
            });
        }
    }
    for (d, child_id) in children {
        out.push(ArtifactReference { child_id, child_digest: digest(&d)?, platform: None, annotations: None });
    }
    Ok(out)
}

/// An artifact (a manifest) as Harbor's `Artifact` model shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    pub id: i64,
    pub repository_name: String,
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// `artifactType`, or for an image manifest without one its config media type.
    pub artifact_type: Option<String>,
    /// Bytes, as Harbor counts them: the manifest plus its distinct blobs (config and
    /// layers); for an index, its own bytes plus the sizes of its children.
    pub size: u64,
    /// When the manifest was first pushed to the repository (unix seconds).
    pub push_time: i64,
    /// When the manifest was last pulled, by digest or through any tag (unix seconds);
    /// `None` if never.
    pub pull_time: Option<i64>,
    /// Newest first (push time descending, then name); empty unless asked for.
    pub tags: Vec<TagInfo>,
    /// The children of an index, in the order of its `manifests` list; empty otherwise.
    pub references: Vec<ArtifactReference>,
    pub subject_digest: Option<Digest>,
    /// The manifest's annotations as JSON text.
    pub annotations: Option<String>,
}

#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    // --- repositories ---
    /// Listed repositories, newest first (creation time, then id, descending, Harbor's
    /// default), with the total count. `project` keeps those named `<project>/…`;
    /// `name` keeps those whose full name contains it (ASCII case-insensitive; `%`, `_`
    /// and `\` are literal).
    async fn list_repositories(
        &self,
        project: Option<&str>,
        name: Option<&str>,
        page: &Page,
    ) -> StoreResult<(Vec<RepositoryInfo>, u64)> {
        self.list_repositories_sorted(project, name, RepoOrder::default(), page).await
    }
    /// The same in `order`, sorted and paged by the database: a page of a project with
    /// 10,000 repositories computes the counts and times of its own rows only.
    async fn list_repositories_sorted(
        &self,
        project: Option<&str>,
        name: Option<&str>,
        order: RepoOrder,
        page: &Page,
    ) -> StoreResult<(Vec<RepositoryInfo>, u64)>;
    /// How many tags each of the repositories `ids` has (ids as listed), read in one query
    /// over the `(repository, name)` index: the tag column of a page of the repository
    /// list costs its own rows only. An id without tags, or of no repository, is absent.
    async fn tag_counts(&self, ids: &[i64]) -> StoreResult<HashMap<i64, u64>>;
    /// `None` unless the repository is listed.
    async fn repository(&self, repo: &RepoName) -> StoreResult<Option<RepositoryInfo>>;
    /// Sets the description; `false` unless the repository is listed.
    async fn update_repository_description(&self, repo: &RepoName, description: &str) -> StoreResult<bool>;
    /// Deletes the repository with its manifests, tags, index references, blob links,
    /// description and pull count. Blob rows stay, for GC to collect. Upload sessions
    /// stay too: their parts are cleaned up when they go stale. Returns how many
    /// manifests were removed, or `None` if the repository was not listed (a leftover
    /// empty row is removed all the same).
    async fn delete_repository(&self, repo: &RepoName) -> StoreResult<Option<u64>>;
    /// Counts a pull; `false` if the repository does not exist.
    async fn increment_pull_count(&self, repo: &RepoName) -> StoreResult<bool>;
    /// Adds `n` pulls at once; backends should do it in one statement.
    async fn add_pull_count(&self, repo: &RepoName, n: u64) -> StoreResult<bool> {
        let mut found = false;
        for _ in 0..n {
            found = self.increment_pull_count(repo).await?;
        }
        Ok(found)
    }
    /// Records pulls, all in one transaction: a pull by tag sets the tag's and its
    /// current manifest's pull time, a pull by digest the manifest's. A time never moves
    /// backwards (an older pull recorded late changes nothing). Pulls of a repository,
    /// tag or manifest that no longer exists are skipped. Idempotent.
    async fn record_pulls(&self, pulls: &[Pull]) -> StoreResult<()>;
    /// Bytes of storage used: the sum of the sizes of the distinct live blobs linked to
    /// repositories named `<project>/…` (`Some`), or to any repository (`None`). A blob
    /// linked to several repositories counts once.
    /// For a project, its stored usage (kept in the same transaction as every change to
    /// what it holds, see `crate::quota`); for the registry, the live sum.
    async fn storage_usage(&self, project: Option<&str>) -> StoreResult<u64>;

    // --- artifacts ---
    /// Listed artifacts of a repository, newest first (push time, then id, descending),
    /// with the total count; tags are filled in only `with_tag`. `None` unless the
    /// repository is listed.
    async fn list_artifacts(
        &self,
        repo: &RepoName,
        page: &Page,
        with_tag: bool,
    ) -> StoreResult<Option<(Vec<ArtifactInfo>, u64)>>;
    /// An artifact by tag or digest, with its tags; children of an index included.
    async fn artifact(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Option<ArtifactInfo>>;
    /// The indexes of the repository that reference each of `children` (manifest digests),
    /// as `(child, parent)` pairs ordered by child, then parent; a digest no index of the
    /// repository references has none. One query for the whole batch, over the
    /// `manifest_children (child_digest)` index: an artifact page's "parent index" links
    /// without reading every artifact of the repository.
    async fn parents_of(&self, repo: &RepoName, children: &[Digest]) -> StoreResult<Vec<(Digest, Digest)>>;

    // --- tags (deleting one is `MetaStore::delete_tag`) ---
    /// Adds a tag to the artifact `reference` names. `NotFound` if there is no such
    /// artifact; `Conflict { field: "tag" }` if the repository already has the tag, on
    /// whichever artifact (Harbor never moves a tag here).
    async fn add_tag(&self, repo: &RepoName, reference: &Reference, tag: &Tag) -> CatalogResult<()>;
    /// Keyset page of a repository's tags: names starting with `prefix`, after `after`
    /// (exclusive), in bytewise name order, at most `limit`. It walks the
    /// `(repository, name)` index, so the 5,000th page costs what the first does. `None`
    /// if the repository is unknown.
    async fn list_tags_after(
        &self,
        repo: &RepoName,
        prefix: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Option<Vec<TagRow>>>;
    /// Keyset page of a repository's tags in the query's order, filtered by prefix or
    /// glob, after the query's cursor, at most `limit` rows. The name order walks the
    /// `(repository, name)` index, the time orders their own indexes, the natural order
    /// the `(repository, sort_key)` index (no offset: the 5,000th page costs what the
    /// first does). A tag whose natural key is not stored yet (written by an older binary
    /// during a rolling upgrade) gets it before a natural page is read, in the snapshot
    /// the page is read from, so no tag is left out. `None` if the repository is unknown.
    async fn list_tags_sorted(&self, repo: &RepoName, q: &TagQuery) -> StoreResult<Option<Vec<TagRow>>>;
    /// The details of a page of the tags view in one read (one transaction): the
    /// artifacts `digests` name, their referrers, and the manifests `tags` name (see
    /// [`PageDetails`]). Digests and tags not in the repository are left out. `None` if
    /// the repository is unknown.
    async fn page_details(
        &self,
        repo: &RepoName,
        digests: &[Digest],
        tags: &[String],
    ) -> StoreResult<Option<PageDetails>>;
    /// Keyset page of one artifact's tags (the manifest `digest` of `repo`) in bytewise
    /// name order, at most `limit`, from `cursor`: the first names, those after a name, or
    /// the `limit` names just before one (still returned in name order). It reads the
    /// artifact's tags only, never an offset: an artifact with 10,000 tags pages as one
    /// with 10 does. `None` if there is no such artifact.
    async fn artifact_tags_page(
        &self,
        repo: &RepoName,
        digest: &Digest,
        cursor: &NameCursor,
        limit: u64,
    ) -> StoreResult<Option<Vec<TagInfo>>>;
    /// Tags of one artifact, in the order of [`ArtifactInfo::tags`], with the total
    /// count; `None` if there is no such artifact.
    async fn list_artifact_tags(
        &self,
        repo: &RepoName,
        reference: &Reference,
        page: &Page,
    ) -> StoreResult<Option<(Vec<TagInfo>, u64)>>;
}

#[cfg(test)]
mod glob_tests {
    use super::*;

    #[test]
    fn page_windows_read_from_the_nearer_end() {
        let w = |page, page_size, total| PageWindow::of(&Page { page, page_size }, total);
        let win = |limit, skip, reversed| Some(PageWindow { limit, skip, reversed });
        assert_eq!(w(1, 20, 10_001), win(20, 0, false));
        assert_eq!(w(250, 20, 10_001), win(20, 4_980, false), "rows 4980..5000: 5,001 after them");
        assert_eq!(w(251, 20, 10_001), win(20, 4_981, true), "rows 5000..5020: 4,981 after them");
        assert_eq!(w(501, 20, 10_001), win(1, 0, true), "the last page, of one row");
        assert_eq!(w(502, 20, 10_001), None, "past the end");
        assert_eq!(w(2, 3, 6), win(3, 0, true));
        assert_eq!(w(2, 4, 6), win(2, 0, true), "a partial last page");
        assert_eq!(w(1, 4, 6), win(4, 0, false));
        assert_eq!(w(1, 10, 0), None);
        assert_eq!(w(1, 0, 5), None);
        assert_eq!(w(u64::MAX, u64::MAX, 5), None);
        assert_eq!(w(1, u64::MAX, 5), win(5, 0, false), "everything");
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(tag_glob_matches("v1.*", "v1.2"));
        assert!(tag_glob_matches("v1.*", "v1."));
        assert!(!tag_glob_matches("v1.*", "v10"));
        assert!(tag_glob_matches("*-rc?", "v2-rc1"));
        assert!(!tag_glob_matches("*-rc?", "v2-rc10"));
        assert!(tag_glob_matches("*", ""));
        assert!(tag_glob_matches("a*b*c", "aXbYbc"));
        assert!(!tag_glob_matches("latest", "latest2"));
        assert_eq!(TagFilter::Glob("v1.?-*".into()).literal_prefix(), "v1.");
        assert_eq!(TagFilter::Glob("*x".into()).literal_prefix(), "");
        assert!(check_tag_glob("v1.*-rc?").is_ok());
        assert!(check_tag_glob("v1/[a]").unwrap_err().contains("'/'"));
        assert!(check_tag_glob(&"a".repeat(129)).is_err());
    }
}
