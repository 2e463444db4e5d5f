//! [`CatalogStore`] on the same database: Harbor's views of repositories and artifacts,
//! computed from the registry's own rows, plus `repository_meta` for a repository's
//! description and pull count.
//!
//! The choices the trait leaves open are SQLite's, listed in `berth-store-sqlite`'s
//! `catalog.rs`: a repository's update time is the latest of its creation, pushes, tag
//! moves, description changes and pulls; `size` is Harbor's (an index counts its
//! children, recursively); references follow the index's `manifests` list; names compare
//! byte-exactly and the name filter is an ASCII case-insensitive substring match; a
//! pull by tag credits the manifest the tag names when the batch is written, and moving
//! a tag clears its own pull time. Tag ids are `tags.id`, an identity column
//! (`migrations/0002_pull_times.sql`): kept when the tag is pushed again or moved, never
//! reused.
//!
//! Reads run in one REPEATABLE READ snapshot each, so a page and its total agree.
//! `delete_repository` locks the repository row first: a concurrent push then fails
//! its foreign key once the row is gone, rolls back and runs again, recreating the
//! repository after the deletion instead of losing its manifest to it.
//!
//! Retried after a lost connection (see `pool.rs`): reads, `update_repository_description`
//! and `record_pulls` (pull times only move forwards, so a second run changes nothing).
//! Pull counts, tag additions and deletions are not.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use berth_core::access::project_of;
use berth_core::natural::{natural_key, natural_key_range};
use berth_core::store::Referrer;
use berth_core::store::StoreResult;
use berth_core::store::catalog::{
    ArtifactInfo, ArtifactReference, CatalogError, CatalogResult, CatalogStore, NameCursor, PageDetails, PageWindow,
    Pull, RepoOrder, RepoSortKey, RepositoryInfo, TagCursor, TagFilter, TagInfo, TagKind, TagQuery, TagRow, TagSort,
    index_references, prefix_end,
};
use berth_core::store::identity::Page;
use berth_core::{Digest, Reference, RepoName, Tag};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{
    Args, Conn, DbErr, Fail, PgStore, Tx, col, contains_pattern, count, limit_offset, now, parse_digest, repo_id,
    to_u64,
};

/// How deep `size` follows indexes of indexes. Digests make cycles impossible; this only
/// bounds the work a pathological push can cause.
const MAX_NESTING: u32 = 8;

/// A repository (`r`) that the registry API lists: it has a manifest or a blob link.
const VISIBLE: &str = "(EXISTS (SELECT 1 FROM manifests vm WHERE vm.repository_id = r.id)
                        OR EXISTS (SELECT 1 FROM repository_blobs vb WHERE vb.repository_id = r.id))";

/// A manifest (`m`) that artifact listings show, as Harbor's artifact DAO decides: tagged,
/// or not a child of an index in the same repository.
const LISTED: &str = "(EXISTS (SELECT 1 FROM tags lt WHERE lt.manifest_id = m.id)
                       OR NOT EXISTS (SELECT 1 FROM manifest_children lc
                                        JOIN manifests lp ON lp.id = lc.manifest_id
                                       WHERE lc.child_digest = m.digest AND lp.repository_id = m.repository_id))";

// --- repositories ---

/// A repository's `update_time` and `artifact_count`, over `r` and `rm` (as selected
/// and as sorted by).
const REPO_UPDATED: &str = "greatest(r.created_at,
                         coalesce(rm.update_time, 0),
                         coalesce((SELECT max(um.created_at) FROM manifests um WHERE um.repository_id = r.id), 0),
                         coalesce((SELECT max(ut.updated_at) FROM tags ut WHERE ut.repository_id = r.id), 0))";

fn repo_artifacts() -> String {
    format!("(SELECT count(*) FROM manifests m WHERE m.repository_id = r.id AND {LISTED})")
}

fn repository_select() -> String {
    format!(
        "SELECT r.id, r.name, coalesce(rm.description, ''), coalesce(rm.pull_count, 0), r.created_at,
                {REPO_UPDATED}, {}
           FROM repositories r LEFT JOIN repository_meta rm ON rm.repository_id = r.id",
        repo_artifacts()
    )
}

/// `ORDER BY` for `order`, ties by id.
fn repo_order(order: RepoOrder) -> String {
    let key = match order.key {
        RepoSortKey::Id => "r.id".to_owned(),
        RepoSortKey::Name => "r.name".to_owned(),
        RepoSortKey::CreationTime => "r.created_at".to_owned(),
        RepoSortKey::UpdateTime => REPO_UPDATED.to_owned(),
        RepoSortKey::ArtifactCount => repo_artifacts(),
        RepoSortKey::PullCount => "coalesce(rm.pull_count, 0)".to_owned(),
    };
    let dir = if order.desc { "DESC" } else { "ASC" };
    format!("{key} {dir}, r.id {dir}")
}

