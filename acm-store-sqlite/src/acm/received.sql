SELECT request_id, digest FROM inbox WHERE message_id = ?1
