-- Login sessions ended by logging out: the signed cookie itself cannot be withdrawn,
-- so every instance checks this list until the session could not be used anyway.

CREATE TABLE revoked_sessions (
    session_key TEXT PRIMARY KEY,
    until       BIGINT NOT NULL
);
CREATE INDEX revoked_sessions_until ON revoked_sessions (until);
