-- The hourly windows (UTC hours of the send instant) that ended before late_cutoff and still hold unsent
-- notifications: scheduled, sending, or failed and waiting for a retry. Older rows than the late window are
-- left to the sweep, which expires them. Counted per window, occasion and status, with the first ids.
SELECT date_trunc('hour', n.send_at, 'UTC') AS window_start, n.occasion, n.status, count(*) AS count,
    (array_agg(n.id ORDER BY n.id))[1:%(max_ids)s] AS first_ids
FROM notifications AS n
WHERE n.status IN ('scheduled', 'sending', 'failed')
    AND n.occasion = ANY (%(occasions)s::text[])
    AND n.send_at > %(now)s - %(max_lateness)s::interval
    AND n.send_at < %(late_cutoff)s
    AND (n.status <> 'failed' OR (n.retry_after IS NOT NULL AND n.attempts < %(max_attempts)s))
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
