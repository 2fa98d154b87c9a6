INSERT INTO events (position, event_id, stream_id, version, recorded_at, correlation_id,
                    causation_id, actor_kind, actor_id, event_type, schema_version, payload, hash)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
