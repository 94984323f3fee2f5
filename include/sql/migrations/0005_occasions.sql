-- Work anniversaries: the date a user was hired (NULL: no anniversary). Planning looks users up by the
-- month and day of each occasion's date; the expression must stay identical to the one in
-- plan/upsert_notifications.sql for the index to be used (as users_birth_month_day_idx does for birthdays).
ALTER TABLE users ADD COLUMN IF NOT EXISTS hired_on date;

CREATE INDEX IF NOT EXISTS users_hired_on_month_day_idx
    ON users (((extract(month FROM hired_on) * 100 + extract(day FROM hired_on))::integer));
