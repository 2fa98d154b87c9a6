INSERT INTO pending (mc_service_id, request_id) VALUES (?1, ?2)
ON CONFLICT (mc_service_id, request_id) DO NOTHING
