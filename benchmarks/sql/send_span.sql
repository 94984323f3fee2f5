-- Rows sent, and the seconds from the first request's start to the last answer (the tables hold one run's rows).
SELECT count(DISTINCT n.id) AS sent, extract(epoch FROM max(n.sent_at) - min(a.started_at))::float8 AS seconds
FROM notifications AS n
JOIN notification_attempts AS a ON a.notification_id = n.id
WHERE n.status = 'sent'
