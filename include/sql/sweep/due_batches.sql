-- The sweep's batches: every row a send task may claim now (shared/due.sql, as deliver/claim.sql claims them),
-- split by id into runs of at most batch_size rows. A sending row is due once its claim's lease ran out on the
-- database clock.
SELECT NULL::timestamptz AS send_at, min(id) AS first_id, max(id) AS last_id, count(*) AS size
FROM (
    SELECT n.id, (row_number() OVER (ORDER BY n.id) - 1) / %(batch_size)s AS batch_number
    FROM notifications AS n
    WHERE n.occasion = ANY (%(occasions)s::text[])
        AND {shared/due}
) AS numbered
GROUP BY batch_number
ORDER BY batch_number
