-- birthday_pipeline: no-transaction index=users_hired_on_month_day_idx
-- birthday_pipeline: bundled-users
-- Planning looks users up by the month and day of their hire date (work anniversaries); the expression must stay
-- identical to the one in plan/upsert_notifications.sql. Built CONCURRENTLY: the application keeps writing.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_hired_on_month_day_idx
    ON users (((extract(month FROM hired_on) * 100 + extract(day FROM hired_on))::integer));
