-- The webhook endpoints disabled now (each answered 410 Gone), by the SHA-256 of their URL, with the connection
-- that last sent to them, when and why.
SELECT endpoint_sha256, conn_id, disabled_at, disabled_reason
FROM webhook_endpoints
WHERE disabled_at IS NOT NULL
ORDER BY endpoint_sha256
