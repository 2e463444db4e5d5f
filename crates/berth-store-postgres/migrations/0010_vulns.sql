-- Vulnerability data imported by `berth vulndb import` (OSV records, each with the
-- (ecosystem key, package name) pairs it is looked up by), the import history, and scan
-- reports, one per (digest, scanner registration, report MIME type) as in Harbor.

CREATE TABLE vuln_records (
    id          TEXT COLLATE "C" PRIMARY KEY,
    modified    TEXT NOT NULL,
    modified_at BIGINT NOT NULL,
    withdrawn   BOOLEAN NOT NULL DEFAULT FALSE,
    record      TEXT NOT NULL
);

CREATE TABLE vuln_affected (
    ecosystem TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    record_id TEXT COLLATE "C" NOT NULL REFERENCES vuln_records (id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, name, record_id)
);
CREATE INDEX vuln_affected_record ON vuln_affected (record_id);

CREATE TABLE vuln_imports (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    source  TEXT NOT NULL,
    summary TEXT NOT NULL
);

CREATE TABLE scan_reports (
    uuid              TEXT COLLATE "C" PRIMARY KEY,
    digest            TEXT COLLATE "C" NOT NULL,
    registration_uuid TEXT NOT NULL,
    mime_type         TEXT NOT NULL,
    status            TEXT NOT NULL,
    task_id           BIGINT NOT NULL DEFAULT 0,
    start_time        BIGINT NOT NULL,
    end_time          BIGINT,
    severity          TEXT NOT NULL DEFAULT '',
    summary           TEXT NOT NULL DEFAULT '',
    report            TEXT NOT NULL DEFAULT '',
    UNIQUE (digest, registration_uuid, mime_type)
);
