-- birthday_pipeline: no-transaction drops-index=users_birth_month_day_idx
-- birthday_pipeline: bundled-users
-- The index on the birth month-day from the first 0001, replaced by 0009's covering index. Dropped
-- CONCURRENTLY, so that reads and writes of users go on meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS users_birth_month_day_idx;
