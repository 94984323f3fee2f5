-- One batch of retention: delete at most batch_size attempt rows that started before the cutoff, going on
-- after the (started_at, id) where the previous batch stopped (index notification_attempts_started_at_idx),
-- so no batch reads again what an earlier one deleted. A row another transaction holds is skipped, never
-- waited for; a later run takes it. Returns no row when nothing was left to delete.
WITH doomed AS (
    SELECT id, started_at
    FROM notification_attempts
    WHERE started_at < %(cutoff)s
        AND (started_at, id) > (%(after_started_at)s::timestamptz, %(after_id)s::bigint)
    ORDER BY started_at, id
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    DELETE FROM notification_attempts AS a
    USING doomed
    WHERE a.id = doomed.id
    RETURNING a.id, a.started_at
)
SELECT (SELECT count(*) FROM deleted) AS deleted, last.started_at AS last_started_at, last.id AS last_id
FROM (SELECT started_at, id FROM deleted ORDER BY started_at DESC, id DESC LIMIT 1) AS last
