SELECT request_id FROM inbox WHERE message_id = ?1
