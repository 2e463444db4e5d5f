-- Settings every instance of a cluster must agree on (key fingerprints); the first
-- instance to start records them.

CREATE TABLE cluster_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
