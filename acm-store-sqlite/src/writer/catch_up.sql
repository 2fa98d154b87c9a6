SELECT position, event_id, stream_id, version, recorded_at, correlation_id, causation_id,
       actor_kind, actor_id, event_type, schema_version, payload
FROM events WHERE position > ?1 ORDER BY position LIMIT ?2
