-- birthday_pipeline: no-transaction
-- The Birthdays page and /birthdays/metrics select a day's notifications by send instant.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_send_at_idx ON notifications (send_at)
