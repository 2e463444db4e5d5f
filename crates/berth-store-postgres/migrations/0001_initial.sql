-- Initial schema: the SQLite schema (its migrations 0001 to 0005) in PostgreSQL types.
-- Migrations are append-only: never edit this file once released, add 0002_*.sql.
--
-- Text that is compared, ordered or matched is COLLATE "C": listings are in byte order,
-- whatever collation the database was created with, and ILIKE folds ASCII only, as
-- SQLite's LIKE does.
--
-- Reference strength, for the online GC to come:
--   manifest_blobs     strong: a blob referenced by a manifest must not be collected.
--   repository_blobs   soft:   a link alone does not keep a blob alive, so it has no
--                              foreign key to blobs and GC may remove blobs under it.
--   blobs.last_ref_at  grace:  refreshed on every use so GC spares blobs that a push
--                              in flight has just checked.
-- A blob row in state 'deleting' is owned by GC and is treated as absent by every API.
--
-- Ids come from sequences, so they are never reused, even the newest one's after it is
-- deleted.

-- --- registry ---

CREATE TABLE repositories (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT COLLATE "C" PRIMARY KEY,
    size        BIGINT NOT NULL,
    state       TEXT   NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'deleting')),
    last_ref_at BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
-- GC asks "is this blob linked anywhere?".
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    id             BIGSERIAL PRIMARY KEY,
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT COLLATE "C" NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    annotations    TEXT,
    subject_digest TEXT COLLATE "C",
    size           BIGINT NOT NULL,
    content        BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest);

