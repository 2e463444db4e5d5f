//! `/robots`: robot accounts v2 (goharbor/harbor `src/server/v2.0/handler/robot.go`).
//! Project-level robots are `robot$<project>+<name>` and managed by project admins;
//! system-level robots are `robot$<name>` and managed by system administrators. The secret
//! is stored hashed and shown only by create and refresh.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use berth_core::access::Principal;
use berth_core::identity::names::validate_robot_name;
use berth_core::identity::password::{self, RobotSecret};
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::{IdentityError, Robot, RobotAccess};

use super::dto::{
    RobotCreate, RobotCreated, RobotPermission, RobotResp, RobotSec, RobotSecResp, RobotUpdate, flatten_permissions,
};
use super::errors::{bad_request, conflict, forbidden, identity, location, not_found, store};
use super::json::Body;
use super::query::{ALL, ListQuery, Match, Sort, SortValue};
use super::{Caller, ProjectRef, SYSTEM_POLICIES, audit, json, ok, page, parse_id, require_project, require_system};
use crate::AppState;
use crate::auth::unix_now;
use crate::error::ApiError;

const SORTABLE: &[&str] = &["name", "id", "creation_time", "update_time", "expires_at"];
const SYSTEM: &str = "system";
const PROJECT: &str = "project";
const DAY: i64 = 86_400;

/// `GET /robots` lists system-level robots; `?q=Level=project,ProjectID=<id>` a project's.
pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let level = match q.term("Level") {
        None => SYSTEM,
        Some(Match::Exact(l)) if l == SYSTEM || l == PROJECT => l.as_str(),
        Some(_) => return Err(bad_request("bad request error level input: use Level=system or Level=project")),
    };
    let project_id = if level == PROJECT {
        let pid = match q.term("ProjectID") {
            Some(Match::Exact(v)) => v.parse::<i64>().ok().filter(|id| *id > 0),
            Some(_) => None,
            None => return Err(bad_request("must with project ID when to query project robots")),
        };
        let pid = pid.ok_or_else(|| bad_request("ProjectID must be a positive integer"))?;
        require_project(&state, &caller, &ProjectRef::Id(pid), Resource::Robot, Action::List).await?;
        pid
    } else {
        require_system(&caller, "robot", "list")?;
        0
    };
    let name = match q.term("name") {
        None => None,
        Some(m @ (Match::Exact(_) | Match::Fuzzy(_))) => Some(m.clone()),
        Some(m) => return Err(bad_request(format!("name does not support {} queries", m.describe()))),
    };
    let identity = &state.auth.identity;
    let (robots, total) = if name.is_none() && q.sorted_like(&Sort { key: "name".into(), desc: false }) {
        identity.list_robots(Some(project_id), &q.store_page()).await.map_err(store)?
    } else {
        let (all, _) = identity.list_robots(Some(project_id), &ALL).await.map_err(store)?;
        let all: Vec<Robot> = all
            .into_iter()
            .filter(|r| match &name {
                Some(Match::Exact(n)) => full_name(&state, r) == *n || r.name == *n,
                Some(Match::Fuzzy(n)) => r.name.contains(n.as_str()),
                _ => true,
            })
            .collect();
        let total = all.len() as u64;
        (q.sort_and_page(all, sort_key), total)
    };
    let prefix = state.settings.get().robot_name_prefix.clone();
    let body: Vec<RobotResp> = robots.iter().map(|r| RobotResp::new(r, &prefix)).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

fn sort_key(r: &Robot, key: &str) -> SortValue {
    match key {
        "id" => SortValue::Int(r.id),
        "creation_time" => SortValue::Int(r.creation_time),
        "update_time" => SortValue::Int(r.update_time),
        "expires_at" => SortValue::Int(r.expires_at),
        _ => SortValue::Text(r.name.clone()),
    }
}

