//! `/projects`, their summary and metadata (goharbor/harbor `src/server/v2.0/handler/project.go`,
//! `project_metadata.go`).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use berth_core::access::Principal;
use berth_core::identity::names::validate_project_name;
use berth_core::identity::rbac::{Action, Resource, Role};
use berth_core::quota::STORAGE_LIMIT;
use berth_core::settings::CreationRestriction;
use berth_core::store::identity::{IdentityError, NewProject, Project, ProjectFilter};

use super::dto::{CveAllowlist, ProjectDeletable, ProjectReq, ProjectResp, ProjectSummary};
use super::errors::{bad_request, conflict, forbidden, identity, not_found, store};
use super::json::Body;
use super::query::{ALL, ListQuery, Match, Sort, SortValue, parse_bool};
use super::quotas;
use super::{Caller, ProjectRef, audit, created, json, ok, page, require_project, system_allows};
use crate::AppState;
use crate::error::ApiError;

const SORTABLE: &[&str] = &["name", "project_id", "creation_time", "update_time", "owner_id"];

/// Metadata whose values are booleans (stored as `"true"` / `"false"`).
const BOOL_KEYS: &[&str] = &[
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
];
/// Metadata that only proxy-cache projects have (Harbor drops it for others).
const PROXY_KEYS: &[&str] =
    &["proxy_speed_kb", "max_upstream_conn", "proxy_cache_filter_pattern", "proxy_cache_filter_kind"];
const SEVERITIES: &[&str] = &["none", "low", "medium", "high", "critical"];

pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let identity = &state.auth.identity;
    let mut filter = ProjectFilter::default();
    match q.term("name") {
        Some(Match::Exact(n)) => (filter.name, filter.name_exact) = (Some(n.clone()), true),
        Some(Match::Fuzzy(n)) => filter.name = Some(n.clone()),
        Some(m) => return Err(bad_request(format!("name does not support {} queries", m.describe()))),
        None => filter.name = q.param("name").map(String::from),
    }
    let public = match q.term("public") {
        Some(Match::Exact(v)) => Some(v.as_str()),
        Some(m) => return Err(bad_request(format!("public does not support {} queries", m.describe()))),
        None => q.param("public"),
    };
    let public = public
        .map(|v| parse_bool(v).ok_or_else(|| bad_request(format!("public must be true or false, got {v:?}"))))
        .transpose()?;
    filter.public = public;
    let owner = match q.param("owner") {
        Some(name) => match identity.user_by_login(name).await.map_err(store)?.filter(|u| u.username == name) {
            Some(u) => Some(u.id),
            None => return Ok(page::<ProjectResp>(&[], 0, None)),
        },
        None => None,
    };
    // Who sees what: administrators everything; users their projects and public ones;
    // robots the projects their permissions name; anonymous callers public projects.
    let mut names: Option<HashSet<String>> = None;
    match &caller.0 {
        Principal::User { sysadmin: true, .. } => {}
        Principal::User { id, .. } => {
            filter.member_user_id = Some(*id);
            filter.include_public = public != Some(false);
        }
        Principal::Robot { permissions, .. } => {
            if !permissions.iter().any(|p| p.kind == "project" && p.namespace == "*") {
                names = Some(permissions.iter().filter(|p| p.kind == "project").map(|p| p.namespace.clone()).collect());
            }
        }
        Principal::Anonymous => {
            if public == Some(false) {
                return Ok(page::<ProjectResp>(&[], 0, None));
            }
            filter.public = Some(true);
        }
    }
    let store_order = Sort { key: "name".into(), desc: false };
    let (projects, total) = if names.is_none() && owner.is_none() && q.sorted_like(&store_order) {
        identity.list_projects(&filter, &q.store_page()).await.map_err(store)?
    } else {
        // Filters and orders the store does not have: over all matching rows.
        let (all, _) = identity.list_projects(&filter, &ALL).await.map_err(store)?;
        let all: Vec<Project> = all
            .into_iter()
            .filter(|p| owner.is_none_or(|o| p.owner_id == o))
            .filter(|p| names.as_ref().is_none_or(|n| n.contains(&p.name) || (public != Some(false) && p.is_public())))
            .collect();
        let total = all.len() as u64;
        (q.sort_and_page(all, sort_key), total)
    };
    let mut owners = HashMap::new();
    let mut body = Vec::with_capacity(projects.len());
    for p in &projects {
        body.push(project_resp(&state, &caller, p, &mut owners).await?);
    }
    Ok(page(&body, total, q.link(uri.path(), total)))
}

