-- Identity: users, projects, members, robot accounts and the audit log, after Harbor's
-- tables (harbor_user, project, project_metadata, project_member, robot,
-- permission_policy/role_permission, audit_log). Append-only, like 0001.
--
-- Ids appear in URLs and in other systems' records, so they are never reused:
-- AUTOINCREMENT keeps a high-water mark (sqlite_sequence) even when the newest row is
-- deleted, and an import that inserts Harbor's ids explicitly moves it past them.
--
-- Text comparisons (uniqueness, exact lookups) are byte-exact, as in PostgreSQL.

CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    username         TEXT    NOT NULL UNIQUE,
    -- '' when unknown (LDAP/OIDC users may have none); unique otherwise, see below.
    email            TEXT    NOT NULL DEFAULT '',
    realname         TEXT    NOT NULL DEFAULT '',
    comment          TEXT    NOT NULL DEFAULT '',
    -- Harbor's format: hex PBKDF2 output, its salt, and the version naming the hash.
    password         TEXT    NOT NULL DEFAULT '',
    salt             TEXT    NOT NULL DEFAULT '',
    password_version TEXT    NOT NULL DEFAULT '',
    sysadmin         INTEGER NOT NULL DEFAULT 0 CHECK (sysadmin IN (0, 1)),
    creation_time    INTEGER NOT NULL,
    update_time      INTEGER NOT NULL
);
-- Harbor stores a missing e-mail as NULL to dodge its unique constraint; here it is ''
-- and the index skips it. Also serves login by e-mail (queries repeat the condition).
CREATE UNIQUE INDEX users_email ON users (email) WHERE email <> '';

-- owner_id has no foreign key: deleting a user leaves the projects they created, as in
-- Harbor (whose user deletion is a soft delete).
CREATE TABLE projects (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    owner_id      INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);

-- Harbor keeps metadata as strings: public = 'true', auto_scan, severity, …
CREATE TABLE project_metadata (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    PRIMARY KEY (project_id, name)
);
-- The public filter of project listings.
CREATE INDEX project_metadata_name_value ON project_metadata (name, value);

-- Only users are members for now (Harbor's entity_type 'u'); role_id is Harbor's role.
CREATE TABLE project_members (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    INTEGER NOT NULL,
    UNIQUE (project_id, user_id)
);
-- "Projects of this user" and the cascade from users.
CREATE INDEX project_members_user ON project_members (user_id);

-- project_id 0 means a system-level robot, so it cannot be a foreign key; the store
-- deletes a project's robots together with the project.
CREATE TABLE robots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Without the robot$ prefix: 'name' (system) or 'project+name'.
    name          TEXT    NOT NULL UNIQUE,
    description   TEXT    NOT NULL DEFAULT '',
    project_id    INTEGER NOT NULL DEFAULT 0,
    secret        TEXT    NOT NULL DEFAULT '',
    salt          TEXT    NOT NULL DEFAULT '',
    -- Unix seconds, -1 for never.
    expires_at    INTEGER NOT NULL DEFAULT -1,
    duration_days INTEGER NOT NULL DEFAULT -1,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    level         TEXT    NOT NULL DEFAULT '',
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE INDEX robots_project ON robots (project_id);

-- A robot's permissions in the order they were given (position), which rowids would
-- not guarantee across a VACUUM.
CREATE TABLE robot_permissions (
    robot_id  INTEGER NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    -- 'project' or 'system'.
    kind      TEXT    NOT NULL,
    -- A project name, '*' for all projects, or '/' for system.
    namespace TEXT    NOT NULL,
    resource  TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    PRIMARY KEY (robot_id, position)
);

-- No foreign keys: the log outlives the projects and users it mentions.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL DEFAULT 0,
    operation     TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource      TEXT    NOT NULL,
    username      TEXT    NOT NULL,
    op_time       INTEGER NOT NULL
);
CREATE INDEX audit_log_op_time ON audit_log (op_time);
CREATE INDEX audit_log_project ON audit_log (project_id, op_time);
