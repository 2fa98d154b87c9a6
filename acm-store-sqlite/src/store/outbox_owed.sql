SELECT count(*) FROM outbox WHERE settled_position IS NULL
