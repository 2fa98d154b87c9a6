-- A plain insert: a key held already fails with SQLITE_CONSTRAINT_PRIMARYKEY.
INSERT INTO submissions (requester, key, request_id, digest) VALUES (?1, ?2, ?3, ?4)