fn repository_row(r: &Row) -> Result<RepositoryInfo, DbErr> {
    let name: String = col(r, 1)?;
    Ok(RepositoryInfo {
        id: col(r, 0)?,
        project_name: project_of(&name).unwrap_or_default().to_owned(),
        name,
        description: col(r, 2)?,
        pull_count: to_u64(col(r, 3)?, "pull count")?,
        creation_time: col(r, 4)?,
        update_time: col(r, 5)?,
        artifact_count: to_u64(col(r, 6)?, "artifact count")?,
    })
}

/// The id of a repository the registry API lists.
async fn listed_repo_id(c: Conn<'_>, name: &str) -> Result<Option<i64>, DbErr> {
    let row = c.opt(&format!("SELECT r.id FROM repositories r WHERE r.name = $1 AND {VISIBLE}"), &[&name]).await?;
    row.map(|r| col(&r, 0)).transpose()
}

// --- artifacts ---

/// The manifest a tag or digest names in a repository.
async fn resolve(c: Conn<'_>, repo_id: i64, reference: &Reference) -> Result<Option<i64>, DbErr> {
    let row = match reference {
        Reference::Digest(d) => {
            c.opt("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2", &[&repo_id, &d.to_string()])
                .await?
        }
        Reference::Tag(t) => {
            c.opt("SELECT manifest_id FROM tags WHERE repository_id = $1 AND name = $2", &[&repo_id, &t.as_str()])
                .await?
        }
    };
    row.map(|r| col(&r, 0)).transpose()
}

/// The repository's id and the manifest `reference` names in it; `None` if either is
/// missing.
async fn repo_manifest(c: Conn<'_>, repo: &str, reference: &Reference) -> Result<Option<(i64, i64)>, DbErr> {
    let Some(id) = repo_id(c, repo).await? else {
        return Ok(None);
    };
    Ok(resolve(c, id, reference).await?.map(|manifest| (id, manifest)))
}

const ARTIFACT_COLUMNS: &str =
    "m.id, m.digest, m.media_type, m.artifact_type, m.annotations, m.subject_digest, m.created_at, m.pulled_at";

/// Harbor's size of an artifact: its own bytes and blobs, plus its children's sizes
/// (children present in the repository, to [`MAX_NESTING`] levels).
async fn artifact_size(c: Conn<'_>, repo_id: i64, manifest_id: i64) -> Result<u64, DbErr> {
    let mut size = 0u64;
    let mut pending = vec![(manifest_id, 0u32)];
    while let Some((id, depth)) = pending.pop() {
        let own = c
            .one(
                "SELECT m.size + coalesce((SELECT sum(b.size) FROM manifest_blobs mb JOIN blobs b ON b.digest = mb.digest
                                            WHERE mb.manifest_id = m.id), 0)::bigint
                   FROM manifests m WHERE m.id = $1",
                &[&id],
            )
            .await?;
        size = size.saturating_add(to_u64(col(&own, 0)?, "artifact size")?);
        if depth >= MAX_NESTING {
            continue;
        }
        let children = c
            .rows(
                "SELECT ch.id FROM manifest_children mc
                   JOIN manifests ch ON ch.repository_id = $2 AND ch.digest = mc.child_digest
                  WHERE mc.manifest_id = $1",
                &[&id, &repo_id],
            )
            .await?;
        for ch in &children {
            pending.push((col(ch, 0)?, depth + 1));
        }
    }
    Ok(size)
}

/// The children of an index, in the order of its `manifests` list.
async fn references(c: Conn<'_>, repo_id: i64, manifest_id: i64) -> Result<Vec<ArtifactReference>, DbErr> {
    let rows = c
        .rows(
            "SELECT mc.child_digest, ch.id FROM manifest_children mc
               LEFT JOIN manifests ch ON ch.repository_id = $2 AND ch.digest = mc.child_digest
              WHERE mc.manifest_id = $1",
            &[&manifest_id, &repo_id],
        )
        .await?;
    let children: BTreeMap<String, Option<i64>> =
        rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect::<Result<_, DbErr>>()?;
    if children.is_empty() {
        return Ok(Vec::new());
    }
    let content: Vec<u8> = col(&c.one("SELECT content FROM manifests WHERE id = $1", &[&manifest_id]).await?, 0)?;
    index_references(&content, children).map_err(|e| crate::backend(e.to_string()))
}

async fn tags_of(c: Conn<'_>, manifest_id: i64, limit: i64, offset: i64) -> Result<Vec<TagInfo>, DbErr> {
    let rows = c
        .rows(
            "SELECT id, name, updated_at, pulled_at FROM tags WHERE manifest_id = $1
              ORDER BY updated_at DESC, name LIMIT $2 OFFSET $3",
            &[&manifest_id, &limit, &offset],
        )
        .await?;
    rows.iter()
        .map(|r| Ok(TagInfo { id: col(r, 0)?, name: col(r, 1)?, push_time: col(r, 2)?, pull_time: col(r, 3)? }))
        .collect()
}

