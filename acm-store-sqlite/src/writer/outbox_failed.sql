UPDATE outbox SET attempts = attempts + 1, not_before = ?2
WHERE message_id = ?1 AND settled_position IS NULL
RETURNING attempts