fn sort_key(p: &Project, key: &str) -> SortValue {
    match key {
        "project_id" => SortValue::Int(p.id),
        "creation_time" => SortValue::Int(p.creation_time),
        "update_time" => SortValue::Int(p.update_time),
        "owner_id" => SortValue::Int(p.owner_id),
        _ => SortValue::Text(p.name.clone()),
    }
}

/// Harbor's project JSON, with the caller's role and the repository count.
pub(super) async fn project_resp(
    state: &AppState,
    caller: &Caller,
    p: &Project,
    owners: &mut HashMap<i64, String>,
) -> Result<ProjectResp, ApiError> {
    let identity = &state.auth.identity;
    let owner_name = match owners.get(&p.owner_id) {
        Some(n) => n.clone(),
        None => {
            let n = identity.user(p.owner_id).await.map_err(store)?.map(|u| u.username).unwrap_or_default();
            owners.insert(p.owner_id, n.clone());
            n
        }
    };
    let role = match caller.user_id() {
        Some(uid) => identity.member_role(p.id, uid).await.map_err(store)?,
        None => None,
    };
    Ok(ProjectResp {
        project_id: p.id,
        name: p.name.clone(),
        owner_id: p.owner_id,
        owner_name,
        creation_time: super::dto::time(p.creation_time),
        update_time: super::dto::time(p.update_time),
        repo_count: identity.project_repository_count(&p.name).await.map_err(store)?,
        current_user_role_id: role,
        current_user_role_ids: role.into_iter().collect(),
        metadata: visible_metadata(p),
        registry_id: registry_id(p),
        cve_allowlist: super::cve_allowlist::to_json(
            &berth_core::cve_allowlist::load(state.policies.as_ref(), p.id).await.map_err(store)?,
        ),
    })
}

