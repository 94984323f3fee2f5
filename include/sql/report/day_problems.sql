-- The failed, invalid, expired and cancelled notifications of one day (send instant in [day_start, day_end), or
-- invalid and celebrated on that date), with the last HTTP attempt and the Airflow task instance that made it.
SELECT n.id, n.user_id, n.occasion, n.status, n.send_at, n.attempts, n.last_error, n.retry_after,
    a.error AS attempt_error, a.http_status, a.finished_at, a.dag_id, a.run_id, a.task_id, a.map_index,
    a.try_number
FROM notifications AS n
LEFT JOIN LATERAL (
    SELECT error, http_status, finished_at, dag_id, run_id, task_id, map_index, try_number
    FROM notification_attempts
    WHERE notification_id = n.id
    ORDER BY id DESC
    LIMIT 1
) AS a ON true
WHERE ((n.send_at >= %(day_start)s AND n.send_at < %(day_end)s) OR (n.send_at IS NULL AND n.occasion_date = %(day)s))
    AND n.status IN ('failed', 'invalid', 'expired', 'cancelled')
ORDER BY n.id
LIMIT %(limit)s
