-- The requested users and their notification of one occasion and date, if any, in the order requested.
-- The users placeholder is the users relation (birthday_users_relation), a composed identifier.
SELECT requested.user_id, u.id IS NOT NULL AS user_exists, n.id, n.status, n.send_at, n.sent_at, n.webhook_id,
    n.last_error, n.claimed_at
FROM unnest(%(user_ids)s::bigint[]) WITH ORDINALITY AS requested (user_id, position)
LEFT JOIN {users} AS u ON u.id = requested.user_id
LEFT JOIN notifications AS n
    ON n.user_id = requested.user_id AND n.occasion = %(occasion)s AND n.occasion_date = %(occasion_date)s
ORDER BY requested.position
