-- Request ids are UUID v7: ordered by them, the oldest request comes first.
SELECT request_id FROM pending WHERE mc_service_id = ?1 ORDER BY request_id
