UPDATE outbox SET attempts = attempts + 1, claimed_until = NULL, retry_at = ?2, refused = ?3
WHERE message_id = ?1
RETURNING attempts
