-- A GC claim releases its blobs' holdings in one statement instead of one trigger call
-- per blob.
--
-- 0012 made "a blob stopped being live" a row-level trigger with a `WHEN` clause, so that
-- the UPDATEs every push and pull makes (`last_ref_at`) call nothing. Only a GC claim
-- kills blobs, and it kills hundreds per statement: a call per row (its own lock, recheck
-- and delta) cost about 0.7 ms a blob, 350 ms a claim of 512, and bounded GC at a
-- million blobs (EXPLAIN ANALYZE: "Trigger project_usage_blob_dead: time=353 calls=512").
-- One `berth_usage_release` over the whole statement's transition tables does the same
-- work in about 27 ms. The price is a statement trigger on every UPDATE of `blobs`, which
-- returns after one look at the new rows (tens of microseconds) when none stopped being
-- live. Lock order and the rules of 0012 are unchanged: the blob rows are held by the
-- UPDATE, then the (project, digest) rows are locked in key order.

DROP TRIGGER project_usage_blob_dead ON blobs;
DROP FUNCTION berth_usage_blob_dead();

CREATE FUNCTION berth_usage_blobs_died() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE state <> 'live') THEN
        RETURN NULL;
    END IF;
    PERFORM berth_usage_release(array_agg(p), array_agg(digest)) FROM (
        SELECT DISTINCT berth_project_of(r.name) AS p, o.digest FROM old_rows o
          JOIN new_rows n ON n.digest = o.digest
          JOIN repository_blobs rb ON rb.digest = o.digest
          JOIN repositories r ON r.id = rb.repository_id
         WHERE o.state = 'live' AND n.state <> 'live' AND berth_project_of(r.name) IS NOT NULL) x;
    RETURN NULL;
END
$$;

CREATE TRIGGER project_usage_blobs_died AFTER UPDATE ON blobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION berth_usage_blobs_died();
