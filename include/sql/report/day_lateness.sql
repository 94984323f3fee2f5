-- How late each delivered notification of one day (send instant in [day_start, day_end)) went out:
-- sent_at - send_at, in seconds.
SELECT id, occasion, send_at, sent_at, extract(epoch FROM sent_at - send_at)::double precision AS lateness_s
FROM notifications
WHERE send_at >= %(day_start)s AND send_at < %(day_end)s AND status = 'sent'
ORDER BY send_at, id
LIMIT %(limit)s
