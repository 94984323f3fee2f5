-- A flush whose requests all got a 2xx (or answers that say nothing of the endpoint's health): reset the count
-- of failures in a row and close the circuit breaker, if there is anything to reset. A healthy endpoint's row
-- (or none) does not match, so the flushes of a busy 9 AM take no lock and write nothing here.
UPDATE webhook_endpoints
SET consecutive_failures = 0, breaker_opened_at = NULL, next_probe_at = NULL, updated_at = now()
WHERE endpoint_sha256 = %(endpoint_sha256)s
    AND (consecutive_failures > 0 OR breaker_opened_at IS NOT NULL)
