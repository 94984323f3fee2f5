-- How many notifications due at one send instant exist and how many were sent (tools/compose_test.py).
SELECT count(*) AS planned, count(*) FILTER (WHERE status = 'sent') AS sent
FROM notifications
WHERE send_at = %(send_at)s
