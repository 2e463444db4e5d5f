-- The event outbox: a push or delete writes its event in the transaction of the change;
-- every instance drains it (a lease per claimed event, removed once processed).
CREATE TABLE event_outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation   TEXT   NOT NULL,
    repository  TEXT   NOT NULL,
    reference   TEXT   NOT NULL,
    digest      TEXT,
    username    TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    lease_owner TEXT,
    -- unix milliseconds; NULL or past: free to claim
    lease_until BIGINT
);
