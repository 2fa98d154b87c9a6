INSERT INTO inbox (message_id, sender, stream_id, position) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (message_id) DO NOTHING
