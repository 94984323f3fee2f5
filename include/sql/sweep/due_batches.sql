-- The sweep's batches: every row a send task may claim now (shared/due.sql, as deliver/claim.sql claims them),
-- split by id into runs of batch_size rows, or of more where that would take more than max_batches batches
-- (Airflow's max_map_length). A sending row is due once its claim's lease ran out on the database clock.
-- The batch size is a scalar subquery, evaluated once, not a CTE cross-joined to the rows, whose count a planner
-- misled by its estimates may compute again for every row (plan/release_batches.sql).
WITH due_rows AS MATERIALIZED (
    SELECT n.id
    FROM notifications AS n
    WHERE n.occasion = ANY (%(occasions)s::text[])
        AND {shared/due}
),
sizing AS (
    SELECT greatest(%(batch_size)s, ceil(count(*)::numeric / %(max_batches)s))::bigint AS rows_per_batch
    FROM due_rows
)
SELECT NULL::timestamptz AS send_at, min(id) AS first_id, max(id) AS last_id, count(*) AS size
FROM (
    SELECT id, (row_number() OVER (ORDER BY id) - 1) / (SELECT rows_per_batch FROM sizing) AS batch_number
    FROM due_rows
) AS numbered
GROUP BY batch_number
ORDER BY batch_number
