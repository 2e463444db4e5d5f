//! `/users`: local user accounts (goharbor/harbor `src/server/v2.0/handler/user.go`). Only
//! system administrators manage users; everyone may read and change their own profile and
//! password.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use berth_core::access::Principal;
use berth_core::identity::names::{ILLEGAL_USERNAME_CHARS, validate_username};
use berth_core::identity::password::{self, PasswordVersion};
use berth_core::identity::rbac::{ProjectAccess, Role, all_project_permissions};
use berth_core::store::identity::{NewUser, User, UserUpdate};

use super::dto::{
    PasswordReq, PermissionResp, UserCreationReq, UserProfile, UserResp, UserSearchRespItem, UserSysAdminFlag,
};
use super::errors::{bad_request, forbidden, identity, not_found, precondition, store};
use super::json::Body;
use super::query::{ALL, ListQuery, Match, Sort, SortValue, parse_bool};
use super::{Caller, audit, created, json, ok, page, parse_id, require_system};
use crate::AppState;
use crate::error::ApiError;

const SORTABLE: &[&str] = &["user_id", "username", "email", "realname", "creation_time", "update_time"];

pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "user", "list")?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let identity = &state.auth.identity;
    // `q=username=x` is exact, `q=username=~x` and the legacy `?username=x` are fuzzy.
    let (users, total) = match q.term("username") {
        Some(Match::Exact(name)) => {
            let user = identity.user_by_login(name).await.map_err(store)?.filter(|u| &u.username == name);
            let all: Vec<User> = user.into_iter().collect();
            let total = all.len() as u64;
            (q.sort_and_page(all, sort_key), total)
        }
        Some(Match::Fuzzy(name)) => fetch(&state, &q, Some(name)).await?,
        Some(other) => return Err(bad_request(format!("username does not support {} queries", other.describe()))),
        None => fetch(&state, &q, q.param("username")).await?,
    };
    let body: Vec<UserResp> = users.iter().map(UserResp::from).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// Users whose name contains `name`, in the requested order.
async fn fetch(state: &AppState, q: &ListQuery, name: Option<&str>) -> Result<(Vec<User>, u64), ApiError> {
    let identity = &state.auth.identity;
    if q.sorted_like(&Sort { key: "user_id".into(), desc: false }) {
        identity.list_users(name, &q.store_page()).await.map_err(store)
    } else {
        let (all, total) = identity.list_users(name, &ALL).await.map_err(store)?;
        Ok((q.sort_and_page(all, sort_key), total))
    }
}

