-- Delivery state: a stable webhook id per notification, the claim (lease) of the task sending it, when a
-- failed row may be tried again (NULL: never), and one row per HTTP attempt.
ALTER TABLE notifications
    ADD COLUMN IF NOT EXISTS webhook_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS claim_token uuid,
    ADD COLUMN IF NOT EXISTS claimed_at timestamptz,
    ADD COLUMN IF NOT EXISTS retry_after timestamptz;

CREATE TABLE IF NOT EXISTS notification_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt_number   integer NOT NULL,
    claim_token      uuid NOT NULL,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    http_status      integer,
    error            text,
    latency_ms       double precision NOT NULL
);

CREATE INDEX IF NOT EXISTS notification_attempts_notification_idx ON notification_attempts (notification_id);
