UPDATE submissions SET digest = ?4 WHERE requester = ?1 AND key = ?2 AND request_id = ?3
