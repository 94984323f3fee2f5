-- The sweep's batches: every row a send task may claim now (see deliver/claim.sql), split by id into runs of
-- at most batch_size rows. A sending row is due once its claim's lease ran out on the database clock.
SELECT NULL::timestamptz AS send_at, min(id) AS first_id, max(id) AS last_id, count(*) AS size
FROM (
    SELECT n.id, (row_number() OVER (ORDER BY n.id) - 1) / %(batch_size)s AS batch_number
    FROM notifications AS n
    WHERE n.occasion = ANY (%(occasions)s::text[])
        AND n.send_at > %(now)s - %(max_lateness)s::interval
        AND (
            (n.status = 'scheduled' AND n.send_at <= %(scheduled_due_by)s)
            OR (n.status = 'sending' AND NOT EXISTS (
                SELECT 1 FROM claim_leases AS l WHERE l.claim_token = n.claim_token AND l.expires_at > now()))
            OR (n.status = 'failed' AND n.retry_after <= %(now)s AND n.attempts < %(max_attempts)s)
        )
) AS numbered
GROUP BY batch_number
ORDER BY batch_number
