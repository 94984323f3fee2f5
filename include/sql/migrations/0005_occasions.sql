-- birthday_pipeline: bundled-users
-- Work anniversaries: the date a user was hired (NULL: no anniversary), in the bundled users table. Adding a
-- column without a default changes only the catalogue: the table is locked for a moment, not rewritten.
-- Its month-day index is 0021.
ALTER TABLE users ADD COLUMN IF NOT EXISTS hired_on date;
