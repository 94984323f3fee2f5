-- Give up on rows whose instant is older than the late window: they are never sent. Rows under a live claim
-- (its lease not yet run out on the database clock) are left to their sender, and a row the endpoint
-- refused for good (failed with no retry_after) stays failed with the endpoint's answer as its reason.
-- Returns the occasion of each row expired.
UPDATE notifications AS n
SET status = 'expired',
    last_error = 'not sent within ' || %(max_lateness_hours)s || ' hours of its instant',
    claim_token = NULL, claimed_at = NULL, updated_at = now()
WHERE n.occasion = ANY (%(occasions)s::text[])
    AND n.send_at <= %(now)s - %(max_lateness)s::interval
    AND (
        n.status = 'scheduled'
        OR (n.status = 'failed' AND n.retry_after IS NOT NULL)
        OR (n.status = 'sending' AND NOT {shared/lease_live})
    )
RETURNING occasion
