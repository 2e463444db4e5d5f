-- Harbor's webhook policies (notification_policy). Event types are a comma-separated
-- list, targets the JSON array the API was given.

CREATE TABLE webhook_policies (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    enabled       INTEGER NOT NULL DEFAULT 1,
    creator       TEXT NOT NULL DEFAULT '',
    event_types   TEXT NOT NULL,
    targets       TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
