-- The tags view's push and pull orders (`CatalogStore::list_tags_sorted`): a page is read
-- in index order from its cursor, like the name order, instead of sorting every tag of
-- the repository. Scanned backwards for the newest first; a NULL pull time sorts last.
CREATE INDEX tags_pushed ON tags (repository_id, updated_at, id);
CREATE INDEX tags_pulled ON tags (repository_id, pulled_at, id);
