-- A message owed again after it was settled is due again at once, with a fresh count.
INSERT INTO outbox (message_id, stream_id, partner, message, queued_position)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (message_id) DO UPDATE SET settled_position = NULL, not_before = 0, attempts = 0
