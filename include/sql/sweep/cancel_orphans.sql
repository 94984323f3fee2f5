-- Cancel the due notifications of users who no longer exist: nothing ties notifications to the users relation
-- (the users_relation setting, a composed identifier; it may be a team's table or view), so a deleted user's rows
-- would otherwise wait, unclaimable, until they expire. Only rows a send task may claim now are looked at (the
-- condition of shared/due.sql, as deliver/claim.sql), so this reads no more than the sweep would send.
UPDATE notifications AS n
SET status = 'cancelled', last_error = 'user no longer exists', claim_token = NULL, claimed_at = NULL,
    updated_at = now()
WHERE n.occasion = ANY (%(occasions)s::text[])
    AND {shared/due}
    AND NOT EXISTS (SELECT FROM {users} AS u WHERE u.id = n.user_id)
