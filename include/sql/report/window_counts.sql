-- Notifications due in a window, counted per occasion and status, for a run's closing summary.
SELECT occasion, status, count(*) AS count
FROM notifications
WHERE occasion = ANY (%(occasions)s::text[])
    AND send_at >= %(window_start)s
    AND send_at < %(window_end)s
GROUP BY occasion, status
ORDER BY occasion, status
