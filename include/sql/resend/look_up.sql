-- The requested users and their notification of one occasion and date, if any, in the order requested;
-- claim_live says whether the row is under a claim whose lease has not run out (database clock).
-- The users placeholder is the users relation (the users_relation setting), a composed identifier; a user id it
-- repeats is still one requested user. opted_out: any of the user's rows holds true in the opt-out column (opt_out,
-- over alias u; NULL when the opt_out_column setting is not set).
SELECT requested.user_id, EXISTS (SELECT FROM {users} AS u WHERE u.id = requested.user_id) AS user_exists,
    coalesce((SELECT bool_or({opt_out}::boolean) FROM {users} AS u WHERE u.id = requested.user_id), false)
        AS opted_out,
    n.id AS notification_id, n.status, n.send_at,
    n.sent_at, n.webhook_id, n.last_error,
    n.status = 'sending' AND {shared/lease_live} AS claim_live
FROM unnest(%(user_ids)s::bigint[]) WITH ORDINALITY AS requested (user_id, position)
LEFT JOIN notifications AS n
    ON n.user_id = requested.user_id AND n.occasion = %(occasion)s AND n.occasion_date = %(occasion_date)s
ORDER BY requested.position