/// Completes a manifest row into the artifact view.
async fn artifact_info(
    c: Conn<'_>,
    repo_id: i64,
    repo: &str,
    row: &Row,
    with_tags: bool,
) -> Result<ArtifactInfo, DbErr> {
    let id: i64 = col(row, 0)?;
    let digest: String = col(row, 1)?;
    let subject: Option<String> = col(row, 5)?;
    Ok(ArtifactInfo {
        id,
        repository_name: repo.to_owned(),
        digest: parse_digest(&digest)?,
        media_type: col(row, 2)?,
        artifact_type: col(row, 3)?,
        size: artifact_size(c, repo_id, id).await?,
        push_time: col(row, 6)?,
        pull_time: col(row, 7)?,
        tags: if with_tags { tags_of(c, id, i64::MAX, 0).await? } else { Vec::new() },
        references: references(c, repo_id, id).await?,
        subject_digest: subject.as_deref().map(parse_digest).transpose()?,
        annotations: col(row, 4)?,
    })
}

/// A repository listing's filter (over `r`, its arguments `$1`…), order and page.
struct RepoPage {
    filter: String,
    args: Args,
    order: RepoOrder,
    page: Page,
}

/// The page's ids first, from the nearer end ([`PageWindow`]), then their counts and
/// times: PostgreSQL computes the select list of every row an OFFSET skips, so selecting
/// them in the paging query would cost, on a late page, what the project's size does.
async fn repository_page(c: Conn<'_>, q: &RepoPage) -> Result<(Vec<RepositoryInfo>, u64), DbErr> {
    // The planner's cost for these subqueries over 10,000 repositories passes
    // `jit_above_cost`, and compiling them (12-40 ms) took longer than running them
    // (8 ms for the count, EXPLAIN ANALYZE on PostgreSQL 15).
    c.batch("SET LOCAL jit = off").await?;
    let mut params: Vec<&(dyn ToSql + Sync)> = q.args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
    let total = count(c, &format!("SELECT count(*) FROM repositories r WHERE {}", q.filter), &params).await?;
    let Some(window) = PageWindow::of(&q.page, total) else {
        return Ok((Vec::new(), total));
    };
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let (limit, skip) = (clamp(window.limit), clamp(window.skip));
    let n = params.len();
    params.push(&limit);
    params.push(&skip);
    let read = repo_order(RepoOrder { desc: q.order.desc != window.reversed, ..q.order });
    let sql = format!(
        "{} WHERE r.id IN (SELECT r.id FROM repositories r LEFT JOIN repository_meta rm ON rm.repository_id = r.id
                            WHERE {} ORDER BY {read} LIMIT ${} OFFSET ${})
         ORDER BY {}",
        repository_select(),
        q.filter,
        n + 1,
        n + 2,
        repo_order(q.order)
    );
    let rows = c.rows(&sql, &params).await?;
    Ok((rows.iter().map(repository_row).collect::<Result<_, _>>()?, total))
}

#[async_trait]
impl CatalogStore for PgStore {
    // --- repositories ---

    async fn list_repositories_sorted(
        &self,
        project: Option<&str>,
        name: Option<&str>,
        order: RepoOrder,
        page: &Page,
    ) -> StoreResult<(Vec<RepositoryInfo>, u64)> {
        let mut conds = vec![VISIBLE.to_owned()];
        let mut args: Args = Vec::new();
        if let Some(p) = project {
            // `[p/, p0)` is exactly the names starting with `p/` ('0' follows '/'), and
            // uses the unique index on the name.
            args.push(Box::new(format!("{p}/")));
            args.push(Box::new(format!("{p}0")));
            conds.push(format!("r.name >= ${} AND r.name < ${}", args.len() - 1, args.len()));
        }
        if let Some(n) = name {
            args.push(Box::new(contains_pattern(n)));
            conds.push(format!("r.name ILIKE ${}", args.len()));
        }
        let q = RepoPage { filter: conds.join(" AND "), args, order, page: page.clone() };
        self.db(Tx::Read, &q, |c, q| Box::pin(async move { Ok(repository_page(c, q).await?) })).await
    }

