-- Claims due rows for a lease: until it ends, another relay pass does not send them again.
UPDATE outbox SET not_before = ?2
WHERE message_id IN (
    SELECT message_id FROM outbox
    WHERE settled_position IS NULL AND not_before <= ?1
    ORDER BY not_before, queued_position
    LIMIT ?3
)
RETURNING message_id, stream_id, partner, message, attempts, queued_position
