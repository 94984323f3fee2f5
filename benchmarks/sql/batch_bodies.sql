-- What the bare client posts: the fields of each message of one batch's id range.
SELECT n.id, n.user_id, u.first_name, u.last_name, n.occasion_date, n.webhook_id
FROM notifications AS n
JOIN users AS u ON u.id = n.user_id
WHERE n.id BETWEEN %(first_id)s AND %(last_id)s
ORDER BY n.id
