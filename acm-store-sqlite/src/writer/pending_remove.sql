DELETE FROM pending WHERE mc_service_id = ?1 AND request_id = ?2
