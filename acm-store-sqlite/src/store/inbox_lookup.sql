SELECT position FROM inbox WHERE message_id = ?1
