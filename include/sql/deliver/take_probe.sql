-- Take the probe of an endpoint whose circuit breaker is open: only when its next probe is due on the database
-- clock, and moving that probe_interval ahead at once, so that of every task on every worker one at most gets it
-- (the row lock serialises the takers). Returns a row only to the task that took it.
UPDATE webhook_endpoints
SET next_probe_at = now() + %(probe_interval)s::interval, updated_at = now()
WHERE endpoint_sha256 = %(endpoint_sha256)s
    AND disabled_at IS NULL
    AND breaker_opened_at IS NOT NULL
    AND next_probe_at <= now()
RETURNING consecutive_failures
