-- The job service: Harbor's executions and tasks, leases, logs, schedules and worker
-- pools, all in the shared database (nothing lives only in Redis or in one instance).
-- Times are unix milliseconds.

CREATE TABLE job_executions (
    id          INTEGER PRIMARY KEY,
    vendor_type TEXT    NOT NULL,
    vendor_id   INTEGER NOT NULL,
    trigger     TEXT    NOT NULL,
    extra_attrs TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX job_executions_vendor ON job_executions (vendor_type, vendor_id, id);

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY,
    execution_id        INTEGER NOT NULL REFERENCES job_executions (id) ON DELETE CASCADE,
    kind                TEXT    NOT NULL,
    args                TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'cancelled', 'dead')),
    priority            INTEGER NOT NULL,
    run_at              INTEGER NOT NULL,
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_expires_at    INTEGER,
    concurrency_key     TEXT,
    cancel_requested_at INTEGER,
    progress            TEXT,
    last_error          TEXT,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX jobs_fetch ON jobs (kind, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_execution ON jobs (execution_id, state);
-- Two running jobs with one key would be a broken promise (one replication per policy).
CREATE UNIQUE INDEX jobs_single_active ON jobs (concurrency_key) WHERE state = 'running';

CREATE TABLE job_logs (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    level   INTEGER NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_queues (
    kind   TEXT    PRIMARY KEY,
    paused INTEGER NOT NULL
);

CREATE TABLE job_pools (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE job_schedules (
    id            INTEGER PRIMARY KEY,
    vendor_type   TEXT    NOT NULL,
    vendor_id     INTEGER NOT NULL,
    cron_type     TEXT    NOT NULL,
    cron          TEXT    NOT NULL,
    args          TEXT    NOT NULL,
    next_fire_at  INTEGER NOT NULL,
    last_fired_at INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (vendor_type, vendor_id)
);
CREATE INDEX job_schedules_due ON job_schedules (next_fire_at);
