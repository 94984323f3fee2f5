-- Deliveries of one celebrated local date per UTC hour of sending and occasion.
SELECT date_trunc('hour', sent_at) AS hour, occasion, count(*)
FROM notifications
WHERE occasion_date = %(day)s AND status = 'sent'
GROUP BY 1, 2
ORDER BY 1, 2
