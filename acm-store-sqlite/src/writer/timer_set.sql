INSERT INTO timers (request_id, kind, since) VALUES (?1, ?2, ?3)
ON CONFLICT (request_id) DO UPDATE SET kind = excluded.kind, since = excluded.since
