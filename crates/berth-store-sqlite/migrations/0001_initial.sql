-- Initial schema. Migrations are append-only: never edit this file once released,
-- add 0002_*.sql instead.
--
-- Reference strength, for the online GC to come:
--   manifest_blobs     strong: a blob referenced by a manifest must not be collected.
--   repository_blobs   soft:   a link alone does not keep a blob alive, so it has no
--                              foreign key to blobs and GC may remove blobs under it.
--   blobs.last_ref_at  grace:  refreshed on every use so GC spares blobs that a push
--                              in flight has just checked.
-- A blob row in state 'deleting' is owned by GC and is treated as absent by every API.

CREATE TABLE repositories (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT    PRIMARY KEY,
    size        INTEGER NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'deleting')),
    last_ref_at INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
-- GC asks "is this blob linked anywhere?".
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    id             INTEGER PRIMARY KEY,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT    NOT NULL,
    media_type     TEXT    NOT NULL,
    artifact_type  TEXT,
    annotations    TEXT,
    subject_digest TEXT,
    size           INTEGER NOT NULL,
    content        BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest);

CREATE TABLE manifest_blobs (
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    digest      TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blobs_digest ON manifest_blobs (digest);

CREATE TABLE manifest_children (
    manifest_id  INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    child_digest TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, child_digest)
);
CREATE INDEX manifest_children_child ON manifest_children (child_digest);

CREATE TABLE tags (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    manifest_id   INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name)
);
-- Deleting a manifest must find its tags without a scan.
CREATE INDEX tags_manifest ON tags (manifest_id);

-- `repository` is a name, not a foreign key: an upload session alone does not create
-- a repository.
CREATE TABLE uploads (
    id         TEXT    PRIMARY KEY,
    repository TEXT    NOT NULL,
    "offset"   INTEGER NOT NULL,
    hash_state BLOB,
    parts      TEXT    NOT NULL DEFAULT '[]',
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX uploads_updated ON uploads (updated_at);
