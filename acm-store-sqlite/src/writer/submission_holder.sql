SELECT request_id FROM submissions WHERE requester = ?1 AND key = ?2
