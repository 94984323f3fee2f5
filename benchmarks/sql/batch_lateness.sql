-- Per send task (claim token): its first request's start after the instant, in seconds.
SELECT extract(epoch FROM min(started_at) - %(instant)s)::float8
FROM notification_attempts
GROUP BY claim_token
ORDER BY 1
