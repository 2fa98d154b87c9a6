SELECT position, event_id, stream_id, version, recorded_at, correlation_id, causation_id,
       actor_kind, actor_id, event_type, schema_version, payload, hash
FROM events ORDER BY position