/// The name robots log in with: the current `robot_name_prefix` and the stored name.
fn full_name(state: &AppState, r: &Robot) -> String {
    format!("{}{}", state.settings.get().robot_name_prefix, r.name)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<RobotCreate>,
) -> Result<Response, ApiError> {
    validate_robot_name(&req.name)
        .map_err(|_| bad_request("robot name is not in lower case or contains illegal characters"))?;
    // No duration given: the system default (`robot_token_duration`), as Harbor's portal
    // pre-fills it.
    let duration = req.duration.unwrap_or_else(|| state.settings.get().robot_token_duration);
    validate(duration, &req.level, &req.permissions)?;
    let (project_id, stored_name) = if req.level == PROJECT {
        let ns = ProjectRef::Name(req.permissions[0].namespace.clone());
        let project = require_project(&state, &caller, &ns, Resource::Robot, Action::Create).await?;
        (project.id, format!("{}+{}", project.name, req.name))
    } else {
        require_system(&caller, "robot", "create")?;
        (0, req.name.clone())
    };
    let permissions = flatten_permissions(&req.permissions);
    if let Principal::Robot { permissions: own, name, .. } = &caller.0
        && !within(&permissions, own)
    {
        return Err(forbidden(format!(
            "permission scope is invalid: it must be equal to or more restrictive than the creator robot's permissions ({name})"
        )));
    }
    let salt = password::new_salt();
    let (hash, plaintext) = match req.secret.filter(|s| !s.is_empty()) {
        Some(s) => {
            password::check_policy(&s).map_err(|e| bad_request(e.to_string()))?;
            (password::hash_robot_secret(&s, &salt), s)
        }
        None => {
            let s = RobotSecret::generate(&salt);
            (s.hash.clone(), s.plaintext.clone())
        }
    };
    let now = unix_now();
    let robot = state
        .auth
        .identity
        .create_robot(&Robot {
            id: 0,
            name: stored_name,
            description: req.description,
            project_id,
            secret: hash,
            salt,
            expires_at: expiry(now, duration),
            duration_days: duration,
            disabled: req.disable,
            level: req.level,
            permissions,
            creation_time: now,
            update_time: now,
        })
        .await
        .map_err(|e| match e {
            IdentityError::Conflict { value, .. } => {
                conflict(format!("robot account {}{value} already exists", state.settings.get().robot_name_prefix))
            }
            e => identity(e),
        })?;
    audit(&state, &caller, robot.project_id, "create", "robot", &full_name(&state, &robot)).await;
    let body = RobotCreated {
        id: robot.id,
        name: full_name(&state, &robot),
        secret: plaintext,
        creation_time: super::dto::time(robot.creation_time),
        expires_at: robot.expires_at,
    };
    let mut res = json(StatusCode::CREATED, &body);
    let (k, v) = location(&format!("/api/v2.0/robots/{}", robot.id));
    res.headers_mut().insert(k, v);
    Ok(res)
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let robot = load(&state, &id).await?;
    require_access(&state, &caller, &robot, Action::Read).await?;
    Ok(json(StatusCode::OK, &RobotResp::new(&robot, &state.settings.get().robot_name_prefix)))
}

/// Changes description, expiry, the disabled flag and permissions; never the name, level
/// or project.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<RobotUpdate>,
) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let robot = load(&state, &id).await?;
    let duration = req.duration.unwrap_or(robot.duration_days);
    validate(duration, &req.level, &req.permissions)?;
    if robot.level != SYSTEM {
        let ns = ProjectRef::Name(req.permissions[0].namespace.clone());
        let project =
            super::find_project(&state, &ns).await?.ok_or_else(|| not_found(format!("project {ns} not found")))?;
        if project.id != robot.project_id {
            return Err(bad_request("cannot update the project id of robot"));
        }
    }
    require_access(&state, &caller, &robot, Action::Update).await?;
    let short = robot.name.rsplit_once('+').map(|(_, n)| n).unwrap_or(&robot.name);
    let name_ok = [full_name(&state, &robot).as_str(), robot.name.as_str(), short].contains(&req.name.as_str());
    if req.level != robot.level || !name_ok {
        return Err(bad_request("cannot update the level or name of robot"));
    }
    let expires_at =
        if duration == robot.duration_days { robot.expires_at } else { expiry(robot.creation_time, duration) };
    let updated = Robot {
        description: req.description,
        disabled: req.disable,
        duration_days: duration,
        expires_at,
        permissions: flatten_permissions(&req.permissions),
        // Empty: the store keeps the secret.
        secret: String::new(),
        ..robot
    };
    let robot = state.auth.identity.update_robot(&updated).await.map_err(identity)?;
    audit(&state, &caller, robot.project_id, "update", "robot", &full_name(&state, &robot)).await;
    Ok(ok())
}

