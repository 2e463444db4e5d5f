-- Catalog: what Harbor keeps on a repository beyond its name (description, pull count,
-- update time). Append-only, like 0001.
--
-- A separate table rather than columns on `repositories`, so that the registry's hot
-- path (ensure_repo on every push) stays as it is: a repository without a row here has
-- an empty description, no pulls, and an update time derived from its pushes.

CREATE TABLE repository_meta (
    repository_id INTEGER PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    description   TEXT    NOT NULL DEFAULT '',
    pull_count    INTEGER NOT NULL DEFAULT 0,
    -- Last description change or pull (unix seconds); pushes are read from
    -- manifests.created_at and tags.updated_at instead of being written here.
    update_time   INTEGER
);
