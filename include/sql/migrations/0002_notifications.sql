-- One row per user, occasion and celebrated local date: the unit of delivery and its state.
-- user_id names a row of the users relation (birthday_users_relation), which may be a team's table or view:
-- no foreign key, so that the pipeline's tables never constrain, lock or cascade into the application's.
CREATE TABLE IF NOT EXISTS notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL,
    occasion       text NOT NULL DEFAULT 'birthday',
    occasion_date  date NOT NULL,   -- the local calendar date celebrated
    send_at        timestamptz,     -- the send instant; unknown only for an invalid row
    status         text NOT NULL DEFAULT 'scheduled',
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    sent_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_user_occasion_date_key UNIQUE (user_id, occasion, occasion_date),
    CONSTRAINT notifications_status_check
        CHECK (status IN ('scheduled', 'sending', 'sent', 'failed', 'expired', 'invalid', 'cancelled')),
    CONSTRAINT notifications_send_at_check CHECK (status = 'invalid' OR send_at IS NOT NULL),
    CONSTRAINT notifications_attempts_check CHECK (attempts >= 0)
);

-- Release and re-drive look up unfinished rows by instant (built with the empty table, so nothing waits).
CREATE INDEX IF NOT EXISTS notifications_unfinished_send_at_idx
    ON notifications (send_at) WHERE status IN ('scheduled', 'sending', 'failed');