fn sort_key(u: &User, key: &str) -> SortValue {
    match key {
        "username" => SortValue::Text(u.username.clone()),
        "email" => SortValue::Text(u.email.clone()),
        "realname" => SortValue::Text(u.realname.clone()),
        "creation_time" => SortValue::Int(u.creation_time),
        "update_time" => SortValue::Int(u.update_time),
        _ => SortValue::Int(u.id),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<UserCreationReq>,
) -> Result<Response, ApiError> {
    // Sign-up: with self-registration on, anyone not logged in may create a (non-admin)
    // account for themselves; logged-in users still need the permission.
    if !state.settings.get().self_registration || caller.0.is_authenticated() {
        require_system(&caller, "user", "create")?;
    }
    validate_username(&req.username).map_err(|e| bad_request(e.to_string()))?;
    validate_profile(Some(&req.email), Some(&req.realname), Some(&req.comment))?;
    password::check_policy(&req.password).map_err(|e| bad_request(e.to_string()))?;
    let (hash, salt) = hash_password(req.password).await?;
    let user = state
        .auth
        .identity
        .create_user(&NewUser {
            username: req.username,
            email: req.email,
            realname: req.realname,
            comment: req.comment,
            password: hash,
            salt,
            password_version: password::STRONGEST.to_string(),
            sysadmin: false,
        })
        .await
        .map_err(identity)?;
    audit(&state, &caller, 0, "create", "user", &user.username).await;
    Ok(created(&format!("/api/v2.0/users/{}", user.id)))
}

pub async fn current(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let Some(id) = caller.user_id() else {
        return Err(precondition("the current user is not available for a robot account"));
    };
    let user = load(&state, id).await?;
    Ok(json(StatusCode::OK, &UserResp::from(&user)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&user_id, "user_id")?;
    require_self_or_system(&caller, id, "read")?;
    let user = load(&state, id).await?;
    Ok(json(StatusCode::OK, &UserResp::from(&user)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Body(req): Body<UserProfile>,
) -> Result<Response, ApiError> {
    let id = parse_id(&user_id, "user_id")?;
    require_self_or_system(&caller, id, "update")?;
    validate_profile(req.email.as_deref(), req.realname.as_deref(), req.comment.as_deref())?;
    let update = UserUpdate { email: req.email, realname: req.realname, comment: req.comment, ..UserUpdate::default() };
    let user = state.auth.identity.update_user(id, &update).await.map_err(user_error(id))?;
    audit(&state, &caller, 0, "update", "user", &user.username).await;
    Ok(ok())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&user_id, "user_id")?;
    require_system(&caller, "user", "delete")?;
    if caller.user_id() == Some(id) || id == 1 {
        return Err(forbidden(format!("user with ID {id} cannot be deleted")));
    }
    let user = load(&state, id).await?;
    state.auth.identity.delete_user(id).await.map_err(user_error(id))?;
    audit(&state, &caller, 0, "delete", "user", &user.username).await;
    Ok(ok())
}

/// Own password: the old one is required. A system administrator may set anyone else's.
pub async fn password(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Body(req): Body<PasswordReq>,
) -> Result<Response, ApiError> {
    let id = parse_id(&user_id, "user_id")?;
    require_self_or_system(&caller, id, "update")?;
    let user = load(&state, id).await?;
    if caller.user_id() == Some(id) {
        // Harbor answers a missing old password like a wrong one: 403, not 400.
        let old = req.old_password.ok_or_else(|| forbidden("old_password is required to change your own password"))?;
        if !verify(old, &user).await? {
            return Err(forbidden("current password is incorrect"));
        }
    }
    password::check_policy(&req.new_password).map_err(|e| bad_request(e.to_string()))?;
    let new = req.new_password;
    if verify(new.clone(), &user).await? {
        return Err(bad_request("the new password is identical to the old password"));
    }
    let (hash, salt) = hash_password(new).await?;
    let update = UserUpdate { password: Some((hash, salt, password::STRONGEST.to_string())), ..UserUpdate::default() };
    state.auth.identity.update_user(id, &update).await.map_err(user_error(id))?;
    audit(&state, &caller, 0, "update", "user", &user.username).await;
    Ok(ok())
}

pub async fn sysadmin(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Body(req): Body<UserSysAdminFlag>,
) -> Result<Response, ApiError> {
    let id = parse_id(&user_id, "user_id")?;
    require_system(&caller, "user", "update")?;
    let update = UserUpdate { sysadmin: Some(req.sysadmin_flag), ..UserUpdate::default() };
    let user = state.auth.identity.update_user(id, &update).await.map_err(user_error(id))?;
    audit(&state, &caller, 0, "update", "user", &user.username).await;
    Ok(ok())
}

/// `GET /users/search?username=`: any logged-in caller may find users to add as members.
pub async fn search(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let q = ListQuery::parse(uri.query())?;
    let name = q.param("username").ok_or_else(|| bad_request("the query parameter username is required"))?;
    let (users, total) = state.auth.identity.list_users(Some(name), &q.store_page()).await.map_err(store)?;
    let body: Vec<UserSearchRespItem> =
        users.into_iter().map(|u| UserSearchRespItem { user_id: u.id, username: u.username }).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// `GET /users/current/permissions?scope=/project/<id>&relative=true`: what the caller may
/// do in a project (the portal's menus), or on the system (`scope=/system`).
pub async fn permissions(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let relative = match get("relative") {
        None | Some("") => false,
        Some(v) => parse_bool(v).ok_or_else(|| bad_request(format!("relative must be a boolean, got {v:?}")))?,
    };
    let scope = get("scope").unwrap_or("").trim_end_matches('/');
    let mut out = Vec::new();
    if let Some(id) = scope.strip_prefix("/project/") {
        let id = parse_id(id, "the project id in scope")?;
        if let Some(project) = state.auth.identity.project(id).await.map_err(store)? {
            let perms = match &caller.0 {
                Principal::User { sysadmin: true, .. } => all_project_permissions(),
                Principal::Robot { permissions, project_id, .. } => all_project_permissions()
                    .into_iter()
                    .filter(|p| {
                        berth_core::access::robot_allows(permissions, *project_id, &project, p.resource, p.action)
                    })
                    .collect(),
                _ => {
                    let role = state.auth.access.role(&caller.0, &project).await.map_err(store)?;
                    let roles: Vec<Role> = role.into_iter().collect();
                    ProjectAccess { sysadmin: false, roles: &roles, public: project.is_public() }.permissions()
                }
            };
            for p in perms {
                let resource =
                    if relative { p.resource.relative_name().to_string() } else { p.resource.path(project.id) };
                out.push(PermissionResp { resource, action: p.action.as_str().to_string() });
            }
        }
    } else if scope == "/system" {
        for (resource, action) in super::SYSTEM_POLICIES {
            if super::system_allows(&caller.0, resource, action) {
                let resource = if relative { resource.to_string() } else { format!("/system/{resource}") };
                out.push(PermissionResp { resource, action: action.to_string() });
            }
        }
    }
    Ok(json(StatusCode::OK, &out))
}

fn require_self_or_system(caller: &Caller, id: i64, action: &str) -> Result<(), ApiError> {
    if caller.user_id() == Some(id) { Ok(()) } else { require_system(caller, "user", action) }
}

async fn load(state: &AppState, id: i64) -> Result<User, ApiError> {
    state.auth.identity.user(id).await.map_err(store)?.ok_or_else(|| not_found(format!("user {id} not found")))
}

fn user_error(id: i64) -> impl Fn(berth_core::store::identity::IdentityError) -> ApiError {
    move |e| match e {
        berth_core::store::identity::IdentityError::NotFound => not_found(format!("user {id} not found")),
        e => identity(e),
    }
}

/// Harbor's profile rules (`validateUserProfile`): a well-formed e-mail, a real name of 1
/// to 255 characters without `,"~#$%`, a comment of at most 30 characters.
fn validate_profile(email: Option<&str>, realname: Option<&str>, comment: Option<&str>) -> Result<(), ApiError> {
    if let Some(email) = email {
        if email.is_empty() {
            return Err(bad_request("email can't be empty"));
        }
        if !email_ok(email) {
            return Err(bad_request(format!("email {email:?} is not a valid e-mail address")));
        }
    }
    if let Some(name) = realname {
        if name.is_empty() || name.len() > 255 {
            return Err(bad_request("realname must be 1 to 255 characters long"));
        }
        if name.chars().any(|c| ILLEGAL_USERNAME_CHARS.contains(c)) {
            return Err(bad_request("realname must not contain any of , \" ~ # $ %"));
        }
    }
    if comment.is_some_and(|c| c.chars().count() > 30) {
        return Err(bad_request("comment must be at most 30 characters long"));
    }
    Ok(())
}

/// `local@domain.tld`: no spaces or `<>()[]\,;:"` in the local part, a dotted domain
/// whose last label has at least two letters.
fn email_ok(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    let local_ok = !local.is_empty() && !local.chars().any(|c| c.is_whitespace() || "<>()[]\\,;:\"@".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// Hashes a new password with the strongest version, off the async threads (600,000
/// PBKDF2 iterations).
async fn hash_password(pw: String) -> Result<(String, String), ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = password::new_salt();
        (password::hash(&pw, &salt, password::STRONGEST), salt)
    })
    .await
    .map_err(|e| ApiError::internal_error(format!("password hashing task failed: {e}")))
}

async fn verify(pw: String, user: &User) -> Result<bool, ApiError> {
    let (salt, stored, version) =
        (user.salt.clone(), user.password.clone(), PasswordVersion::from_harbor(&user.password_version));
    tokio::task::spawn_blocking(move || !stored.is_empty() && password::verify(&pw, &salt, version, &stored))
        .await
        .map_err(|e| ApiError::internal_error(format!("password check task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.io", "first.last+tag@example.co.uk", "x_y@sub-domain.example.com"] {
            assert!(email_ok(ok), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.io", "a@b", "a b@c.io", "a@b.c", "a@b..io", "a@b.i0", "a<b@c.io"] {
            assert!(!email_ok(bad), "{bad}");
        }
    }

    #[test]
    fn profiles() {
        assert!(validate_profile(Some("a@b.io"), Some("A B"), Some("")).is_ok());
        assert!(validate_profile(None, None, None).is_ok());
        assert!(validate_profile(Some(""), None, None).unwrap_err().message.contains("email"));
        assert!(validate_profile(None, Some(""), None).unwrap_err().message.contains("realname"));
        assert!(validate_profile(None, Some("a#b"), None).unwrap_err().message.contains("realname"));
        assert!(validate_profile(None, None, Some(&"c".repeat(31))).unwrap_err().message.contains("comment"));
    }
}
