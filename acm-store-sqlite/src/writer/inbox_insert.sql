-- A plain insert: a message id held already fails with SQLITE_CONSTRAINT_PRIMARYKEY, and the
-- writer then tells its own request's row from another's.
INSERT INTO inbox (message_id, request_id, digest) VALUES (?1, ?2, ?3)
