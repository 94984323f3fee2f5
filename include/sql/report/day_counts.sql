-- The notifications of one day, counted per occasion and status: those whose send instant falls in
-- [day_start, day_end), and the invalid ones (which have no instant) celebrated on that date.
SELECT occasion, status, count(*) AS count
FROM notifications
WHERE (send_at >= %(day_start)s AND send_at < %(day_end)s) OR (send_at IS NULL AND occasion_date = %(day)s)
GROUP BY occasion, status
ORDER BY occasion, status
