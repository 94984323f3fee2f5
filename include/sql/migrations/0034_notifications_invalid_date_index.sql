-- birthday_pipeline: no-transaction index=notifications_no_instant_occasion_date_idx
-- Invalid rows have no send instant: the Birthdays page finds them by the date they celebrate.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_no_instant_occasion_date_idx ON notifications (occasion_date) WHERE send_at IS NULL
