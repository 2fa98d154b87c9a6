-- Another projection's rows (or none recorded): start over from the first event.
DELETE FROM pending;
DELETE FROM outbox;
DELETE FROM hooks;
DELETE FROM timers;
DELETE FROM inbox;
DELETE FROM submissions;
