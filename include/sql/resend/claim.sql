-- Claim the notifications an operator asked to send again, for the resend DAG; the columns match
-- deliver/claim.sql, so the same send code delivers them. The date_columns placeholder lists every
-- occasion's users column, composed from the occasion registry; users is the users relation
-- (birthday_users_relation), a composed identifier. The user's columns are read as
-- upsert_notifications.sql reads them (names as text, NULL as empty); a user id with rows that differ in
-- them (user_versions > 1) makes the claimed row invalid in the re-check.
-- Rows never sent (failed, expired, cancelled, or scheduled with their instant passed) keep their webhook-id:
-- a receiver that saw an earlier attempt de-duplicates. A row already sent is taken only with force, only if
-- it was sent before this request (a retried task does not send it twice), and gets a new webhook-id.
-- Nothing under a live claim (its lease not run out on the database clock) is taken, and nothing is sent
-- before its instant.
UPDATE notifications AS n
SET status = 'sending',
    webhook_id = CASE WHEN n.status = 'sent' THEN gen_random_uuid() ELSE n.webhook_id END,
    claim_token = %(claim_token)s, claimed_at = now(), updated_at = now()
FROM {users} AS u
WHERE n.id = ANY (%(ids)s::bigint[])
    AND u.id = n.user_id
    AND (
        n.status IN ('failed', 'expired', 'cancelled')
        OR (n.status = 'scheduled' AND n.send_at <= %(now)s)
        OR (n.status = 'sending' AND NOT {shared/lease_live})
        OR (n.status = 'sent' AND %(force)s AND n.sent_at < %(requested_at)s)
    )
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
