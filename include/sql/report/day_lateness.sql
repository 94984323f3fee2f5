-- How late each delivered notification of one celebrated local date went out: sent_at - send_at, in seconds.
SELECT id, occasion, send_at, sent_at, extract(epoch FROM sent_at - send_at)::double precision AS lateness_s
FROM notifications
WHERE occasion_date = %(day)s AND status = 'sent'
ORDER BY send_at, id
LIMIT %(limit)s
