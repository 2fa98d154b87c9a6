SELECT count(*), count(refused), min(queued_at), coalesce(max(attempts), 0) FROM outbox
