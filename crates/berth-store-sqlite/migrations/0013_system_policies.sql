-- System-wide policy documents (replication registries and policies) belong to no project:
-- project_id becomes nullable (NULL: system-wide). SQLite cannot drop NOT NULL in place,
-- so the table is rebuilt with the same columns, key, cascade and index.

CREATE TABLE policies_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO policies_new (id, kind, project_id, body, created_at, updated_at)
    SELECT id, kind, project_id, body, created_at, updated_at FROM policies;
DROP TABLE policies;
ALTER TABLE policies_new RENAME TO policies;
CREATE INDEX policies_project ON policies (project_id, kind, id);
