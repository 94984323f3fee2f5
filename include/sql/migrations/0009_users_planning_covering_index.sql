-- birthday_pipeline: no-transaction index=users_birth_month_day_covering_idx
-- birthday_pipeline: bundled-users
-- Planning reads every user born on the window's month-days. With the fields it needs in the index, it reads
-- them from the index alone (an index-only scan, the users of one month-day side by side) instead of one
-- heap page per user, spread over the whole table: at 10 M users that was 27,000 random page reads and
-- most of the planning time (docs/performance.md). The expression must stay identical to the one in
-- plan/upsert_notifications.sql. Built CONCURRENTLY: the application keeps writing users meanwhile.
-- 0022 drops the index on the same expression this one replaces.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_birth_month_day_covering_idx
    ON users (((extract(month FROM birthday) * 100 + extract(day FROM birthday))::integer))
    INCLUDE (id, timezone, first_name, last_name, birthday);
