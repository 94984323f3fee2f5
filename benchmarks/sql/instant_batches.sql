-- The batches the send tasks of one instant sent, one row each: the id range and the rows of each claim token.
SELECT min(a.notification_id), max(a.notification_id), count(DISTINCT a.notification_id)
FROM notification_attempts AS a
JOIN notifications AS n ON n.id = a.notification_id
WHERE n.send_at = %(instant)s
GROUP BY a.claim_token
ORDER BY 1
