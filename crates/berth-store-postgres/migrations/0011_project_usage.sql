-- Each project's storage usage (see berth_core::quota): the sizes of the distinct live
-- blobs linked to its repositories and of their distinct manifests, each digest once.
-- The project of a repository is the part of its name before the first '/'.
--
-- The triggers below keep `used` in the same transaction as every change to what a
-- project holds, whoever makes it (pushes, mounts, deletes, GC, retention, an instance
-- still running the previous binary): a digest's size is added when the project comes
-- to hold it and subtracted when it stops. "Holds" means: a live blob of that digest
-- linked to one of its repositories, or a manifest of that digest in one of them.
--
-- Concurrency (READ COMMITTED): every trigger first locks the rows of the projects its
-- statement touched (creating them at 0: a project gets its row with its first
-- repository content, and the back-fill below made the rows of existing ones), in
-- project order, and only then counts holders, in a statement that starts after the
-- locks are held and so sees every commit of the previous holder. A change to a
-- project's holdings and its usage therefore commit together, one writer per project at
-- a time. Writers lock blob rows before project rows (the push path, GC's claims), so
-- the two kinds of lock never wait for each other in a cycle.
--
-- Statement-level triggers with transition tables: one statement may add or remove
-- several rows of one (project, digest), which must count once. A digest became held by
-- a statement that added rows when the holders now are exactly the rows it added, and
-- stopped being held when no holder is left.

CREATE TABLE project_usage (
    project TEXT COLLATE "C" PRIMARY KEY,
    used    BIGINT NOT NULL
);

-- The project of a repository name (`berth_core::access::project_of`).
CREATE FUNCTION berth_project_of(repo text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN strpos(repo, '/') > 1 THEN split_part(repo, '/', 1) END $$;

-- Locks the rows of projects `ps`, in order, creating those that are missing (at 0).
CREATE FUNCTION berth_usage_lock(ps text[]) RETURNS void LANGUAGE plpgsql
AS $$
DECLARE
    locked bigint;
BEGIN
    PERFORM 1 FROM project_usage WHERE project = ANY (ps) ORDER BY project FOR NO KEY UPDATE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < (SELECT count(DISTINCT p) FROM unnest(ps) AS p WHERE p IS NOT NULL) THEN
        INSERT INTO project_usage (project, used)
        SELECT DISTINCT p, 0 FROM unnest(ps) AS p WHERE p IS NOT NULL ORDER BY 1
        ON CONFLICT (project) DO NOTHING;
        PERFORM 1 FROM project_usage WHERE project = ANY (ps) ORDER BY project FOR NO KEY UPDATE;
    END IF;
END
$$;

-- Applies the changes of one statement. `changes`: (project, digest, size, rows the
-- statement added for that pair (0 for a removal), +1 or -1). The holders of a pair
-- are the live linked blobs and the manifests of that digest in the project's
-- repositories (written out here rather than in a function of their own: a plpgsql
-- statement's plan is cached, an SQL function's would be planned on every call).
CREATE FUNCTION berth_usage_apply(changes jsonb) RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
    IF changes IS NULL OR jsonb_array_length(changes) = 0 THEN
        RETURN;
    END IF;
    PERFORM berth_usage_lock(ARRAY(SELECT DISTINCT c->>0 FROM jsonb_array_elements(changes) AS c));
    UPDATE project_usage u SET used = u.used + t.delta
      FROM (SELECT c->>0 AS p, sum((c->>2)::bigint * (c->>4)::bigint) AS delta
              FROM jsonb_array_elements(changes) AS c
             WHERE (SELECT count(*) FROM repository_blobs rb
                      JOIN repositories r ON r.id = rb.repository_id
                      JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
                     WHERE rb.digest = c->>1 AND r.name >= (c->>0) || '/' AND r.name < (c->>0) || '0')
                 + (SELECT count(*) FROM manifests m
                      JOIN repositories r ON r.id = m.repository_id
                     WHERE m.digest = c->>1 AND r.name >= (c->>0) || '/' AND r.name < (c->>0) || '0')
                 = (c->>3)::bigint
             GROUP BY 1) t
     WHERE u.project = t.p AND t.delta <> 0;
END
$$;

CREATE FUNCTION berth_usage_links_added() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_apply((
        SELECT jsonb_agg(jsonb_build_array(p, digest, size, n, 1)) FROM (
            SELECT berth_project_of(r.name) AS p, b.digest, b.size, count(*) AS n
              FROM added a
              JOIN repositories r ON r.id = a.repository_id
              JOIN blobs b ON b.digest = a.digest AND b.state = 'live'
             WHERE berth_project_of(r.name) IS NOT NULL
             GROUP BY 1, 2, 3) x));
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_links_removed() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_apply((
        SELECT jsonb_agg(jsonb_build_array(p, digest, size, 0, -1)) FROM (
            SELECT DISTINCT berth_project_of(r.name) AS p, b.digest, b.size
              FROM removed o
              JOIN repositories r ON r.id = o.repository_id
              JOIN blobs b ON b.digest = o.digest AND b.state = 'live'
             WHERE berth_project_of(r.name) IS NOT NULL) x));
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_manifests_added() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_apply((
        SELECT jsonb_agg(jsonb_build_array(p, digest, size, n, 1)) FROM (
            SELECT berth_project_of(r.name) AS p, a.digest, max(a.size) AS size, count(*) AS n
              FROM added a JOIN repositories r ON r.id = a.repository_id
             WHERE berth_project_of(r.name) IS NOT NULL
             GROUP BY 1, 2) x));
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_manifests_removed() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_apply((
        SELECT jsonb_agg(jsonb_build_array(p, digest, size, 0, -1)) FROM (
            SELECT berth_project_of(r.name) AS p, o.digest, max(o.size) AS size
              FROM removed o JOIN repositories r ON r.id = o.repository_id
             WHERE berth_project_of(r.name) IS NOT NULL
             GROUP BY 1, 2) x));
    RETURN NULL;
END
$$;

-- Blobs that became live (a new row under links left behind, a GC claim undone or
-- resurrected by an upload) or stopped being live (a GC claim, a deleted live row):
-- `went` holds (digest, size, +1 or -1). The size counts in every project linking them
-- if their links are all it holds them by (for a blob that became live, the holders
-- are then exactly its links there; for one that stopped, none is left).
CREATE FUNCTION berth_usage_blobs_went(went jsonb) RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
    IF went IS NULL THEN
        RETURN;
    END IF;
    PERFORM berth_usage_apply((
        SELECT jsonb_agg(jsonb_build_array(p, digest, size, n, sign)) FROM (
            SELECT berth_project_of(r.name) AS p, w->>0 AS digest, (w->>1)::bigint AS size, (w->>2)::int AS sign,
                   CASE WHEN (w->>2)::int > 0 THEN count(*) ELSE 0 END AS n
              FROM jsonb_array_elements(went) AS w
              JOIN repository_blobs rb ON rb.digest = w->>0
              JOIN repositories r ON r.id = rb.repository_id
             WHERE berth_project_of(r.name) IS NOT NULL
             GROUP BY 1, 2, 3, 4) x));
END
$$;

CREATE FUNCTION berth_usage_blobs_inserted() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_blobs_went((
        SELECT jsonb_agg(jsonb_build_array(digest, size, 1)) FROM added WHERE state = 'live'));
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_blobs_updated() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_blobs_went((
        SELECT jsonb_agg(jsonb_build_array(n.digest, CASE WHEN n.state = 'live' THEN n.size ELSE o.size END,
                                           CASE WHEN n.state = 'live' THEN 1 ELSE -1 END))
          FROM added n JOIN removed o ON o.digest = n.digest
         WHERE (n.state = 'live') <> (o.state = 'live')));
    RETURN NULL;
END
$$;

CREATE FUNCTION berth_usage_blobs_deleted() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM berth_usage_blobs_went((
        SELECT jsonb_agg(jsonb_build_array(digest, size, -1)) FROM removed WHERE state = 'live'));
    RETURN NULL;
END
$$;

-- A repository's links and manifests go before its row, so that the triggers above
-- still find the repository's name (a cascade would run after the row is gone).
CREATE FUNCTION berth_usage_repository_deleted() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM manifests WHERE repository_id = OLD.id;
    DELETE FROM repository_blobs WHERE repository_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER project_usage_repository_deleted BEFORE DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION berth_usage_repository_deleted();
CREATE TRIGGER project_usage_links_added AFTER INSERT ON repository_blobs
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_links_added();
CREATE TRIGGER project_usage_links_removed AFTER DELETE ON repository_blobs
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_links_removed();
CREATE TRIGGER project_usage_manifests_added AFTER INSERT ON manifests
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_manifests_added();
CREATE TRIGGER project_usage_manifests_removed AFTER DELETE ON manifests
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_manifests_removed();
CREATE TRIGGER project_usage_blobs_inserted AFTER INSERT ON blobs
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_blobs_inserted();
CREATE TRIGGER project_usage_blobs_updated AFTER UPDATE ON blobs
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_blobs_updated();
CREATE TRIGGER project_usage_blobs_deleted AFTER DELETE ON blobs
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_blobs_deleted();

-- The quota check of a push into project `p` of digest `d` (see src/quota.rs), in one
-- round trip: `lim`, the project's limit metadata (NULL for none); `used`, its usage,
-- NULL when there is nothing to check (no limit, or the project already holds `d`).
-- With a limit, the project's row stays locked until the commit, so pushes into one
-- limited project check one after another and the count is read after the lock.
CREATE FUNCTION berth_quota_check(p text, d text, OUT lim text, OUT used bigint) LANGUAGE plpgsql
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
    -- Statements that start after the lock: they see every holder committed before it.
    IF EXISTS (SELECT 1 FROM repository_blobs rb
                 JOIN repositories r ON r.id = rb.repository_id
                 JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
                WHERE rb.digest = d AND r.name >= p || '/' AND r.name < p || '0')
       OR EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
                   WHERE m.digest = d AND r.name >= p || '/' AND r.name < p || '0') THEN
        used := NULL;
    END IF;
END
$$;

-- Back-fill: the live sum of every project that has repositories now.
INSERT INTO project_usage (project, used)
SELECT p, coalesce(sum(size), 0)::bigint FROM (
    SELECT berth_project_of(r.name) AS p, b.digest, b.size
      FROM repositories r
      JOIN repository_blobs rb ON rb.repository_id = r.id
      JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
     WHERE berth_project_of(r.name) IS NOT NULL
    UNION
    SELECT berth_project_of(r.name), m.digest, m.size
      FROM repositories r JOIN manifests m ON m.repository_id = r.id
     WHERE berth_project_of(r.name) IS NOT NULL) AS held
GROUP BY p;
