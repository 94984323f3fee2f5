-- Give up on rows whose instant is older than the late window: they are never sent.
-- Rows under a live claim are left to their sender. Returns the occasion of each row expired.
UPDATE notifications
SET status = 'expired',
    last_error = 'not sent within ' || %(max_lateness_hours)s || ' hours of its instant',
    claim_token = NULL, claimed_at = NULL, updated_at = now()
WHERE occasion = ANY (%(occasions)s::text[])
    AND send_at <= %(now)s - %(max_lateness)s::interval
    AND (
        status IN ('scheduled', 'failed')
        OR (status = 'sending' AND claimed_at < %(now)s - %(lease)s::interval)
    )
RETURNING occasion
