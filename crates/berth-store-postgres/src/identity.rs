//! [`IdentityStore`] on the same database: users, projects, members, robots, audit log.
//!
//! The choices the trait leaves open are SQLite's, listed in `berth-store-sqlite`'s
//! `identity.rs`: users by id, projects and robots by name, members by user name (byte
//! order), the audit log newest first; name filters are ASCII case-insensitive substring
//! matches with `%`, `_` and `\` literal; a repository counts for its project while it
//! has a manifest or a blob link; `delete_project` takes the project's robots along.
//!
//! SQLite runs each write alone; here writes run concurrently in READ COMMITTED, so the
//! checks a write makes before changing rows are backed by the database:
//! - uniqueness by constraints, whose violation (a race the check missed) is still
//!   reported as the conflict it is;
//! - a referenced row (owner, project, user) by its foreign key: if it is deleted after
//!   the check, the insert fails, the transaction rolls back and runs again, and the check
//!   then answers `NotFound`;
//! - robots reference their project without a foreign key (0 is "system"), so
//!   `create_robot` share-locks the project row and `delete_project` locks it first;
//! - `delete_project` blocks pushes (table locks on the rows that make a repository
//!   count) while it checks that the project has no repositories and deletes it.
//!
//! Retried after a lost connection (see `pool.rs`): reads and the updates
//! (`update_user`, `update_project_metadata`, `update_member_role`, `update_robot`),
//! which set the same values again. Creates, deletes and audit appends are not: a second
//! run would conflict, find nothing or log twice.

