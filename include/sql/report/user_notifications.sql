-- One user's notifications, newest first, with the task instance of each one's last attempt.
SELECT n.id, n.occasion, n.occasion_date, n.status, n.send_at, n.sent_at, n.attempts, n.last_error, n.webhook_id,
    a.dag_id, a.run_id, a.task_id, a.map_index, a.try_number
FROM notifications AS n
LEFT JOIN LATERAL (
    SELECT dag_id, run_id, task_id, map_index, try_number
    FROM notification_attempts
    WHERE notification_id = n.id
    ORDER BY id DESC
    LIMIT 1
) AS a ON true
WHERE n.user_id = %(user_id)s
ORDER BY n.occasion_date DESC, n.occasion
LIMIT %(limit)s