CREATE TABLE manifest_blobs (
    manifest_id BIGINT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    digest      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blobs_digest ON manifest_blobs (digest);

CREATE TABLE manifest_children (
    manifest_id  BIGINT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    child_digest TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (manifest_id, child_digest)
);
CREATE INDEX manifest_children_child ON manifest_children (child_digest);

CREATE TABLE tags (
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          TEXT COLLATE "C" NOT NULL,
    manifest_id   BIGINT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
-- Deleting a manifest must find its tags without a scan.
CREATE INDEX tags_manifest ON tags (manifest_id);

-- `repository` is a name, not a foreign key: an upload session alone does not create
-- a repository. `parts` are storage keys in order.
CREATE TABLE uploads (
    id         TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT COLLATE "C" NOT NULL,
    "offset"   BIGINT NOT NULL,
    hash_state BYTEA,
    parts      TEXT[] NOT NULL DEFAULT '{}',
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_updated ON uploads (updated_at);

-- --- identity, after Harbor's tables ---

CREATE TABLE users (
    id               BIGSERIAL PRIMARY KEY,
    username         TEXT COLLATE "C" NOT NULL CONSTRAINT users_username UNIQUE,
    -- '' when unknown (LDAP/OIDC users may have none); unique otherwise, see below.
    email            TEXT COLLATE "C" NOT NULL DEFAULT '',
    realname         TEXT NOT NULL DEFAULT '',
    comment          TEXT NOT NULL DEFAULT '',
    -- Harbor's format: hex PBKDF2 output, its salt, and the version naming the hash.
    password         TEXT NOT NULL DEFAULT '',
    salt             TEXT NOT NULL DEFAULT '',
    password_version TEXT NOT NULL DEFAULT '',
    sysadmin         BOOLEAN NOT NULL DEFAULT FALSE,
    creation_time    BIGINT NOT NULL,
    update_time      BIGINT NOT NULL
);
-- Harbor stores a missing e-mail as NULL to dodge its unique constraint; here it is ''
-- and the index skips it. Also serves login by e-mail (queries repeat the condition).
CREATE UNIQUE INDEX users_email ON users (email) WHERE email <> '';

-- owner_id has no foreign key: deleting a user leaves the projects they created, as in
-- Harbor (whose user deletion is a soft delete).
CREATE TABLE projects (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL CONSTRAINT projects_name UNIQUE,
    owner_id      BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    update_time   BIGINT NOT NULL
);

-- Harbor keeps metadata as strings: public = 'true', auto_scan, severity, …
CREATE TABLE project_metadata (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);
-- The public filter of project listings.
CREATE INDEX project_metadata_name_value ON project_metadata (name, value);

-- Only users are members for now (Harbor's entity_type 'u'); role_id is Harbor's role.
CREATE TABLE project_members (
    id         BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    BIGINT NOT NULL,
    CONSTRAINT project_members_user UNIQUE (project_id, user_id)
);
-- "Projects of this user" and the cascade from users.
CREATE INDEX project_members_user_id ON project_members (user_id);

-- project_id 0 means a system-level robot, so it cannot be a foreign key; the store
-- deletes a project's robots together with the project.
CREATE TABLE robots (
    id            BIGSERIAL PRIMARY KEY,
    -- Without the robot$ prefix: 'name' (system) or 'project+name'.
    name          TEXT COLLATE "C" NOT NULL CONSTRAINT robots_name UNIQUE,
    description   TEXT NOT NULL DEFAULT '',
    project_id    BIGINT NOT NULL DEFAULT 0,
    secret        TEXT NOT NULL DEFAULT '',
    salt          TEXT NOT NULL DEFAULT '',
    -- Unix seconds, -1 for never.
    expires_at    BIGINT NOT NULL DEFAULT -1,
    duration_days BIGINT NOT NULL DEFAULT -1,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    level         TEXT NOT NULL DEFAULT '',
    creation_time BIGINT NOT NULL,
    update_time   BIGINT NOT NULL
);
CREATE INDEX robots_project ON robots (project_id);

-- A robot's permissions in the order they were given.
CREATE TABLE robot_permissions (
    robot_id  BIGINT NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    -- 'project' or 'system'.
    kind      TEXT NOT NULL,
    -- A project name, '*' for all projects, or '/' for system.
    namespace TEXT NOT NULL,
    resource  TEXT NOT NULL,
    action    TEXT NOT NULL,
    PRIMARY KEY (robot_id, position)
);

-- No foreign keys: the log outlives the projects and users it mentions.
CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    project_id    BIGINT NOT NULL DEFAULT 0,
    operation     TEXT COLLATE "C" NOT NULL,
    resource_type TEXT COLLATE "C" NOT NULL,
    resource      TEXT NOT NULL,
    username      TEXT COLLATE "C" NOT NULL,
    op_time       BIGINT NOT NULL
);
CREATE INDEX audit_log_op_time ON audit_log (op_time);
CREATE INDEX audit_log_project ON audit_log (project_id, op_time);

-- --- catalog: what Harbor keeps on a repository beyond its name ---

-- A separate table rather than columns on `repositories`, so that the registry's hot
-- path (ensure_repo on every push) stays as it is.
CREATE TABLE repository_meta (
    repository_id BIGINT PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    description   TEXT   NOT NULL DEFAULT '',
    pull_count    BIGINT NOT NULL DEFAULT 0,
    -- Last description change or pull (unix seconds); pushes are read from
    -- manifests.created_at and tags.updated_at instead of being written here.
    update_time   BIGINT
);

-- --- labels (harbor_label, label_reference) ---

-- Global labels have project_id 0 so that (name, scope, project_id) is unique for them too.
CREATE TABLE labels (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    color         TEXT NOT NULL DEFAULT '',
    level         TEXT NOT NULL DEFAULT 'u' CHECK (level IN ('s', 'u')),
    scope         TEXT NOT NULL CHECK (scope IN ('g', 'p')),
    project_id    BIGINT NOT NULL DEFAULT 0,
    creation_time BIGINT NOT NULL,
    update_time   BIGINT NOT NULL,
    CONSTRAINT labels_name UNIQUE (name, scope, project_id)
);

CREATE TABLE label_references (
    label_id    BIGINT NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    manifest_id BIGINT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (label_id, manifest_id)
);
CREATE INDEX label_references_manifest ON label_references (manifest_id);

-- --- cluster: settings every instance must agree on (key fingerprints) ---

CREATE TABLE cluster_settings (
    name       TEXT COLLATE "C" PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
