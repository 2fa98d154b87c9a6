-- acm store, schema version 2: which projection the outbox, inbox and pending tables hold,
-- and through which global position. A store opened with a projection first catches those
-- tables up from the log (or rebuilds them, for another projection), so appends made while
-- it was opened without one are never missing from them.
CREATE TABLE projection_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    name    TEXT,
    through INTEGER NOT NULL
) STRICT;
INSERT INTO projection_state (id, name, through) VALUES (1, NULL, 0);
