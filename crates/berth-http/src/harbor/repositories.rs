//! `/repositories` and `/projects/{p}/repositories[/{r}]` (goharbor/harbor
//! `src/server/v2.0/handler/repository.go`), over the catalog store.
//!
//! `{p}` is always a project name here, as in Harbor. `{r}` is the repository name without
//! the project; when it contains `/` clients encode it twice (`a/b` → `a%252Fb`), so it is
//! decoded once more after the router's own decoding.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use berth_core::RepoName;
use berth_core::access::Principal;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::catalog::{RepoOrder, RepoSortKey, RepositoryInfo};
use berth_core::store::identity::{Project, ProjectFilter};

use super::dto::{RepositoryReq, RepositoryResp, time};
use super::errors::{bad_request, not_found, store};
use super::json::Body;
use super::query::{ALL, ListQuery, Match, SortValue};
use super::{Caller, ProjectRef, audit, json, ok, page, require_project, system_allows};
use crate::AppState;
use crate::error::ApiError;

/// A project's repository, as a request names it.
pub struct Target {
    pub project: Project,
    pub repo: RepoName,
    pub info: RepositoryInfo,
}

/// The project (if the caller may do `action` on `resource` in it), then the repository
/// `{r}` in it (404 if it is not there).
pub async fn target(
    state: &AppState,
    caller: &Caller,
    project: String,
    raw: &str,
    resource: Resource,
    action: Action,
) -> Result<Target, ApiError> {
    let project = require_project(state, caller, &ProjectRef::Name(project), resource, action).await?;
    let full = full_name(&project, raw)?;
    let missing = || not_found(format!("repository {full} not found"));
    // A name the registry could never have stored cannot exist (Harbor answers 404 too).
    let repo: RepoName = full.parse().map_err(|_| missing())?;
    let info = state.catalog.repository(&repo).await.map_err(store)?.ok_or_else(missing)?;
    Ok(Target { project, repo, info })
}

/// `project/` + `{r}` decoded once more.
pub(super) fn full_name(project: &Project, raw: &str) -> Result<String, ApiError> {
    let name = percent_decode(raw).ok_or_else(|| bad_request(format!("invalid repository name {raw:?}")))?;
    Ok(format!("{}/{name}", project.name))
}

/// Decodes `%XX` escapes (not `+`: this is a path); `None` on a malformed escape or bytes
/// that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn repository_resp(r: &RepositoryInfo, project_id: i64) -> RepositoryResp {
    RepositoryResp {
        id: r.id,
        project_id,
        name: r.name.clone(),
        description: r.description.clone(),
        artifact_count: r.artifact_count,
        pull_count: r.pull_count,
        creation_time: time(r.creation_time),
        update_time: time(r.update_time),
    }
}

/// `q=name=~x` (contained in the full name) or `q=name=x` (the full name); other keys are
/// ignored, as Harbor ignores keys a resource does not have.
struct NameFilter {
    contains: Option<String>,
    exact: Option<String>,
}

fn name_filter(q: &ListQuery) -> Result<NameFilter, ApiError> {
    match q.term("name") {
        None => Ok(NameFilter { contains: None, exact: None }),
        Some(Match::Fuzzy(n)) => Ok(NameFilter { contains: Some(n.clone()), exact: None }),
        Some(Match::Exact(n)) => Ok(NameFilter { contains: Some(n.clone()), exact: Some(n.clone()) }),
        Some(m) => Err(bad_request(format!("name does not support {} queries", m.describe()))),
    }
}

/// A key's value for the sorts the database does not do (`check_sort` has refused names
/// outside [`RepoSortKey::NAMES`] before this runs).
fn sort_key(r: &RepositoryInfo, key: &str) -> SortValue {
    match RepoSortKey::parse(key).unwrap_or(RepoOrder::default().key) {
        RepoSortKey::Id => SortValue::Int(r.id),
        RepoSortKey::Name => SortValue::Text(r.name.clone()),
        RepoSortKey::CreationTime => SortValue::Int(r.creation_time),
        RepoSortKey::UpdateTime => SortValue::Int(r.update_time),
        RepoSortKey::ArtifactCount => SortValue::Int(r.artifact_count as i64),
        RepoSortKey::PullCount => SortValue::Int(r.pull_count as i64),
    }
}

