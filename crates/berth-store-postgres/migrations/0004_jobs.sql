-- The job service: Harbor's executions and tasks, leases, logs, schedules and worker
-- pools, all in the shared database (nothing lives only in Redis or in one instance).
-- Times are unix milliseconds.

CREATE TABLE job_executions (
    id          BIGSERIAL PRIMARY KEY,
    vendor_type TEXT COLLATE "C" NOT NULL,
    vendor_id   BIGINT NOT NULL,
    trigger     TEXT    NOT NULL,
    extra_attrs TEXT    NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX job_executions_vendor ON job_executions (vendor_type, vendor_id, id);

CREATE TABLE jobs (
    id                  BIGSERIAL PRIMARY KEY,
    execution_id        BIGINT NOT NULL REFERENCES job_executions (id) ON DELETE CASCADE,
    kind                TEXT    NOT NULL,
    args                TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'cancelled', 'dead')),
    priority            SMALLINT NOT NULL,
    run_at              BIGINT NOT NULL,
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_expires_at    BIGINT,
    concurrency_key     TEXT,
    cancel_requested_at BIGINT,
    progress            TEXT,
    last_error          TEXT,
    created_at          BIGINT NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX jobs_fetch ON jobs (kind, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_execution ON jobs (execution_id, state);
-- Two running jobs with one key would be a broken promise (one replication per policy).
CREATE UNIQUE INDEX jobs_single_active ON jobs (concurrency_key) WHERE state = 'running';

CREATE TABLE job_logs (
    job_id  BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    at      BIGINT NOT NULL,
    level   SMALLINT NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_queues (
    kind   TEXT    PRIMARY KEY,
    paused BOOLEAN NOT NULL
);

CREATE TABLE job_pools (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          BIGINT NOT NULL,
    concurrency  BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE job_schedules (
    id            BIGSERIAL PRIMARY KEY,
    vendor_type   TEXT COLLATE "C" NOT NULL,
    vendor_id     BIGINT NOT NULL,
    cron_type     TEXT    NOT NULL,
    cron          TEXT    NOT NULL,
    args          TEXT    NOT NULL,
    next_fire_at  BIGINT NOT NULL,
    last_fired_at BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (vendor_type, vendor_id)
);
CREATE INDEX job_schedules_due ON job_schedules (next_fire_at);
