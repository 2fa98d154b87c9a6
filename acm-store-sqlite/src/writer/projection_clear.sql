-- Another projection's rows (or none recorded): start over from the first event.
DELETE FROM outbox;
DELETE FROM inbox;
DELETE FROM pending;
