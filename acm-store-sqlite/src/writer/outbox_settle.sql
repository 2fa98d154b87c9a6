UPDATE outbox SET settled_position = ?2 WHERE message_id = ?1 AND settled_position IS NULL