/// `HEAD /projects?project_name=`: 200 if the name is taken, 404 if not.
pub async fn head(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let q = ListQuery::parse(uri.query())?;
    let name = q.param("project_name").ok_or_else(|| bad_request("the query parameter project_name is required"))?;
    match state.auth.identity.project_by_name(name).await.map_err(store)? {
        Some(_) => Ok(ok()),
        None => Err(not_found(format!("project {name} not found"))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(req): Body<ProjectReq>,
) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let owner_id = match &caller.0 {
        Principal::User { id, .. } => *id,
        Principal::Robot { project_id: 0, .. } if system_allows(&caller.0, "project", "create") => {
            first_sysadmin(&state).await?
        }
        _ => return Err(forbidden("only system level robots with project create permission can create projects")),
    };
    if state.settings.get().project_creation_restriction == CreationRestriction::AdminOnly
        && !system_allows(&caller.0, "project", "create")
    {
        return Err(forbidden("Only system admin can create project (project_creation_restriction is adminonly)"));
    }
    let name = req.project_name.ok_or_else(|| bad_request("invalid request body: missing field `project_name`"))?;
    validate_project_name(&name).map_err(|e| bad_request(e.to_string()))?;
    let registry_id = match req.registry_id {
        Some(id) => Some(proxy_registry(&state, &caller, id).await?),
        None => None,
    };
    let allowlist = check_allowlist(req.cve_allowlist.as_ref(), None)?;
    let mut metadata = project_metadata(req.metadata.unwrap_or_default(), None)?;
    if let Some(id) = registry_id {
        metadata.insert(berth_proxy::REGISTRY_ID.into(), id.to_string());
    }
    if !metadata.contains_key("public") {
        metadata.insert("public".into(), req.public.unwrap_or(false).to_string());
    }
    // Harbor: the quota comes from `storage_per_project`; only callers who may change
    // quotas choose another one.
    let limit = match req.storage_limit {
        Some(l) if system_allows(&caller.0, "quota", "update") => quotas::check_limit("storage_limit", l)?,
        _ => state.settings.get().storage_per_project,
    };
    if limit != -1 {
        metadata.insert(STORAGE_LIMIT.into(), limit.to_string());
    }
    let project =
        state.auth.identity.create_project(&NewProject { name: name.clone(), owner_id, metadata }).await.map_err(
            |e| match e {
                IdentityError::Conflict { .. } => conflict(format!("the project named {name} already exists")),
                e => identity(e),
            },
        )?;
    state.auth.caches.forget_project(&project.name);
    if let Some(list) = allowlist {
        berth_core::cve_allowlist::save(state.policies.as_ref(), project.id, &list).await.map_err(store)?;
    }
    state.proxy.forget(&project.name);
    audit(&state, &caller, project.id, "create", "project", &project.name).await;
    let by_name = headers
        .get("x-resource-name-in-location")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let key = if by_name { project.name.clone() } else { project.id.to_string() };
    Ok(created(&format!("/api/v2.0/projects/{key}")))
}

/// The registry endpoint a new proxy-cache project caches: only system administrators
/// create them, and the endpoint must exist (Harbor's rules).
async fn proxy_registry(state: &AppState, caller: &Caller, id: i64) -> Result<i64, ApiError> {
    if !system_allows(&caller.0, "registry", "create") {
        return Err(forbidden("Only system admin can create proxy cache project"));
    }
    if id <= 0 {
        return Err(bad_request(format!("{id} is invalid value of registry_id, it should be greater than 0")));
    }
    match state.replication.registries.get(id).await {
        Ok(Some(_)) => Ok(id),
        Ok(None) => Err(bad_request(format!("registry_id: registry {id} not found"))),
        Err(e) => Err(ApiError::internal_error(e.to_string())),
    }
}

/// The owner of projects that robots create: the first system administrator.
async fn first_sysadmin(state: &AppState) -> Result<i64, ApiError> {
    let (users, _) = state.auth.identity.list_users(None, &ALL).await.map_err(store)?;
    users
        .iter()
        .find(|u| u.sysadmin)
        .map(|u| u.id)
        .ok_or_else(|| ApiError::internal_error("no system administrator to own the project".into()))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Project, Action::Read).await?;
    let body = project_resp(&state, &caller, &project, &mut HashMap::new()).await?;
    Ok(json(StatusCode::OK, &body))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
    Body(req): Body<ProjectReq>,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Project, Action::Update).await?;
    if let Some(id) = req.registry_id
        && registry_id(&project) != Some(id)
    {
        return Err(bad_request(
            "registry_id: a project's registry cannot be changed (only set when a proxy cache project is created)",
        ));
    }
    let allowlist = check_allowlist(req.cve_allowlist.as_ref(), Some(project.id))?;
    let mut metadata = project_metadata(req.metadata.unwrap_or_default(), Some(&project))?;
    if let Some(public) = req.public {
        metadata.entry("public".into()).or_insert_with(|| public.to_string());
    }
    if let Some(list) = allowlist {
        berth_core::cve_allowlist::save(state.policies.as_ref(), project.id, &list).await.map_err(store)?;
        state.pull_policy.forget(&project.name);
    }
    if !metadata.is_empty() {
        // Pull policies (content trust, prevent_vul) change now on this instance.
        state.pull_policy.forget(&project.name);
        state.auth.identity.update_project_metadata(project.id, &metadata).await.map_err(identity)?;
    }
    audit(&state, &caller, project.id, "update", "project", &project.name).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Project, Action::Delete).await?;
    state.auth.identity.delete_project(project.id).await.map_err(identity)?;
    state.auth.caches.forget_project(&project.name);
    state.proxy.forget(&project.name);
    forget_policies(&state, &project).await;
    audit(&state, &caller, project.id, "delete", "project", &project.name).await;
    Ok(ok())
}

