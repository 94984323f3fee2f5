-- The migrations recorded in this database: when each ran, the sha256 of the file it ran, and why it was
-- skipped, if it was (a bundled-users migration in a database whose users table is the application's own).
-- Named for the pipeline, so that it never meets the schema_migrations table of a Rails (or other) application.
CREATE TABLE IF NOT EXISTS birthday_schema_migrations (
    name        text PRIMARY KEY,
    checksum    text,
    skipped     text,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
