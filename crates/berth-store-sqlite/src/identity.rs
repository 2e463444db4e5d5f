//! [`IdentityStore`] on the same database: users, projects, members, robots, audit log
//! (tables from `migrations/0002_identity.sql`).
//!
//! Every write is one writer job, so its checks and its changes are atomic. Uniqueness
//! is checked before inserting, inside the job, and a UNIQUE violation the check missed
//! is still reported as a conflict. A refused write (conflict, not found, precondition)
//! fails its job, so its savepoint is rolled back and it leaves nothing behind.
//!
//! Choices the trait leaves open:
//! - listing order: users by id (as the trait says); projects, robots by name and members
//!   by user name, as Harbor sorts them by default; the audit log newest first (op_time,
//!   then id, descending);
//! - name filters (`list_users`, `list_projects` unless exact, `members`) are substring
//!   matches, ASCII case-insensitive (SQLite's LIKE, Harbor's `=~` is ILIKE), with `%`,
//!   `_` and `\` taken literally; audit filters are exact;
//! - `public: Some(false)` means "not public" (no `public = "true"` key), matching
//!   [`Project::is_public`]; `include_public` only matters with `member_user_id`;
//! - a repository belongs to project `p` when its name starts with `p/`, and counts (for
//!   `project_repository_count` and `delete_project`) while `list_repositories` would
//!   show it, i.e. while it has a manifest or a blob link: the registry API has no way
//!   to delete an emptied repository's row, and it must not pin the project forever;
//! - `delete_project` also deletes the project's robots, as Harbor does;
//! - `create_project`, `add_member` and `create_robot` answer `NotFound` when the owner,
//!   project or user they refer to does not exist; a second membership of the same user
//!   is `Conflict { field: "username" }`;
//! - `delete_project_metadata` of an absent key is `NotFound`;
//! - creates ignore the ids and times they are given and assign fresh ones (ids are
//!   never reused); `append_audit` keeps the given `op_time`;
//! - `update_robot` keeps name, project, level and creation time; it replaces secret and
//!   salt only when the secret differs from the stored one and is not empty.

use std::collections::BTreeMap;

use async_trait::async_trait;
use berth_core::store::identity::{
    AuditEntry, AuditFilter, IdentityError, IdentityResult, IdentityStore, Member, NewProject, NewUser, Page, Project,
    ProjectFilter, Robot, RobotAccess, TextMatch, User, UserUpdate,
};
use berth_core::store::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::refuse::{contains_pattern, limit_offset};
use crate::{Fail, SqliteStore, backend, now, to_u64};

/// Harbor's projectAdmin role, given to a project's creator.
const PROJECT_ADMIN: i64 = 1;

type Refuse = crate::refuse::Refuse<IdentityError>;

fn conflict(field: &'static str, value: &str) -> Refuse {
    Refuse::No(IdentityError::Conflict { field, value: value.to_owned() })
}

fn not_found() -> Refuse {
    Refuse::No(IdentityError::NotFound)
}

/// Maps a UNIQUE violation on one of `columns` (`(table.column, field, value)`) to a
/// conflict; anything else stays a database error.
fn unique_violation(e: rusqlite::Error, columns: &[(&str, &'static str, &str)]) -> Refuse {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
        && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    {
        // "UNIQUE constraint failed: users.email" (several columns: "a.x, a.y").
        let failed = msg.rsplit(": ").next().unwrap_or_default();
        for &(column, field, value) in columns {
            if failed.split(", ").any(|c| c == column) {
                return conflict(field, value);
            }
        }
    }
    Refuse::from(e)
}

/// The failure a refused job reports to the writer, so that its savepoint is rolled
/// back; the refusal itself travels beside it.
impl SqliteStore {
    /// Runs `f` as one writer job, turning a refusal into the caller's error.
    async fn identity_write<T, F>(&self, f: F) -> IdentityResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Refuse> + Send + 'static,
    {
        self.refusable_write(f).await
    }
}

// --- helpers ---

fn count(c: &Connection, sql: &str, args: &[Value]) -> Result<u64, Fail> {
    let n: i64 = c.prepare_cached(sql)?.query_row(params_from_iter(args), |r| r.get(0))?;
    to_u64(n, "row count")
}

fn exists(c: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<bool, Fail> {
    Ok(c.prepare_cached(sql)?.query_row(args, |_| Ok(())).optional()?.is_some())
}

/// ` WHERE a AND b …`, or nothing.
fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) }
}

// --- users ---

