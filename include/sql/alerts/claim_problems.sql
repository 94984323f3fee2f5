-- The problem notifications not reported yet, recorded as reported in the same statement: failed for good
-- (refused: no retry_after; or out of attempts), expired or invalid, changed within the lookback. A row
-- reported before comes back only when a later attempt left it a problem again. Concurrent callers never
-- both report a row: the second waits on the first's insert and then finds it reported.
WITH problem AS (
    SELECT n.id, n.status, n.attempts
    FROM notifications AS n
    WHERE n.status IN ('failed', 'expired', 'invalid')
        AND n.updated_at > now() - %(lookback)s::interval
        AND (n.status <> 'failed' OR n.retry_after IS NULL OR n.attempts >= %(max_attempts)s)
),
reported AS (
    INSERT INTO notification_alerts AS a (notification_id, status, attempts, alerted_at)
    SELECT id, status, attempts, clock_timestamp()
    FROM problem
    ON CONFLICT (notification_id) DO UPDATE
    SET status = excluded.status, attempts = excluded.attempts, alerted_at = excluded.alerted_at
    WHERE a.attempts < excluded.attempts
    RETURNING a.notification_id
)
SELECT n.id, n.occasion, n.status, n.retry_after IS NULL AS refused, n.last_error
FROM reported AS r
JOIN notifications AS n ON n.id = r.notification_id
ORDER BY n.id
