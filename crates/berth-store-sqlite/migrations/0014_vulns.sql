-- Vulnerability data imported by `berth vulndb import` (OSV records, each with the
-- (ecosystem key, package name) pairs it is looked up by), the import history, and scan
-- reports, one per (digest, scanner registration, report MIME type) as in Harbor.

CREATE TABLE vuln_records (
    id          TEXT PRIMARY KEY,
    modified    TEXT NOT NULL,
    modified_at INTEGER NOT NULL,
    withdrawn   INTEGER NOT NULL DEFAULT 0,
    record      TEXT NOT NULL
);

CREATE TABLE vuln_affected (
    ecosystem TEXT NOT NULL,
    name      TEXT NOT NULL,
    record_id TEXT NOT NULL REFERENCES vuln_records (id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, name, record_id)
);
CREATE INDEX vuln_affected_record ON vuln_affected (record_id);

CREATE TABLE vuln_imports (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    source  TEXT NOT NULL,
    summary TEXT NOT NULL
);

CREATE TABLE scan_reports (
    uuid              TEXT PRIMARY KEY,
    digest            TEXT NOT NULL,
    registration_uuid TEXT NOT NULL,
    mime_type         TEXT NOT NULL,
    status            TEXT NOT NULL,
    task_id           INTEGER NOT NULL DEFAULT 0,
    start_time        INTEGER NOT NULL,
    end_time          INTEGER,
    severity          TEXT NOT NULL DEFAULT '',
    summary           TEXT NOT NULL DEFAULT '',
    report            TEXT NOT NULL DEFAULT '',
    UNIQUE (digest, registration_uuid, mime_type)
);
