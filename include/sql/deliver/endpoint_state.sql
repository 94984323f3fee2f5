-- The state of one webhook endpoint (named by the SHA-256 of its URL), as a send task reads it before claiming:
-- no row means it never failed and was never disabled.
SELECT disabled_at, disabled_reason, consecutive_failures, breaker_opened_at, next_probe_at
FROM webhook_endpoints
WHERE endpoint_sha256 = %(endpoint_sha256)s
