DELETE FROM pending WHERE mc_service_id = ?1 AND stream_id = ?2
