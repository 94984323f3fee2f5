-- birthday_pipeline: no-transaction index=notification_attempts_started_at_idx
-- Retention deletes attempt rows older than birthday_attempt_retention_days in bounded batches, each going
-- on from where the last one stopped (retention/delete_attempts.sql); without an index on the attempt's
-- time every batch would read the table from its start.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notification_attempts_started_at_idx
    ON notification_attempts (started_at, id);
