-- The tags view's push and pull orders (`CatalogStore::list_tags_sorted`): a page is read
-- in index order from its cursor, like the name order, instead of sorting every tag of
-- the repository. The push order scans the first backwards; the second is in the pull
-- order itself (newest first, never-pulled last).
CREATE INDEX tags_pushed ON tags (repository_id, updated_at, id);
CREATE INDEX tags_pulled ON tags (repository_id, pulled_at DESC NULLS LAST, id DESC);
