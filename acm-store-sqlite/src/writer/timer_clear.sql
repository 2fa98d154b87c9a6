DELETE FROM timers WHERE request_id = ?1
