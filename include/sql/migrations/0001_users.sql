-- The application's users. The pipeline only reads this table.
CREATE TABLE IF NOT EXISTS users (
    id          bigint PRIMARY KEY,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    birthday    date NOT NULL,
    timezone    text,  -- IANA name; NULL means the configured default zone
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Planning looks users up by birth month and day (month * 100 + day); the expression must stay identical
-- to the one in plan/upsert_notifications.sql for the index to be used.
CREATE INDEX IF NOT EXISTS users_birth_month_day_idx
    ON users (((extract(month FROM birthday) * 100 + extract(day FROM birthday))::integer));
