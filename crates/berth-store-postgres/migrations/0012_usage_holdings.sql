-- Cheaper usage bookkeeping (replaces the triggers of 0011; `project_usage` stays).
--
-- 0011 recounted a digest's holders and locked the project's usage row in every
-- statement-level trigger, including on every `UPDATE blobs` (each pull or push touches
-- `last_ref_at`): a push into a project without a limit paid about 9 ms for it, and
-- concurrent pushes into one project queued on its row. Here:
--
-- * `project_digests` holds one row per (project, digest) the project holds (a live blob
--   linked to one of its repositories, or a manifest in one of them), with its size.
--   Adding a holder is one index probe: the row is inserted, or it exists and is locked.
-- * Usage changes are appended to `project_usage_delta` instead of updating the
--   project's row, so writers into one project never wait for each other on it. The
--   usage is `project_usage.used` plus the project's deltas; the quota check and the
--   repair fold the deltas into the row while they hold it locked.
-- * Inserts are row-level triggers; deletes stay statement-level (they come in batches:
--   a repository delete, GC), and blob updates fire only when liveness changes (a
--   `WHEN` clause, evaluated without calling a function).
--
-- Concurrency (READ COMMITTED). A writer that adds a holder locks the (project, digest)
-- row (`ON CONFLICT DO UPDATE ... WHERE false` locks without writing); one that removes
-- holders locks the rows of the pairs it touched, in key order, and only then, in a
-- statement that starts after the locks are held (and so sees every commit of the
-- previous holder of a lock), deletes those with no holder left. A pair's row is thus
-- inserted once and deleted once whoever races. Lock order: blob rows, then the project's
-- usage row (only the quota check and the repair take it), then (project, digest) rows;
-- the delta table is append-only and only the holders of the usage row delete from it.

DROP TRIGGER project_usage_links_added ON repository_blobs;
DROP TRIGGER project_usage_links_removed ON repository_blobs;
DROP TRIGGER project_usage_manifests_added ON manifests;
DROP TRIGGER project_usage_manifests_removed ON manifests;
DROP TRIGGER project_usage_blobs_inserted ON blobs;
DROP TRIGGER project_usage_blobs_updated ON blobs;
DROP TRIGGER project_usage_blobs_deleted ON blobs;
DROP FUNCTION berth_usage_links_added();
DROP FUNCTION berth_usage_links_removed();
DROP FUNCTION berth_usage_manifests_added();
DROP FUNCTION berth_usage_manifests_removed();
DROP FUNCTION berth_usage_blobs_inserted();
DROP FUNCTION berth_usage_blobs_updated();
DROP FUNCTION berth_usage_blobs_deleted();
DROP FUNCTION berth_usage_blobs_went(jsonb);
DROP FUNCTION berth_usage_apply(jsonb);

CREATE TABLE project_digests (
    project TEXT COLLATE "C" NOT NULL,
    digest  TEXT COLLATE "C" NOT NULL,
    size    BIGINT NOT NULL,
    PRIMARY KEY (project, digest)
);

CREATE TABLE project_usage_delta (
    project TEXT COLLATE "C" NOT NULL,
    delta   BIGINT NOT NULL
);
CREATE INDEX project_usage_delta_project ON project_usage_delta (project);

-- Folds project `p`'s deltas into its row; the caller holds the row locked. Returns the
-- usage. The deltas deleted are those summed (one statement); no deltas, no write.
CREATE FUNCTION berth_usage_fold(p text) RETURNS bigint LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
    s bigint;
    u bigint;
BEGIN
    WITH f AS (DELETE FROM project_usage_delta WHERE project = p RETURNING delta)
    SELECT count(*), coalesce(sum(delta), 0) INTO n, s FROM f;
    IF n > 0 THEN
        UPDATE project_usage SET used = used + s WHERE project = p RETURNING used INTO u;
    ELSE
        SELECT used INTO u FROM project_usage WHERE project = p;
    END IF;
    RETURN u;
END
$$;

-- Whether project `p` holds digest `d` now (a statement of its own: it sees what was
-- committed before it started).
CREATE FUNCTION berth_usage_held(p text, d text) RETURNS boolean LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM repository_blobs rb
                     JOIN repositories r ON r.id = rb.repository_id
                     JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
                    WHERE rb.digest = d AND r.name >= p || '/' AND r.name < p || '0')
        OR EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
                    WHERE m.digest = d AND r.name >= p || '/' AND r.name < p || '0')
