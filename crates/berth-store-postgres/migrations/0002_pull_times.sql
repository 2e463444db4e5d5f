-- Harbor's tag ids and pull times: tags get a stable id, tags and manifests the time they
-- were last pulled (unix seconds, NULL until the first pull).
--
-- The identity column numbers the existing tags as it is added, and new ones as they
-- are inserted; an upsert that finds the tag updates the row in place, so a tag pushed
-- again (or moved to another manifest) keeps its id. Earlier binaries never name the
-- column, so they keep working on this schema.

ALTER TABLE tags ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE tags ADD CONSTRAINT tags_id_unique UNIQUE (id);
ALTER TABLE tags ADD COLUMN pulled_at BIGINT;
ALTER TABLE manifests ADD COLUMN pulled_at BIGINT;
