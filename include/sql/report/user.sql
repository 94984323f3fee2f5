-- The fields of one user the next planned send depends on, read as the planning and the claim read them (names as
-- text, NULL as empty), and how many differing rows the relation has for the id (user_versions; more than one
-- makes the user invalid), whether the user opted out. The date_columns placeholder lists every occasion's users
-- column, composed from the occasion registry, version_dates those and the locale and opt-out columns; locale and
-- opt_out are those columns (NULL when their setting is not set); users is the users relation (the users_relation setting), a composed
-- identifier.
SELECT u.id, coalesce(u.first_name::text, '') AS first_name, coalesce(u.last_name::text, '') AS last_name,
    u.timezone::text AS timezone, {date_columns},
    {locale}::text AS locale, coalesce({opt_out}::boolean, false) AS opted_out,
    {shared/user_versions} AS user_versions
FROM {users} AS u
WHERE u.id = %(user_id)s
LIMIT 1
