UPDATE inbox SET digest = ?3 WHERE message_id = ?1 AND request_id = ?2
