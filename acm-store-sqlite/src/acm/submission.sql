SELECT request_id, digest FROM submissions WHERE requester = ?1 AND key = ?2
