SELECT request_id FROM hooks ORDER BY request_id LIMIT ?1
