//! `/projects/{p}/members` (goharbor/harbor `src/server/v2.0/handler/member.go`,
//! `src/controller/member/controller.go`). Users only; groups are not supported.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use berth_core::identity::rbac::{Action, Resource, Role};
use berth_core::store::identity::{IdentityError, Member, Project};

use super::dto::{ProjectMember, ProjectMemberEntity, RoleRequest};
use super::errors::{bad_request, conflict, identity, not_found, store};
use super::json::Body;
use super::query::ListQuery;
use super::{Caller, ProjectRef, audit, created, json, ok, page, parse_id, require_project};
use crate::AppState;
use crate::error::ApiError;

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Member, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    let (members, total) =
        state.auth.identity.members(project.id, q.param("entityname"), &q.store_page()).await.map_err(store)?;
    let body: Vec<ProjectMemberEntity> = members.iter().map(ProjectMemberEntity::from).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// Adds a user by `member_user.user_id` or `member_user.username`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
    Body(req): Body<ProjectMember>,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Member, Action::Create).await?;
    if req.member_group.is_some() {
        return Err(bad_request("group members are not supported; add users with member_user"));
    }
    let role = role(req.role_id)?;
    let identity_store = &state.auth.identity;
    let user = match req.member_user {
        Some(u) if u.user_id.is_some_and(|id| id > 0) => {
            let id = u.user_id.unwrap_or_default();
            identity_store.user(id).await.map_err(store)?.ok_or_else(|| bad_request(format!("user {id} not found")))?
        }
        Some(u) if u.username.as_deref().is_some_and(|n| !n.is_empty()) => {
            let name = u.username.unwrap_or_default();
            identity_store
                .user_by_login(&name)
                .await
                .map_err(store)?
                .filter(|x| x.username == name)
                .ok_or_else(|| not_found(format!("user {name} is not found")))?
        }
        _ => return Err(bad_request("member_user with a user_id or a username is required")),
    };
    let member = identity_store.add_member(project.id, user.id, role.id()).await.map_err(|e| match e {
        IdentityError::Conflict { .. } => {
            conflict(format!("{} is already a member of {}", user.username, project.name))
        }
        e => identity(e),
    })?;
    audit(&state, &caller, project.id, "create", "member", &member.username).await;
    Ok(created(&format!("/api/v2.0/projects/{p}/members/{}", member.id)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Member, Action::Read).await?;
    let member = load(&state, &project, &mid).await?;
    Ok(json(StatusCode::OK, &ProjectMemberEntity::from(&member)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, mid)): Path<(String, String)>,
    headers: HeaderMap,
    Body(req): Body<RoleRequest>,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Member, Action::Update).await?;
    let role = role(req.role_id)?;
    let mid = parse_id(&mid, "mid")?;
    let member = state
        .auth
        .identity
        .update_member_role(project.id, mid, role.id())
        .await
        .map_err(member_error(&project, mid))?;
    audit(&state, &caller, project.id, "update", "member", &member.username).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Member, Action::Delete).await?;
    let member = load(&state, &project, &mid).await?;
    state.auth.identity.remove_member(project.id, member.id).await.map_err(member_error(&project, member.id))?;
    audit(&state, &caller, project.id, "delete", "member", &member.username).await;
    Ok(ok())
}

fn role(id: i64) -> Result<Role, ApiError> {
    Role::from_id(id).ok_or_else(|| {
        bad_request(format!(
            "invalid role_id {id}: use 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limitedGuest)"
        ))
    })
}

async fn load(state: &AppState, project: &Project, mid: &str) -> Result<Member, ApiError> {
    let mid = parse_id(mid, "mid")?;
    state
        .auth
        .identity
        .member(project.id, mid)
        .await
        .map_err(store)?
        .ok_or_else(|| not_found(format!("member {mid} of project {} not found", project.name)))
}

fn member_error(project: &Project, mid: i64) -> impl Fn(IdentityError) -> ApiError {
    let name = project.name.clone();
    move |e| match e {
        IdentityError::NotFound => not_found(format!("member {mid} of project {name} not found")),
        e => identity(e),
    }
}
