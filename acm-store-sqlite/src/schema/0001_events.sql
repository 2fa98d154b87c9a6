-- acm store, schema version 1: the event log, its hash chain head, the outbox, the inbox and
-- the pending-items projection. Applied in one transaction by `open::migrate`.

-- The log. `position` is the gap-free global position (the rowid), assigned by the single
-- writer in commit order. `payload` holds the JSON exactly as written; upcasting happens on
-- read, so the hash chain stays valid across schema evolution.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL UNIQUE,
    stream_id      BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,          -- nanoseconds since the Unix epoch, UTC
    correlation_id BLOB    NOT NULL,
    causation_id   BLOB,
    actor_kind     TEXT    NOT NULL,          -- 'user' or 'system'
    actor_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    hash           BLOB    NOT NULL,          -- SHA-256 link of the chain
    UNIQUE (stream_id, version)
) STRICT;

-- The log is append-only: an accidental UPDATE or DELETE fails instead of breaking the chain.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the acm event log is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the acm event log is append-only');
END;

-- The chain's last link, written in the same transaction as the events: a truncated log
-- (last rows deleted) no longer matches it.
CREATE TABLE chain_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    hash     BLOB    NOT NULL
) STRICT;
INSERT INTO chain_head (id, position, hash) VALUES (1, 0, zeroblob(32));

-- Messages owed to partner systems. A row is queued by the event that creates the debt and
-- settled (acknowledged, or no longer owed) by a later event, in the same transactions.
CREATE TABLE outbox (
    message_id       BLOB    PRIMARY KEY,
    stream_id        BLOB    NOT NULL,
    partner          TEXT    NOT NULL,
    message          BLOB    NOT NULL,        -- the partner message as JSON
    queued_position  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       INTEGER NOT NULL DEFAULT 0,  -- nanoseconds since the Unix epoch
    settled_position INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (not_before, queued_position) WHERE settled_position IS NULL;

-- Partner messages received, by message id: a replayed message is found here.
CREATE TABLE inbox (
    message_id BLOB    PRIMARY KEY,
    sender     TEXT    NOT NULL,
    stream_id  BLOB    NOT NULL,
    position   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Pending ACM data per MC service user: one row per (user, request) pending for them.
CREATE TABLE pending (
    mc_service_id  TEXT    NOT NULL,
    stream_id      BLOB    NOT NULL,
    since_position INTEGER NOT NULL,
    PRIMARY KEY (mc_service_id, stream_id)
) STRICT, WITHOUT ROWID;

PRAGMA application_id = 1094929713; -- 'ACM1'
