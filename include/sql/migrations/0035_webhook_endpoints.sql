-- The state of each webhook endpoint, shared by every send task: disabled (it answered 410 Gone; nothing is
-- sent to it until it is enabled again) and its circuit breaker (the failures in a row that got no answer or a
-- 5xx; open once there are breaker_failures of them: one probe request at a time, next_probe_at apart).
-- An endpoint is named like send_pacing names it, by the SHA-256 of its URL, never the URL; conn_id is the
-- Airflow connection that last sent to it, which alerts and logs name it by.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    endpoint_sha256       text PRIMARY KEY,
    conn_id               text,
    disabled_at           timestamptz,
    disabled_reason       text,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    breaker_opened_at     timestamptz,
    next_probe_at         timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_failures_check CHECK (consecutive_failures >= 0)
);

-- An endpoint disabled is one problem, reported once (kind 'endpoint_disabled', subject: its SHA-256) and
-- closed when it is enabled again.
ALTER TABLE open_alerts DROP CONSTRAINT IF EXISTS open_alerts_kind_check;
ALTER TABLE open_alerts ADD CONSTRAINT open_alerts_kind_check CHECK (kind IN ('problems', 'late', 'endpoint_disabled'));
