-- The tags view's natural (version-aware) order (`TagSort::Natural`): each tag's
-- `berth_core::natural::natural_key`, bytes compared bytewise. SQL does not compute it
-- (one definition, in Rust), so it is NULL here: the binary fills it right after
-- migrating (in batches, under the migration lock), on every insert, and, before a
-- natural-order read, for any tag an older binary wrote since (found through
-- `tags_unkeyed`, empty but for those).
ALTER TABLE tags ADD COLUMN sort_key BYTEA;
CREATE INDEX tags_natural ON tags (repository_id, sort_key);
CREATE INDEX tags_unkeyed ON tags (repository_id) WHERE sort_key IS NULL;
