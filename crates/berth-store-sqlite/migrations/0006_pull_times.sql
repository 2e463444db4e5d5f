-- Harbor's tag ids and pull times: tags get a stable integer id, tags and manifests the
-- time they were last pulled (unix seconds, NULL until the first pull).
--
-- SQLite cannot add a primary key to a table, and a plain column filled from the rowid
-- once would not stay unique: without an INTEGER PRIMARY KEY the rowid is not stable
-- (VACUUM may renumber it) and later rows would take ids already handed out. So the
-- table is rebuilt with `id INTEGER PRIMARY KEY AUTOINCREMENT` (ids never reused, like
-- Harbor's serial), existing tags keeping their current rowid as their id, so their
-- order is kept. The old primary key becomes a UNIQUE constraint on the same columns,
-- which the `ON CONFLICT (repository_id, name)` upserts of earlier binaries still use:
-- they keep working on this schema (an upsert updates the row in place, so a tag pushed
-- again keeps its id). Nothing references `tags`, so dropping the old table touches no
-- other row.

CREATE TABLE tags_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    manifest_id   INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    updated_at    INTEGER NOT NULL,
    pulled_at     INTEGER,
    UNIQUE (repository_id, name)
);
INSERT INTO tags_new (id, repository_id, name, manifest_id, updated_at)
    SELECT rowid, repository_id, name, manifest_id, updated_at FROM tags ORDER BY rowid;
DROP TABLE tags;
ALTER TABLE tags_new RENAME TO tags;
-- Deleting a manifest must find its tags without a scan.
CREATE INDEX tags_manifest ON tags (manifest_id);

ALTER TABLE manifests ADD COLUMN pulled_at INTEGER;