use std::collections::BTreeMap;

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::identity::{
    AuditEntry, AuditFilter, IdentityError, IdentityResult, IdentityStore, Member, NewProject, NewUser, Page, Project,
    ProjectFilter, Robot, RobotAccess, TextMatch, User, UserUpdate,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::pool::{Params, unique_constraint};
use crate::{Args, Conn, DbErr, Fail, Listing, PgStore, Tx, backend, col, contains_pattern, count, limit_offset, now};

/// Harbor's projectAdmin role, given to a project's creator.
const PROJECT_ADMIN: i64 = 1;

type Refuse = Fail<IdentityError>;

fn conflict(field: &'static str, value: &str) -> Refuse {
    Fail::No(IdentityError::Conflict { field, value: value.to_owned() })
}

fn not_found() -> Refuse {
    Fail::No(IdentityError::NotFound)
}

/// A unique violation on one of `constraints` (`(constraint, field, value)`) is a
/// conflict; anything else stays a database error.
fn unique_violation(e: tokio_postgres::Error, constraints: &[(&str, &'static str, &str)]) -> Refuse {
    if let Some(violated) = unique_constraint(&e) {
        for &(constraint, field, value) in constraints {
            if violated == constraint {
                return conflict(field, value);
            }
        }
    }
    Fail::from(e)
}

fn vanished(what: &str) -> Refuse {
    Fail::Db(backend(format!("{what} row vanished inside its own transaction")))
}

async fn exists(c: Conn<'_>, sql: &str, params: Params<'_>) -> Result<bool, DbErr> {
    Ok(c.opt(sql, params).await?.is_some())
}

// --- users ---

const USER_COLUMNS: &str =
    "id, username, email, realname, comment, password, salt, password_version, sysadmin, creation_time, update_time";

fn user_row(r: &Row) -> Result<User, DbErr> {
    Ok(User {
        id: col(r, 0)?,
        username: col(r, 1)?,
        email: col(r, 2)?,
        realname: col(r, 3)?,
        comment: col(r, 4)?,
        password: col(r, 5)?,
        salt: col(r, 6)?,
        password_version: col(r, 7)?,
        sysadmin: col(r, 8)?,
        creation_time: col(r, 9)?,
        update_time: col(r, 10)?,
    })
}

async fn user_by_id(c: Conn<'_>, id: i64) -> Result<Option<User>, DbErr> {
    let row = c.opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id]).await?;
    row.map(|r| user_row(&r)).transpose()
}

/// Whether a user other than `except` has this (non-empty) e-mail.
async fn email_taken(c: Conn<'_>, email: &str, except: i64) -> Result<bool, DbErr> {
    Ok(!email.is_empty()
        && exists(c, "SELECT 1 FROM users WHERE email = $1 AND email <> '' AND id <> $2", &[&email, &except]).await?)
}

fn user_unique(e: tokio_postgres::Error, username: &str, email: &str) -> Refuse {
    unique_violation(e, &[("users_username", "username", username), ("users_email", "email", email)])
}

// --- projects ---

const PROJECT_COLUMNS: &str = "p.id, p.name, p.owner_id, p.creation_time, p.update_time";

fn project_row(r: &Row) -> Result<Project, DbErr> {
    Ok(Project {
        id: col(r, 0)?,
        name: col(r, 1)?,
        owner_id: col(r, 2)?,
        metadata: BTreeMap::new(),
        creation_time: col(r, 3)?,
        update_time: col(r, 4)?,
    })
}

async fn with_metadata(c: Conn<'_>, mut p: Project) -> Result<Project, DbErr> {
    let rows = c.rows("SELECT name, value FROM project_metadata WHERE project_id = $1", &[&p.id]).await?;
    p.metadata = rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect::<Result<_, DbErr>>()?;
    Ok(p)
}

/// The project a condition on `p` (with one argument) selects.
async fn project_where(c: Conn<'_>, cond: &str, key: &(dyn ToSql + Sync)) -> Result<Option<Project>, DbErr> {
    let row = c.opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects p WHERE {cond}"), &[key]).await?;
    match row {
        Some(r) => Ok(Some(with_metadata(c, project_row(&r)?).await?)),
        None => Ok(None),
    }
}

async fn project_exists(c: Conn<'_>, id: i64) -> Result<bool, DbErr> {
    exists(c, "SELECT 1 FROM projects WHERE id = $1", &[&id]).await
}

async fn set_metadata(c: Conn<'_>, project_id: i64, metadata: &BTreeMap<String, String>) -> Result<(), DbErr> {
    for (k, v) in metadata {
        c.exec(
            "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
            &[&project_id, k, v],
        )
        .await?;
    }
    Ok(())
}

async fn touch_project(c: Conn<'_>, id: i64) -> Result<(), DbErr> {
    c.exec("UPDATE projects SET update_time = $2 WHERE id = $1", &[&id, &now()]).await?;
    Ok(())
}

const IS_PUBLIC: &str =
    "EXISTS (SELECT 1 FROM project_metadata m WHERE m.project_id = p.id AND m.name = 'public' AND m.value = 'true')";

/// Repositories under `<project>/` that the registry API would list: with a manifest or
/// a blob link. The range `[p/, p0)` is exactly the names starting with `p/` ('0'
/// follows '/' in byte order), and uses the unique index on the name.
async fn repository_count(c: Conn<'_>, project: &str) -> Result<u64, DbErr> {
    count(
        c,
        "SELECT count(*) FROM repositories r
          WHERE r.name >= ($1 || '/') AND r.name < ($1 || '0')
            AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
                 OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id))",
        &[&project],
    )
    .await
}

// --- members ---

const MEMBER_SELECT: &str = "SELECT pm.id, pm.project_id, pm.user_id, u.username, pm.role_id
                               FROM project_members pm JOIN users u ON u.id = pm.user_id";

fn member_row(r: &Row) -> Result<Member, DbErr> {
    Ok(Member {
        id: col(r, 0)?,
        project_id: col(r, 1)?,
        user_id: col(r, 2)?,
        username: col(r, 3)?,
        role_id: col(r, 4)?,
    })
}

async fn member_by_id(c: Conn<'_>, project_id: i64, member_id: i64) -> Result<Option<Member>, DbErr> {
    let row =
        c.opt(&format!("{MEMBER_SELECT} WHERE pm.project_id = $1 AND pm.id = $2"), &[&project_id, &member_id]).await?;
    row.map(|r| member_row(&r)).transpose()
}

// --- robots ---

const ROBOT_COLUMNS: &str = "id, name, description, project_id, secret, salt, expires_at, duration_days, disabled, \
                             level, creation_time, update_time";