$$;

-- Project `p` gained a holder of `d` (`sz` bytes): counted if it held none before.
CREATE FUNCTION berth_usage_hold(p text, d text, sz bigint) RETURNS void LANGUAGE plpgsql
AS $$
DECLARE
    added bigint;
BEGIN
    IF p IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO project_digests (project, digest, size) VALUES (p, d, sz)
        ON CONFLICT (project, digest) DO UPDATE SET size = excluded.size WHERE false;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added = 0 THEN
        RETURN;
    END IF;
    -- A quota check in this transaction holds the project's row: write to it directly.
    IF current_setting('berth.usage_locked', true) = p THEN
        UPDATE project_usage SET used = used + sz WHERE project = p;
    ELSE
        INSERT INTO project_usage_delta (project, delta) VALUES (p, sz);
        -- Now and then, fold the project's deltas, so that a project no quota check or
        -- repair visits does not pile them up; skipped when someone holds the row.
        IF random() < 1.0 / 64 THEN
            PERFORM 1 FROM project_usage WHERE project = p FOR NO KEY UPDATE SKIP LOCKED;
            IF FOUND THEN
                PERFORM berth_usage_fold(p);
            END IF;
        END IF;
    END IF;
END
$$;

-- Pairs (ps[i], ds[i]) that may have lost their last holder: those with none left stop
-- counting.
CREATE FUNCTION berth_usage_release(ps text[], ds text[]) RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
    IF ps IS NULL OR cardinality(ps) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM project_digests pd
      JOIN unnest(ps, ds) AS x(p, d) ON pd.project = x.p AND pd.digest = x.d
     ORDER BY pd.project, pd.digest
       FOR UPDATE OF pd;
    -- A statement that starts after the locks: it sees the commits of their previous holders.
    WITH gone AS (
        DELETE FROM project_digests pd
         USING (SELECT DISTINCT p, d FROM unnest(ps, ds) AS x(p, d)) x
         WHERE pd.project = x.p AND pd.digest = x.d AND NOT berth_usage_held(x.p, x.d)
        RETURNING pd.project, pd.size)
    INSERT INTO project_usage_delta (project, delta) SELECT project, -sum(size) FROM gone GROUP BY project;
END
$$;

CREATE FUNCTION berth_usage_link_added() RETURNS trigger LANGUAGE plpgsql
AS $$
DECLARE
    p text;
    sz bigint;
BEGIN
    SELECT size INTO sz FROM blobs WHERE digest = NEW.digest AND state = 'live';
    IF FOUND THEN
        SELECT berth_project_of(name) INTO p FROM repositories WHERE id = NEW.repository_id;
        PERFORM berth_usage_hold(p, NEW.digest, sz);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_manifest_added() RETURNS trigger LANGUAGE plpgsql
AS $$
DECLARE
    p text;
BEGIN
    SELECT berth_project_of(name) INTO p FROM repositories WHERE id = NEW.repository_id;
    PERFORM berth_usage_hold(p, NEW.digest, NEW.size);
    RETURN NULL;
END
$$;

-- A blob became live (inserted live, a GC claim undone, resurrected by an upload): it
-- counts in every project whose repositories link it.
CREATE FUNCTION berth_usage_blob_live() RETURNS trigger LANGUAGE plpgsql
AS $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT DISTINCT berth_project_of(r.name) FROM repository_blobs rb
               JOIN repositories r ON r.id = rb.repository_id
              WHERE rb.digest = NEW.digest AND berth_project_of(r.name) IS NOT NULL
              ORDER BY 1
    LOOP
        PERFORM berth_usage_hold(p, NEW.digest, NEW.size);
    END LOOP;
    RETURN NULL;
END
$$;

-- A blob stopped being live (a GC claim): the projects linking it may no longer hold it.
CREATE FUNCTION berth_usage_blob_dead() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_release(array_agg(p), array_agg(NEW.digest)) FROM (
        SELECT DISTINCT berth_project_of(r.name) AS p FROM repository_blobs rb
          JOIN repositories r ON r.id = rb.repository_id
         WHERE rb.digest = NEW.digest AND berth_project_of(r.name) IS NOT NULL) x;
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_blobs_deleted() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_release(array_agg(p), array_agg(digest)) FROM (
        SELECT DISTINCT berth_project_of(r.name) AS p, o.digest FROM removed o
          JOIN repository_blobs rb ON rb.digest = o.digest
          JOIN repositories r ON r.id = rb.repository_id
         WHERE o.state = 'live' AND berth_project_of(r.name) IS NOT NULL) x;
    RETURN NULL;
