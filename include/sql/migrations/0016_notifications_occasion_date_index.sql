-- birthday_pipeline: no-transaction index=notifications_occasion_date_idx
-- Notifications by the local date they celebrate, which had no index. Retention deletes along it
-- (retention/delete_notifications.sql): the id after the date gives each batch a position to go on from
-- instead of reading the rows it already deleted again, and the included status lets it pass over the rows
-- it keeps without reading them.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_occasion_date_idx
    ON notifications (occasion_date, id) INCLUDE (occasion, status);
