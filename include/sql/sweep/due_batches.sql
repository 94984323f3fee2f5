-- The sweep's batches: every row a send task may claim now (see deliver/claim.sql), split by id into runs of
-- at most batch_size rows.
SELECT NULL::timestamptz AS send_at, min(id) AS first_id, max(id) AS last_id, count(*) AS size
FROM (
    SELECT id, (row_number() OVER (ORDER BY id) - 1) / %(batch_size)s AS batch_number
    FROM notifications
    WHERE occasion = ANY (%(occasions)s::text[])
        AND send_at > %(now)s - %(max_lateness)s::interval
        AND (
            (status = 'scheduled' AND send_at <= %(scheduled_due_by)s)
            OR (status = 'sending' AND claimed_at < %(now)s - %(lease)s::interval)
            OR (status = 'failed' AND retry_after <= %(now)s AND attempts < %(max_attempts)s)
        )
) AS numbered
GROUP BY batch_number
ORDER BY batch_number
