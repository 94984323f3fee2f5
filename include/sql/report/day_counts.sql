-- The notifications of one celebrated local date, counted per occasion and status.
SELECT occasion, status, count(*)
FROM notifications
WHERE occasion_date = %(day)s
GROUP BY occasion, status
ORDER BY occasion, status
