-- birthday_pipeline: no-transaction
-- The Birthdays page reports one celebrated local date (report/day_*.sql), which had no index: every request
-- read the whole table. With occasion and status included the day's counts are an index-only scan. The id
-- after the date gives retention (retention/delete_notifications.sql) a position to go on from, batch after
-- batch, instead of reading the rows it already deleted again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_occasion_date_idx
    ON notifications (occasion_date, id) INCLUDE (occasion, status);