fn robot_row(r: &Row) -> Result<Robot, DbErr> {
    Ok(Robot {
        id: col(r, 0)?,
        name: col(r, 1)?,
        description: col(r, 2)?,
        project_id: col(r, 3)?,
        secret: col(r, 4)?,
        salt: col(r, 5)?,
        expires_at: col(r, 6)?,
        duration_days: col(r, 7)?,
        disabled: col(r, 8)?,
        level: col(r, 9)?,
        permissions: Vec::new(),
        creation_time: col(r, 10)?,
        update_time: col(r, 11)?,
    })
}

async fn with_permissions(c: Conn<'_>, mut robot: Robot) -> Result<Robot, DbErr> {
    let rows = c
        .rows(
            "SELECT kind, namespace, resource, action FROM robot_permissions WHERE robot_id = $1 ORDER BY position",
            &[&robot.id],
        )
        .await?;
    robot.permissions = rows
        .iter()
        .map(|r| Ok(RobotAccess { kind: col(r, 0)?, namespace: col(r, 1)?, resource: col(r, 2)?, action: col(r, 3)? }))
        .collect::<Result<_, DbErr>>()?;
    Ok(robot)
}

/// The robot a condition (with one argument) selects.
async fn robot_where(c: Conn<'_>, cond: &str, key: &(dyn ToSql + Sync)) -> Result<Option<Robot>, DbErr> {
    let row = c.opt(&format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE {cond}"), &[key]).await?;
    match row {
        Some(r) => Ok(Some(with_permissions(c, robot_row(&r)?).await?)),
        None => Ok(None),
    }
}

async fn set_permissions(c: Conn<'_>, robot_id: i64, permissions: &[RobotAccess]) -> Result<(), DbErr> {
    c.exec("DELETE FROM robot_permissions WHERE robot_id = $1", &[&robot_id]).await?;
    for (i, p) in permissions.iter().enumerate() {
        let position = i64::try_from(i).map_err(|_| backend("too many robot permissions"))?;
        c.exec(
            "INSERT INTO robot_permissions (robot_id, position, kind, namespace, resource, action)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&robot_id, &position, &p.kind, &p.namespace, &p.resource, &p.action],
        )
        .await?;
    }
    Ok(())
}

// --- audit ---

const AUDIT_COLUMNS: &str = "id, project_id, operation, resource_type, resource, username, op_time";

fn audit_row(r: &Row) -> Result<AuditEntry, DbErr> {
    Ok(AuditEntry {
        id: col(r, 0)?,
        project_id: col(r, 1)?,
        operation: col(r, 2)?,
        resource_type: col(r, 3)?,
        resource: col(r, 4)?,
        username: col(r, 5)?,
        op_time: col(r, 6)?,
    })
}

#[async_trait]
impl IdentityStore for PgStore {
    // --- users ---

    async fn create_user(&self, u: &NewUser) -> IdentityResult<User> {
        self.run(Tx::Write, u, |c, u| {
            Box::pin(async move {
                if exists(c, "SELECT 1 FROM users WHERE username = $1", &[&u.username]).await? {
                    return Err(conflict("username", &u.username));
                }
                if email_taken(c, &u.email, 0).await? {
                    return Err(conflict("email", &u.email));
                }
                let now = now();
                let row = c
                    .one_raw(
                        "INSERT INTO users (username, email, realname, comment, password, salt, password_version,
                                            sysadmin, creation_time, update_time)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                         RETURNING id",
                        &[
                            &u.username,
                            &u.email,
                            &u.realname,
                            &u.comment,
                            &u.password,
                            &u.salt,
                            &u.password_version,
                            &u.sysadmin,
                            &now,
                        ],
                    )
                    .await
                    .map_err(|e| user_unique(e, &u.username, &u.email))?;
                Ok(User {
                    id: col(&row, 0)?,
                    username: u.username.clone(),
                    email: u.email.clone(),
                    realname: u.realname.clone(),
                    comment: u.comment.clone(),
                    password: u.password.clone(),
                    salt: u.salt.clone(),
                    password_version: u.password_version.clone(),
                    sysadmin: u.sysadmin,
                    creation_time: now,
                    update_time: now,
                })
            })
        })
        .await
    }

    async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.db(Tx::Read, &id, |c, id| Box::pin(async move { Ok(user_by_id(c, *id).await?) })).await
    }

    async fn user_by_login(&self, name_or_email: &str) -> StoreResult<Option<User>> {
        if name_or_email.is_empty() {
            return Ok(None);
        }
        self.db(Tx::Read, name_or_email, |c, login| {
            Box::pin(async move {
                // A user name wins over another user's e-mail.
                let by_name =
                    c.opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"), &[&login]).await?;
                let row = match by_name {
                    Some(r) => Some(r),
                    None => {
                        c.opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1 AND email <> ''"), &[&login])
                            .await?
                    }
                };
                Ok(row.map(|r| user_row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn list_users(&self, name: Option<&str>, page: &Page) -> StoreResult<(Vec<User>, u64)> {
        let (limit, offset) = limit_offset(page);
        let args = (name.map(contains_pattern), limit, offset);
        self.db(Tx::Read, &args, |c, (pattern, limit, offset)| {
            Box::pin(async move {
                let filter = "$1::text IS NULL OR username ILIKE $1";
                let total = count(c, &format!("SELECT count(*) FROM users WHERE {filter}"), &[pattern]).await?;
                let rows = c
                    .rows(
                        &format!("SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY id LIMIT $2 OFFSET $3"),
                        &[pattern, limit, offset],
                    )
                    .await?;
                let users = rows.iter().map(user_row).collect::<Result<_, _>>()?;
                Ok((users, total))
            })
        })
        .await
    }

    async fn update_user(&self, id: i64, update: &UserUpdate) -> IdentityResult<User> {
        self.run(Tx::Idempotent, &(id, update), |c, (id, up)| {
            Box::pin(async move {
                if user_by_id(c, *id).await?.is_none() {
                    return Err(not_found());
                }
                if let Some(email) = &up.email
                    && email_taken(c, email, *id).await?
                {
                    return Err(conflict("email", email));
                }
                let (password, salt, version) = match &up.password {
                    Some((p, s, v)) => (Some(p), Some(s), Some(v)),
                    None => (None, None, None),
                };
                c.exec_raw(
                    "UPDATE users SET email = coalesce($2, email),
                                      realname = coalesce($3, realname),
                                      comment = coalesce($4, comment),
                                      sysadmin = coalesce($5, sysadmin),
                                      password = coalesce($6, password),
                                      salt = coalesce($7, salt),
                                      password_version = coalesce($8, password_version),
                                      update_time = $9
                      WHERE id = $1",
                    &[id, &up.email, &up.realname, &up.comment, &up.sysadmin, &password, &salt, &version, &now()],
                )
                .await
                .map_err(|e| user_unique(e, "", up.email.as_deref().unwrap_or_default()))?;
                user_by_id(c, *id).await?.ok_or_else(|| vanished("user"))
            })
        })
        .await
    }

    async fn delete_user(&self, id: i64) -> IdentityResult<()> {
        self.run(Tx::Write, &id, |c, id| {
            Box::pin(async move {
                // Memberships go by ON DELETE CASCADE.
                let n = c.exec("DELETE FROM users WHERE id = $1", &[id]).await?;
                if n == 0 { Err(not_found()) } else { Ok(()) }
            })
        })
        .await
    }

    async fn user_count(&self) -> StoreResult<u64> {
        self.db(Tx::Read, &(), |c, ()| Box::pin(async move { Ok(count(c, "SELECT count(*) FROM users", &[]).await?) }))
            .await
    }

    // --- projects ---

    async fn create_project(&self, p: &NewProject) -> IdentityResult<Project> {
        self.run(Tx::Write, p, |c, p| {
            Box::pin(async move {
                if exists(c, "SELECT 1 FROM projects WHERE name = $1", &[&p.name]).await? {
                    return Err(conflict("name", &p.name));
                }
                if user_by_id(c, p.owner_id).await?.is_none() {
                    return Err(not_found());
                }
                let now = now();
                let row = c
                    .one_raw(
                        "INSERT INTO projects (name, owner_id, creation_time, update_time) VALUES ($1, $2, $3, $3)
                         RETURNING id",
                        &[&p.name, &p.owner_id, &now],
                    )
                    .await
                    .map_err(|e| unique_violation(e, &[("projects_name", "name", &p.name)]))?;
                let id: i64 = col(&row, 0)?;
                set_metadata(c, id, &p.metadata).await?;
                c.exec(
                    "INSERT INTO project_members (project_id, user_id, role_id) VALUES ($1, $2, $3)",
                    &[&id, &p.owner_id, &PROJECT_ADMIN],
                )
                .await?;
                Ok(Project {
                    id,
                    name: p.name.clone(),
                    owner_id: p.owner_id,
                    metadata: p.metadata.clone(),
                    creation_time: now,
                    update_time: now,
                })
            })
        })
        .await
    }

    async fn project(&self, id: i64) -> StoreResult<Option<Project>> {
        self.db(Tx::Read, &id, |c, id| Box::pin(async move { Ok(project_where(c, "p.id = $1", id).await?) })).await
    }

    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        self.db(Tx::Read, name, |c, name| Box::pin(async move { Ok(project_where(c, "p.name = $1", &name).await?) }))
            .await
    }

    async fn list_projects(&self, filter: &ProjectFilter, page: &Page) -> StoreResult<(Vec<Project>, u64)> {
        let mut conds = Vec::new();
        let mut args: Args = Vec::new();
        if let Some(name) = &filter.name {
            if filter.name_exact {
                args.push(Box::new(name.clone()));
                conds.push(format!("p.name = ${}", args.len()));
            } else {
                args.push(Box::new(contains_pattern(name)));
                conds.push(format!("p.name ILIKE ${}", args.len()));
            }
        }
        match filter.public {
            Some(true) => conds.push(IS_PUBLIC.to_owned()),
            Some(false) => conds.push(format!("NOT {IS_PUBLIC}")),
            None => {}
        }
        if let Some(user) = filter.member_user_id {
            args.push(Box::new(user));
            let member = format!(
                "EXISTS (SELECT 1 FROM project_members pm WHERE pm.project_id = p.id AND pm.user_id = ${})",
                args.len()
            );
            conds.push(if filter.include_public { format!("({member} OR {IS_PUBLIC})") } else { member });
        }
        let listing = Listing::new(
            &format!("SELECT {PROJECT_COLUMNS} FROM projects p"),
            "projects p",
            &conds,
            "p.name",
            args,
            page,
        );
        self.db(Tx::Read, &listing, |c, listing| {
            Box::pin(async move {
                let (rows, total) = listing.run(c).await?;
                let mut projects = Vec::with_capacity(rows.len());
                for r in &rows {
                    projects.push(with_metadata(c, project_row(r)?).await?);
                }
                Ok((projects, total))
            })
        })
        .await
    }

    async fn update_project_metadata(&self, id: i64, metadata: &BTreeMap<String, String>) -> IdentityResult<Project> {
        self.run(Tx::Idempotent, &(id, metadata), |c, (id, metadata)| {
            Box::pin(async move {
                if !project_exists(c, *id).await? {
                    return Err(not_found());
                }
                set_metadata(c, *id, metadata).await?;
                touch_project(c, *id).await?;
                project_where(c, "p.id = $1", id).await?.ok_or_else(|| vanished("project"))
            })
        })
        .await
    }

    async fn delete_project_metadata(&self, id: i64, key: &str) -> IdentityResult<()> {
        self.run(Tx::Write, &(id, key), |c, (id, key)| {
            Box::pin(async move {
                let n = c.exec("DELETE FROM project_metadata WHERE project_id = $1 AND name = $2", &[id, key]).await?;
                if n == 0 {
                    return Err(not_found());
                }
                touch_project(c, *id).await?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_project(&self, id: i64) -> IdentityResult<()> {
        self.run(Tx::Write, &id, |c, id| {
            Box::pin(async move {
                // Locked first, so that a concurrent create_robot either finishes before
                // (and its robot is deleted below) or finds no project.
                let Some(row) = c.opt("SELECT name FROM projects WHERE id = $1 FOR UPDATE", &[id]).await? else {
                    return Err(not_found());
                };
                let name: String = col(&row, 0)?;
                // No push may create a repository between the check and the delete.
                c.exec("LOCK TABLE repositories, manifests, repository_blobs IN SHARE MODE", &[]).await?;
                let repos = repository_count(c, &name).await?;
                if repos > 0 {
                    return Err(Fail::No(IdentityError::Precondition(format!(
                        "project {name} still has {repos} repositories; delete them first"
                    ))));
                }
                // Permissions go with their robots, metadata and members with the
                // project, by ON DELETE CASCADE.
                c.exec("DELETE FROM robots WHERE project_id = $1", &[id]).await?;
                c.exec("DELETE FROM projects WHERE id = $1", &[id]).await?;
                Ok(())
            })
        })
        .await
    }

    async fn project_repository_count(&self, name: &str) -> StoreResult<u64> {
        self.db(Tx::Read, name, |c, name| Box::pin(async move { Ok(repository_count(c, name).await?) })).await
    }

    // --- members ---

    async fn add_member(&self, project_id: i64, user_id: i64, role_id: i64) -> IdentityResult<Member> {
        self.run(Tx::Write, &(project_id, user_id, role_id), |c, (project_id, user_id, role_id)| {
            Box::pin(async move {
                if !project_exists(c, *project_id).await? {
                    return Err(not_found());
                }
                let Some(user) = user_by_id(c, *user_id).await? else {
                    return Err(not_found());
                };
                if exists(
                    c,
                    "SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2",
                    &[project_id, user_id],
                )
                .await?
                {
                    return Err(conflict("username", &user.username));
                }
                let row = c
                    .one_raw(
                        "INSERT INTO project_members (project_id, user_id, role_id) VALUES ($1, $2, $3) RETURNING id",
                        &[project_id, user_id, role_id],
                    )
                    .await
                    .map_err(|e| unique_violation(e, &[("project_members_user", "username", &user.username)]))?;
                Ok(Member {
                    id: col(&row, 0)?,
                    project_id: *project_id,
                    user_id: *user_id,
                    username: user.username,
                    role_id: *role_id,
                })
            })
        })
        .await
    }

    async fn members(&self, project_id: i64, name: Option<&str>, page: &Page) -> StoreResult<(Vec<Member>, u64)> {
        let (limit, offset) = limit_offset(page);
        let args = (project_id, name.map(contains_pattern), limit, offset);
        self.db(Tx::Read, &args, |c, (project_id, pattern, limit, offset)| {
            Box::pin(async move {
                let filter = "pm.project_id = $1 AND ($2::text IS NULL OR u.username ILIKE $2)";
                let total = count(
                    c,
                    &format!(
                        "SELECT count(*) FROM project_members pm JOIN users u ON u.id = pm.user_id WHERE {filter}"
                    ),
                    &[project_id, pattern],
                )
                .await?;
                let rows = c
                    .rows(
                        &format!("{MEMBER_SELECT} WHERE {filter} ORDER BY u.username, pm.id LIMIT $3 OFFSET $4"),
                        &[project_id, pattern, limit, offset],
                    )
                    .await?;
                Ok((rows.iter().map(member_row).collect::<Result<_, _>>()?, total))
            })
        })
        .await
    }

    async fn member(&self, project_id: i64, member_id: i64) -> StoreResult<Option<Member>> {
        self.db(Tx::Read, &(project_id, member_id), |c, (p, m)| {
            Box::pin(async move { Ok(member_by_id(c, *p, *m).await?) })
        })
        .await
    }

    async fn update_member_role(&self, project_id: i64, member_id: i64, role_id: i64) -> IdentityResult<Member> {
        self.run(Tx::Idempotent, &(project_id, member_id, role_id), |c, (project_id, member_id, role_id)| {
            Box::pin(async move {
                let n = c
                    .exec(
                        "UPDATE project_members SET role_id = $3 WHERE project_id = $1 AND id = $2",
                        &[project_id, member_id, role_id],
                    )
                    .await?;
                if n == 0 {
                    return Err(not_found());
                }
                member_by_id(c, *project_id, *member_id).await?.ok_or_else(|| vanished("member"))
            })
        })
        .await
    }

    async fn remove_member(&self, project_id: i64, member_id: i64) -> IdentityResult<()> {
        self.run(Tx::Write, &(project_id, member_id), |c, (project_id, member_id)| {
            Box::pin(async move {
                let n = c
                    .exec("DELETE FROM project_members WHERE project_id = $1 AND id = $2", &[project_id, member_id])
                    .await?;
                if n == 0 { Err(not_found()) } else { Ok(()) }
            })
        })
        .await
    }

    async fn member_role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<i64>> {
        self.db(Tx::Read, &(project_id, user_id), |c, (p, u)| {
            Box::pin(async move {
                let row = c
                    .opt("SELECT role_id FROM project_members WHERE project_id = $1 AND user_id = $2", &[p, u])
                    .await?;
                Ok(row.map(|r| col(&r, 0)).transpose()?)
            })
        })
        .await
    }

    // --- robots ---

    async fn create_robot(&self, r: &Robot) -> IdentityResult<Robot> {
        self.run(Tx::Write, r, |c, r| {
            Box::pin(async move {
                if exists(c, "SELECT 1 FROM robots WHERE name = $1", &[&r.name]).await? {
                    return Err(conflict("name", &r.name));
                }
                // Share-locked: delete_project waits for this robot, then deletes it.
                if r.project_id != 0
                    && !exists(c, "SELECT 1 FROM projects WHERE id = $1 FOR KEY SHARE", &[&r.project_id]).await?
                {
                    return Err(not_found());
                }
                let now = now();
                let row = c
                    .one_raw(
                        "INSERT INTO robots (name, description, project_id, secret, salt, expires_at, duration_days,
                                             disabled, level, creation_time, update_time)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                         RETURNING id",
                        &[
                            &r.name,
                            &r.description,
                            &r.project_id,
                            &r.secret,
                            &r.salt,
                            &r.expires_at,
                            &r.duration_days,
                            &r.disabled,
                            &r.level,
                            &now,
                        ],
                    )
                    .await
                    .map_err(|e| unique_violation(e, &[("robots_name", "name", &r.name)]))?;
                let id: i64 = col(&row, 0)?;
                set_permissions(c, id, &r.permissions).await?;
                Ok(Robot { id, creation_time: now, update_time: now, ..r.clone() })
            })
        })
        .await
    }

    async fn robot(&self, id: i64) -> StoreResult<Option<Robot>> {
        self.db(Tx::Read, &id, |c, id| Box::pin(async move { Ok(robot_where(c, "id = $1", id).await?) })).await
    }

    async fn robot_by_name(&self, name: &str) -> StoreResult<Option<Robot>> {
        self.db(Tx::Read, name, |c, name| Box::pin(async move { Ok(robot_where(c, "name = $1", &name).await?) })).await
    }

    async fn list_robots(&self, project_id: Option<i64>, page: &Page) -> StoreResult<(Vec<Robot>, u64)> {
        let (limit, offset) = limit_offset(page);
        self.db(Tx::Read, &(project_id, limit, offset), |c, (project_id, limit, offset)| {
            Box::pin(async move {
                let filter = "$1::bigint IS NULL OR project_id = $1";
                let total = count(c, &format!("SELECT count(*) FROM robots WHERE {filter}"), &[project_id]).await?;
                let rows = c
                    .rows(
                        &format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE {filter} ORDER BY name LIMIT $2 OFFSET $3"),
                        &[project_id, limit, offset],
                    )
                    .await?;
                let mut robots = Vec::with_capacity(rows.len());
                for r in &rows {
                    robots.push(with_permissions(c, robot_row(r)?).await?);
                }
                Ok((robots, total))
            })
        })
        .await
    }

    async fn update_robot(&self, r: &Robot) -> IdentityResult<Robot> {
        self.run(Tx::Idempotent, r, |c, r| {
            Box::pin(async move {
                let Some(old) = robot_where(c, "id = $1", &r.id).await? else {
                    return Err(not_found());
                };
                let (secret, salt) = if r.secret.is_empty() || r.secret == old.secret {
                    (old.secret, old.salt)
                } else {
                    (r.secret.clone(), r.salt.clone())
                };
                c.exec(
                    "UPDATE robots SET description = $2, expires_at = $3, duration_days = $4, disabled = $5,
                                       secret = $6, salt = $7, update_time = $8
                      WHERE id = $1",
                    &[&r.id, &r.description, &r.expires_at, &r.duration_days, &r.disabled, &secret, &salt, &now()],
                )
                .await?;
                set_permissions(c, r.id, &r.permissions).await?;
                robot_where(c, "id = $1", &r.id).await?.ok_or_else(|| vanished("robot"))
            })
        })
        .await
    }

    async fn delete_robot(&self, id: i64) -> IdentityResult<()> {
        self.run(Tx::Write, &id, |c, id| {
            Box::pin(async move {
                let n = c.exec("DELETE FROM robots WHERE id = $1", &[id]).await?;
                if n == 0 { Err(not_found()) } else { Ok(()) }
            })
        })
        .await
    }

    // --- audit log ---

    async fn purge_audit(
        &self,
        before: i64,
        operations: &[String],
        event_types: &[String],
        batch: u64,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let args = (before, operations, event_types, i64::try_from(batch).unwrap_or(i64::MAX));
        if dry_run {
            return self
                .db(Tx::Read, &args, |c, (before, ops, types, _)| {
                    Box::pin(async move {
                        let row = c
                            .one(
                                "SELECT count(*) FROM audit_log WHERE op_time < $1
                                   AND (operation = ANY($2) OR operation || '_' || resource_type = ANY($3))",
                                &[before, ops, types],
                            )
                            .await?;
                        Ok(col::<i64>(&row, 0)?.max(0) as u64)
                    })
                })
                .await;
        }
        self.db(Tx::Write, &args, |c, (before, ops, types, batch)| {
            Box::pin(async move {
                Ok(c.exec(
                    "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE op_time < $1
                       AND (operation = ANY($2) OR operation || '_' || resource_type = ANY($3))
                       ORDER BY id LIMIT $4)",
                    &[before, ops, types, batch],
                )
                .await?)
            })
        })
        .await
    }

    async fn append_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        self.append_audit_batch(std::slice::from_ref(e)).await
    }

    async fn append_audit_batch(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let columns = (
            entries.iter().map(|e| e.project_id).collect::<Vec<_>>(),
            entries.iter().map(|e| e.operation.as_str()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.resource_type.as_str()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.resource.as_str()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.username.as_str()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.op_time).collect::<Vec<_>>(),
        );
        self.db(Tx::Write, &columns, |c, (project, operation, resource_type, resource, username, op_time)| {
            Box::pin(async move {
                // One statement for the whole batch; ids follow the order of `entries`.
                c.exec(
                    "INSERT INTO audit_log (project_id, operation, resource_type, resource, username, op_time)
                     SELECT p, o, t, r, u, at
                       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
                            WITH ORDINALITY AS e (p, o, t, r, u, at, n)
                      ORDER BY n",
                    &[project, operation, resource_type, resource, username, op_time],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &Page) -> StoreResult<(Vec<AuditEntry>, u64)> {
        let mut conds = Vec::new();
        let mut args: Args = Vec::new();
        if let Some(p) = filter.project_id {
            args.push(Box::new(p));
            conds.push(format!("project_id = ${}", args.len()));
        }
        for (column, m) in filter.text_columns() {
            match m {
                None => {}
                Some(TextMatch::Exact(v)) => {
                    args.push(Box::new(v.clone()));
                    conds.push(format!("{column} = ${}", args.len()));
                }
                Some(TextMatch::Contains(v)) => {
                    args.push(Box::new(contains_pattern(v)));
                    conds.push(format!("{column} ILIKE ${}", args.len()));
                }
                Some(TextMatch::AnyOf(vs)) => {
                    args.push(Box::new(vs.clone()));
                    conds.push(format!("{column} = ANY(${})", args.len()));
                }
            }
        }
        for (op, bound) in [(">=", filter.op_time_from), ("<=", filter.op_time_to)] {
            if let Some(t) = bound {
                args.push(Box::new(t));
                conds.push(format!("op_time {op} ${}", args.len()));
            }
        }
        let listing = Listing::new(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit_log"),
            "audit_log",
            &conds,
            "op_time DESC, id DESC",
            args,
            page,
        );
        self.db(Tx::Read, &listing, |c, listing| {
            Box::pin(async move {
                let (rows, total) = listing.run(c).await?;
                Ok((rows.iter().map(audit_row).collect::<Result<_, _>>()?, total))
            })
        })
        .await
    }
}
