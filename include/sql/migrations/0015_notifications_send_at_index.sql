-- birthday_pipeline: no-transaction index=notifications_send_at_idx
-- The closing summary of every hourly run and of every sweep run (report/window_counts.sql) counts a window's
-- notifications in every status by send instant. 0002's index on send_at holds unfinished rows only, so the
-- count read the whole table: a year of history made it a sequential scan of ten million rows, 288 times a
-- day from the sweep alone (docs/performance.md). With occasion and status included the count is an
-- index-only scan of the window's rows. The Birthdays page and /birthdays/metrics select a day's
-- notifications by send instant through it too (report/day_*.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_send_at_idx ON notifications (send_at) INCLUDE (occasion, status);
