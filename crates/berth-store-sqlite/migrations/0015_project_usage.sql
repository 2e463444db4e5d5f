-- Each project's storage usage (see berth_core::quota): the sizes of the distinct live
-- blobs linked to its repositories and of their distinct manifests, each digest once.
-- The project of a repository is the part of its name before the first '/'.
--
-- The triggers below keep `used` in the same transaction as every change to what a
-- project holds, whoever makes it (pushes, mounts, deletes, GC, retention, binaries
-- older than this migration): a digest's size is added when the project comes to hold
-- it and subtracted when it stops holding it. "Holds" means: a live blob of that digest
-- linked to one of its repositories, or a manifest of that digest in one of them. Each
-- trigger runs right after its row changed, so "holds now" is exact.
--
-- A quota check is then one row read. The live sum stays as the repair (a run of
-- `repair_storage_usage`), which finds and fixes any drift.

CREATE TABLE project_usage (
    project TEXT PRIMARY KEY,
    used    INTEGER NOT NULL
) WITHOUT ROWID;

-- Back-fill: the live sum of every project that has repositories now.
INSERT INTO project_usage (project, used)
SELECT p, coalesce(sum(size), 0) FROM (
    SELECT substr(r.name, 1, instr(r.name, '/') - 1) AS p, b.digest, b.size
      FROM repositories r
      JOIN repository_blobs rb ON rb.repository_id = r.id
      JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
     WHERE instr(r.name, '/') > 1
    UNION
    SELECT substr(r.name, 1, instr(r.name, '/') - 1), m.digest, m.size
      FROM repositories r JOIN manifests m ON m.repository_id = r.id
     WHERE instr(r.name, '/') > 1)
GROUP BY p;

-- A link added: its blob's size, if live and the project held the digest by no other row.
CREATE TRIGGER project_usage_link_added AFTER INSERT ON repository_blobs
BEGIN
    INSERT OR IGNORE INTO project_usage (project, used)
    SELECT substr(name, 1, instr(name, '/') - 1), 0 FROM repositories
     WHERE id = NEW.repository_id AND instr(name, '/') > 1;
    UPDATE project_usage SET used = used + (SELECT size FROM blobs WHERE digest = NEW.digest)
     WHERE project = (SELECT substr(name, 1, instr(name, '/') - 1) FROM repositories
                       WHERE id = NEW.repository_id AND instr(name, '/') > 1)
       AND EXISTS (SELECT 1 FROM blobs WHERE digest = NEW.digest AND state = 'live')
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0'
                          AND rb.digest = NEW.digest AND rb.repository_id <> NEW.repository_id)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND m.digest = NEW.digest);
END;

-- A link removed: its live blob's size, if the project no longer holds the digest.
CREATE TRIGGER project_usage_link_removed AFTER DELETE ON repository_blobs
BEGIN
    UPDATE project_usage SET used = used - (SELECT size FROM blobs WHERE digest = OLD.digest)
     WHERE project = (SELECT substr(name, 1, instr(name, '/') - 1) FROM repositories
                       WHERE id = OLD.repository_id AND instr(name, '/') > 1)
       AND EXISTS (SELECT 1 FROM blobs WHERE digest = OLD.digest AND state = 'live')
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND rb.digest = OLD.digest)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND m.digest = OLD.digest);
END;

-- A manifest added: its size, if the project held the digest by no other row.
CREATE TRIGGER project_usage_manifest_added AFTER INSERT ON manifests
BEGIN
    INSERT OR IGNORE INTO project_usage (project, used)
    SELECT substr(name, 1, instr(name, '/') - 1), 0 FROM repositories
     WHERE id = NEW.repository_id AND instr(name, '/') > 1;
    UPDATE project_usage SET used = used + NEW.size
     WHERE project = (SELECT substr(name, 1, instr(name, '/') - 1) FROM repositories
                       WHERE id = NEW.repository_id AND instr(name, '/') > 1)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                         JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND rb.digest = NEW.digest)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0'
                          AND m.digest = NEW.digest AND m.id <> NEW.id);
END;

-- A manifest removed: its size, if the project no longer holds the digest.
CREATE TRIGGER project_usage_manifest_removed AFTER DELETE ON manifests
BEGIN
    UPDATE project_usage SET used = used - OLD.size
     WHERE project = (SELECT substr(name, 1, instr(name, '/') - 1) FROM repositories
                       WHERE id = OLD.repository_id AND instr(name, '/') > 1)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                         JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND rb.digest = OLD.digest)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND m.digest = OLD.digest);
END;

-- A repository's links and manifests go before its row, so that the triggers above
-- still find the repository's name.
CREATE TRIGGER project_usage_repository_deleted BEFORE DELETE ON repositories
BEGIN
    DELETE FROM manifests WHERE repository_id = OLD.id;
    DELETE FROM repository_blobs WHERE repository_id = OLD.id;
END;

-- A blob becoming live (a new row under links left behind, or a GC claim undone or
-- resurrected by an upload) or ceasing to be (a GC claim, a deleted live row): its size
-- in every project linking it that holds no manifest of that digest. Its links count
-- only while it is live, so they made no difference before (or make none after).
CREATE TRIGGER project_usage_blob_inserted AFTER INSERT ON blobs WHEN NEW.state = 'live'
BEGIN
    UPDATE project_usage SET used = used + NEW.size
     WHERE project IN (SELECT substr(r.name, 1, instr(r.name, '/') - 1)
                         FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                        WHERE rb.digest = NEW.digest AND instr(r.name, '/') > 1)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND m.digest = NEW.digest);
END;

CREATE TRIGGER project_usage_blob_state AFTER UPDATE OF state ON blobs
WHEN (OLD.state = 'live') <> (NEW.state = 'live')
BEGIN
    UPDATE project_usage SET used = used + CASE WHEN NEW.state = 'live' THEN NEW.size ELSE -OLD.size END
     WHERE project IN (SELECT substr(r.name, 1, instr(r.name, '/') - 1)
                         FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                        WHERE rb.digest = NEW.digest AND instr(r.name, '/') > 1)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND m.digest = NEW.digest);
END;

CREATE TRIGGER project_usage_blob_deleted AFTER DELETE ON blobs WHEN OLD.state = 'live'
BEGIN
    UPDATE project_usage SET used = used - OLD.size
     WHERE project IN (SELECT substr(r.name, 1, instr(r.name, '/') - 1)
                         FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                        WHERE rb.digest = OLD.digest AND instr(r.name, '/') > 1)
       AND NOT EXISTS (SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                        WHERE r.name >= project || '/' AND r.name < project || '0' AND m.digest = OLD.digest);
END;
