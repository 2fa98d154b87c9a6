-- A message owed again is owed afresh: no attempts, due at once, unclaimed.
INSERT INTO outbox (message_id, request_id, partner, queued_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (message_id) DO UPDATE SET
    request_id = excluded.request_id, partner = excluded.partner, attempts = 0,
    queued_at = excluded.queued_at, retry_at = NULL, claimed_until = NULL, refused = NULL