/// `PATCH /robots/{id}`: a new random secret (returned once), or the caller's own (not
/// echoed).
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<RobotSec>,
) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let robot = load(&state, &id).await?;
    require_access(&state, &caller, &robot, Action::Update).await?;
    let (hash, shown) = match req.secret.filter(|s| !s.is_empty()) {
        Some(s) => {
            password::check_policy(&s).map_err(|e| bad_request(e.to_string()))?;
            (password::hash_robot_secret(&s, &robot.salt), String::new())
        }
        None => {
            let s = RobotSecret::generate(&robot.salt);
            (s.hash.clone(), s.plaintext.clone())
        }
    };
    let robot = state.auth.identity.update_robot(&Robot { secret: hash, ..robot }).await.map_err(identity)?;
    audit(&state, &caller, robot.project_id, "update", "robot", &full_name(&state, &robot)).await;
    Ok(json(StatusCode::OK, &RobotSecResp { secret: shown }))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let robot = load(&state, &id).await?;
    require_access(&state, &caller, &robot, Action::Delete).await?;
    state.auth.identity.delete_robot(robot.id).await.map_err(identity)?;
    audit(&state, &caller, robot.project_id, "delete", "robot", &full_name(&state, &robot)).await;
    Ok(ok())
}

async fn load(state: &AppState, raw: &str) -> Result<Robot, ApiError> {
    let id = parse_id(raw, "robot_id")?;
    state.auth.identity.robot(id).await.map_err(store)?.ok_or_else(|| not_found(format!("robot {id} not found")))
}

/// System robots are managed with system permissions, project robots with the project's.
async fn require_access(state: &AppState, caller: &Caller, robot: &Robot, action: Action) -> Result<(), ApiError> {
    if robot.level == SYSTEM || robot.project_id == 0 {
        require_system(caller, "robot", action.as_str())
    } else {
        require_project(state, caller, &ProjectRef::Id(robot.project_id), Resource::Robot, action).await.map(|_| ())
    }
}

fn expiry(from: i64, duration_days: i64) -> i64 {
    if duration_days == -1 { -1 } else { from.saturating_add(duration_days.saturating_mul(DAY)) }
}

/// Harbor's checks of a robot's duration, level and permissions.
fn validate(duration: i64, level: &str, permissions: &[RobotPermission]) -> Result<(), ApiError> {
    if !(duration == -1 || (duration > 0 && duration < i64::from(i32::MAX))) {
        return Err(bad_request(format!(
            "bad request error duration input: {duration}, duration must be either -1(Never) or a positive integer"
        )));
    }
    if level != SYSTEM && level != PROJECT {
        return Err(bad_request(format!("bad request error level input: {level:?}; use system or project")));
    }
    if permissions.is_empty() {
        return Err(bad_request("bad request empty permission"));
    }
    if level == PROJECT && permissions.len() > 1 {
        return Err(bad_request("a project level robot must have exactly one permission (its project)"));
    }
    for p in permissions {
        if p.access.is_empty() {
            return Err(bad_request("bad request empty access"));
        }
        match p.kind.as_str() {
            PROJECT => {
                if level == PROJECT && p.namespace == "*" {
                    return Err(bad_request("a project level robot needs a project name as its namespace"));
                }
                for a in &p.access {
                    let ok = Resource::from_name(&a.resource).is_some_and(|r| {
                        Action::from_name(&a.action).is_some_and(|act| {
                            r.actions().contains(&act) || (r == Resource::Metadata && act == Action::List)
                        })
                    });
                    if !ok {
                        return Err(bad_request(format!("bad request permission: {}:{}", a.resource, a.action)));
                    }
                }
            }
            SYSTEM if level == SYSTEM => {
                for a in &p.access {
                    if !SYSTEM_POLICIES.contains(&(a.resource.as_str(), a.action.as_str())) {
                        return Err(bad_request(format!("bad request permission: {}:{}", a.resource, a.action)));
                    }
                }
            }
            kind => return Err(bad_request(format!("bad request permission level: {kind:?}"))),
        }
        for a in &p.access {
            if let Some(e) = a.effect.as_deref().filter(|e| !e.is_empty() && *e != "allow") {
                return Err(bad_request(format!("unsupported permission effect {e:?}; only \"allow\" is supported")));
            }
        }
    }
    Ok(())
}

