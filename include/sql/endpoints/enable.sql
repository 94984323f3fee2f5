-- Enable an endpoint again (named by the SHA-256 of its URL): no longer disabled, its circuit breaker closed
-- and its count of failures reset, so the next sweep sends it every row that waited. Returns what it was.
UPDATE webhook_endpoints AS e
SET disabled_at = NULL, disabled_reason = NULL, consecutive_failures = 0, breaker_opened_at = NULL,
    next_probe_at = NULL, updated_at = now()
FROM (SELECT endpoint_sha256, disabled_at, disabled_reason, breaker_opened_at
      FROM webhook_endpoints WHERE endpoint_sha256 = %(endpoint_sha256)s FOR UPDATE) AS before
WHERE e.endpoint_sha256 = before.endpoint_sha256
RETURNING before.disabled_at, before.disabled_reason, before.breaker_opened_at
