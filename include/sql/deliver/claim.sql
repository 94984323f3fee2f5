-- Claim the due rows of one batch for one send task: scheduled rows whose instant has come (the sweep
-- leaves them a grace), rows in sending whose claim's lease ran out (or has no lease row) and retryable
-- failures below the attempt cap, none older than the late window: the condition of shared/due.sql, which
-- sweep/due_batches.sql selects with too. The caller's clock decides what is due, the same clock that guards
-- each send against earliness; whether a lease is alive is the database clock's call (now()), the same for
-- every worker.
-- users is the users relation (the users_relation setting), a composed identifier; the columns returned are
-- shared/claimed_row.sql's, the same as resend/claim.sql's.
-- claim_limit: the most rows taken (1 for the probe of an endpoint whose circuit breaker is open), NULL: all.
-- SKIP LOCKED lets a concurrent claimer take what this one does not; the token guards every later update.
WITH due AS (
    SELECT n.id
    FROM notifications AS n
    WHERE n.id BETWEEN %(first_id)s AND %(last_id)s
        AND n.occasion = ANY (%(occasions)s::text[])
        AND (%(send_at)s::timestamptz IS NULL OR n.send_at = %(send_at)s::timestamptz)
        AND {shared/due}
    ORDER BY n.id
    LIMIT %(claim_limit)s
    FOR UPDATE OF n SKIP LOCKED
)
UPDATE notifications AS n
SET status = 'sending', claim_token = %(claim_token)s, claimed_at = now(), updated_at = now()
FROM due, {users} AS u
WHERE n.id = due.id AND u.id = n.user_id
RETURNING {shared/claimed_row}
