-- The release batches of a window: its scheduled rows of every occasion grouped by send instant, each instant's rows split by
-- id into runs of at most batch_size rows. A batch is named by its instant and id range.
SELECT send_at, min(id) AS first_id, max(id) AS last_id, count(*) AS size
FROM (
    SELECT
        id,
        send_at,
        (row_number() OVER (PARTITION BY send_at ORDER BY id) - 1) / %(batch_size)s AS batch_number
    FROM notifications
    WHERE occasion = ANY (%(occasions)s::text[])
        AND status = 'scheduled'
        AND send_at >= %(window_start)s
        AND send_at < %(window_end)s
) AS numbered
GROUP BY send_at, batch_number
ORDER BY send_at, batch_number