/// One page of repositories: of one project (`project`), or of every project when `None`,
/// kept to the projects in `visible` when that is given.
async fn fetch(
    state: &AppState,
    project: Option<&str>,
    visible: Option<&HashSet<String>>,
    q: &ListQuery,
) -> Result<(Vec<RepositoryInfo>, u64), ApiError> {
    let name = name_filter(q)?;
    let catalog = &state.catalog;
    // One sort key (what Harbor's portal and Berth's UI send) is the database's to sort
    // and page; several keys, an exact name or a caller's visible projects are not.
    let order = match q.sort.as_slice() {
        [] => Some(RepoOrder::default()),
        [one] => RepoSortKey::parse(&one.key).map(|key| RepoOrder { key, desc: one.desc }),
        _ => None,
    };
    if let (None, None, Some(order)) = (visible, &name.exact, order) {
        return catalog
            .list_repositories_sorted(project, name.contains.as_deref(), order, &q.store_page())
            .await
            .map_err(store);
    }
    let (all, _) = catalog.list_repositories(project, name.contains.as_deref(), &ALL).await.map_err(store)?;
    let all: Vec<RepositoryInfo> = all
        .into_iter()
        .filter(|r| name.exact.as_ref().is_none_or(|n| &r.name == n))
        .filter(|r| visible.is_none_or(|v| v.contains(&r.project_name)))
        .collect();
    let total = all.len() as u64;
    Ok((q.sort_and_page(all, sort_key), total))
}

/// `GET /repositories`: every repository the caller may list. System administrators (and
/// system robots with `catalog:read`) see all; others those of the projects whose
/// repositories they may list, public projects included.
pub async fn list_all(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(&RepoSortKey::NAMES)?;
    let (projects, _) = state.auth.identity.list_projects(&ProjectFilter::default(), &ALL).await.map_err(store)?;
    let everything = caller.0.is_sysadmin() || system_allows(&caller.0, "catalog", "read");
    let mut ids = HashMap::new();
    let mut visible = HashSet::new();
    for p in projects {
        if everything || may_list(&state, &caller.0, &p).await? {
            visible.insert(p.name.clone());
            ids.insert(p.name.clone(), p.id);
        }
    }
    let (repos, total) = fetch(&state, None, (!everything).then_some(&visible), &q).await?;
    let body: Vec<RepositoryResp> =
        repos.iter().map(|r| repository_resp(r, ids.get(&r.project_name).copied().unwrap_or(0))).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

async fn may_list(state: &AppState, principal: &Principal, p: &Project) -> Result<bool, ApiError> {
    state.auth.access.allowed(principal, p, Resource::Repository, Action::List).await.map_err(store)
}

/// `GET /projects/{p}/repositories`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project = require_project(&state, &caller, &ProjectRef::Name(p), Resource::Repository, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(&RepoSortKey::NAMES)?;
    let (repos, total) = fetch(&state, Some(&project.name), None, &q).await?;
    let body: Vec<RepositoryResp> = repos.iter().map(|r| repository_resp(r, project.id)).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Repository, Action::Read).await?;
    Ok(json(StatusCode::OK, &repository_resp(&t.info, t.project.id)))
}

/// Changes the description (the only field Harbor lets a client change).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r)): Path<(String, String)>,
    Body(req): Body<RepositoryReq>,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Repository, Action::Update).await?;
    if !state.catalog.update_repository_description(&t.repo, &req.description).await.map_err(store)? {
        return Err(not_found(format!("repository {} not found", t.repo)));
    }
    Ok(ok())
}

/// Deletes the repository with all its artifacts and tags (their blobs are left to GC).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Repository, Action::Delete).await?;
    if state.catalog.delete_repository(&t.repo).await.map_err(store)?.is_none() {
        return Err(not_found(format!("repository {} not found", t.repo)));
    }
    audit(&state, &caller, t.project.id, "delete", "repository", t.repo.as_str()).await;
    Ok(ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded_once_more() {
        assert_eq!(percent_decode("team%2Fapp").as_deref(), Some("team/app"));
        assert_eq!(percent_decode("app").as_deref(), Some("app"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