/// What a deleted project leaves outside its own rows: its retention policy and schedule,
/// its webhook policies, its scanner choice. The project is gone already, so a failure here is logged (what is
/// left behind refers to no project and does nothing but fail its next run).
async fn forget_policies(state: &AppState, project: &Project) {
    if let Some(id) = project.metadata.get("retention_id").and_then(|v| v.parse::<i64>().ok()) {
        if let Err(e) = state.jobs.store().delete_schedule(berth_retention::VENDOR_TYPE, id).await {
            tracing::warn!(error = %e, project = %project.name, "could not remove the retention schedule");
        }
        if let Err(e) = state.policies.delete_policy(berth_retention::POLICY_KIND, id).await {
            tracing::warn!(error = %e, project = %project.name, "could not remove the retention policy");
        }
    }
    match state.webhooks.store.webhook_policies(project.id).await {
        Ok(policies) => {
            for p in policies {
                if let Err(e) = state.webhooks.store.delete_webhook_policy(p.id).await {
                    tracing::warn!(error = %e, project = %project.name, "could not remove a webhook policy");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, project = %project.name, "could not list webhook policies"),
    }
    if let Err(e) = state.scans.scanners.forget_project(project.id).await {
        tracing::warn!(error = %e, project = %project.name, "could not remove the project's scanner choice");
    }
}

/// Repository count, and member counts per role for callers who may list members.
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Project, Action::Read).await?;
    let identity = &state.auth.identity;
    let mut summary = ProjectSummary {
        repo_count: identity.project_repository_count(&project.name).await.map_err(store)?,
        ..ProjectSummary::default()
    };
    if state.auth.access.allowed(&caller.0, &project, Resource::Member, Action::List).await.map_err(store)? {
        let (members, _) = identity.members(project.id, None, &ALL).await.map_err(store)?;
        let count = |r: Role| Some(members.iter().filter(|m| m.role_id == r.id()).count() as u64);
        summary.project_admin_count = count(Role::ProjectAdmin);
        summary.maintainer_count = count(Role::Maintainer);
        summary.developer_count = count(Role::Developer);
        summary.guest_count = count(Role::Guest);
        summary.limited_guest_count = count(Role::LimitedGuest);
    }
    if state.auth.access.allowed(&caller.0, &project, Resource::Quota, Action::Read).await.map_err(store)? {
        summary.quota = Some(quotas::hard_used(&state, &project).await?);
    }
    Ok(json(StatusCode::OK, &summary))
}

/// `GET /projects/{project}/_deletable`: whether a delete would succeed now, for callers
/// who may delete the project (Harbor's rule: not while it holds repositories).
pub async fn deletable(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Project, Action::Delete).await?;
    let repos = state.auth.identity.project_repository_count(&project.name).await.map_err(store)?;
    let body = if repos > 0 {
        ProjectDeletable { deletable: false, message: "the project contains repositories, can not be deleted".into() }
    } else {
        ProjectDeletable { deletable: true, message: String::new() }
    };
    Ok(json(StatusCode::OK, &body))
}

// --- metadata ---

pub async fn metadata_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Metadata, Action::Read).await?;
    Ok(json(StatusCode::OK, &visible_metadata(&project)))
}

/// The metadata Harbor shows: the storage limit is kept as metadata but is the quota's
/// (`/quotas`), not a project setting.
fn visible_metadata(p: &Project) -> BTreeMap<String, String> {
    p.metadata
        .iter()
        .filter(|(k, _)| k.as_str() != STORAGE_LIMIT && k.as_str() != berth_proxy::REGISTRY_ID)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The registry endpoint a proxy-cache project caches (kept in its metadata).
pub(super) fn registry_id(p: &Project) -> Option<i64> {
    p.metadata.get(berth_proxy::REGISTRY_ID).and_then(|v| v.parse().ok())
}

/// Adds one key (409 if it is already set).
pub async fn metadata_add(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
    Body(body): Body<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Metadata, Action::Create).await?;
    let mut pairs = body.into_iter();
    let (Some((key, value)), None) = (pairs.next(), pairs.next()) else {
        return Err(bad_request("exactly one metadata key/value pair is allowed"));
    };
    let value = metadata_value(&key, &value)?;
    if project.metadata.contains_key(&key) {
        return Err(conflict(format!("metadata {key} of project {} already exists", project.name)));
    }
    set_metadata(&state, &caller, &project, key, value).await
}

/// Stores one validated key for `metadata_add` and `metadata_update`, audited.
async fn set_metadata(
    state: &AppState,
    caller: &Caller,
    project: &Project,
    key: String,
    value: String,
) -> Result<Response, ApiError> {
    // Pull policies (content trust, prevent_vul) change now on this instance.
    state.pull_policy.forget(&project.name);
    state.auth.identity.update_project_metadata(project.id, &BTreeMap::from([(key, value)])).await.map_err(identity)?;
    audit(state, caller, project.id, "update", "project", &project.name).await;
    Ok(ok())
}

pub async fn metadata_get(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Metadata, Action::Read).await?;
    let value = visible_metadata(&project).remove(&name).ok_or_else(|| metadata_missing(&project, &name))?;
    Ok(json(StatusCode::OK, &BTreeMap::from([(name.clone(), value)])))
}

