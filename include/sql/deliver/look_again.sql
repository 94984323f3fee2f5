-- Read the rows of a claim again just before its instant, as the claim returned them (shared/claimed_row.sql's
-- columns): a send task that claimed early re-checks what changed since (a user renamed, moved, deleted).
-- Only rows still held under claim_token come back, once each (a user id with several rows in the users
-- relation joins more than once; user_versions says so); a row whose user no longer exists does not come back.
-- users is the users relation (the users_relation setting), a composed identifier.
SELECT DISTINCT ON (n.id) {shared/claimed_row}
FROM notifications AS n
JOIN {users} AS u ON u.id = n.user_id
WHERE n.id = ANY (%(ids)s::bigint[])
    AND n.claim_token = %(claim_token)s
ORDER BY n.id
