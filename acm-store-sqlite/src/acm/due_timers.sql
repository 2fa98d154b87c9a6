SELECT request_id FROM timers WHERE kind = ?1 AND since <= ?2 ORDER BY since, request_id LIMIT ?3
