-- What the alerts already said, so that each problem is reported once and a recovery can follow it.
-- notification_alerts: the problem notifications (failed for good, expired, invalid) already reported, with
-- the attempts they had then; a row tried again (a resend, say) that is still a problem is reported again.
CREATE TABLE IF NOT EXISTS notification_alerts (
    notification_id  bigint PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    status           text NOT NULL,
    attempts         integer NOT NULL,
    alerted_at       timestamptz NOT NULL
);

-- open_alerts: the alerts not followed by a recovery yet: kind 'problems' per DAG (subject: the dag id) and
-- kind 'late' per hourly window (subject: the window's start, ISO 8601 in UTC).
CREATE TABLE IF NOT EXISTS open_alerts (
    kind       text NOT NULL,
    subject    text NOT NULL,
    dag_id     text NOT NULL,
    run_id     text NOT NULL,
    opened_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject),
    CONSTRAINT open_alerts_kind_check CHECK (kind IN ('problems', 'late'))
);
