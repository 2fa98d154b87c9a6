-- Claims due rows for a lease: until it ends, no other claim takes them.
UPDATE outbox SET claimed_until = ?2
WHERE message_id IN (
    SELECT message_id FROM outbox
    WHERE (retry_at IS NULL OR retry_at <= ?1) AND (claimed_until IS NULL OR claimed_until <= ?1)
    ORDER BY queued_at, message_id
    LIMIT ?3
)
RETURNING message_id, request_id, partner, attempts, queued_at