const USER_COLUMNS: &str =
    "id, username, email, realname, comment, password, salt, password_version, sysadmin, creation_time, update_time";

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        realname: r.get(3)?,
        comment: r.get(4)?,
        password: r.get(5)?,
        salt: r.get(6)?,
        password_version: r.get(7)?,
        sysadmin: r.get(8)?,
        creation_time: r.get(9)?,
        update_time: r.get(10)?,
    })
}

fn user_by_id(c: &Connection, id: i64) -> Result<Option<User>, Fail> {
    Ok(c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()?)
}

fn username_taken(c: &Connection, username: &str) -> Result<bool, Fail> {
    exists(c, "SELECT 1 FROM users WHERE username = ?1", [username])
}

/// Whether a user other than `except` has this (non-empty) e-mail.
fn email_taken(c: &Connection, email: &str, except: i64) -> Result<bool, Fail> {
    Ok(!email.is_empty()
        && exists(c, "SELECT 1 FROM users WHERE email = ?1 AND email <> '' AND id <> ?2", params![email, except])?)
}

fn user_unique(e: rusqlite::Error, username: &str, email: &str) -> Refuse {
    unique_violation(e, &[("users.username", "username", username), ("users.email", "email", email)])
}

// --- projects ---

const PROJECT_COLUMNS: &str = "p.id, p.name, p.owner_id, p.creation_time, p.update_time";

fn project_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        name: r.get(1)?,
        owner_id: r.get(2)?,
        metadata: BTreeMap::new(),
        creation_time: r.get(3)?,
        update_time: r.get(4)?,
    })
}

fn with_metadata(c: &Connection, mut p: Project) -> Result<Project, Fail> {
    p.metadata = c
        .prepare_cached("SELECT name, value FROM project_metadata WHERE project_id = ?1")?
        .query_map([p.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(p)
}

fn project_by(c: &Connection, column: &str, key: Value) -> Result<Option<Project>, Fail> {
    let p = c
        .prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.{column} = ?1"))?
        .query_row([key], project_row)
        .optional()?;
    p.map(|p| with_metadata(c, p)).transpose()
}

fn project_by_id(c: &Connection, id: i64) -> Result<Option<Project>, Fail> {
    project_by(c, "id", Value::Integer(id))
}

fn project_exists(c: &Connection, id: i64) -> Result<bool, Fail> {
    exists(c, "SELECT 1 FROM projects WHERE id = ?1", [id])
}

fn set_metadata(c: &Connection, project_id: i64, metadata: &BTreeMap<String, String>) -> Result<(), Fail> {
    let mut st = c.prepare_cached(
        "INSERT INTO project_metadata (project_id, name, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in metadata {
        st.execute(params![project_id, k, v])?;
    }
    Ok(())
}

fn touch_project(c: &Connection, id: i64, now: i64) -> Result<(), Fail> {
    c.prepare_cached("UPDATE projects SET update_time = ?2 WHERE id = ?1")?.execute(params![id, now])?;
    Ok(())
}

const IS_PUBLIC: &str =
    "EXISTS (SELECT 1 FROM project_metadata m WHERE m.project_id = p.id AND m.name = 'public' AND m.value = 'true')";

/// Repositories under `<project>/` that the registry API would list: with a manifest or
/// a blob link. The range `[p/, p0)` is exactly the names starting with `p/` ('0'
/// follows '/'), and uses the unique index on the name.
fn repository_count(c: &Connection, project: &str) -> Result<u64, Fail> {
    let n: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM repositories r
              WHERE r.name >= (?1 || '/') AND r.name < (?1 || '0')
                AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
                     OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id))",
        )?
        .query_row([project], |r| r.get(0))?;
    to_u64(n, "repository count")
}

// --- members ---

const MEMBER_SELECT: &str = "SELECT pm.id, pm.project_id, pm.user_id, u.username, pm.role_id
                               FROM project_members pm JOIN users u ON u.id = pm.user_id";

fn member_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member { id: r.get(0)?, project_id: r.get(1)?, user_id: r.get(2)?, username: r.get(3)?, role_id: r.get(4)? })
}

fn member_by_id(c: &Connection, project_id: i64, member_id: i64) -> Result<Option<Member>, Fail> {
    Ok(c.prepare_cached(&format!("{MEMBER_SELECT} WHERE pm.project_id = ?1 AND pm.id = ?2"))?
        .query_row([project_id, member_id], member_row)
        .optional()?)
}

// --- robots ---

