-- Harbor's labels (harbor_label) and their attachments to artifacts (label_reference).
-- Global labels have project_id 0 so that (name, scope, project_id) is unique for them too.

CREATE TABLE labels (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    color         TEXT NOT NULL DEFAULT '',
    level         TEXT NOT NULL DEFAULT 'u' CHECK (level IN ('s', 'u')),
    scope         TEXT NOT NULL CHECK (scope IN ('g', 'p')),
    project_id    INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    UNIQUE (name, scope, project_id)
);

CREATE TABLE label_references (
    label_id    INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (label_id, manifest_id)
);

CREATE INDEX label_references_manifest ON label_references (manifest_id);
