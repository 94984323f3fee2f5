-- Claim the notifications an operator asked to send again, for the resend DAG; the columns returned are
-- shared/claimed_row.sql's, as deliver/claim.sql's, so the same send code delivers them. users is the users
-- relation (the users_relation setting), a composed identifier.
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
RETURNING {shared/claimed_row}