const ROBOT_COLUMNS: &str = "id, name, description, project_id, secret, salt, expires_at, duration_days, disabled, \
                             level, creation_time, update_time";

fn robot_row(r: &Row<'_>) -> rusqlite::Result<Robot> {
    Ok(Robot {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        project_id: r.get(3)?,
        secret: r.get(4)?,
        salt: r.get(5)?,
        expires_at: r.get(6)?,
        duration_days: r.get(7)?,
        disabled: r.get(8)?,
        level: r.get(9)?,
        permissions: Vec::new(),
        creation_time: r.get(10)?,
        update_time: r.get(11)?,
    })
}

fn with_permissions(c: &Connection, mut robot: Robot) -> Result<Robot, Fail> {
    robot.permissions = c
        .prepare_cached(
            "SELECT kind, namespace, resource, action FROM robot_permissions WHERE robot_id = ?1 ORDER BY position",
        )?
        .query_map([robot.id], |r| {
            Ok(RobotAccess { kind: r.get(0)?, namespace: r.get(1)?, resource: r.get(2)?, action: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(robot)
}

fn robot_by(c: &Connection, column: &str, key: Value) -> Result<Option<Robot>, Fail> {
    let robot = c
        .prepare_cached(&format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE {column} = ?1"))?
        .query_row([key], robot_row)
        .optional()?;
    robot.map(|r| with_permissions(c, r)).transpose()
}

fn set_permissions(c: &Connection, robot_id: i64, permissions: &[RobotAccess]) -> Result<(), Fail> {
    c.prepare_cached("DELETE FROM robot_permissions WHERE robot_id = ?1")?.execute([robot_id])?;
    let mut st = c.prepare_cached(
        "INSERT INTO robot_permissions (robot_id, position, kind, namespace, resource, action)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, p) in permissions.iter().enumerate() {
        let position = i64::try_from(i).map_err(|_| backend("too many robot permissions"))?;
        st.execute(params![robot_id, position, p.kind, p.namespace, p.resource, p.action])?;
    }
    Ok(())
}

// --- audit ---

const AUDIT_COLUMNS: &str = "id, project_id, operation, resource_type, resource, username, op_time";

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        project_id: r.get(1)?,
        operation: r.get(2)?,
        resource_type: r.get(3)?,
        resource: r.get(4)?,
        username: r.get(5)?,
        op_time: r.get(6)?,
    })
}

#[async_trait]
impl IdentityStore for SqliteStore {
    // --- users ---

    async fn create_user(&self, u: &NewUser) -> IdentityResult<User> {
        let u = u.clone();
        self.identity_write(move |c| {
            if username_taken(c, &u.username)? {
                return Err(conflict("username", &u.username));
            }
            if email_taken(c, &u.email, 0)? {
                return Err(conflict("email", &u.email));
            }
            let now = now();
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO users (username, email, realname, comment, password, salt, password_version,
                                        sysadmin, creation_time, update_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                     RETURNING id",
                )?
                .query_row(
                    params![
                        u.username,
                        u.email,
                        u.realname,
                        u.comment,
                        u.password,
                        u.salt,
                        u.password_version,
                        u.sysadmin,
                        now
                    ],
                    |r| r.get(0),
                )
                .map_err(|e| user_unique(e, &u.username, &u.email))?;
            Ok(User {
                id,
                username: u.username,
                email: u.email,
                realname: u.realname,
                comment: u.comment,
                password: u.password,
                salt: u.salt,
                password_version: u.password_version,
                sysadmin: u.sysadmin,
                creation_time: now,
                update_time: now,
            })
        })
        .await
    }

    async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.readers.run(move |c| user_by_id(c, id)).await
    }

    async fn user_by_login(&self, name_or_email: &str) -> StoreResult<Option<User>> {
        let login = name_or_email.to_owned();
        if login.is_empty() {
            return Ok(None);
        }
        self.readers
            .run(move |c| {
                // A user name wins over another user's e-mail.
                let tx = c.transaction()?;
                let by_name = tx
                    .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"))?
                    .query_row([&login], user_row)
                    .optional()?;
                if by_name.is_some() {
                    return Ok(by_name);
                }
                Ok(tx
                    .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 AND email <> ''"))?
                    .query_row([&login], user_row)
                    .optional()?)
            })
            .await
    }

    async fn list_users(&self, name: Option<&str>, page: &Page) -> StoreResult<(Vec<User>, u64)> {
        let pattern = name.map(contains_pattern);
        let (limit, offset) = limit_offset(page);
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let filter = "?1 IS NULL OR username LIKE ?1 ESCAPE '\\'";
                let total =
                    count(&tx, &format!("SELECT count(*) FROM users WHERE {filter}"), &[pattern.clone().into()])?;
                let users = tx
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY id LIMIT ?2 OFFSET ?3"
                    ))?
                    .query_map(params![pattern, limit, offset], user_row)?
                    .collect::<rusqlite::Result<_>>()?;
                Ok((users, total))
            })
            .await
    }

    async fn update_user(&self, id: i64, update: &UserUpdate) -> IdentityResult<User> {
        let up = update.clone();
        self.identity_write(move |c| {
            if user_by_id(c, id)?.is_none() {
                return Err(not_found());
            }
            if let Some(email) = &up.email
                && email_taken(c, email, id)?
            {
                return Err(conflict("email", email));
            }
            let (password, salt, version) = match up.password {
                Some((p, s, v)) => (Some(p), Some(s), Some(v)),
                None => (None, None, None),
            };
            c.prepare_cached(
                "UPDATE users SET email = coalesce(?2, email),
                                  realname = coalesce(?3, realname),
                                  comment = coalesce(?4, comment),
                                  sysadmin = coalesce(?5, sysadmin),
                                  password = coalesce(?6, password),
                                  salt = coalesce(?7, salt),
                                  password_version = coalesce(?8, password_version),
                                  update_time = ?9
                  WHERE id = ?1",
            )?
            .execute(params![id, up.email, up.realname, up.comment, up.sysadmin, password, salt, version, now()])
            .map_err(|e| user_unique(e, "", up.email.as_deref().unwrap_or_default()))?;
            user_by_id(c, id)?.ok_or_else(|| Refuse::Db(backend("user row vanished inside its own transaction")))
        })
        .await
    }

    async fn delete_user(&self, id: i64) -> IdentityResult<()> {
        self.identity_write(move |c| {
            // Memberships go by ON DELETE CASCADE.
            let n = c.prepare_cached("DELETE FROM users WHERE id = ?1")?.execute([id])?;
            if n == 0 { Err(not_found()) } else { Ok(()) }
        })
        .await
    }

    async fn user_count(&self) -> StoreResult<u64> {
        self.readers.run(|c| count(c, "SELECT count(*) FROM users", &[])).await
    }

    // --- projects ---

    async fn create_project(&self, p: &NewProject) -> IdentityResult<Project> {
        let p = p.clone();
        self.identity_write(move |c| {
            if exists(c, "SELECT 1 FROM projects WHERE name = ?1", [&p.name])? {
                return Err(conflict("name", &p.name));
            }
            if user_by_id(c, p.owner_id)?.is_none() {
                return Err(not_found());
            }
            let now = now();
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO projects (name, owner_id, creation_time, update_time) VALUES (?1, ?2, ?3, ?3)
                     RETURNING id",
                )?
                .query_row(params![p.name, p.owner_id, now], |r| r.get(0))
                .map_err(|e| unique_violation(e, &[("projects.name", "name", &p.name)]))?;
            set_metadata(c, id, &p.metadata)?;
            c.prepare_cached("INSERT INTO project_members (project_id, user_id, role_id) VALUES (?1, ?2, ?3)")?
                .execute(params![id, p.owner_id, PROJECT_ADMIN])?;
            Ok(Project {
                id,
                name: p.name,
                owner_id: p.owner_id,
                metadata: p.metadata,
                creation_time: now,
                update_time: now,
            })
        })
        .await
    }

    async fn project(&self, id: i64) -> StoreResult<Option<Project>> {
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                project_by_id(&tx, id)
            })
            .await
    }

    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let name = name.to_owned();
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                project_by(&tx, "name", Value::Text(name))
            })
            .await
    }

    async fn list_projects(&self, filter: &ProjectFilter, page: &Page) -> StoreResult<(Vec<Project>, u64)> {
        let mut conds = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(name) = &filter.name {
            if filter.name_exact {
                conds.push("p.name = ?".to_owned());
                args.push(name.clone().into());
            } else {
                conds.push("p.name LIKE ? ESCAPE '\\'".to_owned());
                args.push(contains_pattern(name).into());
            }
        }
        match filter.public {
            Some(true) => conds.push(IS_PUBLIC.to_owned()),
            Some(false) => conds.push(format!("NOT {IS_PUBLIC}")),
            None => {}
        }
        if let Some(user) = filter.member_user_id {
            let member = "EXISTS (SELECT 1 FROM project_members pm WHERE pm.project_id = p.id AND pm.user_id = ?)";
            conds.push(if filter.include_public { format!("({member} OR {IS_PUBLIC})") } else { member.to_owned() });
            args.push(user.into());
        }
        let (limit, offset) = limit_offset(page);
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let filter = where_clause(&conds);
                let total = count(&tx, &format!("SELECT count(*) FROM projects p{filter}"), &args)?;
                args.extend([limit.into(), offset.into()]);
                let projects = tx
                    .prepare_cached(&format!(
                        "SELECT {PROJECT_COLUMNS} FROM projects p{filter}
                          ORDER BY p.name COLLATE BINARY LIMIT ? OFFSET ?"
                    ))?
                    .query_map(params_from_iter(&args), project_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let projects = projects.into_iter().map(|p| with_metadata(&tx, p)).collect::<Result<_, _>>()?;
                Ok((projects, total))
            })
            .await
    }

    async fn update_project_metadata(&self, id: i64, metadata: &BTreeMap<String, String>) -> IdentityResult<Project> {
        let metadata = metadata.clone();
        self.identity_write(move |c| {
            if !project_exists(c, id)? {
                return Err(not_found());
            }
            set_metadata(c, id, &metadata)?;
            touch_project(c, id, now())?;
            project_by_id(c, id)?.ok_or_else(|| Refuse::Db(backend("project row vanished inside its own transaction")))
        })
        .await
    }

    async fn delete_project_metadata(&self, id: i64, key: &str) -> IdentityResult<()> {
        let key = key.to_owned();
        self.identity_write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM project_metadata WHERE project_id = ?1 AND name = ?2")?
                .execute(params![id, key])?;
            if n == 0 {
                return Err(not_found());
            }
            touch_project(c, id, now())?;
            Ok(())
        })
        .await
    }

    async fn delete_project(&self, id: i64) -> IdentityResult<()> {
        self.identity_write(move |c| {
            let Some(name) = c
                .prepare_cached("SELECT name FROM projects WHERE id = ?1")?
                .query_row([id], |r| r.get::<_, String>(0))
                .optional()?
            else {
                return Err(not_found());
            };
            // In this job, so no push can create a repository between check and delete.
            let repos = repository_count(c, &name)?;
            if repos > 0 {
                return Err(Refuse::No(IdentityError::Precondition(format!(
                    "project {name} still has {repos} repositories; delete them first"
                ))));
            }
            // Permissions go with their robots, metadata and members with the project,
            // by ON DELETE CASCADE.
            c.prepare_cached("DELETE FROM robots WHERE project_id = ?1")?.execute([id])?;
            c.prepare_cached("DELETE FROM projects WHERE id = ?1")?.execute([id])?;
            Ok(())
        })
        .await
    }

    async fn project_repository_count(&self, name: &str) -> StoreResult<u64> {
        let name = name.to_owned();
        self.readers.run(move |c| repository_count(c, &name)).await
    }

    // --- members ---

    async fn add_member(&self, project_id: i64, user_id: i64, role_id: i64) -> IdentityResult<Member> {
        self.identity_write(move |c| {
            if !project_exists(c, project_id)? {
                return Err(not_found());
            }
            let Some(user) = user_by_id(c, user_id)? else {
                return Err(not_found());
            };
            if exists(c, "SELECT 1 FROM project_members WHERE project_id = ?1 AND user_id = ?2", [project_id, user_id])?
            {
                return Err(conflict("username", &user.username));
            }
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO project_members (project_id, user_id, role_id) VALUES (?1, ?2, ?3) RETURNING id",
                )?
                .query_row([project_id, user_id, role_id], |r| r.get(0))
                .map_err(|e| unique_violation(e, &[("project_members.user_id", "username", &user.username)]))?;
            Ok(Member { id, project_id, user_id, username: user.username, role_id })
        })
        .await
    }

    async fn members(&self, project_id: i64, name: Option<&str>, page: &Page) -> StoreResult<(Vec<Member>, u64)> {
        let pattern = name.map(contains_pattern);
        let (limit, offset) = limit_offset(page);
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let filter = "pm.project_id = ?1 AND (?2 IS NULL OR u.username LIKE ?2 ESCAPE '\\')";
                let total = count(
                    &tx,
                    &format!(
                        "SELECT count(*) FROM project_members pm JOIN users u ON u.id = pm.user_id WHERE {filter}"
                    ),
                    &[project_id.into(), pattern.clone().into()],
                )?;
                let members = tx
                    .prepare_cached(&format!(
                        "{MEMBER_SELECT} WHERE {filter} ORDER BY u.username COLLATE BINARY, pm.id LIMIT ?3 OFFSET ?4"
                    ))?
                    .query_map(params![project_id, pattern, limit, offset], member_row)?
                    .collect::<rusqlite::Result<_>>()?;
                Ok((members, total))
            })
            .await
    }

    async fn member(&self, project_id: i64, member_id: i64) -> StoreResult<Option<Member>> {
        self.readers.run(move |c| member_by_id(c, project_id, member_id)).await
    }

    async fn update_member_role(&self, project_id: i64, member_id: i64, role_id: i64) -> IdentityResult<Member> {
        self.identity_write(move |c| {
            let n = c
                .prepare_cached("UPDATE project_members SET role_id = ?3 WHERE project_id = ?1 AND id = ?2")?
                .execute([project_id, member_id, role_id])?;
            if n == 0 {
                return Err(not_found());
            }
            member_by_id(c, project_id, member_id)?
                .ok_or_else(|| Refuse::Db(backend("member row vanished inside its own transaction")))
        })
        .await
    }

    async fn remove_member(&self, project_id: i64, member_id: i64) -> IdentityResult<()> {
        self.identity_write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM project_members WHERE project_id = ?1 AND id = ?2")?
                .execute([project_id, member_id])?;
            if n == 0 { Err(not_found()) } else { Ok(()) }
        })
        .await
    }

    async fn member_role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<i64>> {
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached("SELECT role_id FROM project_members WHERE project_id = ?1 AND user_id = ?2")?
                    .query_row([project_id, user_id], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    // --- robots ---

    async fn create_robot(&self, r: &Robot) -> IdentityResult<Robot> {
        let r = r.clone();
        self.identity_write(move |c| {
            if exists(c, "SELECT 1 FROM robots WHERE name = ?1", [&r.name])? {
                return Err(conflict("name", &r.name));
            }
            if r.project_id != 0 && !project_exists(c, r.project_id)? {
                return Err(not_found());
            }
            let now = now();
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO robots (name, description, project_id, secret, salt, expires_at, duration_days,
                                         disabled, level, creation_time, update_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                     RETURNING id",
                )?
                .query_row(
                    params![
                        r.name,
                        r.description,
                        r.project_id,
                        r.secret,
                        r.salt,
                        r.expires_at,
                        r.duration_days,
                        r.disabled,
                        r.level,
                        now
                    ],
                    |row| row.get(0),
                )
                .map_err(|e| unique_violation(e, &[("robots.name", "name", &r.name)]))?;
            set_permissions(c, id, &r.permissions)?;
            Ok(Robot { id, creation_time: now, update_time: now, ..r })
        })
        .await
    }

    async fn robot(&self, id: i64) -> StoreResult<Option<Robot>> {
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                robot_by(&tx, "id", Value::Integer(id))
            })
            .await
    }

    async fn robot_by_name(&self, name: &str) -> StoreResult<Option<Robot>> {
        let name = name.to_owned();
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                robot_by(&tx, "name", Value::Text(name))
            })
            .await
    }

    async fn list_robots(&self, project_id: Option<i64>, page: &Page) -> StoreResult<(Vec<Robot>, u64)> {
        let (limit, offset) = limit_offset(page);
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let filter = "?1 IS NULL OR project_id = ?1";
                let total = count(&tx, &format!("SELECT count(*) FROM robots WHERE {filter}"), &[project_id.into()])?;
                let robots = tx
                    .prepare_cached(&format!(
                        "SELECT {ROBOT_COLUMNS} FROM robots WHERE {filter}
                          ORDER BY name COLLATE BINARY LIMIT ?2 OFFSET ?3"
                    ))?
                    .query_map(params![project_id, limit, offset], robot_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let robots = robots.into_iter().map(|r| with_permissions(&tx, r)).collect::<Result<_, _>>()?;
                Ok((robots, total))
            })
            .await
    }

    async fn update_robot(&self, r: &Robot) -> IdentityResult<Robot> {
        let r = r.clone();
        self.identity_write(move |c| {
            let Some(old) = robot_by(c, "id", Value::Integer(r.id))? else {
                return Err(not_found());
            };
            let (secret, salt) =
                if r.secret.is_empty() || r.secret == old.secret { (old.secret, old.salt) } else { (r.secret, r.salt) };
            c.prepare_cached(
                "UPDATE robots SET description = ?2, expires_at = ?3, duration_days = ?4, disabled = ?5,
                                   secret = ?6, salt = ?7, update_time = ?8
                  WHERE id = ?1",
            )?
            .execute(params![
                r.id,
                r.description,
                r.expires_at,
                r.duration_days,
                r.disabled,
                secret,
                salt,
                now()
            ])?;
            set_permissions(c, r.id, &r.permissions)?;
            robot_by(c, "id", Value::Integer(r.id))?
                .ok_or_else(|| Refuse::Db(backend("robot row vanished inside its own transaction")))
        })
        .await
    }

    async fn delete_robot(&self, id: i64) -> IdentityResult<()> {
        self.identity_write(move |c| {
            let n = c.prepare_cached("DELETE FROM robots WHERE id = ?1")?.execute([id])?;
            if n == 0 { Err(not_found()) } else { Ok(()) }
        })
        .await
    }

    // --- audit log ---

    async fn append_audit_batch(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let entries = entries.to_vec();
        self.writer
            .write(move |c| {
                let mut insert = c.prepare_cached(
                    "INSERT INTO audit_log (project_id, operation, resource_type, resource, username, op_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for e in &entries {
                    insert.execute(params![
                        e.project_id,
                        e.operation,
                        e.resource_type,
                        e.resource,
                        e.username,
                        e.op_time
                    ])?;
                }
                Ok(())
            })
            .await
    }

    async fn append_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        let e = e.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO audit_log (project_id, operation, resource_type, resource, username, op_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    e.project_id,
                    e.operation,
                    e.resource_type,
                    e.resource,
                    e.username,
                    e.op_time
                ])?;
                Ok(())
            })
            .await
    }

    async fn purge_audit(
        &self,
        before: i64,
        operations: &[String],
        event_types: &[String],
        batch: u64,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let json = |v: &[String]| serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()));
        let (ops, types) = (json(operations)?, json(event_types)?);
        let matching = "op_time < ?1 AND (operation IN (SELECT value FROM json_each(?2))
            OR operation || '_' || resource_type IN (SELECT value FROM json_each(?3)))";
        if dry_run {
            let sql = format!("SELECT count(*) FROM audit_log WHERE {matching}");
            return self
                .readers
                .run(move |c| {
                    Ok(c.prepare_cached(&sql)?.query_row(params![before, ops, types], |r| r.get::<_, i64>(0))? as u64)
                })
                .await;
        }
        let sql = format!(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE {matching} ORDER BY id LIMIT ?4)"
        );
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        self.writer
            .write(move |c| Ok(c.prepare_cached(&sql)?.execute(params![before, ops, types, batch])? as u64))
            .await
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &Page) -> StoreResult<(Vec<AuditEntry>, u64)> {
        let mut conds = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(p) = filter.project_id {
            conds.push("project_id = ?".to_owned());
            args.push(p.into());
        }
        for (column, m) in filter.text_columns() {
            match m {
                None => {}
                Some(TextMatch::Exact(v)) => {
                    conds.push(format!("{column} = ?"));
                    args.push(v.clone().into());
                }
                Some(TextMatch::Contains(v)) => {
                    conds.push(format!("{column} LIKE ? ESCAPE '\\'"));
                    args.push(contains_pattern(v).into());
                }
                Some(TextMatch::AnyOf(vs)) if vs.is_empty() => conds.push("0".to_owned()),
                Some(TextMatch::AnyOf(vs)) => {
                    conds.push(format!("{column} IN ({})", vec!["?"; vs.len()].join(", ")));
                    args.extend(vs.iter().map(|v| Value::from(v.clone())));
                }
            }
        }
        for (cond, bound) in [("op_time >= ?", filter.op_time_from), ("op_time <= ?", filter.op_time_to)] {
            if let Some(t) = bound {
                conds.push(cond.to_owned());
                args.push(t.into());
            }
        }
        let (limit, offset) = limit_offset(page);
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let filter = where_clause(&conds);
                let total = count(&tx, &format!("SELECT count(*) FROM audit_log{filter}"), &args)?;
                args.extend([limit.into(), offset.into()]);
                let entries = tx
                    .prepare_cached(&format!(
                        "SELECT {AUDIT_COLUMNS} FROM audit_log{filter} ORDER BY op_time DESC, id DESC LIMIT ? OFFSET ?"
                    ))?
                    .query_map(params_from_iter(&args), audit_row)?
                    .collect::<rusqlite::Result<_>>()?;
                Ok((entries, total))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::store::StoreError;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::migrate::run(&mut c).map_err(StoreError::from).unwrap();
        c
    }

    fn field_of(r: Refuse) -> &'static str {
        match r {
            Refuse::No(IdentityError::Conflict { field, .. }) => field,
            Refuse::No(e) => panic!("expected a conflict, got {e:?}"),
            Refuse::Db(Fail(e)) => panic!("expected a conflict, got {e:?}"),
        }
    }

    /// The fallback behind the checks: a UNIQUE violation names the right field.
    #[test]
    fn unique_violations_name_the_field() {
        let c = db();
        let user = |name: &str, email: &str| {
            c.execute(
                "INSERT INTO users (username, email, creation_time, update_time) VALUES (?1, ?2, 0, 0)",
                [name, email],
            )
            .map_err(|e| user_unique(e, name, email))
        };
        user("a", "a@x").ok().unwrap();
        user("b", "").ok().unwrap();
        user("c", "").ok().expect("empty e-mails do not collide");
        assert_eq!(field_of(user("a", "other@x").err().unwrap()), "username");
        assert_eq!(field_of(user("d", "a@x").err().unwrap()), "email");

        c.execute("INSERT INTO projects (name, owner_id, creation_time, update_time) VALUES ('p', 1, 0, 0)", [])
            .unwrap();
        let e = c
            .execute("INSERT INTO projects (name, owner_id, creation_time, update_time) VALUES ('p', 1, 0, 0)", [])
            .unwrap_err();
        assert_eq!(field_of(unique_violation(e, &[("projects.name", "name", "p")])), "name");
        c.execute("INSERT INTO project_members (project_id, user_id, role_id) VALUES (1, 1, 1)", []).unwrap();
        let e =
            c.execute("INSERT INTO project_members (project_id, user_id, role_id) VALUES (1, 1, 2)", []).unwrap_err();
        assert_eq!(field_of(unique_violation(e, &[("project_members.user_id", "username", "a")])), "username");

        // Other failures stay database errors.
        let e =
            c.execute("INSERT INTO project_members (project_id, user_id, role_id) VALUES (1, 99, 2)", []).unwrap_err();
        assert!(matches!(unique_violation(e, &[("project_members.user_id", "username", "a")]), Refuse::Db(_)));
    }

    /// A refused write leaves nothing behind, even what it wrote before refusing; and a
    /// refusal whose transaction was lost is reported as the loss.
    #[tokio::test]
    async fn refusals_roll_back_and_yield_to_a_lost_transaction() {
        use std::future::Future;
        use std::task::Poll;

        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db")).unwrap();
        let insert = |c: &Connection, name: &str| -> Result<(), Refuse> {
            c.execute("INSERT INTO users (username, creation_time, update_time) VALUES (?1, 0, 0)", [name])?;
            Ok(())
        };
        let err = store
            .identity_write(move |c| -> Result<(), Refuse> {
                insert(c, "written-then-refused")?;
                Err(Refuse::No(IdentityError::Precondition("no".into())))
            })
            .await
            .unwrap_err();
        assert!(matches!(&err, IdentityError::Precondition(m) if m == "no"), "{err:?}");
        assert_eq!(store.user_by_login("written-then-refused").await.unwrap(), None);

        let (release, held) = store.writer.hold().await;
        let mut refused = Box::pin(store.identity_write(move |c| -> Result<(), Refuse> {
            insert(c, "x")?;
            Err(conflict("username", "x"))
        }));
        // Stands in for SQLite rolling the whole transaction back (disk full, I/O error).
        let mut lost = Box::pin(store.writer.write(|c| {
            c.execute_batch("ROLLBACK")?;
            Err::<(), _>(backend("lost"))
        }));
        std::future::poll_fn(|cx| {
            assert!(refused.as_mut().poll(cx).is_pending());
            assert!(lost.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        drop(release);
        held.await.unwrap().unwrap();
        let err = refused.await.unwrap_err();
        assert!(matches!(err, IdentityError::Store(StoreError::Unavailable(_))), "{err:?}");
        assert!(lost.await.is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(contains_pattern(""), "%%");
    }

    #[test]
    fn huge_pages_do_not_overflow() {
        assert_eq!(limit_offset(&Page { page: 3, page_size: 10 }), (10, 20));
        assert_eq!(limit_offset(&Page { page: 0, page_size: 10 }), (10, 0));
        assert_eq!(limit_offset(&Page { page: u64::MAX, page_size: u64::MAX }), (i64::MAX, i64::MAX));
    }
}