END
$$;

-- Links or manifests deleted (both tables name a repository and a digest).
CREATE FUNCTION berth_usage_removed() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_release(array_agg(p), array_agg(digest)) FROM (
        SELECT DISTINCT berth_project_of(r.name) AS p, o.digest FROM removed o
          JOIN repositories r ON r.id = o.repository_id
         WHERE berth_project_of(r.name) IS NOT NULL) x;
    RETURN NULL;
END
$$;

CREATE TRIGGER project_usage_link_added AFTER INSERT ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION berth_usage_link_added();
CREATE TRIGGER project_usage_links_removed AFTER DELETE ON repository_blobs
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_removed();
CREATE TRIGGER project_usage_manifest_added AFTER INSERT ON manifests
    FOR EACH ROW EXECUTE FUNCTION berth_usage_manifest_added();
CREATE TRIGGER project_usage_manifests_removed AFTER DELETE ON manifests
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_removed();
CREATE TRIGGER project_usage_blob_inserted AFTER INSERT ON blobs
    FOR EACH ROW WHEN (NEW.state = 'live') EXECUTE FUNCTION berth_usage_blob_live();
CREATE TRIGGER project_usage_blob_revived AFTER UPDATE ON blobs
    FOR EACH ROW WHEN (OLD.state <> 'live' AND NEW.state = 'live') EXECUTE FUNCTION berth_usage_blob_live();
CREATE TRIGGER project_usage_blob_dead AFTER UPDATE ON blobs
    FOR EACH ROW WHEN (OLD.state = 'live' AND NEW.state <> 'live') EXECUTE FUNCTION berth_usage_blob_dead();
CREATE TRIGGER project_usage_blobs_deleted AFTER DELETE ON blobs
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_blobs_deleted();

-- As in 0011, with the usage folded from the deltas and "already held" read from
-- `project_digests`.
CREATE OR REPLACE FUNCTION berth_quota_check(p text, d text, OUT lim text, OUT used bigint) LANGUAGE plpgsql
AS $$
BEGIN
    SELECT pm.value INTO lim FROM projects pr JOIN project_metadata pm ON pm.project_id = pr.id
     WHERE pr.name = p AND pm.name = 'storage_limit';
    IF lim IS NULL OR lim !~ '^\s*\+?[0-9]+\s*$' THEN
        RETURN;
    END IF;
    -- Locked, then read: the row as the previous holder committed it.
    SELECT u.used INTO used FROM project_usage u WHERE u.project = p FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM berth_usage_lock(ARRAY[p]);
        SELECT u.used INTO used FROM project_usage u WHERE u.project = p;
    END IF;
    PERFORM set_config('berth.usage_locked', p, true);
    -- Statements that start after the lock: they see every delta and holder committed
    -- before it.
    IF EXISTS (SELECT 1 FROM project_usage_delta WHERE project = p) THEN
        used := berth_usage_fold(p);
    END IF;
    IF EXISTS (SELECT 1 FROM project_digests pd WHERE pd.project = p AND pd.digest = d) THEN
        used := NULL;
    END IF;
END
$$;

-- Back-fill: what every project holds now, and its usage from that.
INSERT INTO project_digests (project, digest, size)
SELECT p, digest, max(size) FROM (
    SELECT berth_project_of(r.name) AS p, b.digest, b.size
      FROM repositories r
      JOIN repository_blobs rb ON rb.repository_id = r.id
      JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
    UNION
    SELECT berth_project_of(r.name), m.digest, m.size
      FROM repositories r JOIN manifests m ON m.repository_id = r.id) AS held
 WHERE p IS NOT NULL
 GROUP BY p, digest;
INSERT INTO project_usage (project, used) SELECT DISTINCT project, 0 FROM project_digests
    ON CONFLICT (project) DO NOTHING;
UPDATE project_usage u SET used = coalesce((SELECT sum(size) FROM project_digests pd WHERE pd.project = u.project), 0);
