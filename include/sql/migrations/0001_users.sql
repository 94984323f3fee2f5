-- birthday_pipeline: bundled-users
-- The bundled users table, for a database of the pipeline's own (make run, the tests, docker compose): an
-- application writes its users here. The runner skips this and every bundled-users migration when a relation
-- users already exists (a team's own table, whatever its shape): the pipeline then reads the relation that
-- birthday_users_relation names (docs/deploy.md) and never changes it.
CREATE TABLE IF NOT EXISTS users (
    id          bigint PRIMARY KEY,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    birthday    date NOT NULL,
    timezone    text,  -- an IANA or Rails (ActiveSupport) zone name; NULL means the configured default zone
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE users IS
    'birthday_pipeline''s bundled users table (migration 0001); a team points birthday_users_relation at its own';
