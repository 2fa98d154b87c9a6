-- A message owed again after it was settled (a withdrawal refused before the request was
-- acknowledged, say) is due again at once.
INSERT INTO outbox (message_id, stream_id, partner, message, queued_position)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (message_id) DO UPDATE SET settled_position = NULL, not_before = 0