/// Changes one existing key; the body is `{"<name>": "<value>"}`.
pub async fn metadata_update(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, name)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Metadata, Action::Update).await?;
    if body.len() != 1 {
        return Err(bad_request(format!("the request body must be {{\"{name}\": \"<value>\"}}")));
    }
    let value = body.get(&name).ok_or_else(|| bad_request(format!("the request body must set {name}")))?;
    let value = metadata_value(&name, value)?;
    if !project.metadata.contains_key(&name) {
        return Err(metadata_missing(&project, &name));
    }
    set_metadata(&state, &caller, &project, name, value).await
}

pub async fn metadata_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Metadata, Action::Delete).await?;
    // Pull policies (content trust, prevent_vul) change now on this instance.
    state.pull_policy.forget(&project.name);
    if name == STORAGE_LIMIT || name == berth_proxy::REGISTRY_ID {
        return Err(metadata_missing(&project, &name));
    }
    state.auth.identity.delete_project_metadata(project.id, &name).await.map_err(|e| match e {
        IdentityError::NotFound => metadata_missing(&project, &name),
        e => identity(e),
    })?;
    audit(&state, &caller, project.id, "update", "project", &project.name).await;
    Ok(ok())
}

fn metadata_missing(project: &Project, name: &str) -> ApiError {
    not_found(format!("metadata {name} of project {} not found", project.name))
}

/// One key of the metadata API, validated and normalized as Harbor does.
fn metadata_value(key: &str, value: &str) -> Result<String, ApiError> {
    if BOOL_KEYS.contains(&key) {
        return parse_bool(value)
            .map(|b| b.to_string())
            .ok_or_else(|| bad_request(format!("invalid value for {key}: {value:?}; use \"true\" or \"false\"")));
    }
    if key == "severity" {
        let v = value.to_ascii_lowercase();
        return if SEVERITIES.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(bad_request(format!("invalid value for severity: {value:?}; use one of {}", SEVERITIES.join(", "))))
        };
    }
    if PROXY_KEYS.contains(&key) {
        return Err(bad_request(format!("{key} applies to proxy cache projects only, which are not supported")));
    }
    Err(bad_request(format!("unknown project metadata key {key:?}")))
}

/// The `metadata` of a create or update body: validated, proxy-cache keys dropped (as
/// Harbor does for ordinary projects), `retention_id` only if unchanged.
fn project_metadata(
    md: BTreeMap<String, String>,
    existing: Option<&Project>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in md {
        if PROXY_KEYS.contains(&k.as_str()) {
            continue;
        }
        if k == "retention_id" {
            if existing.and_then(|p| p.metadata.get("retention_id")) == Some(&v) {
                continue;
            }
            return Err(bad_request("metadata.retention_id cannot be set through the project API"));
        }
        let v = metadata_value(&k, &v).map_err(|e| bad_request(format!("metadata.{k}: {}", e.message)))?;
        out.insert(k, v);
    }
    Ok(out)
}

/// The `cve_allowlist` of a create (`project_id` `None`) or update body, validated.
fn check_allowlist(
    a: Option<&CveAllowlist>,
    project_id: Option<i64>,
) -> Result<Option<berth_core::cve_allowlist::CveAllowlist>, ApiError> {
    let Some(a) = a else { return Ok(None) };
    // A new project has no id yet: whatever the body says (0 in Harbor's portal) is ignored.
    let id = project_id.unwrap_or_else(|| a.project_id.unwrap_or(0));
    super::cve_allowlist::parse(a, "cve_allowlist.", id).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_rules() {
        assert_eq!(metadata_value("public", "True").unwrap(), "true");
        assert_eq!(metadata_value("auto_scan", "0").unwrap(), "false");
        assert!(metadata_value("public", "yes").unwrap_err().message.contains("public"));
        assert_eq!(metadata_value("severity", "HIGH").unwrap(), "high");
        assert!(metadata_value("severity", "extreme").is_err());
        assert!(metadata_value("proxy_speed_kb", "1").is_err());
        assert!(metadata_value("color", "red").unwrap_err().message.contains("color"));

        let md = BTreeMap::from([("public".to_string(), "1".to_string()), ("proxy_speed_kb".into(), "5".into())]);
        assert_eq!(project_metadata(md, None).unwrap(), BTreeMap::from([("public".to_string(), "true".to_string())]));
        let md = BTreeMap::from([("retention_id".to_string(), "3".to_string())]);
        assert!(project_metadata(md, None).is_err());
        let md = BTreeMap::from([("public".to_string(), "maybe".to_string())]);
        assert!(project_metadata(md, None).unwrap_err().message.contains("metadata.public"));
    }
}
