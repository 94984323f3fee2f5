-- The rows due and not sent yet, as of the database's clock: scheduled or sending with their instant passed,
-- or failed and waiting for a retry (below the attempt cap). How many, and how old the oldest is (seconds past its instant).
SELECT now() AS now, count(*) AS count,
    coalesce(extract(epoch FROM now() - min(send_at)), 0)::double precision AS oldest_seconds
FROM notifications
WHERE send_at <= now()
    AND (status IN ('scheduled', 'sending') OR (status = 'failed' AND retry_after IS NOT NULL AND attempts < %(max_attempts)s))