/// Whether every permission in `wanted` is held by `own` (same kind, same namespace or `*`).
fn within(wanted: &[RobotAccess], own: &[RobotAccess]) -> bool {
    wanted.iter().all(|w| {
        own.iter().any(|o| {
            o.kind == w.kind
                && (o.namespace == w.namespace || o.namespace == "*")
                && o.resource == w.resource
                && o.action == w.action
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::dto::Access;
    use super::*;

    fn perm(kind: &str, ns: &str, access: &[(&str, &str)]) -> RobotPermission {
        RobotPermission {
            kind: kind.into(),
            namespace: ns.into(),
            access: access
                .iter()
                .map(|(r, a)| Access { resource: r.to_string(), action: a.to_string(), effect: None })
                .collect(),
        }
    }

    #[test]
    fn validation() {
        let pull = perm("project", "team", &[("repository", "pull")]);
        assert!(validate(-1, "project", std::slice::from_ref(&pull)).is_ok());
        assert!(validate(30, "project", std::slice::from_ref(&pull)).is_ok());
        for d in [0, -2, i64::from(i32::MAX)] {
            assert!(validate(d, "project", std::slice::from_ref(&pull)).unwrap_err().message.contains("duration"));
        }
        assert!(validate(-1, "global", std::slice::from_ref(&pull)).unwrap_err().message.contains("level"));
        assert!(validate(-1, "project", &[]).is_err());
        assert!(validate(-1, "project", &[pull.clone(), pull.clone()]).is_err());
        assert!(validate(-1, "project", &[perm("project", "team", &[])]).is_err());
        assert!(validate(-1, "project", &[perm("project", "*", &[("repository", "pull")])]).is_err());
        assert!(validate(-1, "project", &[perm("project", "t", &[("repository", "fly")])]).is_err());
        assert!(validate(-1, "project", &[perm("project", "t", &[("rocket", "pull")])]).is_err());
        assert!(validate(-1, "project", &[perm("system", "/", &[("user", "list")])]).is_err());
        assert!(validate(-1, "system", &[perm("system", "/", &[("user", "list")]), pull.clone()]).is_ok());
        assert!(validate(-1, "system", &[perm("system", "/", &[("user", "fly")])]).is_err());
        let mut deny = pull.clone();
        deny.access[0].effect = Some("deny".into());
        assert!(validate(-1, "project", &[deny]).unwrap_err().message.contains("effect"));
    }

    #[test]
    fn creators_scope() {
        let own = flatten_permissions(&[perm("project", "*", &[("repository", "pull"), ("repository", "push")])]);
        let ok = flatten_permissions(&[perm("project", "team", &[("repository", "pull")])]);
        let more = flatten_permissions(&[perm("project", "team", &[("repository", "delete")])]);
        assert!(within(&ok, &own));
        assert!(!within(&more, &own));
        assert!(!within(&own, &ok));
        assert_eq!(expiry(100, -1), -1);
        assert_eq!(expiry(100, 2), 100 + 2 * DAY);
    }
}
