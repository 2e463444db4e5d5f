-- Project policies as Harbor's JSON documents (immutable-tag rules, later retention and
-- replication): the rules live in berth-core, this table only keeps them.

CREATE TABLE policies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX policies_project ON policies (project_id, kind, id);
