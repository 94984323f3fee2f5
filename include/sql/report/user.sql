-- The fields of one user the next planned send depends on; the date_columns placeholder lists every
-- occasion's users column, composed from the occasion registry; users is the users relation
-- (birthday_users_relation), a composed identifier.
SELECT u.id, u.first_name, u.last_name, u.timezone, {date_columns}
FROM {users} AS u
WHERE u.id = %(user_id)s
