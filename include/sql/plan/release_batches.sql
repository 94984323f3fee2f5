-- The release batches of a window: its scheduled rows of every occasion grouped by send instant, each instant's rows split by
-- id into runs of batch_size rows, or of more where the window would otherwise need more than max_batches batches
-- (Airflow's max_map_length): with b >= rows / (max_batches - instants), the sum over instants of ceil(n / b) stays
-- below rows / b + instants <= max_batches. A batch is named by its instant and id range.
-- The batch size is a scalar subquery, evaluated once: as a CTE cross-joined to the rows, a planner without statistics
-- for the rows just upserted (no ANALYZE inside the planning transaction) may rescan its count for every row, which
-- took over a minute for one instant of 1 M rows (docs/performance.md, "One instant at a billion users").
WITH window_rows AS MATERIALIZED (
    SELECT id, send_at
    FROM notifications
    WHERE occasion = ANY (%(occasions)s::text[])
        AND status = 'scheduled'
        AND send_at >= %(window_start)s
        AND send_at < %(window_end)s
),
sizing AS (
    SELECT greatest(
        %(batch_size)s,
        ceil(count(*)::numeric / greatest(%(max_batches)s - count(DISTINCT send_at), 1))
    )::bigint AS rows_per_batch
    FROM window_rows
)
SELECT send_at, min(id) AS first_id, max(id) AS last_id, count(*) AS size
FROM (
    SELECT
        id,
        send_at,
        (row_number() OVER (PARTITION BY send_at ORDER BY id) - 1) / (SELECT rows_per_batch FROM sizing) AS batch_number
    FROM window_rows
) AS numbered
GROUP BY send_at, batch_number
ORDER BY send_at, batch_number
