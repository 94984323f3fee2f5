-- birthday_pipeline: no-transaction index=notifications_sent_at_idx
-- The Birthdays page counts the deliveries made in each hour of a day.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_sent_at_idx ON notifications (sent_at) WHERE status = 'sent'
