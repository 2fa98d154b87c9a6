-- At open: the file is locked to this process, so every lease still in it was taken by a
-- process that is gone (killed mid-send); its messages are due again now, not when the lease
-- would have run out.
UPDATE outbox SET claimed_until = NULL WHERE claimed_until IS NOT NULL;
