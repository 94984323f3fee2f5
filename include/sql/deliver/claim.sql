-- Claim the due rows of one batch for one send task: scheduled rows whose instant has come (the sweep
-- leaves them a grace), rows in sending whose claim's lease ran out (or has no lease row) and retryable
-- failures below the attempt cap, none older than the late window: the condition of shared/due.sql, which
-- sweep/due_batches.sql selects with too. The caller's clock decides what is due, the same clock that guards
-- each send against earliness; whether a lease is alive is the database clock's call (now()), the same for
-- every worker.
-- The date_columns placeholder lists every occasion's users column, composed from the occasion registry;
-- users is the users relation (birthday_users_relation), a composed identifier.
-- The user's columns are read as upsert_notifications.sql reads them (names as text, NULL as empty); a user
-- id with rows that differ in them (user_versions > 1) makes the claimed row invalid in the re-check.
-- SKIP LOCKED lets a concurrent claimer take what this one does not; the token guards every later update.
WITH due AS (
    SELECT n.id
    FROM notifications AS n
    WHERE n.id BETWEEN %(first_id)s AND %(last_id)s
        AND n.occasion = ANY (%(occasions)s::text[])
        AND (%(send_at)s::timestamptz IS NULL OR n.send_at = %(send_at)s::timestamptz)
        AND {shared/due}
    ORDER BY n.id
    FOR UPDATE OF n SKIP LOCKED
)
UPDATE notifications AS n
SET status = 'sending', claim_token = %(claim_token)s, claimed_at = now(), updated_at = now()
FROM due, {users} AS u
WHERE n.id = due.id AND u.id = n.user_id
RETURNING n.id, n.user_id, n.occasion, n.occasion_date, n.send_at, n.webhook_id, n.attempts,
    coalesce(u.first_name::text, '') AS first_name, coalesce(u.last_name::text, '') AS last_name,
    u.timezone::text AS timezone, {date_columns},
    (
        SELECT count(*)
        FROM (
            SELECT DISTINCT v.first_name::text, v.last_name::text, v.timezone::text, {version_dates}
            FROM {users} AS v
            WHERE v.id = n.user_id
        ) AS version
    ) AS user_versions
