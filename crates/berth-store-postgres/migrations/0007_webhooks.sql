-- Harbor's webhook policies (notification_policy). Event types are a comma-separated
-- list, targets the JSON array the API was given.

CREATE TABLE webhook_policies (
    id            BIGSERIAL PRIMARY KEY,
    project_id    BIGINT NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    creator       TEXT NOT NULL DEFAULT '',
    event_types   TEXT NOT NULL,
    targets       TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    update_time   BIGINT NOT NULL,
    CONSTRAINT webhook_policies_name UNIQUE (project_id, name)
);
