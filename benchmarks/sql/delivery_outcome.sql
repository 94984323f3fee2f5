-- Rows sent, and the seconds from the instant until the last one's answer.
SELECT count(*), extract(epoch FROM max(sent_at) - %(instant)s)::float8
FROM notifications
WHERE status = 'sent'
