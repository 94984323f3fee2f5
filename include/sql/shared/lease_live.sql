-- Whether notification n is under a live claim: its claim token has a lease in claim_leases that has not run
-- out on the database clock (now()), the same for every worker. A sending row without one may be claimed
-- again. Used by shared/due.sql, sweep/expire.sql and the resend statements.
EXISTS (SELECT 1 FROM claim_leases AS l WHERE l.claim_token = n.claim_token AND l.expires_at > now())
