-- Claim the due rows of one batch for one send task: scheduled rows whose instant has come (the sweep
-- leaves them a grace), rows whose sending lease expired and retryable failures below the attempt cap,
-- none older than the late window. sweep/due_batches.sql selects with the same conditions.
-- The caller's clock decides what is due, the same clock that guards each send against earliness.
-- The date_columns placeholder lists every occasion's users column, composed from the occasion registry;
-- users is the users relation (birthday_users_relation), a composed identifier.
-- SKIP LOCKED lets a concurrent claimer take what this one does not; the token guards every later update.
WITH due AS (
    SELECT id
    FROM notifications
    WHERE id BETWEEN %(first_id)s AND %(last_id)s
        AND occasion = ANY (%(occasions)s::text[])
        AND (%(send_at)s::timestamptz IS NULL OR send_at = %(send_at)s::timestamptz)
        AND send_at > %(now)s - %(max_lateness)s::interval
        AND (
            (status = 'scheduled' AND send_at <= %(scheduled_due_by)s)
            OR (status = 'sending' AND claimed_at < %(now)s - %(lease)s::interval)
            OR (status = 'failed' AND retry_after <= %(now)s AND attempts < %(max_attempts)s)
        )
    ORDER BY id
    FOR UPDATE SKIP LOCKED
)
UPDATE notifications AS n
SET status = 'sending', claim_token = %(claim_token)s, claimed_at = now(), updated_at = now()
FROM due, {users} AS u
WHERE n.id = due.id AND u.id = n.user_id
RETURNING n.id, n.user_id, n.occasion, n.occasion_date, n.send_at, n.webhook_id, n.attempts,
    u.first_name, u.last_name, u.timezone, {date_columns}
