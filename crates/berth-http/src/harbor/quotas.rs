//! `/quotas` (goharbor/harbor `src/server/v2.0/handler/quota.go`). Berth keeps one quota
//! per project: its id is the project's id, `used.storage` the bytes of the distinct live
//! blobs and manifests of the project's repositories (its stored usage, see `berth_core::quota`),
//! `hard.storage` the project's `storage_limit` metadata if set, else -1 (unlimited).
//! The stores enforce the limit when a blob is committed or mounted.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use berth_core::quota::{self, STORAGE_LIMIT};
use berth_core::store::identity::{Project, ProjectFilter};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::dto::time;
use super::errors::{bad_request, identity, not_found, store};
use super::json::Body;
use super::query::{ALL, ListQuery, SortValue};
use super::{Caller, ProjectRef, find_project, json, ok, page, require_system};
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
    Ok(quota::limit_of(p.metadata.get(STORAGE_LIMIT).map(String::as_str)))
}

/// Checks a storage limit from a request: -1 or a positive number of bytes.
pub fn check_limit(field: &str, limit: i64) -> Result<i64, ApiError> {
    if quota::valid_limit(limit) {
        Ok(limit)
    } else {
        Err(bad_request(format!("{field} must be -1 (unlimited) or a positive number of bytes, got {limit}")))
    }
}

/// Harbor's `QuotaUpdateReq`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdateReq {
    hard: Option<BTreeMap<String, serde_json::Value>>,
}

/// `PUT /quotas/{id}`: sets the project's storage limit (system `quota:update` only).
/// Lowering it below the current usage is allowed, as in Harbor: pushes that add
/// storage are then refused until usage falls.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<QuotaUpdateReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "quota", "update")?;
    let id: i64 = id.parse().map_err(|_| bad_request(format!("invalid quota id {id:?}")))?;
    let hard = req.hard.ok_or_else(|| bad_request("hard: the hard limits are required"))?;
    let mut limit = None;
    for (k, v) in hard {
        if k != "storage" {
            return Err(bad_request(format!("hard.{k}: unknown resource; only storage is supported")));
        }
        let n = v.as_i64().ok_or_else(|| bad_request(format!("hard.storage must be an integer, got {v}")))?;
        limit = Some(check_limit("hard.storage", n)?);
    }
    let limit = limit.ok_or_else(|| bad_request("hard.storage is required"))?;
    let project =
        find_project(&state, &ProjectRef::Id(id)).await?.ok_or_else(|| not_found(format!("quota {id} not found")))?;
    let md = BTreeMap::from([(STORAGE_LIMIT.to_string(), limit.to_string())]);
    state.auth.identity.update_project_metadata(project.id, &md).await.map_err(identity)?;
    Ok(ok())
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

/// `GET /quotas[?reference=project&reference_id=N[,M…]]`: the project quotas, for callers with
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
    let projects = match q.param("reference_id") {
        Some(v) => {
            let mut projects = Vec::new();
            for id in reference_ids(v)? {
                projects.extend(find_project(&state, &ProjectRef::Id(id)).await?);
            }
            projects
        }
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

/// The most project ids one `reference_id` list takes.
const MAX_REFERENCE_IDS: usize = 100;

/// `reference_id`: a project id (Harbor's), or, as a Berth extension, a comma-separated
/// list of them (the web UI asks for one page of projects' quotas in one request).
fn reference_ids(v: &str) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::new();
    for part in v.split(',') {
        let id = part.trim().parse::<i64>().map_err(|_| {
            bad_request(format!("reference_id must be a project id or a comma-separated list of them, got {v:?}"))
        })?;
        if !ids.contains(&id) {
            if ids.len() == MAX_REFERENCE_IDS {
                return Err(bad_request(format!("reference_id lists at most {MAX_REFERENCE_IDS} project ids")));
            }
            ids.push(id);
        }
    }
    Ok(ids)
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
