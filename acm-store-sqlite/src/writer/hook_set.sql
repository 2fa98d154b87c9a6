INSERT INTO hooks (request_id) VALUES (?1) ON CONFLICT (request_id) DO NOTHING
