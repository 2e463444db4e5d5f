//! `GET /search` and `GET /statistics` (goharbor/harbor `src/server/v2.0/handler/search.go`,
//! `statistic.go`), plus [`visible_projects`], the one place these and the quota API decide
//! which projects a caller may see.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::{Project, ProjectFilter};

use super::dto::ProjectResp;
use super::errors::{bad_request, store};
use super::query::ALL;
use super::{Caller, json, system_allows};
use crate::AppState;
use crate::error::ApiError;

/// The projects on which the caller may do `action` on `resource`, by name: all of them
/// for system administrators; otherwise as the access policy decides (members their
/// projects, everyone public ones, robots the projects their permissions name).
pub async fn visible_projects(
    state: &AppState,
    caller: &Caller,
    resource: Resource,
    action: Action,
) -> Result<Vec<Project>, ApiError> {
    let (projects, _) = state.auth.identity.list_projects(&ProjectFilter::default(), &ALL).await.map_err(store)?;
    if caller.0.is_sysadmin() {
        return Ok(projects);
    }
    let mut out = Vec::with_capacity(projects.len());
    for p in projects {
        if state.auth.access.allowed(&caller.0, &p, resource, action).await.map_err(store)? {
            out.push(p);
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
struct SearchRepository {
    repository_name: String,
    project_name: String,
    project_id: i64,
    project_public: bool,
    pull_count: u64,
    artifact_count: u64,
}

#[derive(Debug, Serialize)]
struct SearchResult {
    project: Vec<ProjectResp>,
    repository: Vec<SearchRepository>,
}

/// `GET /search?q=`: projects whose name contains `q` that the caller may see, and
/// repositories whose full name contains it in projects whose repositories the caller may
/// list (ASCII case-insensitive, as the repository listing matches).
pub async fn search(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    // `q` is a plain search string here, not Harbor's `k=v` list query.
    let term = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| bad_request("the query parameter q is required"))?;
    let needle = term.to_ascii_lowercase();

    let mut owners = HashMap::new();
    let mut project = Vec::new();
    for p in visible_projects(&state, &caller, Resource::Project, Action::Read).await? {
        if p.name.to_ascii_lowercase().contains(&needle) {
            project.push(super::projects::project_resp(&state, &caller, &p, &mut owners).await?);
        }
    }

    let everything = caller.0.is_sysadmin() || system_allows(&caller.0, "catalog", "read");
    let listable: HashMap<String, Project> = if everything {
        state.auth.identity.list_projects(&ProjectFilter::default(), &ALL).await.map_err(store)?.0
    } else {
        visible_projects(&state, &caller, Resource::Repository, Action::List).await?
    }
    .into_iter()
    .map(|p| (p.name.clone(), p))
    .collect();
    let (repos, _) = state.catalog.list_repositories(None, Some(&term), &ALL).await.map_err(store)?;
    let repository = repos
        .into_iter()
        .filter_map(|r| {
            let p = listable.get(&r.project_name)?;
            Some(SearchRepository {
                repository_name: r.name,
                project_name: p.name.clone(),
                project_id: p.id,
                project_public: p.is_public(),
                pull_count: r.pull_count,
                artifact_count: r.artifact_count,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &SearchResult { project, repository }))
}

#[derive(Debug, Default, Serialize)]
struct Statistic {
    private_project_count: u64,
    private_repo_count: u64,
    public_project_count: u64,
    public_repo_count: u64,
    total_project_count: u64,
    total_repo_count: u64,
    /// System administrators only, as in Harbor.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_storage_consumption: Option<u64>,
}

/// `GET /statistics`: project and repository counts over the projects the caller may see
/// (all for system administrators; members' and public ones for others), and for system
/// administrators the bytes stored (distinct live blobs linked to repositories).
pub async fn statistics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let projects = visible_projects(&state, &caller, Resource::Project, Action::Read).await?;
    let public: HashMap<&str, bool> = projects.iter().map(|p| (p.name.as_str(), p.is_public())).collect();
    let mut s = Statistic::default();
    for p in &projects {
        if p.is_public() {
            s.public_project_count += 1;
        } else {
            s.private_project_count += 1;
        }
    }
    let (repos, _) = state.catalog.list_repositories(None, None, &ALL).await.map_err(store)?;
    for r in &repos {
        match public.get(r.project_name.as_str()) {
            Some(true) => s.public_repo_count += 1,
            Some(false) => s.private_repo_count += 1,
            None => {}
        }
    }
    s.total_project_count = s.public_project_count + s.private_project_count;
    s.total_repo_count = s.public_repo_count + s.private_repo_count;
    if caller.0.is_sysadmin() {
        s.total_storage_consumption = Some(state.catalog.storage_usage(None).await.map_err(store)?);
    }
    Ok(json(StatusCode::OK, &s))
}
