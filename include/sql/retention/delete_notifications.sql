-- One batch of retention: delete at most batch_size finished notifications celebrated before keep_from,
-- going on after the (occasion_date, id) where the previous batch stopped (index
-- notifications_occasion_date_idx). Finished means sent, expired, invalid, cancelled, or failed for good (the
-- endpoint refused it: no retry_after). Never deleted: a row whose instant is inside the late window (the
-- sweep would plan it again), a row still scheduled, sending or failed retryably (a send may still take it,
-- the sweep still expires it), and a row another transaction holds (skipped, never waited for; a later run
-- takes it).
-- Deleting a notification deletes its remaining attempt rows with it (ON DELETE CASCADE).
-- Returns no row when nothing was left to delete.
WITH doomed AS (
    SELECT id, occasion_date
    FROM notifications
    WHERE occasion_date < %(keep_from)s
        AND (occasion_date, id) > (%(after_occasion_date)s::date, %(after_id)s::bigint)
        AND (status IN ('sent', 'expired', 'invalid', 'cancelled') OR (status = 'failed' AND retry_after IS NULL))
        AND (send_at IS NULL OR send_at < %(late_from)s)
    ORDER BY occasion_date, id
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    DELETE FROM notifications AS n
    USING doomed
    WHERE n.id = doomed.id
    RETURNING n.id, n.occasion_date
)
SELECT (SELECT count(*) FROM deleted) AS deleted, last.occasion_date AS last_occasion_date, last.id AS last_id
FROM (SELECT occasion_date, id FROM deleted ORDER BY occasion_date DESC, id DESC LIMIT 1) AS last
