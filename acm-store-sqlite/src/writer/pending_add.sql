INSERT INTO pending (mc_service_id, stream_id, since_position) VALUES (?1, ?2, ?3)
ON CONFLICT (mc_service_id, stream_id) DO NOTHING
