DELETE FROM outbox WHERE message_id = ?1
