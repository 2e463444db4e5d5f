//! `/quotas` (goharbor/harbor `src/server/v2.0/handler/quota.go`), read only. Berth keeps
//! one quota per project: its id is the project's id, `used.storage` the bytes of the
//! distinct live blobs linked to the project's repositories, `hard.storage` the project's
//! `storage_limit` metadata if set, else -1 (unlimited).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use berth_core::store::identity::{Project, ProjectFilter};

use super::dto::time;
use super::errors::{bad_request, not_found, store};
use super::query::{ALL, ListQuery, SortValue};
use super::{Caller, ProjectRef, find_project, json, page, require_system};
use crate::AppState;
use crate::error::ApiError;

const SORTABLE: &[&str] = &["id", "creation_time", "update_time", "used.storage", "hard.storage"];

#[derive(Debug, Serialize)]
struct QuotaRef {
    id: i64,
    name: String,
    owner_name: String,
}

#[derive(Debug, Serialize)]
pub struct Storage {
    pub storage: i64,
}

/// A project's `hard` and `used` storage, as the quota and the project summary show them.
#[derive(Debug, Serialize)]
pub struct HardUsed {
    pub hard: Storage,
    pub used: Storage,
}

pub async fn hard_used(state: &AppState, p: &Project) -> Result<HardUsed, ApiError> {
    let used = state.catalog.storage_usage(Some(&p.name)).await.map_err(store)?;
    let used = i64::try_from(used).map_err(|_| ApiError::internal_error("storage usage out of range".into()))?;
    Ok(HardUsed { hard: Storage { storage: hard_limit(p)? }, used: Storage { storage: used } })
}

#[derive(Debug, Serialize)]
struct Quota {
    id: i64,
    #[serde(rename = "ref")]
    reference: QuotaRef,
    #[serde(flatten)]
    storage: HardUsed,
    creation_time: String,
    update_time: String,
}

/// `storage_limit` from the project's metadata, or -1 (unlimited).
fn hard_limit(p: &Project) -> Result<i64, ApiError> {
    match p.metadata.get("storage_limit") {
        None => Ok(-1),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::internal_error(format!("project {} has an invalid storage_limit {v:?}", p.name))),
    }
}

async fn quota(state: &AppState, p: &Project, owners: &mut HashMap<i64, String>) -> Result<Quota, ApiError> {
    let owner_name = match owners.get(&p.owner_id) {
        Some(n) => n.clone(),
        None => {
            let n = state.auth.identity.user(p.owner_id).await.map_err(store)?.map(|u| u.username).unwrap_or_default();
            owners.insert(p.owner_id, n.clone());
            n
        }
    };
    Ok(Quota {
        id: p.id,
        reference: QuotaRef { id: p.id, name: p.name.clone(), owner_name },
        storage: hard_used(state, p).await?,
        creation_time: time(p.creation_time),
        update_time: time(p.update_time),
    })
}

fn sort_key(q: &Quota, key: &str) -> SortValue {
    match key {
        "used.storage" => SortValue::Int(q.storage.used.storage),
        "hard.storage" => SortValue::Int(q.storage.hard.storage),
        // RFC 3339 in UTC sorts as text in time order.
        "creation_time" => SortValue::Text(q.creation_time.clone()),
        "update_time" => SortValue::Text(q.update_time.clone()),
        _ => SortValue::Int(q.id),
    }
}

/// `GET /quotas[?reference=project&reference_id=N]`: the project quotas, for callers with
/// the system `quota:list` permission only: as in Harbor, not even a project's admin reads
/// its quota here.
pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "quota", "list")?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let reference = q.param("reference");
    if reference.is_some_and(|r| r != "project") {
        // Harbor has project quotas only.
        return Ok(page::<Quota>(&[], 0, None));
    }
    let reference_id = q
        .param("reference_id")
        .map(|v| v.parse::<i64>().map_err(|_| bad_request(format!("reference_id must be a project id, got {v:?}"))))
        .transpose()?;
    let projects = match reference_id {
        Some(id) => find_project(&state, &ProjectRef::Id(id)).await?.into_iter().collect(),
        None => state.auth.identity.list_projects(&ProjectFilter::default(), &ALL).await.map_err(store)?.0,
    };
    let mut owners = HashMap::new();
    let mut all = Vec::with_capacity(projects.len());
    for p in &projects {
        all.push(quota(&state, p, &mut owners).await?);
    }
    let total = all.len() as u64;
    let body = q.sort_and_page(all, sort_key);
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// `GET /quotas/{id}`: the quota of the project with that id, for callers with the system
/// `quota:read` permission only (Harbor's rule).
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    require_system(&caller, "quota", "read")?;
    let id: i64 = id.parse().map_err(|_| bad_request(format!("invalid quota id {id:?}")))?;
    let project =
        find_project(&state, &ProjectRef::Id(id)).await?.ok_or_else(|| not_found(format!("quota {id} not found")))?;
    Ok(json(StatusCode::OK, &quota(&state, &project, &mut HashMap::new()).await?))
}
