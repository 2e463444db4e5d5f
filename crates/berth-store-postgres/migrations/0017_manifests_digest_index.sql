-- Manifests found by digest alone.
--
-- `berth_usage_held` asks whether a project still holds a digest through a manifest of
-- any of its repositories (`m.digest = d` within the project's names). Without an index
-- led by the digest the server reads the whole manifests table for every holding a GC
-- claim releases: a claim of 512 blobs asked 512 times, and a claim's cost grew with
-- the number of manifests in the registry, not with the claim (EXPLAIN ANALYZE of a
-- claim's UPDATE at 300,000 blobs and a few hundred manifests: the usage trigger 33.6 ms
-- before, 21-24 ms after).

CREATE INDEX manifests_digest ON manifests (digest);
