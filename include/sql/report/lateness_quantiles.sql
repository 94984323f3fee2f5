-- Quantiles, sum and count of the lateness (sent_at - send_at, seconds) of the deliveries whose send instant
-- falls in [day_start, day_end).
SELECT percentile_cont(%(quantiles)s::double precision[]) WITHIN GROUP (ORDER BY lateness) AS quantiles,
    coalesce(sum(lateness), 0) AS total, count(*) AS count
FROM (
    SELECT extract(epoch FROM sent_at - send_at)::double precision AS lateness
    FROM notifications
    WHERE send_at >= %(day_start)s AND send_at < %(day_end)s AND status = 'sent'
) AS delivered
