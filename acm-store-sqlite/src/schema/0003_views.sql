-- acm store, schema version 3: the views of `acm_core::views`, in place of the outbox, inbox
-- and pending tables of version 1. Every row is derived from the log (the projection named
-- in `projection_state` rebuilds them on open), so nothing is lost by dropping the old ones.
DROP INDEX IF EXISTS outbox_due;
DROP TABLE outbox;
DROP TABLE inbox;
DROP TABLE pending;
UPDATE projection_state SET name = NULL, through = 0 WHERE id = 1;

-- Requests pending for an MC service user: one row per (user, request).
CREATE TABLE pending (
    mc_service_id TEXT NOT NULL,
    request_id    BLOB NOT NULL,
    PRIMARY KEY (mc_service_id, request_id)
) STRICT, WITHOUT ROWID;

-- Messages owed to partners. Times are nanoseconds since the Unix epoch, UTC.
CREATE TABLE outbox (
    message_id    BLOB    PRIMARY KEY,
    request_id    BLOB    NOT NULL,
    partner       TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    queued_at     INTEGER NOT NULL,           -- recorded_at of the event that queued it
    retry_at      INTEGER,                    -- not due before (after a failed send)
    claimed_until INTEGER,                    -- leased to a relay until
    refused       TEXT                        -- the partner's problem type, when refused
) STRICT, WITHOUT ROWID;
CREATE INDEX outbox_queued ON outbox (queued_at, message_id);

-- Accepted requests whose acceptance hook has not run.
CREATE TABLE hooks (
    request_id BLOB PRIMARY KEY
) STRICT, WITHOUT ROWID;

-- Each request's timer: what runs out ('expiry', 'send_deadline'), counted from when.
CREATE TABLE timers (
    request_id BLOB    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    since      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX timers_due ON timers (kind, since, request_id);

-- Partner messages recorded, by message id: one request and one content for good.
CREATE TABLE inbox (
    message_id BLOB PRIMARY KEY,
    request_id BLOB NOT NULL,
    digest     BLOB NOT NULL
) STRICT, WITHOUT ROWID;

-- Submissions made with a client's idempotency key.
CREATE TABLE submissions (
    requester  TEXT NOT NULL,
    key        TEXT NOT NULL,
    request_id BLOB NOT NULL,
    digest     BLOB NOT NULL,
    PRIMARY KEY (requester, key)
) STRICT, WITHOUT ROWID;
