-- System-wide policy documents (replication registries and policies) belong to no project:
-- project_id becomes nullable (NULL: system-wide). Additive: earlier binaries never ask for
-- those kinds, and their per-project queries never match NULL.

ALTER TABLE policies ALTER COLUMN project_id DROP NOT NULL;
