-- Online GC (berth-gc): which run owns a 'deleting' row and since when. Additive:
-- earlier binaries never name these columns.

ALTER TABLE blobs ADD COLUMN gc_run TEXT;
ALTER TABLE blobs ADD COLUMN gc_claimed_at BIGINT;
-- Stragglers of a stopped or killed run are found without a scan.
CREATE INDEX blobs_deleting ON blobs (gc_run) WHERE state = 'deleting';
