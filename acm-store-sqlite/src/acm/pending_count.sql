SELECT count(*) FROM pending