    async fn tag_counts(&self, ids: &[i64]) -> StoreResult<HashMap<i64, u64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.db(Tx::Read, &ids.to_vec(), |c, ids| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        "SELECT repository_id, count(*) FROM tags WHERE repository_id = ANY($1)
                          GROUP BY repository_id",
                        &[ids],
                    )
                    .await?;
                let mut out = HashMap::with_capacity(rows.len());
                for row in &rows {
                    out.insert(col(row, 0)?, to_u64(col(row, 1)?, "tag count")?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn repository(&self, repo: &RepoName) -> StoreResult<Option<RepositoryInfo>> {
        self.db(Tx::Read, repo.as_str(), |c, r| {
            Box::pin(async move {
                let row = c.opt(&format!("{} WHERE r.name = $1 AND {VISIBLE}", repository_select()), &[&r]).await?;
                Ok(row.map(|r| repository_row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn update_repository_description(&self, repo: &RepoName, description: &str) -> StoreResult<bool> {
        self.db(Tx::Idempotent, &(repo.as_str(), description), |c, (r, d)| {
            Box::pin(async move {
                let Some(id) = listed_repo_id(c, r).await? else {
                    return Ok(false);
                };
                c.exec(
                    "INSERT INTO repository_meta (repository_id, description, update_time) VALUES ($1, $2, $3)
                     ON CONFLICT (repository_id) DO UPDATE SET
                         description = excluded.description,
                         update_time = greatest(coalesce(repository_meta.update_time, 0), excluded.update_time)",
                    &[&id, d, &now()],
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }

    async fn delete_repository(&self, repo: &RepoName) -> StoreResult<Option<u64>> {
        self.db(Tx::Write, repo.as_str(), |c, r| {
            Box::pin(async move {
                let Some(row) = c.opt("SELECT id FROM repositories WHERE name = $1 FOR UPDATE", &[&r]).await? else {
                    return Ok(None);
                };
                let id: i64 = col(&row, 0)?;
                let listed = listed_repo_id(c, r).await?.is_some();
                let manifests = c.exec("DELETE FROM manifests WHERE repository_id = $1", &[&id]).await?;
                // Tags, index references, blob links, label references and the
                // description go by ON DELETE CASCADE; blob rows stay for GC.
                c.exec("DELETE FROM repositories WHERE id = $1", &[&id]).await?;
                Ok(listed.then_some(manifests))
            })
        })
        .await
    }

    async fn increment_pull_count(&self, repo: &RepoName) -> StoreResult<bool> {
        self.add_pull_count(repo, 1).await
    }

    async fn add_pull_count(&self, repo: &RepoName, n: u64) -> StoreResult<bool> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.db(Tx::Write, &(repo.as_str(), n), |c, (r, n)| {
            Box::pin(async move {
                let Some(id) = repo_id(c, r).await? else {
                    return Ok(false);
                };
                c.exec(
                    "INSERT INTO repository_meta (repository_id, pull_count, update_time) VALUES ($1, $3, $2)
                     ON CONFLICT (repository_id) DO UPDATE SET
                         pull_count = repository_meta.pull_count + excluded.pull_count,
                         update_time = greatest(coalesce(repository_meta.update_time, 0), excluded.update_time)",
                    &[&id, &now(), n],
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }

    async fn record_pulls(&self, pulls: &[Pull]) -> StoreResult<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        self.db(Tx::Idempotent, pulls, |c, pulls| {
            Box::pin(async move {
                // Resolve first (plain reads), then lock rows in one order every batch
                // shares: manifests by id, then tags by (repository, name), as a push
                // does (manifest, then its tag). Concurrent batches from several
                // instances then wait for each other instead of deadlocking.
                let mut repo_ids: HashMap<&str, Option<i64>> = HashMap::new();
                let mut manifests: BTreeMap<i64, i64> = BTreeMap::new();
                let mut tags: BTreeMap<(i64, &str), i64> = BTreeMap::new();
                for (repo, reference, at) in pulls {
                    let id = match repo_ids.get(repo.as_str()) {
                        Some(id) => *id,
                        None => {
                            let id = repo_id(c, repo.as_str()).await?;
                            repo_ids.insert(repo.as_str(), id);
                            id
                        }
                    };
                    let Some(id) = id else { continue };
                    let Some(manifest) = resolve(c, id, reference).await? else { continue };
                    let m = manifests.entry(manifest).or_insert(*at);
                    *m = (*m).max(*at);
                    if let Reference::Tag(t) = reference {
                        let t = tags.entry((id, t.as_str())).or_insert(*at);
                        *t = (*t).max(*at);
                    }
                }
                for (manifest, at) in &manifests {
                    c.exec("UPDATE manifests SET pulled_at = greatest(pulled_at, $2) WHERE id = $1", &[manifest, at])
                        .await?;
                }
                for ((repo_id, name), at) in &tags {
                    c.exec(
                        "UPDATE tags SET pulled_at = greatest(pulled_at, $3) WHERE repository_id = $1 AND name = $2",
                        &[repo_id, name, at],
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn storage_usage(&self, project: Option<&str>) -> StoreResult<u64> {
        self.db(Tx::Read, &project, |c, project| {
            Box::pin(async move {
                match project {
                    Some(p) => Ok(crate::quota::stored_usage(c, p).await?),
                    None => Ok(to_u64(col(&c.one(crate::quota::USAGE_ALL, &[]).await?, 0)?, "storage usage")?),
                }
            })
        })
        .await
    }

    // --- artifacts ---

    async fn list_artifacts(
        &self,
        repo: &RepoName,
        page: &Page,
        with_tag: bool,
    ) -> StoreResult<Option<(Vec<ArtifactInfo>, u64)>> {
        let (limit, offset) = limit_offset(page);
        self.db(Tx::Read, &(repo.as_str(), limit, offset, with_tag), |c, (r, limit, offset, with_tag)| {
            Box::pin(async move {
                let Some(id) = listed_repo_id(c, r).await? else {
                    return Ok(None);
                };
                let total = count(
                    c,
                    &format!("SELECT count(*) FROM manifests m WHERE m.repository_id = $1 AND {LISTED}"),
                    &[&id],
                )
                .await?;
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {ARTIFACT_COLUMNS} FROM manifests m WHERE m.repository_id = $1 AND {LISTED}
                              ORDER BY m.created_at DESC, m.id DESC LIMIT $2 OFFSET $3"
                        ),
                        &[&id, limit, offset],
                    )
                    .await?;
                let mut artifacts = Vec::with_capacity(rows.len());
                for row in &rows {
                    artifacts.push(artifact_info(c, id, r, row, *with_tag).await?);
                }
                Ok(Some((artifacts, total)))
            })
        })
        .await
    }

    async fn artifact(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Option<ArtifactInfo>> {
        self.db(Tx::Read, &(repo.as_str(), reference), |c, (r, reference)| {
            Box::pin(async move {
                let Some((id, manifest)) = repo_manifest(c, r, reference).await? else {
                    return Ok(None);
                };
                let row =
                    c.one(&format!("SELECT {ARTIFACT_COLUMNS} FROM manifests m WHERE m.id = $1"), &[&manifest]).await?;
                Ok(Some(artifact_info(c, id, r, &row, true).await?))
            })
        })
        .await
    }

    async fn parents_of(&self, repo: &RepoName, children: &[Digest]) -> StoreResult<Vec<(Digest, Digest)>> {
        if children.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = children.iter().map(Digest::to_string).collect();
        self.db(Tx::Read, &(repo.as_str(), list), |c, (r, list)| {
            Box::pin(async move {
                let Some(id) = repo_id(c, r).await? else {
                    return Ok(Vec::new());
                };
                let rows = c
                    .rows(
                        "SELECT DISTINCT mc.child_digest, p.digest FROM manifest_children mc
                           JOIN manifests p ON p.id = mc.manifest_id
                          WHERE mc.child_digest = ANY($1) AND p.repository_id = $2
                          ORDER BY mc.child_digest, p.digest",
                        &[list, &id],
                    )
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let (child, parent): (String, String) = (col(row, 0)?, col(row, 1)?);
                    out.push((parse_digest(&child)?, parse_digest(&parent)?));
                }
                Ok(out)
            })
        })
        .await
    }

    // --- tags ---

    async fn add_tag(&self, repo: &RepoName, reference: &Reference, tag: &Tag) -> CatalogResult<()> {
        self.run(Tx::Write, &(repo.as_str(), reference, tag.as_str()), |c, (r, reference, t)| {
            Box::pin(async move {
                let Some((id, manifest)) = repo_manifest(c, r, reference).await? else {
                    return Err(Fail::No(CatalogError::NotFound));
                };
                let inserted = c
                    .exec(
                        "INSERT INTO tags (repository_id, name, manifest_id, updated_at, sort_key)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (repository_id, name) DO NOTHING",
                        &[&id, t, &manifest, &now(), &natural_key(t)],
                    )
                    .await?;
                if inserted == 0 {
                    return Err(Fail::No(CatalogError::Conflict { field: "tag", value: (*t).to_owned() }));
                }
                Ok(())
            })
        })
        .await
    }

    async fn list_tags_after(
        &self,
        repo: &RepoName,
        prefix: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Option<Vec<TagRow>>> {
        let start = match after {
            Some(a) if a >= prefix => a.to_owned(),
            _ => String::new(),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let args = (repo.as_str(), prefix.to_owned(), start, prefix_end(prefix), limit);
        self.db(Tx::Read, &args, |c, (r, prefix, start, end, limit)| {
            Box::pin(async move {
                let Some(id) = repo_id(c, r).await? else {
                    return Ok(None);
                };
                // `tags.name` is `COLLATE "C"`: bytewise, like SQLite's, and the primary
                // key's order.
                let rows = c
                    .rows(
                        "SELECT t.id, t.name, m.digest, m.media_type, m.size, t.updated_at, t.pulled_at
                           FROM tags t JOIN manifests m ON m.id = t.manifest_id
                          WHERE t.repository_id = $1 AND t.name >= $2 AND t.name > $3 AND t.name < $4
                          ORDER BY t.name LIMIT $5",
                        &[&id, prefix, start, end, limit],
                    )
                    .await?;
                Ok(Some(rows.iter().map(tag_row).collect::<Result<Vec<_>, _>>()?))
            })
        })
        .await
    }

    async fn list_tags_sorted(&self, repo: &RepoName, q: &TagQuery) -> StoreResult<Option<Vec<TagRow>>> {
        // `$1` is the repository's id, found in the transaction; the rest are `args`.
        let lit = q.filter.literal_prefix();
        // Without a literal start, no name range: the planner would take it for selective
        // and sort the whole repository instead of reading the push or pull order's index.
        let (mut args, mut conds): (Args, Vec<String>) = if q.sort == TagSort::Natural {
            // The key range bounds the scan of the key index; the name is checked by
            // `left`, which no name index answers.
            let (mut args, mut conds): (Args, Vec<String>) = (Vec::new(), vec!["TRUE".to_owned()]);
            if let Some((low, high)) = natural_key_range(lit) {
                args.push(Box::new(low));
                conds.push(format!("t.sort_key >= ${}", args.len() + 1));
                if let Some(high) = high {
                    args.push(Box::new(high));
                    conds.push(format!("t.sort_key < ${}", args.len() + 1));
                }
            }
            if let TagFilter::Prefix(p) = &q.filter
                && !p.is_empty()
            {
                args.push(Box::new(p.clone()));
                conds.push(format!("left(t.name, length(${0}::text)) = ${0}::text", args.len() + 1));
            }
            (args, conds)
        } else if lit.is_empty() && q.sort != TagSort::Name {
            (Vec::new(), vec!["TRUE".to_owned()])
        } else {
            (vec![Box::new(lit.to_owned()), Box::new(prefix_end(lit))], vec!["t.name >= $2 AND t.name < $3".to_owned()])
        };
        if let TagFilter::Glob(g) = &q.filter {
            // LIKE over `COLLATE "C"` names: `_` (a tag character) literal, `*` and `?`
            // as `%` and `_`. A checked glob holds no `%` or `\`.
            let like: String = g
                .chars()
                .map(|c| match c {
                    '*' => "%".to_owned(),
                    '?' => "_".to_owned(),
                    '_' => "\\_".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            args.push(Box::new(like));
            conds.push(format!("t.name LIKE ${}", args.len() + 1));
        }
        let order = match q.sort {
            TagSort::Name => "t.name",
            TagSort::Pushed => "t.updated_at DESC, t.id DESC",
            TagSort::Pulled => "t.pulled_at DESC NULLS LAST, t.id DESC",
            TagSort::Natural => "t.sort_key",
        };
        match (&q.sort, &q.after) {
            (_, None) => {}
            (TagSort::Name, Some(TagCursor::Name(n))) => {
                args.push(Box::new(n.clone()));
                conds.push(format!("t.name > ${}", args.len() + 1));
            }
            (TagSort::Pushed, Some(TagCursor::Pushed(t, id))) => {
                args.push(Box::new(*t));
                args.push(Box::new(*id));
                let (t, id) = (args.len(), args.len() + 1);
                conds.push(format!("(t.updated_at, t.id) < (${t}, ${id})"));
            }
            (TagSort::Pulled, Some(TagCursor::Pulled(Some(p), id))) => {
                args.push(Box::new(*p));
                args.push(Box::new(*id));
                let (p, id) = (args.len(), args.len() + 1);
                conds.push(format!(
                    "(t.pulled_at IS NULL OR t.pulled_at < ${p} OR (t.pulled_at = ${p} AND t.id < ${id}))"
                ));
            }
            (TagSort::Pulled, Some(TagCursor::Pulled(None, id))) => {
                args.push(Box::new(*id));
                conds.push(format!("(t.pulled_at IS NULL AND t.id < ${})", args.len() + 1));
            }
            (TagSort::Natural, Some(TagCursor::Natural(n))) => {
                args.push(Box::new(natural_key(n)));
                conds.push(format!("t.sort_key > ${}", args.len() + 1));
            }
            (s, Some(c)) => return Err(berth_core::store::StoreError::Backend(format!("cursor {c:?} for sort {s:?}"))),
        }
        if let Some(kind) = q.kind {
            conds.push(format!(
                "EXISTS (SELECT 1 FROM manifests k WHERE k.id = t.manifest_id AND {})",
                kind_condition(kind)
            ));
        }
        args.push(Box::new(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT t.id, t.name, m.digest, m.media_type, m.size, t.updated_at, t.pulled_at
               FROM (SELECT t.id, t.name, t.manifest_id, t.updated_at, t.pulled_at, t.sort_key FROM tags t
                      WHERE t.repository_id = $1 AND {} ORDER BY {order} LIMIT ${}) t
               JOIN manifests m ON m.id = t.manifest_id
              ORDER BY {order}",
            conds.join(" AND "),
            args.len() + 1
        );
        // A natural page is read only from a snapshot in which the repository has no tag
        // without its key (an older binary's insert); otherwise the keys are filled and
        // the page read again. Bounded, in case such inserts keep coming.
        let natural = q.sort == TagSort::Natural;
        let args = (repo.as_str(), sql, args, natural);
        for _ in 0..8 {
            let page = self
                .db(Tx::Read, &args, |c, (r, sql, args, natural)| {
                    Box::pin(async move {
                        let Some(id) = repo_id(c, r).await? else {
                            return Ok(Ok(None));
                        };
                        if *natural
                            && c.one(
                                "SELECT EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND sort_key IS NULL)",
                                &[&id],
                            )
                            .await?
                            .try_get::<_, bool>(0)?
                        {
                            return Ok(Err(id));
                        }
                        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&id];
                        all.extend(args.iter().map(|a| &**a as &(dyn ToSql + Sync)));
                        let rows = c.rows(sql, &all).await?;
                        Ok(Ok(Some(rows.iter().map(tag_row).collect::<Result<Vec<_>, _>>()?)))
                    })
                })
                .await?;
            match page {
                Ok(rows) => return Ok(rows),
                Err(id) => {
                    self.db(Tx::Idempotent, &id, |c, id| {
                        Box::pin(async move {
                            while fill_sort_keys(c.client().await?, Some(*id)).await? > 0 {}
                            Ok(())
                        })
                    })
                    .await?;
                }
            }
        }
        Err(berth_core::store::StoreError::Backend(format!(
            "{}: tags without a natural sort key keep arriving (an older Berth writing?)",
            repo.as_str()
        )))
    }

    async fn page_details(
        &self,
        repo: &RepoName,
        digests: &[Digest],
        tags: &[String],
    ) -> StoreResult<Option<PageDetails>> {
        let mut digests: Vec<String> = digests.iter().map(ToString::to_string).collect();
        digests.sort();
        digests.dedup();
        let args = (repo.as_str(), digests, tags.to_vec());
        self.db(Tx::Read, &args, |c, (r, digests, tags)| {
            Box::pin(async move {
                let Some(id) = repo_id(c, r).await? else {
                    return Ok(None);
                };
                let referrer = |row: &Row, at: usize| -> Result<Referrer, DbErr> {
                    let digest: String = col(row, at)?;
                    Ok(Referrer {
                        digest: parse_digest(&digest)?,
                        media_type: col(row, at + 1)?,
                        size: to_u64(col(row, at + 2)?, "manifest size")?,
                        artifact_type: col(row, at + 3)?,
                        annotations: col(row, at + 4)?,
                    })
                };
                let mut out = PageDetails::default();
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {ARTIFACT_COLUMNS} FROM manifests m WHERE m.repository_id = $1 AND m.digest = ANY($2)
                              ORDER BY m.digest"
                        ),
                        &[&id, digests],
                    )
                    .await?;
                for row in &rows {
                    out.artifacts.push(artifact_info(c, id, r, row, false).await?);
                }
                let rows = c
                    .rows(
                        "SELECT m.subject_digest, m.digest, m.media_type, m.size, m.artifact_type, m.annotations
                           FROM manifests m WHERE m.repository_id = $1 AND m.subject_digest = ANY($2)
                          ORDER BY m.subject_digest, m.digest",
                        &[&id, digests],
                    )
                    .await?;
                for row in &rows {
                    let subject: String = col(row, 0)?;
                    out.referrers.push((parse_digest(&subject)?, referrer(row, 1)?));
                }
                let rows = c
                    .rows(
                        "SELECT t.name, m.digest, m.media_type, m.size, m.artifact_type, m.annotations
                           FROM tags t JOIN manifests m ON m.id = t.manifest_id
                          WHERE t.repository_id = $1 AND t.name = ANY($2) ORDER BY t.name",
                        &[&id, tags],
                    )
                    .await?;
                for row in &rows {
                    out.tagged.push((col(row, 0)?, referrer(row, 1)?));
                }
                Ok(Some(out))
            })
        })
        .await
    }

    async fn artifact_tags_page(
        &self,
        repo: &RepoName,
        digest: &Digest,
        cursor: &NameCursor,
        limit: u64,
    ) -> StoreResult<Option<Vec<TagInfo>>> {
        let reference = Reference::Digest(digest.clone());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db(Tx::Read, &(repo.as_str(), reference, cursor.clone(), limit), |c, (r, reference, cursor, limit)| {
            Box::pin(async move {
                let Some((_, manifest)) = repo_manifest(c, r, reference).await? else {
                    return Ok(None);
                };
                // `tags.name` is `COLLATE "C"`: bytewise, as SQLite's. The previous page is
                // read backwards from the cursor, then turned round.
                let (sql, name) = match cursor {
                    NameCursor::First => ("AND $2::text IS NULL ORDER BY name", None),
                    NameCursor::After(n) => ("AND name > $2 ORDER BY name", Some(n.clone())),
                    NameCursor::Before(n) => ("AND name < $2 ORDER BY name DESC", Some(n.clone())),
                };
                let rows = c
                    .rows(
                        &format!(
                            "SELECT id, name, updated_at, pulled_at FROM tags WHERE manifest_id = $1 {sql} LIMIT $3"
                        ),
                        &[&manifest, &name, limit],
                    )
                    .await?;
                let mut tags = rows
                    .iter()
                    .map(|r| {
                        Ok(TagInfo { id: col(r, 0)?, name: col(r, 1)?, push_time: col(r, 2)?, pull_time: col(r, 3)? })
                    })
                    .collect::<Result<Vec<_>, DbErr>>()?;
                if matches!(cursor, NameCursor::Before(_)) {
                    tags.reverse();
                }
                Ok(Some(tags))
            })
        })
        .await
    }

    async fn list_artifact_tags(
        &self,
        repo: &RepoName,
        reference: &Reference,
        page: &Page,
    ) -> StoreResult<Option<(Vec<TagInfo>, u64)>> {
        let (limit, offset) = limit_offset(page);
        self.db(Tx::Read, &(repo.as_str(), reference, limit, offset), |c, (r, reference, limit, offset)| {
            Box::pin(async move {
                let Some((_, manifest)) = repo_manifest(c, r, reference).await? else {
                    return Ok(None);
                };
                let total = count(c, "SELECT count(*) FROM tags WHERE manifest_id = $1", &[&manifest]).await?;
                Ok(Some((tags_of(c, manifest, *limit, *offset).await?, total)))
            })
        })
        .await
    }
}

/// Stores the natural sort key of up to 1,000 tags without one (of repository `repo`, or
/// any), read through the `tags_unkeyed` partial index: rows written before migration
/// 0014, or since by an older binary. Rows another transaction is filling are skipped
/// (`SKIP LOCKED`), so fillers never wait for each other. Returns how many it filled: the
/// caller repeats until 0, in one transaction or one per batch.
pub(crate) async fn fill_sort_keys(
    c: &tokio_postgres::Client,
    repo: Option<i64>,
) -> Result<usize, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id, name FROM tags WHERE sort_key IS NULL AND ($1::bigint IS NULL OR repository_id = $1)
              ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED",
            &[&repo],
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    for r in &rows {
        ids.push(r.try_get::<_, i64>(0)?);
        keys.push(natural_key(r.try_get::<_, &str>(1)?));
    }
    c.execute(
        "UPDATE tags SET sort_key = v.k FROM unnest($1::bigint[], $2::bytea[]) AS v(id, k) WHERE tags.id = v.id",
        &[&ids, &keys],
    )
    .await?;
    Ok(rows.len())
}

/// The SQL condition on a manifest `k` of [`TagKind::of`]'s kind, from its lists (string
/// constants without quotes, so written as literals).
fn kind_condition(kind: TagKind) -> String {
    let list = |v: &[&str]| v.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let at = "coalesce(k.artifact_type, '')";
    let index = format!("k.media_type IN ({})", list(&TagKind::INDEX_MEDIA_TYPES));
    let chart = format!("{at} = '{}'", TagKind::HELM_CONFIG);
    let image = format!(
        "(k.media_type IN ({}) AND {at} IN ('', {}))",
        list(&TagKind::IMAGE_MEDIA_TYPES),
        list(&TagKind::IMAGE_CONFIG_TYPES)
    );
    match kind {
        TagKind::Index => index,
        TagKind::Chart => format!("NOT {index} AND {chart}"),
        TagKind::Image => format!("NOT {index} AND NOT {chart} AND {image}"),
        TagKind::Other => format!("NOT {index} AND NOT {chart} AND NOT {image}"),
    }
}

/// A row of `t.id, t.name, m.digest, m.media_type, m.size, t.updated_at, t.pulled_at`
/// (tags joined to their manifests), as the tags listings select it.
fn tag_row(r: &Row) -> Result<TagRow, DbErr> {
    Ok(TagRow {
        id: col(r, 0)?,
        name: col(r, 1)?,
        digest: parse_digest(&col::<String>(r, 2)?)?,
        media_type: col(r, 3)?,
        manifest_size: to_u64(col(r, 4)?, "manifest size")?,
        push_time: col(r, 5)?,
        pull_time: col(r, 6)?,
    })
}
